/* The active check and agent runner.
 *
 * Each worker thread runs the checks of the servers it owns (global server index % nbthread), so
 * a check object is only ever touched by one thread and needs no lock; results go to health.c,
 * which owns every decision. A server has two tasks, each a connection with one timer:
 *
 *   check: asks health_check_plan() what to do next and when (nothing, the configured check, or a
 *          live-traffic probe of an ejected server), does it, reports through
 *          health_check_result(), asks again;
 *   agent: every agent-inter, reads one line from the agent and reports health_agent_result().
 *
 * The timer holds the next run while a task is idle and the deadline while it runs. Sockets are
 * non-blocking, addresses were resolved at load time, and every run ends (result, timeout, error)
 * with its socket closed and its buffer returned. A connection is only ever opened from a timer
 * callback: events still pending in the current epoll batch for a socket closed in an I/O
 * callback are then ignored (fd == -1) instead of being mistaken for the new socket's.
 *
 * What is sent and how an answer is judged is each kind of check's own business: check-http.c
 * (the HTTP check and the probe), check-tcp.c (tcp-check expect rules), check-agent.c (the agent's
 * answer; the agent is sent agent-send, if set). At most tune.bufsize bytes of an answer are read
 * (16 KB by default): a body is matched on what fits (see chk_http_eval()). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <keel/backend.h>
#include <keel/cfg.h>
#include <keel/check.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/conn.h>
#include <keel/global.h>
#include <keel/health.h>
#include <keel/log.h>
#include <keel/loop.h>
#include <keel/pool.h>
#include <keel/proxy.h>
#include <keel/server.h>
#include <keel/ssl.h>
#include <keel/timer.h>
#include <keel/worker.h>

#define AGENT_MAX_LINE 1024 /* longest agent answer read */
#define FIRST_SPREAD_MS 500 /* the first runs are spread over this, by server index */

/* A task's states. IDLE -> CONNECT (timer: run) -> SEND -> RECV -> IDLE (result). tcp-check
 * steps loop SEND/RECV, and go through NEXT (a connect step: the new socket is opened from the
 * timer). Any state -> IDLE on an error or a deadline. t->st changes only through task_set_st(),
 * which checks each change against task_next[] (the next states of each, and who takes them). */
enum task_st {
	TS_IDLE = 0, /* timer: the next run */
	TS_CONNECT,  /* connect() in progress; timer: connect deadline */
	TS_SEND,     /* writing; timer: deadline */
	TS_RECV,     /* reading the answer; timer: deadline */
	TS_NEXT,     /* tcp-check: timer (now) opens the next connection */
};

struct chk_srv;

struct chk_task {
	struct conn c;      /* raw TCP, or TLS for check-ssl (and servers with ssl) */
	struct timer timer;
	struct chk_srv *cs;
	bool is_agent;
	enum task_st st;
	enum chk_plan plan; /* check task: the action of the next (or current) run */
	uint64_t t_start;   /* us */
	uint64_t conn_deadline, deadline;
	uint32_t conn_ms; /* the connect limit, for the reason */
	const char *out;  /* bytes to send */
	uint32_t outlen, outoff;
	char *buf; /* received bytes (NUL-terminated), a loop buffer during a run */
	uint32_t len, cap;
	int step; /* tcp-check: the step being run */
};

struct chk_srv {
	struct server *srv; /* NULL until the slot holds a published server */
	struct proxy *be;   /* the slot: be->srv[slot] */
	int slot;
	bool stopped;       /* the server was deleted: its tasks are closed */
	struct chk_task chk, agent;
	char *req, *probe; /* the check and probe requests, built once */
	uint32_t reqlen, probelen;
};

static __thread struct chk_srv *tl_cs;
static __thread int tl_ncs;
static __thread struct timer tl_scan;      /* picks up added servers, stops deleted ones */
static __thread unsigned tl_scan_changes; /* server_changes at the last pool purge */

#define SCAN_MS 200

static void fmt(char *dst, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *dst, size_t n, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(dst, n, f, ap); /* reasons are cut at their buffer's size on purpose */
	va_end(ap);
}

/* ---- states ----
 *
 * For a current state, task_next[] gives the states it may go to (bit 1u << next); a change not
 * listed is a bug. task_init()'s memset starts a task in IDLE. Entries marked "not reached" are
 * not taken in the tests: they stay because the function that takes them is written to work from
 * there, and a missing entry would stop the process (BUG_ON() is always on). */
static const uint8_t task_next[] = {
	/* task_start(), when the timer starts a run, calls task_connect() (CONNECT). IDLE again:
	 * replan() from task_timer_cb() when the plan is to wait and from cs_start(); fail() when
	 * the run cannot start, out of memory in task_start() or no port, socket or epoll
	 * registration or a connect() failing at once in task_connect() (not reached). */
	[TS_IDLE] = 1u << TS_IDLE | 1u << TS_CONNECT,
	/* task_connected(), from on_connect_event(): SEND, or RECV with nothing to send (an agent
	 * without agent-send); its tcp_next() goes to SEND for a first send rule, RECV for a first
	 * expect rule (not reached) and NEXT for a connect rule right after the connect (not
	 * reached). IDLE: fail() on a refused connection, or on the connect deadline from
	 * task_timeout() (not reached); check_done() from task_connected() for a connect-only
	 * check. */
	[TS_CONNECT] = 1u << TS_SEND | 1u << TS_RECV | 1u << TS_NEXT | 1u << TS_IDLE,
	/* task_io_cb() and tcp_next() once all is sent (RECV); fail() on a send error in
	 * task_send() or on the deadline from task_timeout() (IDLE: not reached). */
	[TS_SEND] = 1u << TS_RECV | 1u << TS_IDLE,
	/* tcp_next(): an expect rule after a send rule, or more bytes for the same expect rule
	 * (RECV again); a send rule after an expect or a send rule (SEND: not reached); a connect
	 * rule (NEXT: not reached). IDLE: check_done() on a verdict from http_input() or
	 * tcp_next(), agent_done() on an answer from agent_input(), fail() on the deadline from
	 * task_timeout(). */
	[TS_RECV] = 1u << TS_RECV | 1u << TS_SEND | 1u << TS_NEXT | 1u << TS_IDLE,
	/* task_timer_cb() calls task_connect() (CONNECT), which fail()s when it cannot open the
	 * connection (IDLE); both not reached. */
	[TS_NEXT] = 1u << TS_CONNECT | 1u << TS_IDLE,
};

static void task_set_st(struct chk_task *t, enum task_st to)
{
	BUG_ON(!(task_next[t->st] & (1u << to)));
	t->st = to;
}

/* ---- addresses ---- */

/* Where a run connects: the agent address; the server's own address for a probe (it stands for
 * live traffic); the check address and port otherwise. port overrides (tcp-check connect port).
 * Returns the address length, 0 when there is no port to connect to. */
static socklen_t target(const struct chk_task *t, int port, struct sockaddr_storage *ss)
{
	const struct server *s = t->cs->srv;
	const struct chk_srv_conf *k = &s->chk;
	struct sockaddr_storage sa; /* the published address ("set server addr") */
	socklen_t len, salen;
	bool from_client;

	server_addr(s, &sa, &salen, &from_client);
	if (t->is_agent) {
		*ss = k->has_agent_addr ? k->agent_addr : k->has_addr ? k->addr : sa;
		len = k->has_agent_addr ? k->agent_addrlen : k->has_addr ? k->addrlen : salen;
		port = port		   ? port
		       : k->agent_port	   ? k->agent_port
		       : k->has_agent_addr ? sockaddr_port(&k->agent_addr)
					   : 0;
	} else if (t->plan == CHK_PLAN_PROBE) {
		*ss = sa;
		len = salen;
		port = port ? port : from_client ? k->port : sockaddr_port(&sa);
	} else {
		*ss = k->has_addr ? k->addr : sa;
		len = k->has_addr ? k->addrlen : salen;
		port = port ? port : k->port ? k->port : sockaddr_port(ss);
		if (!port && !from_client)
			port = sockaddr_port(&sa);
	}
	if (!port)
		return 0;
	sockaddr_set_port(ss, port);
	return len;
}

/* ---- tasks ---- */

static void task_timer_cb(struct timer *tm);
static void task_io_cb(struct fdh *h, uint32_t events);
static void tcp_next(struct chk_task *t);

static const char *errtext(int e, char *buf, size_t n)
{
	switch (e) {
	case ECONNREFUSED:
		return "connection refused";
	case ECONNRESET:
		return "connection reset";
	case EHOSTUNREACH:
		return "host unreachable";
	case ENETUNREACH:
		return "network unreachable";
	case ETIMEDOUT:
		return "connection timed out";
	case EADDRNOTAVAIL:
		return "no local address or port available";
	default:
		snprintf(buf, n, "socket error %d (%s)", e,
			 strerrorname_np(e) ? strerrorname_np(e) : "?");
		return buf;
	}
}

static const struct proxy *be_of(const struct chk_task *t)
{
	return t->cs->srv->be;
}

static void task_close(struct chk_task *t)
{
	conn_close(&t->c);
	if (t->buf) {
		pool_free(&tl->buf_pool, t->buf);
		t->buf = NULL;
	}
	t->len = t->cap = 0;
	t->out = NULL;
	t->outlen = t->outoff = 0;
}

/* Asks health.c what to do next and when; the timer runs it. */
static void replan(struct chk_task *t)
{
	uint32_t delay = 0;

	t->plan = health_check_plan(t->cs->srv, &delay);
	task_set_st(t, TS_IDLE);
	timer_arm(&t->timer, now_us + (uint64_t)MAX(delay, 1) * 1000);
}

static void check_done(struct chk_task *t, struct chk_result *r)
{
	r->dur_ms = (uint32_t)((now_us - t->t_start) / 1000);
	task_close(t);
	timer_disarm(&t->timer);
	health_check_result(t->cs->srv, r);
	replan(t);
}

static void agent_done(struct chk_task *t, struct agent_result *ar)
{
	task_close(t);
	task_set_st(t, TS_IDLE);
	health_agent_result(t->cs->srv, ar);
	timer_arm(&t->timer, now_us + (uint64_t)MAX(t->cs->srv->chk.agent_inter, 1) * 1000);
}

/* Ends a run on a failure before any answer (connect, socket, timeout). */
static void fail(struct chk_task *t, enum chk_code code, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct chk_task *t, enum chk_code code, const char *f, ...)
{
	char why[CHK_REASON_LEN];
	va_list ap;

	va_start(ap, f);
	vsnprintf(why, sizeof(why), f, ap);
	va_end(ap);
	if (t->is_agent) {
		struct agent_result ar = {.ok = false, .weight_pct = -1, .word = AGENT_NONE};

		fmt(ar.reason, sizeof(ar.reason), "%s", why);
		agent_done(t, &ar);
	} else {
		struct chk_result r = {.ok = false, .code = code};

		fmt(r.reason, sizeof(r.reason), "%s", why);
		check_done(t, &r);
	}
}

/* TLS for a check when the server asks for it (check-ssl), or when it speaks TLS and the check
 * goes to its own port (as HAProxy); never for the agent. */
static const struct xprt_ops *task_xprt(const struct chk_task *t, int port)
{
	const struct server *s = t->cs->srv;
	const struct ssl_server *ss = s->xprt_conf;

	if (t->is_agent || !ss || !ss->ctx)
		return &xprt_raw;
	if (ss->check_ssl)
		return &xprt_ssl_srv;
	if (ss->enabled && (t->plan == CHK_PLAN_PROBE || (!port && !s->chk.port && !s->chk.has_addr)))
		return &xprt_ssl_srv;
	return &xprt_raw;
}

/* Opens a connection (from a timer callback only, see the top of the file). */
static void task_connect(struct chk_task *t, int port)
{
	const struct proxy *be = be_of(t);
	struct sockaddr_storage ss;
	socklen_t len = target(t, port, &ss);
	char eb[64];
	int fd, one = 1;

	if (!len) {
		fail(t, CHK_C_SOCKERR, "no port to connect to");
		return;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		fail(t, CHK_C_SOCKERR, "cannot create a socket: %s",
		     errtext(errno, eb, sizeof(eb)));
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (conn_init(&t->c, fd, task_xprt(t, port), t->cs->srv->xprt_conf, task_io_cb) != OK) {
		t->c.h.fd = -1;
		t->c.xprt = NULL;
		close(fd);
		fail(t, CHK_C_SOCKERR, "connection set-up failed");
		return;
	}
	if (t->c.xprt == &xprt_ssl_srv)
		ssl_srv_set_name(&t->c, ((const struct ssl_server *)t->cs->srv->xprt_conf)->check_sni);
	if (connect(fd, (struct sockaddr *)&ss, len) == -1 && errno != EINPROGRESS) {
		int e = errno;

		task_close(t);
		fail(t, CHK_C_L4CON, "%s", errtext(e, eb, sizeof(eb)));
		return;
	}
	t->conn_ms = MIN(be->to.connect, be->to.check);
	t->conn_deadline = now_us + (uint64_t)t->conn_ms * 1000;
	task_set_st(t, TS_CONNECT);
	timer_arm(&t->timer, MIN(t->conn_deadline, t->deadline));
}

/* Starts a run: the timer fired in TS_IDLE. */
static void task_start(struct chk_task *t)
{
	const struct proxy *be = be_of(t);

	t->t_start = now_us;
	t->deadline = now_us + (uint64_t)be->to.check * 1000;
	t->buf = pool_alloc(&tl->buf_pool);
	if (!t->buf) {
		fail(t, CHK_C_SOCKERR, "out of memory");
		return;
	}
	t->len = 0;
	t->cap = t->is_agent ? MIN(tl->bufsize, AGENT_MAX_LINE) - 1 : tl->bufsize - 1;
	t->step = 0;
	t->out = NULL;
	t->outlen = t->outoff = 0;
	if (!t->is_agent && t->plan == CHK_PLAN_CHECK && be->chk.kind == CHK_KIND_TCP &&
	    (be->opts & PO_TCPCHK) && be->chk.nsteps) {
		const struct tcpchk_step *st = &be->chk.steps[0];

		/* A first rule that is not a connect has an implicit one before it. */
		if (st->type == TCPCHK_CONNECT)
			t->step = 1;
		task_connect(t, st->type == TCPCHK_CONNECT ? st->port : 0);
		return;
	}
	task_connect(t, 0);
}

/* The connection is up: what to send. */
static void task_connected(struct chk_task *t)
{
	const struct proxy *be = be_of(t);
	struct chk_srv *cs = t->cs;

	timer_arm(&t->timer, t->deadline);
	if (t->is_agent) {
		const char *s = cs->srv->chk.agent_send;

		t->out = s;
		t->outlen = s ? (uint32_t)strlen(s) : 0;
	} else if (t->plan == CHK_PLAN_PROBE) {
		t->out = cs->probe;
		t->outlen = cs->probelen;
	} else if (be->chk.kind == CHK_KIND_HTTP) {
		t->out = cs->req;
		t->outlen = cs->reqlen;
	} else if ((be->opts & PO_TCPCHK) && be->chk.nsteps) {
		tcp_next(t);
		return;
	} else {
		struct chk_result r = {.ok = true, .code = CHK_C_L4OK};

		fmt(r.reason, sizeof(r.reason), "connected");
		check_done(t, &r);
		return;
	}
	t->outoff = 0;
	task_set_st(t, t->outlen ? TS_SEND : TS_RECV);
}

/* The connect's outcome, then the transport's handshake (TLS), both in TS_CONNECT. */
static void on_connect_event(struct chk_task *t, uint32_t events)
{
	socklen_t el = sizeof(int);
	char eb[64];
	int err = 0, r;

	if (!(t->c.flags & CF_CONNECTED)) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(t->c.h.fd, SOL_SOCKET, SO_ERROR, &err, &el) == -1)
			err = errno;
		if (!err && (events & (EPOLLERR | EPOLLHUP)))
			err = ECONNRESET;
		if (err) {
			fail(t, CHK_C_L4CON, "%s", errtext(err, eb, sizeof(eb)));
			return;
		}
		t->c.flags |= CF_CONNECTED;
	}
	r = conn_handshake(&t->c);
	if (r == AGAIN)
		return;
	if (r != OK) {
		fail(t, CHK_C_L6RSP, "TLS handshake failed%s%s",
		     t->c.flags & CF_EOF ? ": connection closed" : ": ",
		     t->c.flags & CF_EOF ? "" : ssl_errstr());
		return;
	}
	task_connected(t);
}

/* Writes what is left of t->out. Returns OK when all is sent, AGAIN, or ERR (run ended). */
static int task_send(struct chk_task *t)
{
	char eb[64];

	while (t->outoff < t->outlen) {
		ssize_t n;

		errno = 0;
		n = conn_send(&t->c, t->out + t->outoff, t->outlen - t->outoff);
		if (n > 0) {
			t->outoff += (uint32_t)n;
			continue;
		}
		if (n == 0)
			return AGAIN;
		fail(t, t->is_agent ? CHK_C_AGENT : CHK_C_L7RSP, "%s while sending%s",
		     errtext(errno ? errno : EPIPE, eb, sizeof(eb)),
		     t->is_agent ? " to the agent" : " the request");
		return ERR;
	}
	return OK;
}

/* Reads until EAGAIN, the end or a full buffer. Returns the fin state (CHK_FIN_*). *err is set
 * on a socket error (which also ends the input). */
static int task_recv(struct chk_task *t, int *err)
{
	*err = 0;
	for (;;) {
		ssize_t n;

		if (t->len >= t->cap)
			return CHK_FIN_FULL;
		errno = 0;
		n = conn_recv(&t->c, t->buf + t->len, t->cap - t->len);
		if (n > 0) {
			t->len += (uint32_t)n;
			t->buf[t->len] = '\0';
			continue;
		}
		if (n == 0)
			return CHK_FIN_NO;
		if (t->c.flags & CF_ERROR)
			*err = errno ? errno : ECONNRESET;
		return CHK_FIN_EOF;
	}
}

static void http_input(struct chk_task *t, int fin, int err)
{
	struct chk_result r;
	char eb[64];

	memset(&r, 0, sizeof(r));
	if (chk_http_eval(be_of(t), t->plan == CHK_PLAN_PROBE, t->buf, t->len, fin, &r) == AGAIN)
		return;
	if (!r.ok && err && !t->len)
		fmt(r.reason, sizeof(r.reason), "%s before a response",
		    errtext(err, eb, sizeof(eb)));
	check_done(t, &r);
}

static void agent_input(struct chk_task *t, int fin, int err)
{
	struct agent_result ar;
	char eb[64];

	if (!memchr(t->buf, '\n', t->len) && fin == CHK_FIN_NO)
		return;
	if (!t->len) {
		fail(t, CHK_C_AGENT, "agent %s without an answer",
		     err ? errtext(err, eb, sizeof(eb)) : "closed the connection");
		return;
	}
	chk_agent_parse(t->buf, t->len, &ar);
	agent_done(t, &ar);
}

/* tcp-check: runs the steps from t->step until one has to wait. */
static void tcp_next(struct chk_task *t)
{
	const struct chk_proxy_conf *k = &be_of(t)->chk;

	while (t->step < k->nsteps) {
		const struct tcpchk_step *st = &k->steps[t->step];
		struct chk_result r;
		int rc, fin, err;

		switch (st->type) {
		case TCPCHK_CONNECT:
			/* A new connection: opened from the timer, not from this callback. */
			conn_close(&t->c);
			t->len = 0;
			task_set_st(t, TS_NEXT);
			timer_arm(&t->timer, now_us);
			return;
		case TCPCHK_SEND:
			if (t->st != TS_SEND) {
				t->out = st->data;
				t->outlen = st->len;
				t->outoff = 0;
				t->len =
				    0; /* a new exchange: earlier bytes answered earlier rules */
				task_set_st(t, TS_SEND);
			}
			rc = task_send(t);
			if (rc != OK)
				return;
			task_set_st(t, TS_RECV);
			t->step++;
			break;
		case TCPCHK_EXPECT:
			task_set_st(t, TS_RECV);
			fin = task_recv(t, &err);
			memset(&r, 0, sizeof(r));
			rc = chk_tcp_expect(st, t->step + 1, t->buf, t->len, fin, &r);
			if (rc == AGAIN)
				return;
			if (rc == ERR) {
				check_done(t, &r);
				return;
			}
			t->step++;
			break;
		}
	}
	{
		struct chk_result r = {.ok = true, .code = CHK_C_L7OK};

		fmt(r.reason, sizeof(r.reason), "tcp-check passed (%d rules)", k->nsteps);
		check_done(t, &r);
	}
}

/* Input, output or an error on the task's socket. */
static void task_io_cb(struct fdh *h, uint32_t events)
{
	struct chk_task *t = container_of(h, struct chk_task, c.h);
	const struct proxy *be = be_of(t);
	int fin, err;

	conn_events(&t->c, events);
	if (t->st == TS_CONNECT) {
		on_connect_event(t, events);
		if (t->st == TS_IDLE || t->st == TS_NEXT)
			return;
		/* the answer may already be there: fall through to sending, then reading */
	}
	if (!t->is_agent && t->plan == CHK_PLAN_CHECK && be->chk.kind == CHK_KIND_TCP) {
		/* tcp-check rules (connect-only checks ended in task_connected()) */
		if (t->st == TS_SEND || t->st == TS_RECV)
			tcp_next(t);
		return;
	}
	if (t->st == TS_SEND) {
		if (task_send(t) != OK)
			return;
		task_set_st(t, TS_RECV);
	}
	if (t->st != TS_RECV)
		return;
	fin = task_recv(t, &err);
	if (t->is_agent)
		agent_input(t, fin, err);
	else
		http_input(t, fin, err);
}

/* The deadline of a run (connect or whole check). */
static void task_timeout(struct chk_task *t)
{
	const struct proxy *be = be_of(t);
	uint32_t ms = be->to.check;

	if (t->st == TS_CONNECT && (t->c.flags & CF_CONNECTED)) {
		fail(t, CHK_C_L6TOUT, "TLS handshake timeout after %u ms",
		     now_us >= t->conn_deadline ? t->conn_ms : ms);
		return;
	}
	if (t->st == TS_CONNECT) {
		fail(t, t->is_agent ? CHK_C_AGENT : CHK_C_L4TOUT, "connect timeout after %u ms",
		     now_us >= t->conn_deadline ? t->conn_ms : ms);
		return;
	}
	if (t->is_agent) {
		/* an answer without its newline is still an answer */
		if (t->len)
			agent_input(t, CHK_FIN_EOF, 0);
		else
			fail(t, CHK_C_AGENT, "timeout after %u ms waiting for the agent", ms);
		return;
	}
	if (t->st == TS_SEND)
		fail(t, CHK_C_L7TOUT, "timeout after %u ms sending the request", ms);
	else if (t->plan == CHK_PLAN_CHECK && be->chk.kind == CHK_KIND_TCP &&
		 t->step < be->chk.nsteps && be->chk.steps[t->step].type == TCPCHK_EXPECT) {
		struct chk_result r;

		chk_tcp_timeout(&be->chk.steps[t->step], t->step + 1, t->buf, t->len, ms, &r);
		fail(t, CHK_C_L7TOUT, "%s", r.reason);
	} else
		fail(t, CHK_C_L7TOUT, "timeout after %u ms waiting for the response%s", ms,
		     t->len ? " body" : "");
}

static void task_timer_cb(struct timer *tm)
{
	struct chk_task *t = container_of(tm, struct chk_task, timer);

	switch (t->st) {
	case TS_IDLE:
		/* Soft stop: no new checks (in-flight ones end normally); nor for a deleted server. */
		if (this_worker->stopping || server_deleted(t->cs->srv))
			return;
		if (!t->is_agent && t->plan == CHK_PLAN_IDLE)
			replan(t);
		else
			task_start(t);
		return;
	case TS_NEXT:
		t->step++;
		task_connect(t, be_of(t)->chk.steps[t->step - 1].port);
		return;
	case TS_CONNECT:
	case TS_SEND:
	case TS_RECV:
		task_timeout(t);
		return;
	}
}

/* ---- per thread ---- */

static void task_init(struct chk_task *t, struct chk_srv *cs, bool agent)
{
	memset(t, 0, sizeof(*t));
	t->cs = cs;
	t->is_agent = agent;
	t->c.h.fd = -1;
	t->c.h.cb = task_io_cb;
	timer_init(&t->timer, task_timer_cb);
}

/* The server slots this thread owns, in keel_proxies order: every slot of a backend's capacity,
 * so that a server published later by "add server" already has its owner. */
static int owned_slots(struct chk_srv *out)
{
	struct list *l;
	int idx = 0, n = 0, i;

	list_for_each(l, &keel_proxies)
	{
		struct proxy *p = list_entry(l, struct proxy, list);
		int cap = MAX(p->srv_cap, p->nsrv);

		if (p->disabled || !(p->cap & PR_CAP_BE))
			continue;
		for (i = 0; i < cap; i++, idx++) {
			if (idx % global.nbthread != this_worker->id)
				continue;
			if (out) {
				out[n].be = p;
				out[n].slot = i;
			}
			n++;
		}
	}
	return n;
}

/* Starts the checks of a slot that holds a published server; i spreads the first runs. */
static int cs_start(struct chk_srv *cs, struct server *srv, int i)
{
	uint64_t first = now_us + (uint64_t)(i * 37 % FIRST_SPREAD_MS) * 1000;

	cs->req = chk_http_req(srv, &cs->reqlen);
	cs->probe = chk_probe_req(srv, &cs->probelen);
	if (!cs->req || !cs->probe) {
		free(cs->req);
		free(cs->probe);
		cs->req = cs->probe = NULL;
		return ERR;
	}
	cs->srv = srv;
	replan(&cs->chk);
	timer_arm(&cs->chk.timer, MIN(cs->chk.timer.expire, first));
	if (srv->chk.agent)
		timer_arm(&cs->agent.timer, first);
	return OK;
}

/* This thread's periodic look at its slots: starts the checks of servers added since, stops
 * those of deleted ones, and closes idle connections that must not be reused. */
static void scan_cb(struct timer *t)
{
	unsigned ch = atomic_load_explicit(&server_changes, memory_order_acquire);
	int i;

	if (this_worker->stopping)
		return;
	for (i = 0; i < tl_ncs; i++) {
		struct chk_srv *cs = &tl_cs[i];

		if (!cs->srv) {
			struct server *srv;

			if (cs->slot >= server_count(cs->be))
				continue;
			srv = cs->be->srv[cs->slot];
			if (srv->hl && !server_deleted(srv) && cs_start(cs, srv, i) != OK)
				keel_log(LOG_LVL_ERR, "server '%s/%s': cannot start its checks: out of memory",
					 cs->be->name, srv->name);
		} else if (!cs->stopped && server_deleted(cs->srv)) {
			task_close(&cs->chk);
			task_close(&cs->agent);
			timer_disarm(&cs->chk.timer);
			timer_disarm(&cs->agent.timer);
			cs->stopped = true;
		}
	}
	if (ch != tl_scan_changes) {
		tl_scan_changes = ch;
		backend_purge_stale();
	}
	timer_arm(t, now_us + SCAN_MS * 1000);
}

int check_thread_start(char **err)
{
	int i, n = owned_slots(NULL);

	tl_ncs = 0;
	tl_scan_changes = atomic_load(&server_changes);
	timer_init(&tl_scan, scan_cb);
	timer_arm(&tl_scan, now_us + SCAN_MS * 1000);
	if (!n)
		return OK;
	tl_cs = calloc((size_t)n, sizeof(*tl_cs));
	if (!tl_cs)
		goto oom;
	owned_slots(tl_cs);
	tl_ncs = n;
	for (i = 0; i < n; i++) {
		task_init(&tl_cs[i].chk, &tl_cs[i], false);
		task_init(&tl_cs[i].agent, &tl_cs[i], true);
	}
	for (i = 0; i < n; i++) {
		struct chk_srv *cs = &tl_cs[i];
		struct server *srv;

		/* The first runs are spread so that a large farm is not checked all at once. */
		if (cs->slot >= server_count(cs->be))
			continue;
		srv = cs->be->srv[cs->slot];
		if (srv->hl && cs_start(cs, srv, i) != OK)
			goto oom;
	}
	return OK;
oom:
	check_thread_stop();
	*err = strfmt("cannot allocate the health checks: out of memory");
	return ERR;
}

void check_thread_stop(void)
{
	int i;

	timer_disarm(&tl_scan);
	for (i = 0; i < tl_ncs; i++) {
		struct chk_srv *cs = &tl_cs[i];

		task_close(&cs->chk);
		task_close(&cs->agent);
		timer_disarm(&cs->chk.timer);
		timer_disarm(&cs->agent.timer);
		free(cs->req);
		free(cs->probe);
	}
	free(tl_cs);
	tl_cs = NULL;
	tl_ncs = 0;
}
