/* Sessions: client connections, whatever their mux. A session is set up when its socket is
 * accepted (by its mux: session_init()) and ends with it (session_free()); this file keeps the
 * counts that limit connections (maxconn) and the thread's list of sessions, which the soft and
 * hard stops walk. What a session carries, requests, is the mux's and the streams' business. */
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <keel/backend.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/conn.h>
#include <keel/connpass.h>
#include <keel/listener-t.h>
#include <keel/loop.h>
#include <keel/mux-t.h>
#include <keel/proxy-t.h>
#include <keel/session.h>
#include <keel/timer.h>
#include <keel/worker.h>

atomic_int keel_actconn;

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
	if (conn_init(&sess->cli, fd, li->bind->xprt, cb) != OK)
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

void session_thread_init(void)
{
	list_init(&proxy_thread->sessions);
	timer_init(&proxy_thread->connpass_retry, connpass_retry_cb);
}
