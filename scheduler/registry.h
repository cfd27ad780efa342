/* scheduler/registry.h: a small table of records keyed by a string, under one mutex: the per-server
 * tables of the scheduler (server health, host limits) share it.
 *
 * A record is a struct whose first member is its key, `char *key`, which the registry owns (copied
 * by registry_add, freed by registry_release). Records live in one array that grows: a record's
 * address is valid until the next registry_add.
 *
 * Threads: registry_find, registry_add and registry_at are called with the lock held
 * (registry_lock / registry_unlock); init and release by the owner alone.
 */
#ifndef IMAPFLEET_SCHEDULER_REGISTRY_H
#define IMAPFLEET_SCHEDULER_REGISTRY_H

#include <pthread.h>
#include <stddef.h>

struct registry {
	pthread_mutex_t lock;
	void *v; /* n records of size bytes each */
	size_t size, n, alloc;
};

/* size: sizeof the record (its first member char *key). */
void registry_init(struct registry *r, size_t size);
/* Calls release (may be NULL) on every record, frees its key, the array and the mutex. */
void registry_release(struct registry *r, void (*release)(void *rec));

/* The tables that keep their records here (server health, the host limiter) are heap objects whose
 * first member is their struct registry: registry_owner_new allocates one of owner_size bytes,
 * zeroed, its registry initialised for records of size bytes; registry_owner_free releases the
 * registry (release as in registry_release), frees *owner and nulls it (a NULL *owner: nothing). */
void *registry_owner_new(size_t owner_size, size_t size);
void registry_owner_free(void *owner, void (*release)(void *rec));

void registry_lock(struct registry *r);
void registry_unlock(struct registry *r);

/* The record of key, NULL when there is none. */
void *registry_find(struct registry *r, const char *key);
/* Adds a record for key, which has none yet (registry_find): zeroed but for its key, a copy. */
void *registry_add(struct registry *r, const char *key);
/* The i-th record (i < r->n), in the order they were added. */
void *registry_at(struct registry *r, size_t i);

#endif
