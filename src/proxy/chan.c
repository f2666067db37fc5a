/* Channels (include/keel/chan.h): the move of a large body to a stream buffer. */
#include <keel/buf.h>
#include <keel/chan.h>
#include <keel/common.h>
#include <keel/global.h>
#include <keel/loop.h>

/* Whether what is left of the body that p is parsing needs more than an ordinary buffer: a
 * Content-Length body with more than bufsize bytes to come, or a chunked or close-delimited one,
 * whose size is unknown. */
static bool body_is_large(const llhttp_t *p)
{
	if ((p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED))
		return p->content_length > tl->bufsize;
	return true;
}

void chan_stream(struct chan *c, const llhttp_t *p)
{
	if (c->b.head == c->b.tail && c->b.size == tl->bufsize &&
	    global.bufsize_stream > tl->bufsize && body_is_large(p) &&
	    buf_grow(&c->b, global.bufsize_stream))
		c->out = c->fwd = 0;
}
