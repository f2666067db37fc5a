/* HTTP head analysis (src/proxy/http-ana.c): what keel decides once a request or response head
 * is complete, and the rewrite of that head in place. */
#ifndef KEEL_HTTP_ANA_H
#define KEEL_HTTP_ANA_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/stream-t.h>

/* Analyses a complete request head of hlen bytes at the start of s->req: validation, services
 * (stats, metrics), http-request rules, backend choice, header rewrite in place. Returns OK when
 * the request goes to a server, ERR when a reply was set instead. */
int http_ana_request(struct stream *s, uint32_t hlen);
/* Same for a response head. *interim is set for 1xx heads (forwarded as they are). Returns OK or
 * ERR (502 set). */
int http_ana_response(struct stream *s, uint32_t hlen, bool *interim);
/* Removes the "Expect: 100-continue" keel added to s's request head (TX_EXPECT_OURS), for a
 * server that does not answer it; the request must not have left (it is rewound). */
void http_ana_strip_expect(struct stream *s);
/* Answers 401 with a Basic challenge for realm, and closes after it. */
void http_reply_auth(struct stream *s, const char *realm);

#endif
