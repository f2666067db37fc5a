/* Arenas: many small allocations released together. The configuration lives in one, so that a
 * failed load (or a fuzzer iteration) frees everything in one call. */
#ifndef KEEL_ARENA_H
#define KEEL_ARENA_H

#include <stddef.h>

#include <keel/arena-t.h>

void *arena_alloc(struct arena *a, size_t n); /* zeroed, 16-byte aligned; fatal on OOM */
/* Same, aligned to align bytes (a power of two, e.g. 64 for per-thread counter blocks). */
void *arena_alloc_aligned(struct arena *a, size_t n, size_t align);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* Grows an array allocated from the arena (copies; the old space is abandoned until arena_free). */
void *arena_grow(struct arena *a, void *old, size_t oldn, size_t newn, size_t elsz);
/* Runs fn(ptr) when the arena is freed (for objects owned by other libraries, e.g. regexes). */
void arena_on_free(struct arena *a, void (*fn)(void *), void *ptr);
void arena_free(struct arena *a);

#endif
