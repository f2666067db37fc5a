/* Growable output strings (see sbuf.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keel/sbuf.h>

/* Makes room for n more bytes and the NUL; false (and oom set) when it cannot. */
static bool sbuf_room(struct sbuf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->oom)
		return false;
	if (b->cap - b->len > n)
		return true;
	cap = (b->cap + n + 1) * 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!sbuf_room(b, 64))
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		if (!sbuf_room(b, (size_t)n))
			return;
	}
}

void sbuf_put(struct sbuf *b, const char *s, size_t len)
{
	if (!sbuf_room(b, len))
		return;
	memcpy(b->p + b->len, s, len);
	b->len += len;
	b->p[b->len] = 0;
}

void sbuf_json_str(struct sbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	char esc[6] = {'\\', 'u', '0', '0', 0, 0};

	sbuf_put(b, "\"", 1);
	for (; *u; u++) {
		size_t run = 0;

		/* Copy runs of plain characters at once. */
		while (u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\')
			run++;
		if (run) {
			sbuf_put(b, (const char *)u, run);
			u += run - 1;
			continue;
		}
		switch (*u) {
		case '"': sbuf_put(b, "\\\"", 2); break;
		case '\\': sbuf_put(b, "\\\\", 2); break;
		case '\n': sbuf_put(b, "\\n", 2); break;
		case '\r': sbuf_put(b, "\\r", 2); break;
		case '\t': sbuf_put(b, "\\t", 2); break;
		default:
			esc[4] = hex[*u >> 4];
			esc[5] = hex[*u & 15];
			sbuf_put(b, esc, 6);
		}
	}
	sbuf_put(b, "\"", 1);
}
