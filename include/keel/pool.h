/* Fixed-size object pools. Each event loop owns its pools: allocation and release are a pointer
 * swap with no lock, and an object is always released by the thread that allocated it. */
#ifndef KEEL_POOL_H
#define KEEL_POOL_H

#include <stddef.h>
#include <stdint.h>

#include <keel/pool-t.h>

void pool_init(struct pool *p, const char *name, size_t size, uint32_t max_free);
/* Returns an uninitialised object, or NULL when memory is exhausted. */
void *pool_alloc(struct pool *p);
void pool_free(struct pool *p, void *obj);
/* Releases every cached free object (at shutdown, or to give memory back after a spike). */
void pool_flush(struct pool *p);

#endif
