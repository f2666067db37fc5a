/* Byte buffer types (include/keel/buf.h). */
#ifndef KEEL_BUF_T_H
#define KEEL_BUF_T_H

#include <stdint.h>

/* A buffer is a (storage, size, head, tail) window: bytes in [head, tail) are live, [tail, size)
 * is free space, [0, head) is reclaimable by buf_compact(). Invariant: head <= tail <= size. */
struct buf {
	char *data;     /* NULL when no storage is attached */
	uint32_t size;
	uint32_t head;
	uint32_t tail;
};

#endif
