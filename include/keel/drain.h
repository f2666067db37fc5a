/* Drain and sticky users (src/sticky/drain.c): the "drain-idle" and "drain-deadline" server
 * keywords, the set of cookie users seen while a server drains, and the count of the sticky users
 * a server still holds, for the operators' views. Where a pinned user of a draining server goes is
 * decided by cookie_verdict() (src/sticky/cookie.c), for the cookie and the stick table paths
 * alike; the drain's start and limits are written by health.c (health_set_admin(),
 * health_set_drain()). docs/internals/health.md, "Drain and sticky users". */
#ifndef KEEL_DRAIN_H
#define KEEL_DRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <keel/cfg-t.h>
#include <keel/drain-t.h>

struct server;

/* The drain server options, in the proxy sections (registered at start,
 * src/process/modules.c). */
extern const struct proxy_hooks drain_hooks;
/* "drain-idle T" and "drain-deadline T|off" on a server or default-server line: 1 when argv[*i]
 * was one (*i then points at its value), 0 when the word is not theirs, ERR on an error reported
 * through c. */
int drain_server_param(struct cfg_ctx *c, struct server *s, int argc, char **argv, int *i);
/* The words after "set server B/S state drain": "[idle T] [deadline T|off]" into lim. OK, or ERR
 * with a one-line reason in err (len bytes). */
int drain_parse_limits(int argc, char **argv, struct drain_limits *lim, char *err, size_t len);
/* "drain-idle 2000 ms, drain-deadline off" (or "drain-idle 0 (sticky users kept)") for logs. */
void drain_limits_str(uint32_t idle_ms, uint32_t deadline_ms, char *buf, size_t len);

/* The monotonic clock in us, read now (now_us is stale on the admin and main threads). */
uint64_t drain_clock_us(void);

/* ---- the cookie users of a draining server ---- */

/* Sets up an empty set of at most max users (nothing allocated until the first user). */
void drain_users_init(struct drain_users *u, uint32_t max);
/* Frees the slots and the lock. */
void drain_users_destroy(struct drain_users *u);
/* Forgets every user (a new drain begins); the slots are freed. */
void drain_users_clear(struct drain_users *u);
/* When fp was last seen this drain (monotonic us), 0 when it was not. fp != 0. */
uint64_t drain_users_seen(struct drain_users *u, uint64_t fp);
/* Records a request of fp at now (us). A full set first drops the users idle for idle_us or more
 * (0: none), then grows up to its bound. false when fp could not be recorded (full). */
bool drain_users_touch(struct drain_users *u, uint64_t fp, uint64_t now, uint64_t idle_us);
/* The users seen within idle_us of now (idle_us 0: every user of this drain). */
unsigned drain_users_count(struct drain_users *u, uint64_t now, uint64_t idle_us);

/* A request whose persistence cookie names srv, in admin drain, from the user fp (!= 0): when that
 * user was last seen this drain (0: not seen), for cookie_verdict(); then, when it stays on srv,
 * drain_cookie_stay() records it (a full set logs one warning per drain). */
uint64_t drain_cookie_seen(struct server *srv, uint64_t fp);
void drain_cookie_stay(struct server *srv, uint64_t fp, uint64_t now);

/* ---- operators ---- */

/* The sticky users srv still holds at now (monotonic us): for a server in admin drain, the stick
 * table entries naming it and the cookie users seen, both within its drain-idle (none after its
 * drain-deadline), and how long cookie users not seen yet may still come; none in maintenance;
 * for another server, the stick table entries naming it (cookie users are only tracked while a
 * server drains). Any thread. */
void drain_sticky_count(struct server *srv, uint64_t now, struct sticky_count *out);
/* The periodic tick (health.c, worker 0): logs once per drain that its deadline passed. */
void drain_tick(struct server *srv, uint64_t now);

#endif
