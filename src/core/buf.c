/* Buffer storage management (the byte-level helpers are inline in buf.h). */
#include <keel/buf.h>
#include <keel/loop.h>

bool buf_get(struct buf *b)
{
	if (b->data)
		return true;
	b->data = pool_alloc(&tl->buf_pool);
	if (!b->data)
		return false;
	b->size = tl->bufsize;
	b->head = b->tail = 0;
	return true;
}

void buf_release(struct buf *b, bool force)
{
	if (!b->data || (!force && b->tail != b->head))
		return;
	pool_free(&tl->buf_pool, b->data);
	b->data = NULL;
	b->size = b->head = b->tail = 0;
}
