/* Shared body of the request and response fuzz targets: scan the input for a head the way
 * session.c does (also in two reads, which must agree), parse the head, check that every span it
 * produced lies inside the head, then feed the rest to the body parser in pieces. The rest is
 * copied to a buffer of its own, as bytes that arrive later sit elsewhere than the head.
 * Build with -DFUZZ_BODY_IN_PLACE to parse the body where it is, right after the head: that hides
 * the known trailer bug (trailer callbacks compute spans against the head's base) so that a run
 * can look for other ones. */
#ifndef KEEL_FUZZ_HTTP_H
#define KEEL_FUZZ_HTTP_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <keel/common.h>
#include <keel/http.h>

#define FUZZ_MAXHDR 101

static void fuzz_check_span(const struct http_head *h, struct span s)
{
	if (s.len && ((uint64_t)s.off + s.len > h->len))
		__builtin_trap();
}

static void fuzz_check_head(const struct http_head *h)
{
	int i;

	if (h->nhdr > h->maxhdr)
		__builtin_trap();
	fuzz_check_span(h, h->method);
	fuzz_check_span(h, h->uri);
	fuzz_check_span(h, h->path);
	fuzz_check_span(h, h->authority);
	fuzz_check_span(h, h->reason);
	for (i = 0; i < h->nhdr; i++) {
		const struct http_hdr *hd = &h->hdr[i];

		fuzz_check_span(h, hd->name);
		fuzz_check_span(h, hd->value);
		/* Exercise the helpers on every field. */
		(void)http_value_has_token(http_ptr(h, hd->value), hd->value.len, "close", 5);
		(void)http_hdr_find(h, http_ptr(h, hd->name), hd->name.len, 0);
	}
	(void)http_meth_idempotent(http_meth_parse(http_ptr(h, h->method), h->method.len));
}

static int fuzz_http(int type, const uint8_t *data, size_t size)
{
	static struct http_hdr hdr[FUZZ_MAXHDR];
	const char *buf = (const char *)data;
	struct http_head h;
	llhttp_t p;
	uint32_t len, pos = 0, hl = 0, pos2 = 0, hl2 = 0, off;
	bool l1 = false, l1b = false;
	int r, r2;
	char *rest;

	if (size > (1u << 20))
		return 0;
	len = (uint32_t)size;
	r = http_scan_head(buf, len, &pos, &hl, &l1);
	/* The same scan in two reads must give the same answer. */
	r2 = http_scan_head(buf, len / 2, &pos2, &hl2, &l1b);
	if (r2 == HTTP_SCAN_MORE)
		r2 = http_scan_head(buf, len, &pos2, &hl2, &l1b);
	if (r2 != r || (r == HTTP_SCAN_DONE && hl2 != hl) || pos > len)
		__builtin_trap();
	if (r != HTTP_SCAN_DONE)
		return 0;
	if (hl > len)
		__builtin_trap();

	memset(&h, 0, sizeof(h));
	h.hdr = hdr;
	h.maxhdr = FUZZ_MAXHDR;
	/* A response may answer a HEAD request: let the input decide. */
	h.skip_body = type == HTTP_RESPONSE && (len % 5) == 0;
	if (http_parse_head(&p, type, buf, hl, &h) != OK) {
		if (!h.err_status || !h.err)
			__builtin_trap();
		return 0;
	}
	fuzz_check_head(&h);
	if (h.flags & HM_DONE)
		return 0;

	/* The body, in up to three pieces whose sizes come from the input. */
	if (len == hl)
		return 0;
#ifdef FUZZ_BODY_IN_PLACE
	rest = (char *)buf + hl;
#else
	rest = malloc(len - hl);
	if (!rest)
		return 0;
	memcpy(rest, buf + hl, len - hl);
#endif
	off = 0;
	for (int n = 0; off < len - hl; n++) {
		uint32_t left = len - hl - off, piece, used = 0;
		bool done = false;
		const char *why = NULL;

		if (n == 0)
			piece = 1 + (uint32_t)(data[0] + data[hl - 1]) % left;
		else if (n == 1)
			piece = (left + 1) / 2;
		else
			piece = left;
		if (http_parse_body(&p, rest + off, piece, &used, &done, &why) != OK) {
			if (!why)
				__builtin_trap();
			break;
		}
		if (used > piece || (!done && used != piece))
			__builtin_trap();
		off += used;
		if (done)
			break;
	}
#ifndef FUZZ_BODY_IN_PLACE
	free(rest);
#endif
	return 0;
}

#endif
