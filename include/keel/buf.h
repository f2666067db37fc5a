/* Byte buffers (struct buf and its invariant: include/keel/buf-t.h). Storage comes from the loop's
 * buffer pool and is returned as soon as the buffer is empty, so an idle connection holds no
 * buffer memory. */
#ifndef KEEL_BUF_H
#define KEEL_BUF_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <keel/buf-t.h>
#include <keel/common.h>

static inline uint32_t buf_len(const struct buf *b)
{
	return b->tail - b->head;
}

static inline uint32_t buf_room(const struct buf *b)
{
	return b->size - b->tail;
}

static inline char *buf_head(const struct buf *b)
{
	return b->data + b->head;
}

static inline char *buf_tail(const struct buf *b)
{
	return b->data + b->tail;
}

/* Moves live bytes to the start of the storage so that all free space is at the end. */
static inline void buf_compact(struct buf *b)
{
	if (b->head == 0)
		return;
	if (b->tail > b->head)
		memmove(b->data, b->data + b->head, b->tail - b->head);
	b->tail -= b->head;
	b->head = 0;
}

/* Attaches pool storage when the buffer has none. Returns false on memory exhaustion. */
bool buf_get(struct buf *b);
/* Returns the storage to the pool when the buffer is empty (or unconditionally with force). */
void buf_release(struct buf *b, bool force);
/* Swaps the ordinary storage of an empty buffer for a stream buffer of size bytes (from the loop's
 * second pool, which takes that size on first use: one size per process). Returns false, and
 * leaves b as it was, when b is not empty, already larger, or memory is short. */
bool buf_grow(struct buf *b, uint32_t size);

#endif
