/* Object pool types (include/keel/pool.h). */
#ifndef KEEL_POOL_T_H
#define KEEL_POOL_T_H

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

#endif
