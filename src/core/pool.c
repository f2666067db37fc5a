/* Per-thread free lists in front of malloc. The cap on cached objects bounds what a traffic spike
 * can leave behind once it is over. */
#include <stdlib.h>

#include <keel/common.h>
#include <keel/pool.h>

void pool_init(struct pool *p, const char *name, size_t size, uint32_t max_free)
{
	p->name = name;
	p->size = size < sizeof(void *) ? sizeof(void *) : size;
	p->free = NULL;
	p->nfree = 0;
	p->nused = 0;
	p->max_free = max_free;
	p->failed = 0;
}

void *pool_alloc(struct pool *p)
{
	void *obj = p->free;

	if (obj) {
		p->free = *(void **)obj;
		p->nfree--;
	} else {
		obj = malloc(p->size);
		if (!obj) {
			p->failed++;
			return NULL;
		}
	}
	p->nused++;
	return obj;
}

void pool_free(struct pool *p, void *obj)
{
	if (!obj)
		return;
	BUG_ON(p->nused == 0);
	p->nused--;
	if (p->nfree >= p->max_free) {
		free(obj);
		return;
	}
	*(void **)obj = p->free;
	p->free = obj;
	p->nfree++;
}

void pool_flush(struct pool *p)
{
	while (p->free) {
		void *obj = p->free;

		p->free = *(void **)obj;
		free(obj);
	}
	p->nfree = 0;
}
