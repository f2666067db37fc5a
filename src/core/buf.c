/* Buffer storage management (the byte-level helpers are inline in buf.h). */
#include <keel/buf.h>
#include <keel/loop.h>
#include <keel/pool.h>

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
	pool_free(b->size == tl->bufsize ? &tl->buf_pool : &tl->sbuf_pool, b->data);
	b->data = NULL;
	b->size = b->head = b->tail = 0;
}

bool buf_grow(struct buf *b, uint32_t size)
{
	char *d;

	if (!b->data || b->head != b->tail || b->size != tl->bufsize || size <= b->size)
		return false;
	if (!tl->sbuf_pool.size)
		pool_init(&tl->sbuf_pool, "stream buffer", size, 64);
	BUG_ON(tl->sbuf_pool.size != size);
	d = pool_alloc(&tl->sbuf_pool);
	if (!d)
		return false;
	pool_free(&tl->buf_pool, b->data);
	b->data = d;
	b->size = size;
	b->head = b->tail = 0;
	return true;
}
