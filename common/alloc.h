/* common/alloc.h: allocation that never returns NULL.
 *
 * Out of memory is not a condition imapfleet can recover from in a useful way, so these abort
 * with a message instead of making every caller check. xfree() takes the address of the
 * pointer and nulls it, so a freed pointer cannot be used twice (after Dovecot's i_free).
 */
#ifndef IMAPFLEET_COMMON_ALLOC_H
#define IMAPFLEET_COMMON_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* Grows an array: *nalloc is the current capacity in elements; ensures room for `need` elements. */
void *xgrow(void *ptr, size_t elem_size, size_t need, size_t *nalloc);
/* Appends one zeroed element to an array grown by xgrow: *n elements (incremented), capacity
 * *nalloc. Returns the new element; earlier elements' addresses may change (as with xgrow). */
#define xpush(pp, n, nalloc) xpush_impl((void **)(pp), sizeof(**(pp)), (n), (nalloc))
void *xpush_impl(void **pp, size_t elem_size, size_t *n, size_t *nalloc);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void xfree_impl(void **pp);
#define xfree(pp) xfree_impl((void **)(pp))

#endif
