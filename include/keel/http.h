/* HTTP/1 parsing glue over llhttp plus keel's own strictness rules, and header helpers. */
#ifndef KEEL_HTTP_H
#define KEEL_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <keel/http-t.h>

/* Scans buf[0..len) for the end of an HTTP/1 head (CRLF CRLF), resuming at *pos (0 on the first
 * call, updated). Rejects bare LF line endings and obs-fold continuation lines. *line1_done tells
 * whether the start line is complete, which decides between 414 and 431 when the head is too big. */
int http_scan_head(const char *buf, uint32_t len, uint32_t *pos, uint32_t *head_len,
		   bool *line1_done);

/* Parses a complete head (as found by http_scan_head) with llhttp into h, leaving p ready for the
 * body. type is HTTP_REQUEST or HTTP_RESPONSE; h->hdr/maxhdr must be set and, for responses to
 * HEAD, h->skip_body. Returns OK, or ERR with h->err_status and h->err set. */
int http_parse_head(llhttp_t *p, int type, const char *head, uint32_t len, struct http_head *h);

/* Feeds body bytes to p. Sets *used to the bytes that belong to the current message and *done when
 * the message ended within them. Returns OK, or ERR on a framing error (*why set). */
int http_parse_body(llhttp_t *p, const char *data, uint32_t len, uint32_t *used, bool *done,
		    const char **why);

/* Header lookup by case-insensitive name; returns the index or -1. Starts at index from. */
int http_hdr_find(const struct http_head *h, const char *name, size_t nlen, int from);

/* Pointer to a span inside the head. */
static inline const char *http_ptr(const struct http_head *h, struct span s)
{
	return h->base + s.off;
}

/* Whether a comma-separated header value contains token tok (case-insensitive). */
bool http_value_has_token(const char *v, size_t vlen, const char *tok, size_t toklen);

enum http_meth http_meth_parse(const char *m, size_t len);
bool http_meth_idempotent(enum http_meth m);
const char *http_reason(int status);

#endif
