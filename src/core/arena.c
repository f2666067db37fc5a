/* Bump allocator in 64 KB blocks (larger requests get their own block). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <keel/arena.h>
#include <keel/common.h>

struct arena_block {
	struct arena_block *next;
	size_t size, used;
	_Alignas(16) char data[];
};

struct arena_cleanup {
	struct arena_cleanup *next;
	void (*fn)(void *);
	void *ptr;
};

#define ARENA_BLOCK 65536

void *arena_alloc(struct arena *a, size_t n)
{
	struct arena_block *b = a->blocks;
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (!b || b->size - b->used < n) {
		size_t sz = n > ARENA_BLOCK ? n : ARENA_BLOCK;

		b = xmalloc(sizeof(*b) + sz);
		b->size = sz;
		b->used = 0;
		b->next = a->blocks;
		a->blocks = b;
	}
	p = b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

void *arena_alloc_aligned(struct arena *a, size_t n, size_t align)
{
	char *p = arena_alloc(a, n + align);

	return (void *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *d = arena_alloc(a, n + 1);

	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

void *arena_grow(struct arena *a, void *old, size_t oldn, size_t newn, size_t elsz)
{
	void *p = arena_alloc(a, newn * elsz);

	if (old && oldn)
		memcpy(p, old, oldn * elsz);
	return p;
}

void arena_on_free(struct arena *a, void (*fn)(void *), void *ptr)
{
	struct arena_cleanup *c = arena_alloc(a, sizeof(*c));

	c->fn = fn;
	c->ptr = ptr;
	c->next = a->cleanups;
	a->cleanups = c;
}

void arena_free(struct arena *a)
{
	struct arena_cleanup *c;

	for (c = a->cleanups; c; c = c->next)
		c->fn(c->ptr);
	a->cleanups = NULL;
	while (a->blocks) {
		struct arena_block *b = a->blocks;

		a->blocks = b->next;
		free(b);
	}
}
