/* Service types (include/keel/service.h): pages keel answers itself instead of a server. */
#ifndef KEEL_SERVICE_T_H
#define KEEL_SERVICE_T_H

#include <stdbool.h>

struct http_head;
struct proxy;
struct stream;

struct http_service {
	/* The name "http-request use-service NAME" gives, or NULL when no rule may name it. */
	const char *name;
	/* Whether frontend fe has this page at its own URI (asked once per frontend when the
	 * configuration is loaded: fe->svc_mask), or NULL when only a rule leads to it. */
	bool (*on)(const struct proxy *fe);
	/* Whether a request to such a frontend is for this page by its URI (asked before any
	 * rule, in registration order). */
	bool (*claims)(const struct proxy *fe, const struct http_head *h);
	/* Answers the request (stream_reply_heap(), stream_error()...). h: its parsed head. */
	void (*serve)(struct stream *s, const struct http_head *h);
};

#endif
