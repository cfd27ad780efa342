#include "common/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die_oom(size_t size)
{
	fprintf(stderr, "imapfleet: out of memory (could not allocate %zu bytes)\n", size);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (!p)
		die_oom(size);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (!p)
		die_oom(nmemb * size);
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);

	if (!p)
		die_oom(size);
	return p;
}

void *xgrow(void *ptr, size_t elem_size, size_t need, size_t *nalloc)
{
	size_t n = *nalloc;

	if (need <= n)
		return ptr;
	if (n < 8)
		n = 8;
	while (n < need) {
		if (n > ((size_t)-1) / 2 / elem_size)
			die_oom(need * elem_size);
		n *= 2;
	}
	*nalloc = n;
	return xrealloc(ptr, n * elem_size);
}

void *xpush_impl(void **pp, size_t elem_size, size_t *n, size_t *nalloc)
{
	char *e;

	*pp = xgrow(*pp, elem_size, *n + 1, nalloc);
	e = (char *)*pp + *n * elem_size;
	memset(e, 0, elem_size);
	(*n)++;
	return e;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		die_oom(0);
	p = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void xfree_impl(void **pp)
{
	if (pp) {
		free(*pp);
		*pp = NULL;
	}
}
