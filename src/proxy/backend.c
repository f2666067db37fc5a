/* Server slots, queues and connections.
 *
 * Slots: a server with maxconn serves at most that many requests at once; cur_sess is the one
 * shared counter, taken with a compare-and-swap. A request that finds every candidate full waits
 * in its own thread's queue (so a stream is only ever touched by its thread). When a slot is
 * given back and someone waits anywhere, every worker is woken and each serves its queue in
 * order; newcomers queue behind existing waiters. */
#include <errno.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <keel/backend.h>
#include <keel/cfg.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/conn.h>
#include <keel/global.h>
#include <keel/health.h>
#include <keel/lb.h>
#include <keel/listener-t.h>
#include <keel/log.h>
#include <keel/loop.h>
#include <keel/mux.h>
#include <keel/pool.h>
#include <keel/proxy.h>
#include <keel/server.h>
#include <keel/session.h>
#include <keel/stream.h>
#include <keel/ssl.h>
#include <keel/timer.h>
#include <keel/worker.h>

__thread struct proxy_thread *proxy_thread;

bool srv_usable(const struct server *s)
{
	return atomic_load_explicit(&s->admin, memory_order_relaxed) == SRV_ADMIN_READY &&
	       (atomic_load_explicit(&s->oper, memory_order_relaxed) == SRV_OPER_UP ||
		(s->be->hl && health_fail_open(s->be) && !atomic_load(&s->hl->ejected))) &&
	       atomic_load_explicit(&s->eweight, memory_order_relaxed) > 0;
}

bool backend_has_other(const struct proxy *be, const struct server *srv)
{
	int i;

	for (i = 0; i < be->nsrv; i++)
		if (be->srv[i] != srv && srv_usable(be->srv[i]) && !srv_full(be->srv[i]))
			return true;
	return false;
}

bool srv_full(const struct server *s)
{
	return s->maxconn && atomic_load_explicit(&s->cur_sess, memory_order_relaxed) >= s->maxconn;
}

bool srv_take_slot(struct server *srv)
{
	int cur = atomic_load_explicit(&srv->cur_sess, memory_order_relaxed);

	do {
		if (srv->maxconn && cur >= srv->maxconn)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&srv->cur_sess, &cur, cur + 1,
							memory_order_acq_rel, memory_order_relaxed));
	if (cur + 1 > atomic_load_explicit(&srv->max_sess, memory_order_relaxed))
		atomic_store_explicit(&srv->max_sess, cur + 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&srv->be->beconn, 1, memory_order_relaxed);
	return true;
}


void srv_put_slot(struct server *srv)
{
	atomic_fetch_sub_explicit(&srv->cur_sess, 1, memory_order_acq_rel);
	atomic_fetch_sub_explicit(&srv->be->beconn, 1, memory_order_relaxed);
	if (atomic_load_explicit(&srv->be->nbpend, memory_order_acquire) > 0)
		workers_signal(LOOP_WAKE_QUEUE);
}

static struct be_tctx *bt_of(const struct proxy *be)
{
	return &proxy_thread->be[be->id];
}

static void enqueue(struct stream *s, struct server *srv)
{
	struct be_tctx *bt = bt_of(s->be);

	s->q_srv = srv;
	stream_set_ss(s, SS_QUEUED);
	list_add_tail(&bt->queue, &s->qlist);
	bt->nqueued++;
	atomic_fetch_add(&s->be->nbpend, 1);
	if (srv)
		atomic_fetch_add(&srv->nbpend, 1);
	CTR_INC(s->be->ctr[this_worker->id].queued_tot);
}

void backend_dequeue(struct stream *s)
{
	struct be_tctx *bt;

	if (!list_linked(&s->qlist))
		return;
	bt = bt_of(s->be);
	list_del(&s->qlist);
	bt->nqueued--;
	atomic_fetch_sub(&s->be->nbpend, 1);
	if (s->q_srv)
		atomic_fetch_sub(&s->q_srv->nbpend, 1);
	s->q_srv = NULL;
}

/* Tries to give s a server with a free slot (or its pinned server). */
static bool try_assign(struct stream *s, struct server *pinned)
{
	struct be_tctx *bt = bt_of(s->be);
	struct server *srv;
	int tries;

	if (pinned) {
		if (!srv_take_slot(pinned))
			return false;
		s->srv = pinned;
		s->has_slot = true;
		return true;
	}
	/* The pick skips full servers, but another thread may fill one between the pick and the
	 * CAS: try a few times. */
	for (tries = 0; tries < 4; tries++) {
		srv = lb_pick(s, bt, s->txn ? s->txn->last_srv : NULL);
		if (!srv)
			return false;
		if (srv_take_slot(srv)) {
			s->srv = srv;
			s->has_slot = true;
			return true;
		}
	}
	return false;
}

int backend_assign_pinned(struct stream *s, struct server *srv)
{
	BUG_ON(s->has_slot);
	if (atomic_load_explicit(&srv->nbpend, memory_order_acquire) == 0 && try_assign(s, srv))
		return OK;
	if (srv->maxqueue && atomic_load(&srv->nbpend) >= srv->maxqueue)
		return ERR;
	enqueue(s, srv);
	backend_process_queues();
	return s->ss == SS_QUEUED ? AGAIN : OK;
}

int backend_assign(struct stream *s)
{
	struct proxy *be = s->be;
	struct be_tctx *bt = bt_of(be);
	struct server *srv;

	BUG_ON(s->has_slot);
	/* Waiters go first: a newcomer only skips the queue when nobody waits. */
	if (atomic_load_explicit(&be->nbpend, memory_order_acquire) == 0 && try_assign(s, NULL))
		return OK;
	srv = lb_pick(s, bt, s->txn ? s->txn->last_srv : NULL);
	if (!srv) {
		/* Nothing usable, or every usable server is full: queue if any server can ever
		 * serve (has a maxconn), else fail. */
		int i;
		bool any = false;

		for (i = 0; i < be->nsrv; i++)
			if (srv_usable(be->srv[i]) && be->srv[i]->maxconn)
				any = true;
		if (!any)
			return ERR;
		enqueue(s, NULL);
	} else if (be->lb >= LB_SOURCE && srv_full(srv)) {
		/* Hash-based balancing keeps its key on its server: wait for that one. */
		if (srv->maxqueue && atomic_load(&srv->nbpend) >= srv->maxqueue)
			return ERR;
		enqueue(s, srv);
	} else {
		enqueue(s, NULL);
	}
	backend_process_queues();
	return s->ss == SS_QUEUED ? AGAIN : OK;
}

void backend_process_queues(void)
{
	int i;

	for (i = 0; i < proxy_thread->nbe; i++) {
		struct be_tctx *bt = &proxy_thread->be[i];

		while (bt->nqueued) {
			struct stream *s = list_first(&bt->queue, struct stream, qlist);
			struct server *pinned = s->q_srv;

			if (!try_assign(s, pinned))
				break; /* FIFO: the head waits, so does everyone behind it */
			backend_dequeue(s);
			stream_set_ss(s, SS_NONE);
			s->txn->t_queue = now_us;
			stream_wake(s);
		}
	}
}

static void sconn_free(struct sconn *sc)
{
	conn_close(&sc->c);
	timer_disarm(&sc->timer);
	loop_defer_free(&proxy_thread->sconn_pool, sc);
}

static void idle_close(struct sconn *sc)
{
	struct srv_tctx *st = &bt_of(sc->srv->be)->srv[sc->srv->id];

	list_del(&sc->idle);
	st->nidle--;
	sconn_free(sc);
}

static void idle_timer_cb(struct timer *t)
{
	idle_close(container_of(t, struct sconn, timer));
}

/* How long a server that sent bytes after a response gets no connection reuse. */
#define STRAY_NO_REUSE_US (60u * 1000000u)

/* Whether srv's connections may be reused now (not after stray bytes, for a while). */
static bool srv_reuse_ok(const struct server *srv)
{
	return now_us >= atomic_load_explicit(&srv->no_reuse_until, memory_order_relaxed);
}

void backend_stray_bytes(struct server *srv)
{
	static _Atomic uint64_t last_log;
	uint64_t prev = atomic_load_explicit(&last_log, memory_order_relaxed);

	/* Bytes that come after keel sent the next request on a connection cannot be told from
	 * its answer: once a server was seen sending stray bytes, its connections carry one
	 * request each for a while (docs/configuration.md, "Server connection reuse"). */
	atomic_store_explicit(&srv->no_reuse_until, now_us + STRAY_NO_REUSE_US,
			      memory_order_relaxed);
	CTR_INC(srv->ctr[this_worker->id].failed_rsp);
	health_event(srv, HEV_PROTO, 0, "bytes after the end of a response");
	/* One line a second at most: a hostile server must not flood the logs. */
	if (now_us - prev >= 1000000 &&
	    atomic_compare_exchange_strong(&last_log, &prev, now_us))
		keel_log(LOG_LVL_WARNING,
			 "Server %s/%s sent bytes after the end of a response: its connection is closed, the bytes dropped",
			 srv->be->name, srv->name);
}

/* An event on an idle connection, or on one taken from the idle pool during this batch of events
 * (before its own event was handled: the event came while it was idle). The server closed it, or
 * sent bytes nobody asked for: either way it carries no request. Stray bytes are the server's
 * protocol error; a close (a keep-alive timeout on its side) is ordinary. */
static bool idle_event(struct sconn *sc, uint32_t events)
{
	if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)))
		return false;
	if ((events & EPOLLIN) && conn_peek(&sc->c) > 0)
		backend_stray_bytes(sc->srv);
	return true;
}

static void sconn_io_cb(struct fdh *h, uint32_t events)
{
	struct sconn *sc = container_of(h, struct sconn, c.h);

	if (!sc->owner) {
		if (idle_event(sc, events))
			idle_close(sc);
		return;
	}
	conn_events(&sc->c, events);
	/* Its request was not sent yet (writes wait for the end of the batch): the stream takes
	 * the free retry of a pooled connection that turned out closed (try_again()). */
	if (sc->taken_iter == tl->iter && idle_event(sc, events))
		sc->c.flags |= CF_ERROR;
	stream_run(sc->owner);
}

int backend_connect(struct stream *s)
{
	struct server *srv = s->srv;
	struct srv_tctx *st = &bt_of(s->be)->srv[srv->id];
	struct sockaddr_storage addr;
	struct sconn *sc;
	socklen_t llen, alen;
	bool from_client;
	unsigned gen = server_addr_gen(srv);
	int fd, one = 1, snilen;
	char sni[256];
	uint64_t sni_hash;

	BUG_ON(s->sc);
	/* TLS: the name to ask for; a connection opened for another name is not reused. */
	snilen = srv->xprt == &xprt_ssl_srv ? ssl_srv_sni(s, srv, sni, sizeof(sni)) : -1;
	sni_hash = snilen > 0 ? lb_hash(sni, (size_t)snilen) : 0;
	/* A pooled connection skips the handshake. Non-idempotent requests only reuse connections
	 * that were idle briefly, to stay clear of the server's own keep-alive timeout race. */
	while (!list_empty(&st->idle)) {
		sc = list_first(&st->idle, struct sconn, idle);
		if (sc->addr_gen != gen || !srv_reuse_ok(srv) || sc->sni_hash != sni_hash) {
			/* "set server addr" moved the server: never reuse the old address; or the
			 * server sent stray bytes: no reuse for a while; or it was for another
			 * name. */
			idle_close(sc);
			continue;
		}
		list_del(&sc->idle);
		st->nidle--;
		timer_disarm(&sc->timer);
		sc->owner = s;
		sc->c.flags &= ~(uint16_t)CF_RD_READY;
		sc->taken_iter = tl->iter;
		s->sc = sc;
		s->txn->flags |= TX_REUSED;
		stream_set_ss(s, SS_READY);
		s->txn->t_conn = now_us;
		return OK;
	}
	CTR_INC(srv->ctr[this_worker->id].conn_tot);
	gen = server_addr(srv, &addr, &alen, &from_client);
	if (from_client) {
		if (addr.ss_family == AF_INET)
			((struct sockaddr_in *)&addr)->sin_port = s->sess->local.in.sin_port;
		else
			((struct sockaddr_in6 *)&addr)->sin6_port = s->sess->local.in6.sin6_port;
	}
	fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		s->txn->err_why = "cannot create a socket (file descriptors exhausted?)";
		return ERR;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sc = pool_alloc(&proxy_thread->sconn_pool);
	if (!sc) {
		close(fd);
		s->txn->err_why = "out of memory";
		return ERR;
	}
	memset(sc, 0, sizeof(*sc));
	sc->srv = srv;
	sc->owner = s;
	sc->addr_gen = gen;
	sc->sni_hash = sni_hash;
	list_init(&sc->idle);
	timer_init(&sc->timer, idle_timer_cb);
	if (connect(fd, (struct sockaddr *)&addr, alen) == -1 && errno != EINPROGRESS) {
		s->txn->err_why = strerror(errno);
		pool_free(&proxy_thread->sconn_pool, sc);
		close(fd);
		return ERR;
	}
	if (conn_init(&sc->c, fd, srv->xprt, srv->xprt_conf, sconn_io_cb) != OK) {
		s->txn->err_why = "connection set-up failed";
		pool_free(&proxy_thread->sconn_pool, sc);
		close(fd);
		return ERR;
	}
	if (srv->xprt == &xprt_ssl_srv)
		ssl_srv_set_name(&sc->c, snilen > 0 ? sni : NULL);
	llen = sizeof(sc->local);
	getsockname(fd, &sc->local.sa, &llen);
	s->sc = sc;
	stream_set_ss(s, SS_CONNECTING);
	return OK;
}

void backend_release_conn(struct stream *s, bool reusable)
{
	struct sconn *sc = s->sc;
	struct srv_tctx *st;

	if (!sc)
		return;
	s->sc = NULL;
	sc->owner = NULL;
	if (!reusable || this_worker->stopping || (sc->c.flags & (CF_EOF | CF_ERROR)) || sc->c.h.fd < 0 ||
	    sc->addr_gen != server_addr_gen(sc->srv) || server_deleted(sc->srv) ||
	    !srv_reuse_ok(sc->srv)) {
		sconn_free(sc);
		return;
	}
	st = &bt_of(sc->srv->be)->srv[sc->srv->id];
	sc->nreq++;
	sc->c.flags &= ~(uint16_t)CF_RD_READY;
	list_add_head(&st->idle, &sc->idle);
	st->nidle++;
	timer_arm(&sc->timer, now_us + (uint64_t)sc->srv->pool_purge_ms * 1000);
}

void backend_purge_stale(void)
{
	struct list *l;
	int k, n;

	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);
		struct be_tctx *bt = &proxy_thread->be[p->id];

		n = server_count(p);
		for (k = 0; bt->srv && k < n; k++) {
			struct srv_tctx *st = &bt->srv[k];
			struct list *i, *nx;

			if (!st->nidle)
				continue;
			for (i = st->idle.next; i != &st->idle; i = nx) {
				struct sconn *sc = list_entry(i, struct sconn, idle);

				nx = i->next;
				if (server_deleted(p->srv[k]) ||
				    sc->addr_gen != server_addr_gen(p->srv[k]))
					idle_close(sc);
			}
		}
	}
}

void backend_close_idle(void)
{
	struct list *l;
	int k;

	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);
		struct be_tctx *bt = &proxy_thread->be[p->id];

		for (k = 0; bt->srv && k < p->nsrv; k++)
			while (!list_empty(&bt->srv[k].idle))
				idle_close(list_first(&bt->srv[k].idle, struct sconn, idle));
	}
}

int proxy_thread_init(struct proxy_thread *t, char **err)
{
	struct list *pl;
	int maxid = 0, id = this_worker->id;

	memset(t, 0, sizeof(*t));
	proxy_thread = t;
	list_init(&t->listeners);
	mux_h1_thread_init();
	pool_init(&t->txn_pool, "txn", sizeof(struct txn), 1024);
	pool_init(&t->sconn_pool, "sconn", sizeof(struct sconn), 4096);
	t->hdrs = calloc((size_t)global.maxhdr + 1, sizeof(*t->hdrs));
	t->hdrs2 = calloc((size_t)global.maxhdr + 1, sizeof(*t->hdrs2));
	t->rnd = 0x9e3779b97f4a7c15ull ^ ((uint64_t)(id + 1) * 0x2545F4914F6CDD1Dull) ^ now_us;
	list_for_each(pl, &keel_proxies)
		maxid = MAX(maxid, list_entry(pl, struct proxy, list)->id);
	t->nbe = maxid + 1;
	t->be = calloc((size_t)t->nbe, sizeof(*t->be));
	if (!t->hdrs || !t->hdrs2 || !t->be || session_thread_init() != OK) {
		*err = strfmt("out of memory");
		return ERR;
	}
	list_for_each(pl, &keel_proxies) {
		struct proxy *p = list_entry(pl, struct proxy, list);
		struct be_tctx *bt = &t->be[p->id];
		int i;

		int cap = MAX(p->srv_cap, p->nsrv);

		list_init(&bt->queue);
		bt->gen = (unsigned)-1;
		if (!cap)
			continue;
		/* Room for the servers "add server" may publish later (docs/internals). */
		bt->srv = calloc((size_t)cap, sizeof(*bt->srv));
		if (!bt->srv) {
			*err = strfmt("out of memory");
			return ERR;
		}
		for (i = 0; i < cap; i++)
			list_init(&bt->srv[i].idle);
	}
	return OK;
}

void proxy_thread_destroy(struct proxy_thread *t)
{
	int i;

	while (!list_empty(&t->listeners)) {
		struct list *l = t->listeners.next;

		list_del(l);
		free(container_of(l, struct listener, list));
	}
	for (i = 0; i < t->nbe; i++) {
		free(t->be[i].srv);
		free(t->be[i].map);
	}
	free(t->be);
	free(t->hdrs);
	free(t->hdrs2);
	session_thread_exit();
	mux_h1_thread_exit();
	pool_flush(&t->txn_pool);
	pool_flush(&t->sconn_pool);
}
