/* Channels: a stream's bytes in one direction (include/keel/chan.h). */
#ifndef KEEL_CHAN_T_H
#define KEEL_CHAN_T_H

#include <stdint.h>

#include <keel/buf-t.h>

/* A byte stream in one direction. Invariant: b.head <= out <= fwd <= b.tail.
 * [b.head, out) was sent but is retained for a retry, [out, fwd) is ready to send,
 * [fwd, b.tail) is received but not parsed yet. */
struct chan {
	struct buf b;
	uint32_t out;
	uint32_t fwd;
};

#endif
