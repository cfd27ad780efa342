/* scheduler/registry.c: a string-keyed table under one mutex (see registry.h). */
#include "scheduler/registry.h"

#include <string.h>

#include "common/alloc.h"

void registry_init(struct registry *r, size_t size)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->size = size;
}

void registry_release(struct registry *r, void (*release)(void *rec))
{
	for (size_t i = 0; i < r->n; i++) {
		void *rec = registry_at(r, i);

		if (release)
			release(rec);
		xfree((char **)rec);
	}
	xfree(&r->v);
	r->n = r->alloc = 0;
	pthread_mutex_destroy(&r->lock);
}

void *registry_owner_new(size_t owner_size, size_t size)
{
	struct registry *r = xcalloc(1, owner_size);

	registry_init(r, size);
	return r;
}

void registry_owner_free(void *owner, void (*release)(void *rec))
{
	struct registry **pr = owner;

	if (!*pr)
		return;
	registry_release(*pr, release);
	xfree(pr);
}

void registry_lock(struct registry *r)
{
	pthread_mutex_lock(&r->lock);
}

void registry_unlock(struct registry *r)
{
	pthread_mutex_unlock(&r->lock);
}

void *registry_at(struct registry *r, size_t i)
{
	return (char *)r->v + i * r->size;
}

void *registry_find(struct registry *r, const char *key)
{
	for (size_t i = 0; i < r->n; i++) {
		void *rec = registry_at(r, i);

		if (strcmp(*(char **)rec, key) == 0)
			return rec;
	}
	return NULL;
}

void *registry_add(struct registry *r, const char *key)
{
	void *rec;

	r->v = xgrow(r->v, r->size, r->n + 1, &r->alloc);
	rec = registry_at(r, r->n++);
	memset(rec, 0, r->size);
	*(char **)rec = xstrdup(key);
	return rec;
}
