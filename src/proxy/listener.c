/* Accepting connections. Each worker has its own SO_REUSEPORT socket per bind address, so the
 * kernel spreads new connections over the workers and no accept path is shared. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <keel/backend.h>
#include <keel/cfg.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/global.h>
#include <keel/listener.h>
#include <keel/log.h>
#include <keel/loop.h>
#include <keel/mux-t.h>
#include <keel/proxy.h>
#include <keel/session.h>
#include <keel/timer.h>
#include <keel/worker.h>

#define ACCEPT_BATCH 64
#define RESUME_DELAY_US 20000

/* Every listening socket of the process, for a reload (they stay open until the soft stop). */
static int *bound;
static int nbound;

static void note_bound(const struct bind_conf *b)
{
	int t;

	for (t = 0; t < KEEL_MAX_THREADS; t++) {
		if (b->fds[t] < 0)
			continue;
		bound = xrealloc(bound, sizeof(*bound) * (size_t)(nbound + 1));
		bound[nbound++] = b->fds[t];
	}
}

/* Binds (and, unless probing, listens on) one socket for b. A probe only binds: a listening
 * probe could accept a client's handshake and reset it when closed. */
static int bind_one(const struct bind_conf *b, bool reuseport, bool probe, char **err)
{
	int one = 1;
	int fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd == -1) {
		*err = strfmt("cannot create a socket for %s: %s", b->str, strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (b->addr.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&b->addr, b->addrlen) == -1) {
		*err = strfmt("cannot bind %s (%s:%d): %s", b->str, b->file, b->line,
			      errno == EADDRINUSE ? "address already in use" : strerror(errno));
		close(fd);
		return -1;
	}
	if (!probe && listen(fd, 1024) == -1) {
		*err = strfmt("cannot listen on %s: %s", b->str, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Calls fn(p, b, arg, err) on each bind line b of each frontend p that accepts connections (not
 * disabled), until one fails. Returns OK, or ERR from fn. */
static int each_bind(int (*fn)(struct proxy *p, struct bind_conf *b, void *arg, char **err),
		     void *arg, char **err)
{
	struct list *l, *bl;

	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		if (!(p->cap & PR_CAP_FE) || p->disabled)
			continue;
		list_for_each(bl, &p->binds)
			if (fn(p, list_entry(bl, struct bind_conf, list), arg, err) != OK)
				return ERR;
	}
	return OK;
}

struct bind_args {
	int nbthread;
	int (*inherited)(const struct sockaddr_storage *addr, int *fds, int max);
};

/* The sockets of one bind line, one per thread (each_bind() callback, arg: struct bind_args). */
static int bind_sockets(struct proxy *p, struct bind_conf *b, void *arg, char **err)
{
	const struct bind_args *a = arg;
	int probe, n, t;

	/* A reload: the previous process's sockets for this address, the same sockets, so the
	 * connections waiting in their backlogs are kept (more of them than workers:
	 * listeners_start() spreads them). */
	n = a->inherited ? a->inherited(&b->addr, b->fds, KEEL_MAX_THREADS) : 0;
	if (n <= 0) {
		/* SO_REUSEPORT would let us share a port with another process that also set it
		 * (another keel, an HAProxy): probe without it first so that a taken port is an
		 * error, not a silent split of the traffic. */
		probe = bind_one(b, false, true, err);
		if (probe < 0)
			return ERR;
		close(probe);
		n = 0;
	}
	for (t = n; t < a->nbthread; t++) {
		b->fds[t] = bind_one(b, true, false, err);
		if (b->fds[t] < 0)
			return ERR;
	}
	note_bound(b);
	return OK;
}

int listeners_bind(int nbthread,
		   int (*inherited)(const struct sockaddr_storage *addr, int *fds, int max),
		   char **err)
{
	struct bind_args a = {.nbthread = nbthread, .inherited = inherited};

	return each_bind(bind_sockets, &a, err);
}

/* Whether a new connection on li would exceed maxconn: the process's (*scope NULL) or li's
 * frontend's (*scope its frontend). */
static bool over_limits(const struct listener *li, struct proxy **scope)
{
	int fe_max = li->fe->maxconn ? li->fe->maxconn : global.maxconn;

	*scope = NULL;
	if (atomic_load_explicit(&keel_actconn, memory_order_relaxed) >= global.maxconn)
		return true;
	*scope = li->fe;
	return atomic_load_explicit(&li->fe->feconn, memory_order_relaxed) >= fe_max;
}

/* Whether a connection waits in li's backlog (accept() would take it). */
static bool pending(const struct listener *li)
{
	struct pollfd p = {.fd = li->h.fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1;
}

static void accept_some(struct listener *li)
{
	int n;

	for (n = 0; n < ACCEPT_BATCH; n++) {
		union sockaddr_u addr;
		socklen_t alen = sizeof(addr);
		struct proxy *scope;
		int fd;

		if (this_worker->stopping)
			return;
		if (over_limits(li, &scope)) {
			/* maxconn reached: when a client waits, make room by closing a connection
			 * that only waits (an idle keep-alive one, else the oldest incomplete
			 * head), one per connection accepted. The loop checks the limits again:
			 * another thread may have taken the slot. */
			int r;

			if (!pending(li))
				return; /* the next client raises an edge */
			r = session_reclaim(scope, 1);
			if (r > 0)
				continue;
			/* Nothing to close here: leave connections in the kernel's backlog, and
			 * ask the other workers to close one of theirs. A connection not read
			 * yet may be closable once read: look again soon. */
			if (!r)
				session_reclaim_ask(scope);
			li->paused = true;
			if (!timer_armed(&proxy_thread->resume))
				timer_arm(&proxy_thread->resume,
					  now_us + (r == AGAIN ? 0 : RESUME_DELAY_US));
			return;
		}
		fd = accept4(li->h.fd, &addr.sa, &alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				static _Atomic uint64_t last;
				uint64_t prev = atomic_load(&last);

				if (now_us - prev > 1000000 && atomic_compare_exchange_strong(&last, &prev, now_us))
					keel_log(LOG_LVL_ALERT, "accept: %s; pausing accepts (raise ulimit-n or lower maxconn)",
						 strerror(errno));
				li->paused = true;
				if (!timer_armed(&proxy_thread->resume))
					timer_arm(&proxy_thread->resume, now_us + 5 * RESUME_DELAY_US);
			}
			return;
		}
		li->bind->mux->accept(li, fd, &addr);
	}
	/* More may be pending and the edge will not fire again: continue after this iteration. */
	li->paused = true;
	if (!timer_armed(&proxy_thread->resume))
		timer_arm(&proxy_thread->resume, now_us);
}

static void listener_cb(struct fdh *h, uint32_t events)
{
	(void)events;
	accept_some(container_of(h, struct listener, h));
}

static void resume_cb(struct timer *t)
{
	struct list *l;

	(void)t;
	list_for_each(l, &proxy_thread->listeners) {
		struct listener *li = list_entry(l, struct listener, list);

		if (li->paused && li->h.fd >= 0) {
			li->paused = false;
			accept_some(li);
		}
	}
}

static int add_listener(struct proxy *p, struct bind_conf *b, int slot, char **err)
{
	struct listener *li = calloc(1, sizeof(*li));

	if (!li) {
		*err = strfmt("out of memory");
		return ERR;
	}
	li->h.cb = listener_cb;
	li->fe = p;
	li->bind = b;
	if (loop_add(&li->h, b->fds[slot]) != OK) {
		*err = strfmt("cannot register %s with epoll: %s", b->str, strerror(errno));
		free(li);
		return ERR;
	}
	b->fds[slot] = -1; /* owned by the listener now */
	list_add_tail(&proxy_thread->listeners, &li->list);
	return OK;
}

int listeners_fds(int *fds, int max)
{
	int i;

	for (i = 0; i < nbound && i < max; i++)
		fds[i] = bound[i];
	return nbound;
}

/* This worker's listeners for one bind line (each_bind() callback). */
static int start_bind(struct proxy *p, struct bind_conf *b, void *arg, char **err)
{
	int t;

	if (add_listener(p, b, this_worker->id, err) != OK)
		return ERR;
	/* Sockets inherited beyond nbthread (a reload with fewer threads): closing one would reset
	 * the connections in its backlog, so they are served too. */
	for (t = this_worker->id + global.nbthread; t < KEEL_MAX_THREADS; t += global.nbthread)
		if (b->fds[t] >= 0 && add_listener(p, b, t, err) != OK)
			return ERR;
	return OK;
}

/* How well a socket bound to b matches a connection made to local: 0 not at all, 1 as the
 * wildcard address of local's port, 2 exactly. */
static int bind_match(const struct sockaddr_storage *b, const struct sockaddr_storage *local)
{
	if (b->ss_family != local->ss_family)
		return 0;
	if (b->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)b, *y = (const void *)local;

		if (x->sin_port != y->sin_port)
			return 0;
		return x->sin_addr.s_addr == y->sin_addr.s_addr ? 2 : x->sin_addr.s_addr == htonl(INADDR_ANY);
	}
	if (b->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)b, *y = (const void *)local;

		if (x->sin6_port != y->sin6_port)
			return 0;
		return !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr))
			   ? 2
			   : IN6_IS_ADDR_UNSPECIFIED(&x->sin6_addr);
	}
	return 0;
}

struct listener *listener_for(const struct sockaddr_storage *local)
{
	struct listener *best = NULL;
	int score = 0;
	struct list *l;

	list_for_each(l, &proxy_thread->listeners) {
		struct listener *li = list_entry(l, struct listener, list);
		int m = bind_match(&li->bind->addr, local);

		if (m > score) {
			best = li;
			score = m;
		}
	}
	return best;
}

int listeners_start(char **err)
{
	timer_init(&proxy_thread->resume, resume_cb);
	return each_bind(start_bind, NULL, err);
}

void listeners_stop(void)
{
	struct list *l;

	/* The listener objects stay in the list (freed with the thread context): an event for
	 * them may still be pending in this iteration. */
	list_for_each(l, &proxy_thread->listeners) {
		struct listener *li = list_entry(l, struct listener, list);

		/* After a reload the new process holds the same sockets. */
		loop_forget(&li->h);
		loop_close(&li->h);
	}
	timer_disarm(&proxy_thread->resume);
}
