/* The health core: the one place where a server's operational state and effective weight change.
 *
 * Inputs: active check results and agent answers (check.c), events from live traffic (session.c)
 * and a periodic tick on worker 0 (latency windows, slowstart, the per-try deadline). Each input
 * updates its own part of struct srv_health under the server's mutex, then recompute() derives
 * oper and eweight from all parts, logs a line when the state changed, and bumps the backend's
 * srv_gen so that every thread's balancer rebuilds its schedule. The hot path (a response
 * arriving) touches only thread-owned histogram cells and, when an error streak is running, one
 * shared counter. Protocol and defaults: docs/internals/health.md. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keel/backend.h>
#include <keel/cfg.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/drain.h>
#include <keel/health.h>
#include <keel/log.h>
#include <keel/proxy.h>
#include <keel/server.h>
#include <keel/timer.h>
#include <keel/worker.h>

#define LAT_MIN_SAMPLES 20     /* fewer samples in the window: no latency verdict */
#define LAT_EST_SAMPLES 50     /* samples behind each per-try estimate */
#define EJECT_MAX_MS 300000    /* ejections double up to 5 minutes */
#define EJECT_FORGET_US (600ull * 1000000) /* 10 minutes up: earlier ejections are forgotten */
#define SLOW_WEIGHT_DIV 4      /* a slow server keeps a quarter of its weight */
#define SLOW_EJECT_TICKS 10    /* still slow after this many ticks (5 s): eject */
#define BUDGET_TICKS 20        /* retry budget window: 20 ticks = 10 s */
#define PERTRY_MULT 3          /* per-try deadline = 3 x the typical server's p99 */
#define ERR_RATE_PCT 10        /* errors over the window that eject a server... */
#define ERR_RATE_MIN 10        /* ...once there are at least this many */
#define STORM_PCT 50           /* a server answering this share of 5xx... */
#define STORM_PEERS_PCT 10     /* ...while its peers answer fewer than this share, is ejected */

static int nthreads;

/* Budget and per-try state that only the tick touches. */
struct be_tick {
	uint64_t req_hist[BUDGET_TICKS];
	uint64_t retry_hist[BUDGET_TICKS];
	int pos;
};

/* fmt() through a function: reasons are cut at their buffer's size on purpose. */
static void __attribute__((format(printf, 3, 4))) fmt(char *dst, size_t n, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(dst, n, f, ap);
	va_end(ap);
}

static uint64_t wall_ms(void)
{
	return wall_us / 1000;
}

/* ---- latency buckets ---- */

int lat_bucket(uint64_t us)
{
	int b;

	if (us < 64)
		return 0;
	/* 4 buckets per power of two: the two bits below the leading one pick the quarter. */
	b = 63 - __builtin_clzll(us); /* >= 6 */
	b = (b - 6) * 4 + (int)((us >> (b - 2)) & 3);
	return b < LAT_BUCKETS ? b : LAT_BUCKETS - 1;
}

uint64_t lat_bucket_us(int b)
{
	int p = b / 4 + 6;

	/* upper bound of the bucket */
	return (1ull << p) + ((uint64_t)(b % 4 + 1) << (p - 2));
}

static uint32_t percentile(const uint32_t *h, uint32_t n, uint32_t pct)
{
	uint64_t want = ((uint64_t)n * pct + 99) / 100, acc = 0;
	int b;

	for (b = 0; b < LAT_BUCKETS; b++) {
		acc += h[b];
		if (acc >= want && want)
			return (uint32_t)MIN(lat_bucket_us(b), UINT32_MAX);
	}
	return 0;
}

/* ---- state ---- */

static bool srv_chk_http(const struct server *srv)
{
	return srv->chk.enabled && (srv->be->opts & PO_HTTPCHK);
}

static const char *oper_name(const struct server *srv)
{
	return atomic_load(&srv->oper) == SRV_OPER_UP ? "UP" : "DOWN";
}

/* Counts the servers of srv's backend that take traffic (backup servers apart). */
static void count_up(const struct proxy *be, int *active, int *backup)
{
	int i;

	*active = *backup = 0;
	for (i = 0; i < be->nsrv; i++)
		if (atomic_load(&be->srv[i]->oper) == SRV_OPER_UP &&
		    atomic_load(&be->srv[i]->admin) != SRV_ADMIN_MAINT)
			(*(be->srv[i]->backup ? backup : active))++;
}

/* Whether every server of be is out: the balancers then fail open (or answer 503). */
static void update_all_down(struct proxy *be)
{
	int a, b;
	bool down;

	count_up(be, &a, &b);
	down = be->nsrv > 0 && a + b == 0;
	if (atomic_exchange(&be->hl->all_down, down) != down) {
		if (down)
			keel_log(LOG_LVL_ALERT, "backend '%s' has no server available%s", be->name,
				 be->chk.fail_open ? ": failing open (every server not in maintenance takes traffic)" : "");
		else
			keel_log(LOG_LVL_NOTICE, "backend '%s' has a server available again", be->name);
	}
}

static int weight_now(const struct server *srv)
{
	const struct srv_health *h = srv->hl;
	int64_t w = h->uweight;

	w = w * h->agent_weight_pct / 100;
	if (h->slow)
		w /= SLOW_WEIGHT_DIV;
	if (srv->chk.slowstart && h->up_since) {
		uint64_t el = now_us - h->up_since, ss = (uint64_t)srv->chk.slowstart * 1000;

		if (el < ss)
			w = (int64_t)((uint64_t)w * el / ss);
	}
	/* A configured weight of 0 stays 0; anything else keeps at least 1. */
	if (h->uweight > 0 && h->agent_weight_pct > 0 && w < 1)
		w = 1;
	return (int)w;
}

/* Derives oper and eweight from the inputs; logs and publishes a change. Lock held. */
static void recompute(struct server *srv, const char *why)
{
	struct srv_health *h = srv->hl;
	bool up = (!srv->chk.enabled || h->checks_off || h->chk_up) && !h->ejected && !h->agent_down;
	int was = atomic_load(&srv->oper);
	int w, a, b;
	bool changed = false;

	if (up != (was == SRV_OPER_UP)) {
		atomic_store(&srv->oper, up ? SRV_OPER_UP : SRV_OPER_DOWN);
		h->up_since = up ? MAX(now_us, 1) : 0;
		fmt(h->why, sizeof(h->why), "%s", why);
		h->since_wall = wall_ms();
		changed = true;
		count_up(srv->be, &a, &b);
		keel_log(up ? LOG_LVL_NOTICE : LOG_LVL_ALERT,
			 "Server %s/%s is %s%s, reason: %s. %d active and %d backup servers left. %d sessions active, %d queued.",
			 srv->be->name, srv->name, h->ejected ? "EJECTED" : oper_name(srv),
			 h->ejected ? " (out of the balancing)" : "", why, a, b,
			 atomic_load(&srv->cur_sess), atomic_load(&srv->nbpend));
		update_all_down(srv->be);
	}
	w = weight_now(srv);
	if (atomic_exchange(&srv->eweight, w) != w)
		changed = true;
	if (changed)
		atomic_fetch_add_explicit(&srv->be->srv_gen, 1, memory_order_release);
}

/* ---- active checks and agent ---- */

static void eject_end(struct server *srv, const char *why)
{
	srv->hl->ejected = false;
	srv->hl->eject_latency = false;
	srv->hl->slow = false;
	atomic_store(&srv->hl->consec_err, 0);
	recompute(srv, why);
}

/* A sign of life from srv. Written at most once a millisecond: it is shared by the threads. */
static void note_alive(struct srv_health *h)
{
	if (now_us - atomic_load_explicit(&h->alive_us, memory_order_relaxed) >= 1000)
		atomic_store_explicit(&h->alive_us, now_us, memory_order_relaxed);
}

uint64_t health_alive_us(const struct server *srv)
{
	return atomic_load_explicit(&srv->hl->alive_us, memory_order_relaxed);
}

void health_check_result(struct server *srv, const struct chk_result *r)
{
	struct srv_health *h = srv->hl;
	int top = srv->chk.rise + srv->chk.fall - 1;
	char why[CHK_REASON_LEN + 64];

	if (r->status > 0)
		note_alive(h); /* an HTTP answer, whatever its status (a TCP connect proves nothing) */
	pthread_mutex_lock(&h->lock);
	if (h->probing) {
		/* The probe of an ejected server: it comes back on a valid answer. */
		h->probing = false;
		if (h->ejected && r->ok) {
			fmt(why, sizeof(why), "probe passed after ejection (%s)", r->reason);
			eject_end(srv, why);
		} else if (h->ejected) {
			fmt(h->ev_reason, sizeof(h->ev_reason), "probe failed: %s", r->reason);
		}
		pthread_mutex_unlock(&h->lock);
		return;
	}
	h->last_chk = *r;
	h->last_chk_wall = wall_ms();
	if (!h->checked) {
		/* The first result decides at once: no need to wait for rise/fall at start-up. */
		h->checked = true;
		h->health = r->ok ? top : 0;
		h->chk_up = r->ok;
	} else if (r->ok) {
		if (h->health < top)
			h->health++;
		if (h->health >= srv->chk.rise)
			h->chk_up = true;
	} else if (h->health > srv->chk.rise) {
		h->health--;
	} else {
		h->health = 0;
		h->chk_up = false;
	}
	if (r->ok)
		fmt(why, sizeof(why), "check passed: %s", r->reason);
	else
		fmt(why, sizeof(why), "check failed: %s", r->reason);
	/* A server up at start-up stays up on its first passing check: replace "first check
	 * pending" (recompute() only writes why on a change). */
	if (h->health == top && r->ok && !strncmp(h->why, "starting:", 9))
		fmt(h->why, sizeof(h->why), "%s", why);
	/* An HTTP check that passes after the ejection time also ends an ejection. */
	if (h->ejected && r->ok && srv_chk_http(srv) && now_us >= h->eject_until) {
		eject_end(srv, why);
	} else {
		recompute(srv, why);
	}
	pthread_mutex_unlock(&h->lock);
}

const char *srv_admin_name(enum srv_admin st)
{
	return st == SRV_ADMIN_MAINT ? "maint" : st == SRV_ADMIN_DRAIN ? "drain" : "ready";
}

/* A drain's limits: lim's where set, else the running drain's own (running) or the server's
 * configuration. Written before the admin state DRAIN is published, or while it is, and read by
 * cookie_verdict() on any thread. */
static void drain_limits(struct server *srv, const struct drain_limits *lim, bool running)
{
	struct srv_drain *d = &srv->drain;
	uint32_t idle = running ? atomic_load(&d->idle_ms) : srv->drain_idle_ms;
	uint32_t dl = running ? atomic_load(&d->deadline_ms) : srv->drain_deadline_ms;

	atomic_store(&d->idle_ms, lim && lim->has_idle ? lim->idle_ms : idle);
	atomic_store(&d->deadline_ms, lim && lim->has_deadline ? lim->deadline_ms : dl);
}

/* The drain begins now: a fresh clock (now_us is stale on the admin and main threads), the
 * limits, and no cookie user seen yet. Before the state DRAIN is published, so that a request
 * which sees DRAIN finds the drain's start (docs/internals/health.md). Lock held. */
static void drain_begin(struct server *srv, const struct drain_limits *lim)
{
	struct srv_drain *d = &srv->drain;

	drain_users_clear(&d->users);
	drain_limits(srv, lim, false);
	atomic_store(&d->deadline_logged, false);
	atomic_store_explicit(&d->start_us, MAX(drain_clock_us(), 1), memory_order_release);
}

/* Lock held. lim: the limits of a drain asked for at runtime ("set server B/S state drain idle T
 * deadline T"), NULL for the configured ones. Setting DRAIN again only changes the limits. */
static void set_admin(struct server *srv, enum srv_admin st, const char *who,
		      const struct drain_limits *lim)
{
	char limits[96] = "";
	int was;

	if (atomic_load(&srv->deleted))
		return; /* "del server": stays in maintenance (an agent's late answer cannot revive it) */
	was = atomic_load(&srv->admin);
	if (was == (int)st) {
		if (st == SRV_ADMIN_DRAIN && lim && (lim->has_idle || lim->has_deadline)) {
			drain_limits(srv, lim, true);
			drain_limits_str(atomic_load(&srv->drain.idle_ms),
					 atomic_load(&srv->drain.deadline_ms), limits,
					 sizeof(limits));
			keel_log(LOG_LVL_NOTICE, "Server %s/%s drain limits changed: %s (by %s)",
				 srv->be->name, srv->name, limits, who);
		}
		return;
	}
	if (st == SRV_ADMIN_DRAIN)
		drain_begin(srv, lim);
	atomic_store(&srv->admin, (int)st);
	if (was == SRV_ADMIN_DRAIN)
		atomic_store_explicit(&srv->drain.start_us, 0, memory_order_release);
	if (st == SRV_ADMIN_DRAIN)
		drain_limits_str(atomic_load(&srv->drain.idle_ms),
				 atomic_load(&srv->drain.deadline_ms), limits, sizeof(limits));
	keel_log(LOG_LVL_NOTICE, "Server %s/%s admin state %s -> %s (by %s)%s%s", srv->be->name,
		 srv->name, srv_admin_name((enum srv_admin)was), srv_admin_name(st), who,
		 limits[0] ? "; sticky users: " : "", limits);
	fmt(srv->hl->why, sizeof(srv->hl->why), "set to %s by %s", srv_admin_name(st), who);
	srv->hl->since_wall = wall_ms();
	if (st == SRV_ADMIN_READY && was == SRV_ADMIN_MAINT)
		srv->hl->up_since = MAX(now_us, 1); /* back from maintenance: slowstart */
	update_all_down(srv->be);
	atomic_fetch_add_explicit(&srv->be->srv_gen, 1, memory_order_release);
	server_changed(srv); /* the state file (admin/state.c) subscribes: marks dirty, no I/O */
}

void health_set_admin(struct server *srv, enum srv_admin st, const char *who)
{
	pthread_mutex_lock(&srv->hl->lock);
	set_admin(srv, st, who, NULL);
	recompute(srv, srv->hl->why);
	pthread_mutex_unlock(&srv->hl->lock);
}

void health_set_drain(struct server *srv, const struct drain_limits *lim, const char *who)
{
	pthread_mutex_lock(&srv->hl->lock);
	set_admin(srv, SRV_ADMIN_DRAIN, who, lim);
	recompute(srv, srv->hl->why);
	pthread_mutex_unlock(&srv->hl->lock);
}

int health_set_weight(struct server *srv, int w, const char *who)
{
	if (w < 0 || w > 256)
		return ERR;
	pthread_mutex_lock(&srv->hl->lock);
	if (srv->hl->uweight != w) {
		keel_log(LOG_LVL_NOTICE, "Server %s/%s weight %d -> %d (by %s)", srv->be->name,
			 srv->name, srv->hl->uweight, w, who);
		server_changed(srv);
	}
	srv->hl->uweight = w;
	recompute(srv, srv->hl->why);
	pthread_mutex_unlock(&srv->hl->lock);
	return OK;
}

void health_set_checks(struct server *srv, bool on, const char *who)
{
	char why[CHK_REASON_LEN];

	pthread_mutex_lock(&srv->hl->lock);
	if (srv->hl->checks_off == on) {
		keel_log(LOG_LVL_NOTICE, "Server %s/%s health checks %s (by %s)", srv->be->name,
			 srv->name, on ? "enabled" : "disabled", who);
		srv->hl->checks_off = !on;
		fmt(why, sizeof(why), "health checks %s by %s", on ? "enabled" : "disabled", who);
		recompute(srv, why);
		server_changed(srv);
	}
	pthread_mutex_unlock(&srv->hl->lock);
}

void health_agent_result(struct server *srv, const struct agent_result *r)
{
	struct srv_health *h = srv->hl;
	char why[CHK_REASON_LEN + 32];

	pthread_mutex_lock(&h->lock);
	h->last_agent = *r;
	if (r->ok) {
		if (r->weight_pct >= 0)
			h->agent_weight_pct = MIN(r->weight_pct, 256);
		switch (r->word) {
		case AGENT_DOWN:
		case AGENT_FAIL:
		case AGENT_STOPPED:
			h->agent_down = true;
			break;
		case AGENT_UP:
			h->agent_down = false;
			break;
		case AGENT_READY:
			h->agent_down = false;
			set_admin(srv, SRV_ADMIN_READY, "agent", NULL);
			break;
		case AGENT_DRAIN:
			set_admin(srv, SRV_ADMIN_DRAIN, "agent", NULL);
			break;
		case AGENT_MAINT:
			set_admin(srv, SRV_ADMIN_MAINT, "agent", NULL);
			break;
		case AGENT_NONE:
			break;
		}
	}
	fmt(why, sizeof(why), "agent says: %s", r->reason);
	recompute(srv, why);
	atomic_fetch_add_explicit(&srv->be->srv_gen, 1, memory_order_release);
	pthread_mutex_unlock(&h->lock);
}

enum chk_plan health_check_plan(struct server *srv, uint32_t *delay_ms)
{
	struct srv_health *h = srv->hl;
	const struct chk_srv_conf *k = &srv->chk;
	uint32_t fast = k->fastinter ? k->fastinter : 1000;
	enum chk_plan plan = CHK_PLAN_IDLE;

	pthread_mutex_lock(&h->lock);
	if (h->ejected) {
		if (now_us < h->eject_until) {
			*delay_ms = (uint32_t)MIN((h->eject_until - now_us) / 1000 + 1, fast);
			plan = k->enabled ? CHK_PLAN_CHECK : CHK_PLAN_IDLE;
		} else {
			/* Only an HTTP answer proves a server that froze or timed out is back. */
			*delay_ms = fast;
			plan = srv_chk_http(srv) ? CHK_PLAN_CHECK : CHK_PLAN_PROBE;
			h->probing = plan == CHK_PLAN_PROBE;
		}
	} else if (!k->enabled || h->checks_off) {
		*delay_ms = 1000;
	} else {
		plan = CHK_PLAN_CHECK;
		if (!h->checked || (h->health > 0 && h->health < k->rise + k->fall - 1))
			*delay_ms = fast; /* transitioning */
		else if (!h->chk_up)
			*delay_ms = k->downinter ? k->downinter : k->inter;
		else
			*delay_ms = k->inter;
	}
	if (!*delay_ms)
		*delay_ms = 1000;
	pthread_mutex_unlock(&h->lock);
	return plan;
}

/* ---- passive detection ---- */

/* How many servers of be may be ejected at once: the percentage cap, at least one, and never
 * the last server taking traffic. Lock of the candidate held; others are read racily, which
 * at worst lets one extra ejection through. */
static bool may_eject(const struct server *srv)
{
	const struct proxy *be = srv->be;
	int i, ejected = 0, usable = 0, cap;

	for (i = 0; i < be->nsrv; i++) {
		const struct server *o = be->srv[i];

		if (o->backup != srv->backup)
			continue;
		if (o->hl->ejected)
			ejected++;
		else if (o != srv && srv_usable(o))
			usable++;
	}
	cap = (int)(((uint64_t)be->nsrv * be->chk.max_eject_pct + 99) / 100);
	if (cap < 1)
		cap = 1;
	return usable >= 1 && ejected < cap;
}

static const char *const ev_names[HEV_COUNT] = {
	[HEV_CONN_FAIL] = "connection failed",
	[HEV_RESET] = "connection closed or reset before a response",
	[HEV_PROTO] = "protocol error",
	[HEV_TIMEOUT] = "response timeout",
	[HEV_5XX] = "5xx response",
};

/* Ejects srv (lock held). */
static void eject(struct server *srv, const char *why)
{
	struct srv_health *h = srv->hl;
	uint64_t ms;
	char msg[CHK_REASON_LEN + 64];

	if (h->up_since && now_us - h->up_since > EJECT_FORGET_US)
		h->nejections = 0;
	ms = MIN((uint64_t)srv->chk.eject_ms << MIN(h->nejections, 12), EJECT_MAX_MS);
	h->nejections++;
	h->ejections_tot++;
	h->ejected = true;
	h->eject_until = now_us + ms * 1000;
	atomic_store(&h->consec_err, 0);
	fmt(msg, sizeof(msg), "%s; ejected for at least %llu ms", why, (unsigned long long)ms);
	if (atomic_load(&srv->oper) != SRV_OPER_UP) {
		/* Already down (its check failed): no state change to log, but the ejection is news. */
		keel_log(LOG_LVL_WARNING, "Server %s/%s (down) is also EJECTED, reason: %s",
			 srv->be->name, srv->name, msg);
		fmt(h->why, sizeof(h->why), "%s", msg);
	}
	recompute(srv, msg);
}

void health_event(struct server *srv, enum health_event ev, uint64_t elapsed_us, const char *why)
{
	struct srv_health *h = srv->hl;
	char msg[CHK_REASON_LEN + 64];
	int n;

	if (srv->chk.observe_off || (ev == HEV_5XX && !srv->chk.observe_l7))
		return;
	atomic_fetch_add_explicit(&h->errs, 1, memory_order_relaxed);
	n = atomic_fetch_add(&h->consec_err, 1) + 1;
	/* Errors are rare next to requests: taking the lock for each costs nothing measurable. */
	pthread_mutex_lock(&h->lock);
	if (n == 1)
		h->cap_logged = false; /* a new streak */
	h->last_ev = ev;
	if (elapsed_us)
		fmt(h->ev_reason, sizeof(h->ev_reason), "%s after %llu ms%s%s", ev_names[ev],
			 (unsigned long long)(elapsed_us / 1000), why ? ": " : "", why ? why : "");
	else
		fmt(h->ev_reason, sizeof(h->ev_reason), "%s%s%s", ev_names[ev], why ? ": " : "",
			 why ? why : "");
	if (!h->ejected && atomic_load(&h->consec_err) >= srv->chk.error_limit) {
		if (may_eject(srv)) {
			fmt(msg, sizeof(msg), "%d consecutive errors from live traffic, last: %s", n,
				 h->ev_reason);
			eject(srv, msg);
		} else if (!h->cap_logged) {
			h->cap_logged = true;
			keel_log(LOG_LVL_WARNING,
				 "Server %s/%s has %d consecutive errors (%s) but is kept: ejecting it would exceed max-eject-percent or leave no server",
				 srv->be->name, srv->name, n, h->ev_reason);
		}
	}
	pthread_mutex_unlock(&h->lock);
}

void health_response(struct server *srv, uint64_t ttfb_us, int status)
{
	struct srv_health *h = srv->hl;
	_Atomic uint32_t *cell;

	note_alive(h);
	if (status >= 500 && status != 501 && status != 505) {
		atomic_fetch_add_explicit(&h->r5xx, 1, memory_order_relaxed);
		if (srv->chk.observe_l7) {
			health_event(srv, HEV_5XX, 0, NULL);
			return;
		}
	}
	if (atomic_load_explicit(&h->consec_err, memory_order_relaxed))
		atomic_store_explicit(&h->consec_err, 0, memory_order_relaxed);
	/* One writer per cell (this thread): a relaxed load and store, no locked instruction. */
	cell = &h->th_hist[this_worker->id].b[lat_bucket(ttfb_us)];
	atomic_store_explicit(cell, atomic_load_explicit(cell, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* ---- per-try timeout and retry budget ---- */

uint32_t health_pertry_ms(const struct proxy *be)
{
	if (be->chk.pertry_off)
		return 0;
	if (be->chk.pertry_fixed_ms)
		return be->chk.pertry_fixed_ms;
	return atomic_load_explicit(&be->hl->pertry_ms, memory_order_relaxed);
}

bool health_retry_allowed(struct proxy *be)
{
	struct be_health *b = be->hl;
	uint64_t used = atomic_load(&b->retries) - atomic_load(&b->retries_base);
	uint64_t allowed = atomic_load(&b->allowance);

	if (used >= allowed) {
		atomic_fetch_add(&b->budget_denied, 1);
		return false;
	}
	atomic_fetch_add(&b->retries, 1);
	return true;
}

/* ---- fail-open ---- */

bool health_fail_open(const struct proxy *be)
{
	return be->chk.fail_open && atomic_load_explicit(&be->hl->all_down, memory_order_relaxed);
}

bool health_srv_out(const struct server *srv)
{
	if (!srv->hl)
		return false;
	return atomic_load_explicit(&srv->hl->ejected, memory_order_relaxed) ||
	       (atomic_load_explicit(&srv->oper, memory_order_relaxed) != SRV_OPER_UP &&
		!health_fail_open(srv->be));
}

/* ---- the tick ---- */

/* Folds the threads' cumulative histograms into the server's window. */
static void window_update(struct server *srv)
{
	struct srv_health *h = srv->hl;
	uint32_t win[LAT_BUCKETS] = {0};
	uint32_t n = 0;
	int b, t, k;

	uint32_t e = atomic_load_explicit(&h->errs, memory_order_relaxed);

	h->slot_pos = (h->slot_pos + 1) % LAT_SLOTS;
	h->err_slot[h->slot_pos] = e - h->err_snap;
	h->err_snap = e;
	h->werrs = 0;
	for (k = 0; k < LAT_SLOTS; k++)
		h->werrs += h->err_slot[k];
	e = atomic_load_explicit(&h->r5xx, memory_order_relaxed);
	h->r5_slot[h->slot_pos] = e - h->r5_snap;
	h->r5_snap = e;
	h->w5xx = 0;
	for (k = 0; k < LAT_SLOTS; k++)
		h->w5xx += h->r5_slot[k];
	for (b = 0; b < LAT_BUCKETS; b++) {
		uint32_t cum = 0;

		for (t = 0; t < nthreads; t++)
			cum += atomic_load_explicit(&h->th_hist[t].b[b], memory_order_relaxed);
		h->slot[h->slot_pos][b] = cum - h->snap[b]; /* wraps correctly on overflow */
		h->snap[b] = cum;
		h->acc[b] += h->slot[h->slot_pos][b];
		h->acc_n += h->slot[h->slot_pos][b];
		for (k = 0; k < LAT_SLOTS; k++)
			win[b] += h->slot[k][b];
		n += win[b];
	}
	atomic_store(&h->nsamples, n);
	h->rate5 = n >= LAT_MIN_SAMPLES ? (int)((uint64_t)MIN(h->w5xx, n) * 100 / n) : -1;
	if (h->acc_n >= LAT_EST_SAMPLES) {
		atomic_store(&h->p99_est_us, percentile(h->acc, h->acc_n, 99));
		memset(h->acc, 0, sizeof(h->acc));
		h->acc_n = 0;
	}
	if (n < LAT_MIN_SAMPLES) {
		atomic_store(&h->p50_us, 0);
		atomic_store(&h->p90_us, 0);
		atomic_store(&h->p95_us, 0);
		atomic_store(&h->p99_us, 0);
		return;
	}
	atomic_store(&h->p50_us, percentile(win, n, 50));
	atomic_store(&h->p90_us, percentile(win, n, 90));
	atomic_store(&h->p95_us, percentile(win, n, 95));
	atomic_store(&h->p99_us, percentile(win, n, 99));
}

/* An error rate that a streak of successes hides (a server where 1 request in 5 hangs): above
 * ERR_RATE_PCT of the window's requests, and at least ERR_RATE_MIN errors, ejects. */
static void error_rate_verdict(struct server *srv)
{
	struct srv_health *h = srv->hl;
	uint64_t n = atomic_load(&h->nsamples) + (uint64_t)h->werrs;
	char why[CHK_REASON_LEN];

	if (h->ejected || h->werrs < ERR_RATE_MIN || (uint64_t)h->werrs * 100 < n * ERR_RATE_PCT)
		return;
	pthread_mutex_lock(&h->lock);
	if (!h->ejected && may_eject(srv)) {
		fmt(why, sizeof(why), "%u errors in %llu requests over %d s of live traffic, last: %s",
		    h->werrs, (unsigned long long)n, LAT_SLOTS * HEALTH_TICK_MS / 1000, h->ev_reason);
		eject(srv, why);
	}
	pthread_mutex_unlock(&h->lock);
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return x < y ? -1 : x > y;
}

/* 5xx responses, relative to the peers: a server answering mostly 5xx (STORM_PCT) while its peers
 * answer few (under STORM_PEERS_PCT) is ejected, with or without "observe layer7". A whole farm
 * returning 500 (the application is broken everywhere) ejects none. */
static void storm_verdict(struct server *srv)
{
	const struct proxy *be = srv->be;
	struct srv_health *h = srv->hl;
	int nsrv = atomic_load_explicit(&be->nsrv, memory_order_acquire); /* "add server" grows it */
	int v[nsrv > 0 ? nsrv : 1];
	int i, n = 0, med;
	char why[CHK_REASON_LEN];

	if (h->ejected || srv->chk.observe_off || srv->chk.observe_l7 || h->rate5 < STORM_PCT ||
	    h->w5xx < ERR_RATE_MIN)
		return;
	for (i = 0; i < nsrv; i++)
		if (be->srv[i] != srv && !be->srv[i]->hl->ejected && be->srv[i]->hl->rate5 >= 0 &&
		    !atomic_load(&be->srv[i]->deleted))
			v[n++] = be->srv[i]->hl->rate5;
	if (!n)
		return;
	qsort(v, (size_t)n, sizeof(v[0]), cmp_int);
	med = v[(n - 1) / 2];
	if (med >= STORM_PEERS_PCT)
		return;
	pthread_mutex_lock(&h->lock);
	if (!h->ejected && may_eject(srv)) {
		fmt(why, sizeof(why), "%d%% of its responses are 5xx over %d s, against %d%% for its peers",
		    h->rate5, LAT_SLOTS * HEALTH_TICK_MS / 1000, med);
		eject(srv, why);
	}
	pthread_mutex_unlock(&h->lock);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The lower median of the servers' values (0s excluded), skipping one server (or none). */
static uint32_t peer_median(const struct proxy *be, const struct server *skip, bool p99)
{
	int nsrv = atomic_load_explicit(&be->nsrv, memory_order_acquire); /* "add server" grows it */
	uint32_t v[nsrv > 0 ? nsrv : 1];
	int i, n = 0;

	for (i = 0; i < nsrv; i++) {
		const struct server *o = be->srv[i];
		uint32_t x = atomic_load(p99 ? &o->hl->p99_est_us : &o->hl->p90_us);

		if (o == skip || o->hl->ejected || !x || atomic_load(&o->deleted))
			continue;
		v[n++] = x;
	}
	if (!n)
		return 0;
	qsort(v, (size_t)n, sizeof(v[0]), cmp_u32);
	return v[(n - 1) / 2];
}

/* Latency relative to the peers: a server much slower than their median (and slower than the
 * floor) first loses weight, then, still slow after SLOW_EJECT_TICKS, is ejected. A slowdown of
 * every server moves the median with it and flags none. */
static void latency_verdict(struct server *srv)
{
	const struct proxy *be = srv->be;
	struct srv_health *h = srv->hl;
	uint32_t p90 = atomic_load(&h->p90_us), med = peer_median(be, srv, false);
	uint64_t floor_us = (uint64_t)be->chk.slow_floor_ms * 1000;
	bool slow = p90 && med && p90 > (uint64_t)med * be->chk.slow_factor && p90 > floor_us;
	bool fast = !p90 || !med || p90 < (uint64_t)med * be->chk.slow_factor / 2 || p90 < floor_us;
	char why[CHK_REASON_LEN];

	if (be->chk.slow_off || h->ejected)
		return;
	pthread_mutex_lock(&h->lock);
	if (slow && !h->slow) {
		h->slow = true;
		h->slow_ticks = 0;
		keel_log(LOG_LVL_WARNING,
			 "Server %s/%s is slow: p90 %u ms vs %u ms for its peers; weight reduced to 1/%d",
			 be->name, srv->name, p90 / 1000, med / 1000, SLOW_WEIGHT_DIV);
		recompute(srv, "slow");
	} else if (slow && h->slow && ++h->slow_ticks >= SLOW_EJECT_TICKS && may_eject(srv)) {
		fmt(why, sizeof(why), "latency p90 %u ms vs %u ms for its peers", p90 / 1000,
			 med / 1000);
		h->eject_latency = true;
		eject(srv, why);
	} else if (fast && h->slow) {
		h->slow = false;
		keel_log(LOG_LVL_NOTICE, "Server %s/%s is no longer slow (p90 %u ms)", be->name,
			 srv->name, p90 / 1000);
		recompute(srv, "latency back to normal");
	}
	pthread_mutex_unlock(&h->lock);
}

static void budget_update(struct proxy *be)
{
	struct be_health *b = be->hl;
	struct be_tick *bt = b->tick;
	uint64_t req = 0, retries = atomic_load(&b->retries);
	int t;

	for (t = 0; t < nthreads; t++)
		req += atomic_load_explicit(&be->ctr[t].req_tot, memory_order_relaxed);
	bt->pos = (bt->pos + 1) % BUDGET_TICKS;
	/* The oldest entry is the state one window ago. */
	atomic_store(&b->allowance,
		     be->chk.budget_min + (req - bt->req_hist[bt->pos]) * be->chk.budget_pct / 100);
	atomic_store(&b->retries_base, bt->retry_hist[bt->pos]);
	bt->req_hist[bt->pos] = req;
	bt->retry_hist[bt->pos] = retries;
}

/* The per-try deadline: PERTRY_MULT x the typical server's p99 (the lower median of the servers'
 * latest estimates, so one sick server does not raise it), within [min, max]. Before any
 * estimate exists (start-up), the floor: a server that freezes at start-up must not hold requests
 * for the cap, and a backend that is slow everywhere loses little (a retry that is slow too
 * charges nobody, and the budget bounds the extra work). */
static void pertry_update(struct proxy *be)
{
	uint32_t med = peer_median(be, NULL, true);
	uint64_t ms = (uint64_t)med * PERTRY_MULT / 1000;

	ms = MAX(ms, be->chk.pertry_min_ms);
	ms = MIN(ms, be->chk.pertry_max_ms);
	atomic_store(&be->hl->pertry_ms, (uint32_t)ms);
	atomic_store(&be->hl->p99_us, med);
}

#define MAX_TICK_FNS 4

/* Filled at start, before the workers: read without a lock afterwards. */
static void (*tick_fns[MAX_TICK_FNS])(void);
static int ntick_fns;

void health_on_tick(void (*fn)(void))
{
	REGISTER(tick_fns, ntick_fns, fn);
}

void health_tick(void)
{
	struct list *l;
	int i;

	list_for_each(l, &keel_proxies) {
		struct proxy *be = list_entry(l, struct proxy, list);

		if (!be->hl)
			continue;
		for (i = 0; i < be->nsrv; i++)
			window_update(be->srv[i]);
		for (i = 0; i < be->nsrv; i++) {
			struct server *srv = be->srv[i];

			error_rate_verdict(srv);
			storm_verdict(srv);
			latency_verdict(srv);
			drain_tick(srv, now_us);
			/* Slowstart ramps: recompute the weight while one is running. */
			if (srv->chk.slowstart && srv->hl->up_since &&
			    now_us - srv->hl->up_since <= (uint64_t)srv->chk.slowstart * 1000 + 1000000) {
				pthread_mutex_lock(&srv->hl->lock);
				recompute(srv, "slowstart");
				pthread_mutex_unlock(&srv->hl->lock);
			}
		}
		budget_update(be);
		pertry_update(be);
	}
	for (i = 0; i < ntick_fns; i++)
		tick_fns[i](); /* the stats page's sparklines (admin/history.c) */
}

/* ---- set-up ---- */

static struct timer tick_timer; /* worker 0's */

static void tick_cb(struct timer *t)
{
	health_tick();
	timer_arm(t, now_us + HEALTH_TICK_MS * 1000);
}

void health_thread_start(void)
{
	if (this_worker->id != 0)
		return;
	timer_init(&tick_timer, tick_cb);
	timer_arm(&tick_timer, now_us + HEALTH_TICK_MS * 1000);
}

void health_thread_stop(void)
{
	if (this_worker->id == 0)
		timer_disarm(&tick_timer);
}

int health_srv_init(struct server *srv)
{
	struct srv_health *h = calloc(1, sizeof(*h));

	if (!h || !(h->th_hist = calloc((size_t)nthreads, sizeof(*h->th_hist)))) {
		free(h);
		return ERR;
	}
	pthread_mutex_init(&h->lock, NULL);
	drain_users_init(&srv->drain.users, DRAIN_USERS_MAX);
	h->agent_weight_pct = 100;
	h->uweight = srv->weight;
	h->rate5 = -1;
	h->health = srv->chk.rise + srv->chk.fall - 1;
	h->chk_up = true;
	h->up_since = 1; /* a server up at start-up does not slowstart */
	fmt(h->why, sizeof(h->why), "%s", srv->chk.enabled ? "starting: first check pending" : "no check configured");
	srv->hl = h;
	atomic_store(&srv->eweight, srv->weight);
	return OK;
}

int health_init(int nthr, char **err)
{
	struct list *l;
	int i;

	nthreads = nthr;
	list_for_each(l, &keel_proxies) {
		struct proxy *be = list_entry(l, struct proxy, list);

		if (!(be->cap & PR_CAP_BE))
			continue;
		be->hl = calloc(1, sizeof(*be->hl));
		if (!be->hl || !(be->hl->tick = calloc(1, sizeof(struct be_tick))))
			goto oom;
		atomic_store(&be->hl->pertry_ms, be->chk.pertry_min_ms);
		atomic_store(&be->hl->allowance, be->chk.budget_min);
		for (i = 0; i < be->nsrv; i++)
			if (health_srv_init(be->srv[i]) != OK)
				goto oom;
	}
	return OK;
oom:
	*err = strfmt("out of memory");
	return ERR;
}

void health_deinit(void)
{
	struct list *l;
	int i;

	list_for_each(l, &keel_proxies) {
		struct proxy *be = list_entry(l, struct proxy, list);

		for (i = 0; i < be->nsrv; i++) {
			if (!be->srv[i]->hl)
				continue;
			pthread_mutex_destroy(&be->srv[i]->hl->lock);
			drain_users_destroy(&be->srv[i]->drain.users);
			free(be->srv[i]->hl->th_hist);
			free(be->srv[i]->hl);
			be->srv[i]->hl = NULL;
		}
		if (be->hl)
			free(be->hl->tick);
		free(be->hl);
		be->hl = NULL;
	}
}

/* ---- operators' view ---- */

const char *chk_code_str(enum chk_code c)
{
	static const char *const names[] = {
		[CHK_C_NONE] = "", [CHK_C_L4OK] = "L4OK", [CHK_C_L4CON] = "L4CON",
		[CHK_C_L4TOUT] = "L4TOUT", [CHK_C_SOCKERR] = "SOCKERR", [CHK_C_L7OK] = "L7OK",
		[CHK_C_L7TOUT] = "L7TOUT", [CHK_C_L7RSP] = "L7RSP", [CHK_C_L7STS] = "L7STS",
		[CHK_C_L7BODY] = "L7BODY", [CHK_C_AGENT] = "AGENT", [CHK_C_L6RSP] = "L6RSP",
		[CHK_C_L6TOUT] = "L6TOUT",
	};

	return (unsigned)c < ARRAY_SIZE(names) ? names[c] : "?";
}

/* The state name; lock held. */
static void state_name(const struct server *srv, char *buf, size_t len)
{
	const struct srv_health *h = srv->hl;
	int admin = atomic_load(&srv->admin);

	if (admin == SRV_ADMIN_MAINT)
		snprintf(buf, len, "MAINT");
	else if (h->ejected)
		snprintf(buf, len, "EJECTED");
	else if (atomic_load(&srv->oper) != SRV_OPER_UP && srv->chk.enabled && h->health > 0)
		snprintf(buf, len, "DOWN %d/%d", h->health, srv->chk.rise);
	else if (atomic_load(&srv->oper) != SRV_OPER_UP)
		snprintf(buf, len, "DOWN");
	else if (admin == SRV_ADMIN_DRAIN)
		snprintf(buf, len, "DRAIN");
	else if (h->slow)
		snprintf(buf, len, "UP (slow)");
	else if (srv->chk.enabled && !h->checks_off && h->health < srv->chk.rise + srv->chk.fall - 1)
		snprintf(buf, len, "UP %d/%d", h->health - srv->chk.rise + 1, srv->chk.fall);
	else
		snprintf(buf, len, "UP");
}

void health_view(struct server *srv, struct health_view *v)
{
	struct srv_health *h = srv->hl;

	memset(v, 0, sizeof(*v));
	if (!h) {
		snprintf(v->state, sizeof(v->state), "UP");
		return;
	}
	pthread_mutex_lock(&h->lock);
	state_name(srv, v->state, sizeof(v->state));
	memcpy(v->why, h->why, sizeof(v->why));
	if (h->ejected)
		memcpy(v->ev_reason, h->ev_reason, sizeof(v->ev_reason));
	v->last_chk = h->last_chk;
	v->has_chk = h->last_chk.code != CHK_C_NONE;
	v->ejections_tot = h->ejections_tot;
	v->uweight = h->uweight;
	v->since_wall = h->since_wall;
	v->slowstart_pct = -1;
	/* now_us is this thread's: it may be a little behind the writer's up_since. */
	if (srv->chk.slowstart && h->up_since && atomic_load(&srv->oper) == SRV_OPER_UP &&
	    now_us >= h->up_since && now_us - h->up_since < (uint64_t)srv->chk.slowstart * 1000)
		v->slowstart_pct = (int)((now_us - h->up_since) / (srv->chk.slowstart * 10ull));
	pthread_mutex_unlock(&h->lock);
	v->p50_us = atomic_load(&h->p50_us);
	v->p90_us = atomic_load(&h->p90_us);
	v->p95_us = atomic_load(&h->p95_us);
	v->p99_us = atomic_load(&h->p99_us);
	v->consec_err = atomic_load(&h->consec_err);
}

void health_lat_counts(const struct server *srv, uint64_t out[LAT_BUCKETS])
{
	const struct srv_health *h = srv->hl;
	int b, t;

	memset(out, 0, LAT_BUCKETS * sizeof(*out));
	if (!h)
		return;
	/* Relaxed loads of the per-thread cells, as the tick does (one writer per cell). A cell
	 * wraps at 2^32 per thread; the sum is 64-bit. */
	for (t = 0; t < nthreads; t++)
		for (b = 0; b < LAT_BUCKETS; b++)
			out[b] += atomic_load_explicit(&h->th_hist[t].b[b], memory_order_relaxed);
}
