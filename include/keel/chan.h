/* Channel helpers shared by the stream and the muxes (docs/internals/architecture.md,
 * "Buffers"). The small ones are inline: they sit on the per-read path. */
#ifndef KEEL_CHAN_H
#define KEEL_CHAN_H

#include <stdbool.h>

#include <keel/buf.h>
#include <keel/chan-t.h>
#include <keel/global.h>
#include <keel/http-t.h>

/* Moves a channel's bytes to the start of its storage, keeping out/fwd aligned. */
static inline void chan_compact(struct chan *c)
{
	uint32_t shift = c->b.head;

	if (!shift)
		return;
	buf_compact(&c->b);
	c->out -= shift;
	c->fwd -= shift;
}

static inline void chan_reset_if_empty(struct chan *c)
{
	if (c->b.data && c->b.head == c->b.tail)
		c->b.head = c->b.tail = c->out = c->fwd = 0;
}

/* Gives an empty channel's buffer back to its pool (an idle connection holds none). */
static inline void chan_release(struct chan *c)
{
	chan_reset_if_empty(c);
	if (c->b.data && c->b.head == c->b.tail)
		buf_release(&c->b, false);
}

/* Drops whatever the channel holds and its buffer. */
static inline void chan_drop(struct chan *c)
{
	if (c->b.data)
		buf_release(&c->b, true);
	c->out = c->fwd = 0;
}

/* Free bytes a read must leave at the end of a channel's buffer. While a head is awaited, its
 * rewrite (X-Forwarded-For, rules, Connection, cookies) may make it longer, and body bytes that
 * come in the same read must not take that room: tune.maxrewrite stays free, as in HAProxy.
 * Without it, a POST whose first read filled the buffer got a 431 with "option forwardfor", and a
 * response whose head keel lengthens a 502. The head size limit (bufsize - maxrewrite) is what a
 * read can then fill, so a head that does not fit still fails as too large, never stalls. */
static inline uint32_t chan_reserve(bool head_pending)
{
	return head_pending ? global.maxrewrite : 0;
}

/* Called before a read into a channel whose body is streaming (p: the parser of that body):
 * once the channel is empty (all sent, nothing retained), a large body moves to a stream buffer
 * (tune.bufsize.stream), so that each read and each write carries up to that many bytes instead
 * of bufsize: about a quarter of the system calls per MB, and larger TCP segments. The buffer
 * goes back to its pool when the channel empties at the end, like an ordinary one. Heads never
 * need it: their size limits stay relative to bufsize. */
void chan_stream(struct chan *c, const llhttp_t *p);

#endif
