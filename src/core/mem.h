/* mem.h - allocation that aborts on out-of-memory (as Redis zmalloc).
 *
 * Safe only because every buffer a client can grow is capped (core/limits.h) and
 * the cap is checked before allocating. Never call these with a client-chosen size
 * that was not checked against a cap first. */
#ifndef CORE_MEM_H
#define CORE_MEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/* Grow-array helper: realloc p to count*size bytes, aborting on overflow. */
void *xreallocarray(void *p, size_t count, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
