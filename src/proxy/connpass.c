/* Idle client connections handed over at a reload (docs/internals/reload.md, "Idle
 * connections").
 *
 * Between two requests, a keep-alive connection is nothing but its socket: no byte of the next
 * request has been read and no response is owed. Such a socket can change processes. The old
 * process sends it to the new one over a unix socket pair (SCM_RIGHTS); the new one serves the
 * next request on it as if it had accepted the connection itself. The client sees nothing, so
 * no request of its can race a close: closing idle connections, even after a grace, fails the
 * request a client sends at that instant, and a client that does not retry (a script, an API
 * client) reports the error.
 *
 * Messages: a uint32_t count, then that many descriptors (1..CONNPASS_BATCH) in SCM_RIGHTS.
 * SOCK_SEQPACKET keeps each message whole, so every worker of the new process can read the
 * same socket: whichever reads a message takes its connections. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <keel/common.h>
#include <keel/connpass.h>
#include <keel/listener.h>
#include <keel/log.h>
#include <keel/loop.h>
#include <keel/mux-t.h>
#include <keel/session.h>
#include <keel/worker.h>

/* ---- the old process ---- */

static atomic_int out_fd = -1;
static _Atomic uint64_t npassed;

void connpass_set_out(int fd)
{
	atomic_store(&out_fd, fd);
}

bool connpass_ready(void)
{
	return atomic_load_explicit(&out_fd, memory_order_relaxed) >= 0;
}

int connpass_send(const int *fds, int n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * CONNPASS_BATCH)];
	uint32_t count = (uint32_t)n;
	struct iovec iov = {&count, sizeof(count)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf};
	struct cmsghdr *c;
	int fd = atomic_load(&out_fd);

	if (fd < 0 || n < 1 || n > CONNPASS_BATCH)
		return ERR;
	memset(cbuf, 0, sizeof(cbuf));
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
	for (;;) {
		if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof(count)) {
			atomic_fetch_add_explicit(&npassed, (uint64_t)n, memory_order_relaxed);
			return OK;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS || errno == ENOMEM)
			return AGAIN;
		break;
	}
	/* The new process is gone (or the descriptors cannot be passed, ETOOMANYREFS): the
	 * connections left close as at a plain stop. One thread closes the socket. */
	if (atomic_compare_exchange_strong(&out_fd, &fd, -1)) {
		keel_log(LOG_LVL_WARNING, "reload: cannot hand idle connections over (%s); closing them instead",
			 strerror(errno));
		close(fd);
	}
	return ERR;
}

uint64_t connpass_count(void)
{
	return atomic_load(&npassed);
}

/* ---- the new process ---- */

static int in_fd = -1;
static atomic_int in_users; /* workers not done with in_fd: the last one closes it */
static __thread struct fdh in_h;

/* Serves a connection received from the old process as the listener it would have been
 * accepted on; without one (the new configuration no longer listens there), closes it. */
static void adopt(int fd)
{
	struct sockaddr_storage local;
	union sockaddr_u peer;
	socklen_t llen = sizeof(local), plen = sizeof(peer);
	struct listener *li;
	struct session *sess;

	if (getsockname(fd, (struct sockaddr *)&local, &llen) == -1 ||
	    getpeername(fd, &peer.sa, &plen) == -1 || !(li = listener_for(&local))) {
		close(fd);
		return;
	}
	sess = li->bind->mux->accept(li, fd, &peer);
	/* Reloaded again meanwhile: on to the newest process. */
	if (sess && this_worker->stopping)
		session_stop(sess);
}

static void in_done(void)
{
	loop_forget(&in_h);
	in_h.fd = -1;
	if (atomic_fetch_sub(&in_users, 1) == 1)
		close(in_fd);
}

static void in_cb(struct fdh *h, uint32_t events)
{
	char cbuf[CMSG_SPACE(sizeof(int) * CONNPASS_BATCH)];

	(void)events;
	/* Edge-triggered and shared: read until the socket is empty or closed. */
	while (h->fd >= 0) {
		uint32_t count;
		struct iovec iov = {&count, sizeof(count)};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf)};
		struct cmsghdr *c;
		ssize_t r = recvmsg(h->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) {
			in_done(); /* the old process is gone */
			return;
		}
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			size_t k, cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			for (k = 0; k < cnt; k++) {
				int fd;

				memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
				adopt(fd);
			}
		}
	}
}

void connpass_set_in(int fd, int nworkers)
{
	in_fd = fd;
	atomic_store(&in_users, nworkers);
}

int connpass_thread_start(char **err)
{
	if (in_fd < 0)
		return OK;
	in_h.cb = in_cb;
	if (loop_add(&in_h, in_fd) != OK) {
		*err = strfmt("cannot register the socket of the idle connections passed at a reload: %s", strerror(errno));
		return ERR;
	}
	return OK;
}
