/* Sessions: client connections, whatever their mux. A session is set up when its socket is
 * accepted (by its mux: session_init()) and ends with it (session_free()); this file keeps the
 * counts that limit connections (maxconn), the thread's list of sessions, which the soft and
 * hard stops walk, and the lists of sessions that may be closed when connections run out
 * (session_reclaim()). What a session carries, requests, is the mux's and the streams'
 * business: the mux says which of those lists a session belongs in (session_set_rc()). */
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <keel/backend.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/conn.h>
#include <keel/connpass.h>
#include <keel/listener-t.h>
#include <keel/log.h>
#include <keel/loop.h>
#include <keel/mux-t.h>
#include <keel/proxy.h>
#include <keel/session.h>
#include <keel/timer.h>
#include <keel/worker.h>

/* The sessions session_reclaim() may look at and find busy after all, in one call, beyond those
 * it closes (a head list keeps the requests whose head ended until their next change): each is
 * taken out of its list, so the next call does not meet it again. Telling costs the mux a few
 * comparisons. */
#define RECLAIM_SKIP_MAX 64
#define RECLAIM_LOG_US 1000000
/* A connection is closed to make room only once it has waited this long, whatever the load: an
 * incomplete head RECLAIM_MIN_HEAD_US (a client gets that long to send its head: closing a
 * younger one would only swap it for another young one, in a burst of new connections), an idle
 * keep-alive connection RECLAIM_MIN_IDLE_US. Closing an idle connection races the client's next
 * request on it (it fails if it was on its way); a client that reuses its connections more often
 * than that never meets the race, and under a slow-head flood the heads go before the idle
 * connections of active clients (bench/faults --flood-reopen: with 100 ms for both, 2 of 200
 * POSTs sent every 100 ms on a keep-alive connection failed). */
#define RECLAIM_MIN_HEAD_US 100000
#define RECLAIM_MIN_IDLE_US 1000000
/* The most connections a worker closes at once for the others (session_reclaim_asked()). */
#define RECLAIM_ASKED_MAX 16

atomic_int keel_actconn;
/* Connections the workers asked each other to close at the global maxconn (frontends: rc_asked). */
static atomic_int rc_asked;

int session_init(struct session *sess, const struct mux_ops *mux, struct listener *li, int fd,
		 const union sockaddr_u *addr, void (*cb)(struct fdh *, uint32_t))
{
	socklen_t llen = sizeof(sess->local);
	int one = 1;

	sess->mux = mux;
	sess->li = li;
	sess->fe = li->fe;
	sess->addr = *addr;
	getsockname(fd, &sess->local.sa, &llen);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sess->t_accept = sess->t_idle = now_us;
	sess->wall_accept = wall_us;
	sess->rc = RC_BUSY; /* until its mux says (session_set_rc()) */
	list_init(&sess->rc_list);
	sess->rcl = &proxy_thread->rc[sess->fe->id];
	if (conn_init(&sess->cli, fd, li->bind->xprt, li->bind->xprt_conf, cb) != OK)
		return ERR;
	atomic_fetch_add_explicit(&keel_actconn, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sess->fe->feconn, 1, memory_order_relaxed);
	CTR_INC(sess->fe->ctr[this_worker->id].conn_tot);
	list_add_tail(&proxy_thread->sessions, &sess->list);
	proxy_thread->nsess++;
	return OK;
}

void session_free(struct session *sess)
{
	conn_close(&sess->cli);
	list_del(&sess->list);
	list_del(&sess->rc_list);
	proxy_thread->nsess--;
	atomic_fetch_sub_explicit(&keel_actconn, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&sess->fe->feconn, 1, memory_order_relaxed);
	if (this_worker->stopping && proxy_thread->nsess == 0)
		this_worker->loop.quit = true;
}

/* A soft stop waits this long when the new process could not take connections yet. */
#define CONNPASS_RETRY_US 2000

bool session_close_on_stop(const struct session *sess)
{
	return this_worker->stopping && !(connpass_ready() && sess->cli.xprt->movable);
}

/* Whether sess's socket can go to the new process now: one is ready for it, its transport's
 * state is all in the socket, and its mux has nothing in progress on it. */
static bool movable(struct session *sess)
{
	return connpass_ready() && sess->cli.xprt->movable && sess->mux->quiet(sess);
}

/* Hands n movable sessions over. Sent: our descriptors close, quietly (the mux's hard stop of
 * a session with nothing in progress). Not sent: their mux's soft stop, and another try soon
 * when the new process was only behind. */
static void hand_over(struct session **b, int n)
{
	int fds[CONNPASS_BATCH] = {0}, i, r;

	if (!n)
		return;
	for (i = 0; i < n; i++)
		fds[i] = b[i]->cli.h.fd;
	r = connpass_send(fds, n);
	for (i = 0; i < n; i++) {
		if (r == OK)
			loop_forget(&b[i]->cli.h); /* the socket lives on in the new process */
		b[i]->mux->stop(b[i], r == OK);
	}
	if (r == AGAIN && !timer_armed(&proxy_thread->connpass_retry))
		timer_arm(&proxy_thread->connpass_retry, now_us + CONNPASS_RETRY_US);
}

void session_stop(struct session *sess)
{
	if (movable(sess))
		hand_over(&sess, 1);
	else
		sess->mux->stop(sess, false);
}

void session_stop_all(bool hard)
{
	struct session *batch[CONNPASS_BATCH];
	struct list *l, *tmp;
	int n = 0;

	list_for_each_safe(l, tmp, &proxy_thread->sessions) {
		struct session *sess = list_entry(l, struct session, list);

		if (hard || !movable(sess)) {
			sess->mux->stop(sess, hard);
			continue;
		}
		batch[n++] = sess;
		if (n == CONNPASS_BATCH) {
			hand_over(batch, n);
			n = 0;
		}
	}
	hand_over(batch, n);
	/* The loop ends once the last session is gone (session_free()). */
	if (hard || proxy_thread->nsess == 0)
		this_worker->loop.quit = true;
}

static void connpass_retry_cb(struct timer *t)
{
	(void)t;
	session_stop_all(false);
}

/* ---- closing sessions when connections run out ----
 *
 * A client connection costs a slot of maxconn whatever it does. When the slots run out, the
 * listeners would leave new clients in the kernel's backlog (src/proxy/listener.c) while some
 * of the slots only wait: for the next request of a keep-alive connection, or for the rest of a
 * request head that a slow (or hostile) client sends a byte at a time. Closing those is what
 * their timeouts do anyway (timeout http-keep-alive, timeout http-request); session_reclaim()
 * does it early. Its mux keeps each session in the right list as it goes (session_set_rc()):
 * per thread and per frontend, so that the choice takes no scan, each list in the order its
 * sessions entered it. */

static void rc_log_cb(struct timer *tm);

int session_thread_init(void)
{
	struct proxy_thread *t = proxy_thread;
	int i;

	t->rc = calloc((size_t)t->nbe, sizeof(*t->rc));
	if (!t->rc)
		return ERR;
	for (i = 0; i < t->nbe; i++) {
		list_init(&t->rc[i].idle);
		list_init(&t->rc[i].heads);
	}
	timer_init(&t->rc_log, rc_log_cb);
	list_init(&t->sessions);
	timer_init(&t->connpass_retry, connpass_retry_cb);
	return OK;
}

void session_thread_exit(void)
{
	if (timer_armed(&proxy_thread->rc_log))
		timer_disarm(&proxy_thread->rc_log);
	if (timer_armed(&proxy_thread->connpass_retry))
		timer_disarm(&proxy_thread->connpass_retry);
	free(proxy_thread->rc);
	proxy_thread->rc = NULL;
}

void session_move_rc(struct session *sess, enum sess_rc rc)
{
	list_del(&sess->rc_list);
	sess->rc = (uint8_t)rc;
	sess->t_rc = now_us;
	if (rc == RC_IDLE)
		list_add_tail(&sess->rcl->idle, &sess->rc_list);
	else if (rc == RC_HEAD)
		list_add_tail(&sess->rcl->heads, &sess->rc_list);
}

/* The oldest session of the idle lists (idle) or of the heads lists, among fe's, or among every
 * frontend's when fe is NULL (a few proxies: their first entries are compared), or NULL when
 * none has waited long enough (RECLAIM_MIN_IDLE_US, RECLAIM_MIN_HEAD_US). */
static struct session *oldest(const struct proxy *fe, bool idle)
{
	struct proxy_thread *t = proxy_thread;
	struct session *best = NULL;
	int i, end = fe ? fe->id + 1 : t->nbe;
	uint64_t min_age = idle ? RECLAIM_MIN_IDLE_US : RECLAIM_MIN_HEAD_US;

	for (i = fe ? fe->id : 0; i < end; i++) {
		struct list *head = idle ? &t->rc[i].idle : &t->rc[i].heads;
		struct session *s;

		if (list_empty(head))
			continue;
		s = list_first(head, struct session, rc_list);
		if (s->t_rc + min_age > now_us)
			continue; /* the oldest of its list: the others are younger */
		if (!best || s->t_rc < best->t_rc)
			best = s;
	}
	return best;
}

/* One line for what session_reclaim() closed since the last one, at most every RECLAIM_LOG_US
 * per thread: the first close of a quiet spell is logged at the end of its loop iteration. */
static void rc_log_cb(struct timer *tm)
{
	struct proxy_thread *t = proxy_thread;

	if (!t->rc_idle && !t->rc_heads)
		return; /* quiet for a second: the next close logs at once */
	keel_log(LOG_LVL_WARNING,
		 "maxconn reached: closed %llu idle keep-alive / %llu slow request heads to accept "
		 "new connections (worker %d)",
		 (unsigned long long)t->rc_idle, (unsigned long long)t->rc_heads, this_worker->id);
	t->rc_idle = t->rc_heads = 0;
	timer_arm(tm, now_us + RECLAIM_LOG_US);
}

int session_reclaim(struct proxy *fe, int n)
{
	struct proxy_thread *t = proxy_thread;
	int closed = 0, skipped = 0;

	while (closed < n && skipped < RECLAIM_SKIP_MAX) {
		bool idle = true;
		struct session *sess = oldest(fe, idle);
		struct counters *c;

		if (!sess) {
			idle = false;
			sess = oldest(fe, idle);
		}
		if (!sess)
			break;
		c = &sess->fe->ctr[this_worker->id];
		if (!sess->mux->reclaim(sess)) {
			session_set_rc(sess, RC_BUSY);
			skipped++;
			continue;
		}
		/* sess is closed (its memory stays valid until the end of the iteration). */
		closed++;
		if (idle) {
			CTR_INC(c->reclaim_idle);
			t->rc_idle++;
		} else {
			CTR_INC(c->reclaim_heads);
			t->rc_heads++;
		}
	}
	if (closed && !timer_armed(&t->rc_log))
		timer_arm(&t->rc_log, now_us);
	return closed || !skipped ? closed : AGAIN;
}

/* ---- closing for another worker ----
 *
 * Each worker closes only its own connections (they belong to it). With SO_REUSEPORT the kernel
 * spreads clients evenly, so each worker has its share of idle ones; but with few connections,
 * or when one worker's are all busy, a client may wait in the backlog of a worker that has none
 * to close while another has: that worker is asked, through its loop's wake-up. */

void session_reclaim_ask(struct proxy *fe)
{
	int i;

	atomic_fetch_add_explicit(fe ? &fe->rc_asked : &rc_asked, 1, memory_order_relaxed);
	for (i = 0; keel_workers && i < keel_nworkers; i++)
		if (&keel_workers[i] != this_worker)
			loop_signal(&keel_workers[i].loop, LOOP_WAKE_RECLAIM);
}

/* Takes what was asked of counter c (the other workers are all woken: the first takes all) and
 * closes up to that many connections of scope fe. */
static void reclaim_asked(atomic_int *c, struct proxy *fe)
{
	int n = atomic_exchange_explicit(c, 0, memory_order_relaxed);

	if (n > 0)
		session_reclaim(fe, MIN(n, RECLAIM_ASKED_MAX));
}

void session_reclaim_asked(void)
{
	struct list *l;

	if (this_worker->stopping)
		return;
	reclaim_asked(&rc_asked, NULL);
	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		if (p->cap & PR_CAP_FE)
			reclaim_asked(&p->rc_asked, p);
	}
}
