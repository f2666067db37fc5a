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
#include <keel/listener-t.h>
#include <keel/loop.h>
#include <keel/mux-t.h>
#include <keel/proxy-t.h>
#include <keel/session.h>
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

void session_stop_all(bool hard)
{
	struct list *l, *tmp;

	list_for_each_safe(l, tmp, &proxy_thread->sessions) {
		struct session *sess = list_entry(l, struct session, list);

		sess->mux->stop(sess, hard);
	}
	/* The loop ends once the last session is gone (session_free()). */
	if (hard || proxy_thread->nsess == 0)
		this_worker->loop.quit = true;
}
