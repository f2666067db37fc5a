/* Drain and sticky users: how long a server in admin drain keeps the users pinned to it by a
 * persistence cookie or a stick table ("drain-idle", "drain-deadline"), the set of cookie users
 * seen while it drains, and the count of the sticky users it still holds.
 *
 * A stick table entry knows when its user was last seen (stick.c keeps the time of its last lookup
 * or store). A persistence cookie only names the server, so users are told apart by a fingerprint
 * (the client address and the request's other cookies, http-ana.c); the set below remembers the
 * ones that came back since the drain began. A user absent from it was last seen before the drain
 * began: once drain-idle has passed since then, such users are gone. The decision itself is
 * cookie_verdict() (cookie.c). Protocol: docs/internals/health.md, "Drain and sticky users". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/drain.h>
#include <keel/log.h>
#include <keel/proxy.h>
#include <keel/server.h>
#include <keel/stick.h>

/* ---- configuration ---- */

/* "off" or a time; 0 disables. */
static int parse_limit(const char *val, uint32_t *ms, const char **why)
{
	if (!strcmp(val, "off")) {
		*ms = 0;
		return OK;
	}
	return cfg_parse_time(val, ms, why);
}

int drain_server_param(struct cfg_ctx *c, struct server *s, int argc, char **argv, int *i)
{
	const char *kw = argv[*i], *val = *i + 1 < argc ? argv[*i + 1] : NULL, *why = NULL;
	const char *name = s->name ? s->name : "default-server";
	bool idle = !strcmp(kw, "drain-idle");
	uint32_t ms;

	if (!idle && strcmp(kw, "drain-deadline"))
		return 0;
	if (!val) {
		cfg_err(c, "server '%s': '%s' expects a time such as %s", name, kw,
			idle ? "30s or 10m (0 or off: sticky users are kept for ever)"
			     : "30m (0 or off: no deadline)");
		return ERR;
	}
	if (parse_limit(val, &ms, &why) != OK) {
		cfg_err(c, "server '%s': invalid '%s' value '%s': %s", name, kw, val, why);
		return ERR;
	}
	if (idle)
		s->drain_idle_ms = ms;
	else
		s->drain_deadline_ms = ms;
	(*i)++;
	return 1;
}

int drain_parse_limits(int argc, char **argv, struct drain_limits *lim, char *err, size_t len)
{
	const char *why = NULL;
	int i;

	memset(lim, 0, sizeof(*lim));
	for (i = 0; i < argc; i += 2) {
		bool idle = !strcmp(argv[i], "idle");
		uint32_t ms;

		if (!idle && strcmp(argv[i], "deadline")) {
			snprintf(err, len,
				 "unexpected '%s' after 'drain': expects [idle TIME] "
				 "[deadline TIME|off]",
				 argv[i]);
			return ERR;
		}
		if (i + 1 >= argc) {
			snprintf(err, len, "'%s' expects a time (e.g. 30s, 10m; 0 or off: %s)",
				 argv[i], idle ? "keep the sticky users for ever" : "no deadline");
			return ERR;
		}
		if (parse_limit(argv[i + 1], &ms, &why) != OK) {
			snprintf(err, len, "invalid %s '%s': %s", argv[i], argv[i + 1], why);
			return ERR;
		}
		if (idle) {
			lim->has_idle = true;
			lim->idle_ms = ms;
		} else {
			lim->has_deadline = true;
			lim->deadline_ms = ms;
		}
	}
	return OK;
}

/* "10m", "2s", "1500ms": the largest unit that divides ms. */
static void fmt_dur(uint32_t ms, char *buf, size_t len)
{
	if (ms && ms % 3600000 == 0)
		snprintf(buf, len, "%uh", ms / 3600000);
	else if (ms && ms % 60000 == 0)
		snprintf(buf, len, "%um", ms / 60000);
	else if (ms && ms % 1000 == 0)
		snprintf(buf, len, "%us", ms / 1000);
	else
		snprintf(buf, len, "%ums", ms);
}

void drain_limits_str(uint32_t idle_ms, uint32_t deadline_ms, char *buf, size_t len)
{
	char i[24], d[24];

	fmt_dur(idle_ms, i, sizeof(i));
	fmt_dur(deadline_ms, d, sizeof(d));
	snprintf(buf, len, "%s%s%s%s", idle_ms ? "drain-idle " : "drain-idle 0 (sticky users kept)",
		 idle_ms ? i : "", deadline_ms ? ", drain-deadline " : ", no drain-deadline",
		 deadline_ms ? d : "");
}

uint64_t drain_clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- the set of cookie users ---- */

static uint32_t home(const struct drain_users *u, uint64_t fp)
{
	return (uint32_t)(fp ^ (fp >> 32)) & (u->cap - 1);
}

/* The slot of fp, or -1 (lock held). */
static int64_t find(const struct drain_users *u, uint64_t fp)
{
	uint32_t i;

	if (!u->slot)
		return -1;
	for (i = home(u, fp); u->slot[i].fp; i = (i + 1) & (u->cap - 1))
		if (u->slot[i].fp == fp)
			return i;
	return -1;
}

/* Empties slot i and moves back the entries of its cluster that would no longer be found
 * (linear probing's deletion without tombstones). Lock held. */
static void del_at(struct drain_users *u, uint32_t i)
{
	uint32_t mask = u->cap - 1, j = i, k;

	for (;;) {
		u->slot[i].fp = 0;
		for (;;) {
			j = (j + 1) & mask;
			if (!u->slot[j].fp) {
				u->n--;
				return;
			}
			k = home(u, u->slot[j].fp);
			/* j stays when its home lies cyclically in (i, j] */
			if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
				continue;
			break;
		}
		u->slot[i] = u->slot[j];
		i = j;
	}
}

static bool idle_for(const struct drain_slot *s, uint64_t now, uint64_t idle_us)
{
	return idle_us && now > s->seen_us && now - s->seen_us >= idle_us;
}

/* Drops the users idle for idle_us or more: they are gone (lock held). */
static void purge(struct drain_users *u, uint64_t now, uint64_t idle_us)
{
	uint32_t i;

	for (i = 0; i < u->cap; i++)
		while (u->slot[i].fp && idle_for(&u->slot[i], now, idle_us))
			del_at(u, i);
}

static void put(struct drain_users *u, uint64_t fp, uint64_t seen_us)
{
	uint32_t i;

	for (i = home(u, fp); u->slot[i].fp; i = (i + 1) & (u->cap - 1))
		;
	u->slot[i].fp = fp;
	u->slot[i].seen_us = seen_us;
	u->n++;
}

/* Doubles the slots (or allocates the first ones). false when out of memory. Lock held. */
static bool grow(struct drain_users *u)
{
	struct drain_slot *old = u->slot;
	uint32_t oldcap = u->cap, i;

	u->cap = old ? oldcap * 2 : DRAIN_USERS_MIN_SLOTS;
	u->slot = calloc(u->cap, sizeof(*u->slot));
	if (!u->slot) {
		u->slot = old;
		u->cap = oldcap;
		return false;
	}
	u->n = 0;
	for (i = 0; i < oldcap; i++)
		if (old[i].fp)
			put(u, old[i].fp, old[i].seen_us);
	free(old);
	return true;
}

/* Whether one more user fits in the slots (at most 3/4 full). */
static bool fits(const struct drain_users *u)
{
	return u->slot && u->n + 1 <= u->cap / 4 * 3;
}

void drain_users_init(struct drain_users *u, uint32_t max)
{
	memset(u, 0, sizeof(*u));
	pthread_mutex_init(&u->lock, NULL);
	u->max = max;
}

void drain_users_destroy(struct drain_users *u)
{
	free(u->slot);
	u->slot = NULL;
	pthread_mutex_destroy(&u->lock);
}

void drain_users_clear(struct drain_users *u)
{
	pthread_mutex_lock(&u->lock);
	free(u->slot);
	u->slot = NULL;
	u->cap = u->n = 0;
	u->untracked = 0;
	atomic_store(&u->full_logged, false);
	pthread_mutex_unlock(&u->lock);
}

uint64_t drain_users_seen(struct drain_users *u, uint64_t fp)
{
	uint64_t seen = 0;
	int64_t i;

	pthread_mutex_lock(&u->lock);
	i = find(u, fp);
	if (i >= 0)
		seen = u->slot[i].seen_us;
	pthread_mutex_unlock(&u->lock);
	return seen;
}

bool drain_users_touch(struct drain_users *u, uint64_t fp, uint64_t now, uint64_t idle_us)
{
	bool ok = true;
	int64_t i;

	pthread_mutex_lock(&u->lock);
	i = find(u, fp);
	if (i >= 0) {
		/* the threads' cached clocks differ a little: keep the latest */
		u->slot[i].seen_us = MAX(u->slot[i].seen_us, now);
		goto out_unlock;
	}
	if (u->n >= u->max || !fits(u)) {
		/* gone users make room before the set grows */
		if (u->slot && idle_us)
			purge(u, now, idle_us);
		if (u->n >= u->max || (!fits(u) && (u->cap / 4 * 3 >= u->max || !grow(u)))) {
			u->untracked++;
			ok = false;
			goto out_unlock;
		}
	}
	put(u, fp, now);
out_unlock:
	pthread_mutex_unlock(&u->lock);
	return ok;
}

unsigned drain_users_count(struct drain_users *u, uint64_t now, uint64_t idle_us)
{
	unsigned n = 0;
	uint32_t i;

	pthread_mutex_lock(&u->lock);
	for (i = 0; u->slot && i < u->cap; i++)
		if (u->slot[i].fp && !idle_for(&u->slot[i], now, idle_us))
			n++;
	pthread_mutex_unlock(&u->lock);
	return n;
}

/* ---- the cookie path (http-ana.c, ck_request()) ---- */

uint64_t drain_cookie_seen(struct server *srv, uint64_t fp)
{
	return drain_users_seen(&srv->drain.users, fp);
}

void drain_cookie_stay(struct server *srv, uint64_t fp, uint64_t now)
{
	struct drain_users *u = &srv->drain.users;
	uint64_t idle =
	    (uint64_t)atomic_load_explicit(&srv->drain.idle_ms, memory_order_relaxed) * 1000;

	if (drain_users_touch(u, fp, now, idle) || atomic_exchange(&u->full_logged, true))
		return;
	keel_log(LOG_LVL_WARNING,
		 "Server %s/%s: more than %u cookie users came back during its drain; the others "
		 "are not counted, and count as not seen since the drain began",
		 srv->be->name, srv->name, u->max);
}

/* ---- operators ---- */

/* Whether srv can have cookie users: its backend has cookie persistence and srv a cookie value. */
static bool has_cookie_users(const struct server *srv)
{
	return srv->be->ck.name && srv->cookie;
}

void drain_sticky_count(struct server *srv, uint64_t now, struct sticky_count *out)
{
	const struct srv_drain *d = &srv->drain;
	uint64_t start = atomic_load_explicit(&d->start_us, memory_order_acquire);
	uint64_t idle = (uint64_t)atomic_load(&d->idle_ms) * 1000;
	uint64_t dl = (uint64_t)atomic_load(&d->deadline_ms) * 1000, el, end;

	out->users = 0;
	out->pending_ms = 0;
	if (atomic_load(&srv->admin) == SRV_ADMIN_MAINT || server_deleted(srv))
		return; /* every sticky user moves at its next request */
	if (atomic_load(&srv->admin) != SRV_ADMIN_DRAIN || !start) {
		out->users = stick_count_for(srv);
		return;
	}
	el = now > start ? now - start : 0;
	if (dl && el >= dl)
		return; /* every sticky user moves at its next request */
	out->users = stick_count_recent(srv, now / 1000, idle / 1000);
	if (!has_cookie_users(srv))
		return;
	out->users += (int)drain_users_count(&srv->drain.users, now, idle);
	/* Cookie users not seen yet are kept until drain-idle (or the deadline) since the start. */
	end = idle && dl ? MIN(idle, dl) : idle ? idle : dl;
	if (!end)
		out->pending_ms = -1;
	else if (el < end)
		out->pending_ms = (int64_t)((end - el + 999) / 1000);
}

void drain_tick(struct server *srv, uint64_t now)
{
	struct srv_drain *d = &srv->drain;
	uint64_t start = atomic_load_explicit(&d->start_us, memory_order_acquire);
	uint32_t dl = atomic_load(&d->deadline_ms);
	char t[24];

	if (!start || !dl || now < start || now - start < (uint64_t)dl * 1000 ||
	    atomic_load(&d->deadline_logged) || atomic_load(&srv->admin) != SRV_ADMIN_DRAIN)
		return;
	atomic_store(&d->deadline_logged, true);
	fmt_dur(dl, t, sizeof(t));
	keel_log(LOG_LVL_NOTICE,
		 "Server %s/%s drain-deadline (%s) passed: its sticky users move at their next "
		 "request",
		 srv->be->name, srv->name, t);
}

const struct proxy_hooks drain_hooks = {
	.server_param = drain_server_param,
};

