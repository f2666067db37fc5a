/* Sessions: the per-connection state machine (session.c) and HTTP head analysis (http-ana.c). */
#ifndef KEEL_SESSION_H
#define KEEL_SESSION_H

#include <stdbool.h>

#include <keel/session-t.h>

/* Takes ownership of an accepted client socket. */
void session_accept(struct listener *li, int fd, const union sockaddr_u *addr);
/* The only ways to change s->rq, s->ss and s->rs: each checks the transition against its table
 * in session.c (BUG_ON() on one that is not listed there). */
void sess_set_rq(struct session *s, enum req_state to);
void sess_set_ss(struct session *s, enum srv_state to);
void sess_set_rs(struct session *s, enum rsp_state to);
/* Runs s's state machine from a safe point (end of the current loop iteration). */
void session_wake(struct session *s);
/* Answers with keel's (or the errorfile's) page for status and closes the connection after it. */
void session_error(struct session *s, int status, const char *why, const char *term);
/* Answers with a response built on the heap (ownership passes to the session). */
void session_reply_heap(struct session *s, char *data, uint32_t len, int status, bool close);
/* Soft stop: closes idle client connections, marks the others to close after their response. */
void session_soft_stop(void);
/* Hard stop: closes every session of this thread now. */
void session_kill_all(void);

/* Analyses a complete request head of hlen bytes at the start of s->req: validation, stats and
 * monitor URIs, http-request rules, backend choice, header rewrite in place. Returns OK when the
 * request goes to a server, ERR when a reply was set instead. */
int http_ana_request(struct session *s, uint32_t hlen);
/* Same for a response head. *interim is set for 1xx heads (forwarded as they are). Returns OK or
 * ERR (502 set). */
int http_ana_response(struct session *s, uint32_t hlen, bool *interim);
/* Writes the request log line. */
void session_log(struct session *s);

/* The stats page (admin/stats.c): builds the response for a request to the stats URI. */
void stats_serve(struct session *s, const struct http_head *h);
/* The ";json" variant of the stats page (admin/stats-json.c). */
void stats_json_serve(struct session *s);
/* The stats CSV (the ";csv" page) as a malloc'd string of *len bytes, NULL when out of memory
 * (the admin socket's "show stat"). */
char *stats_csv(size_t *len);
/* Constant-time check of a Basic Authorization header against the proxy's stats users. */
bool stats_check_auth(const struct proxy *p, const struct http_head *h);

#endif
