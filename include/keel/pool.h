/* Fixed-size object pools. Each event loop owns its pools: allocation and release are a pointer
 * swap with no lock, and an object is always released by the thread that allocated it. */
#ifndef KEEL_POOL_H
#define KEEL_POOL_H

#include <stddef.h>
#include <stdint.h>

struct pool {
	const char *name;
	size_t size;      /* object size, >= sizeof(void *) */
	void *free;       /* singly linked list of released objects */
	uint32_t nfree;   /* objects in the free list */
	uint32_t nused;   /* objects handed out and not yet released */
	uint32_t max_free; /* beyond this, released objects go back to malloc */
	uint64_t failed;  /* allocations that failed (memory pressure) */
};

void pool_init(struct pool *p, const char *name, size_t size, uint32_t max_free);
/* Returns an uninitialised object, or NULL when memory is exhausted. */
void *pool_alloc(struct pool *p);
void pool_free(struct pool *p, void *obj);
/* Releases every cached free object (at shutdown, or to give memory back after a spike). */
void pool_flush(struct pool *p);

#endif
