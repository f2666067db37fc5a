/* The raw TCP transport: recv(2), send(2) and splice(2) on the connection's socket. A short read
 * or write proves the socket drained or full (edge-triggered epoll then says when that
 * changes), except that a read short because the peer half-closed raises no new edge: the
 * reader goes on until the EOF. */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>

#include <keel/common.h>
#include <keel/conn.h>
#include <keel/pipe.h>

static ssize_t raw_recv(struct conn *c, void *buf, size_t len)
{
	ssize_t n = recv(c->h.fd, buf, len, 0);

	if (n > 0) {
		if ((size_t)n < len && !(c->flags & CF_RDHUP))
			c->flags &= (uint16_t)~CF_RD_READY;
		return n;
	}
	c->flags &= (uint16_t)~CF_RD_READY;
	if (n == 0) {
		c->flags |= CF_EOF;
		return ERR;
	}
	if (errno == EAGAIN)
		return 0;
	if (errno == EINTR) {
		c->flags |= CF_RD_READY;
		return 0;
	}
	c->flags |= CF_ERROR;
	return ERR;
}

/* What a write that moved nothing means: a full socket or an interrupted call (0: try later),
 * or a failure (ERR). */
static ssize_t raw_write_failed(struct conn *c, ssize_t n)
{
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (errno == EAGAIN)
			c->flags &= (uint16_t)~CF_WR_READY;
		return 0;
	}
	return ERR;
}

static ssize_t raw_send(struct conn *c, const void *buf, size_t len)
{
	ssize_t n = send(c->h.fd, buf, len, MSG_NOSIGNAL);

	if (n > 0) {
		if ((size_t)n < len)
			c->flags &= (uint16_t)~CF_WR_READY;
		return n;
	}
	return raw_write_failed(c, n);
}

static ssize_t raw_splice_in(struct conn *c, struct kpipe *p, size_t len)
{
	ssize_t n = splice(c->h.fd, NULL, p->wr, NULL, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

	if (n > 0)
		return n;
	if (n == 0) {
		c->flags &= (uint16_t)~CF_RD_READY;
		c->flags |= CF_EOF;
		return ERR;
	}
	if (errno == EAGAIN) {
		/* Either the socket is empty or the pipe is full (it counts pages, not bytes): only
		 * with an empty pipe does EAGAIN prove the socket drained. Otherwise the next
		 * attempt, once the pipe has been emptied, tells. */
		if (!p->len)
			c->flags &= (uint16_t)~CF_RD_READY;
		return 0;
	}
	if (errno == EINTR)
		return 0;
	c->flags |= CF_ERROR;
	return ERR;
}

/* A short splice to the socket means it is full: the kernel stops only when the pipe is empty,
 * and the caller asks for exactly what the pipe holds. */
static ssize_t raw_splice_out(struct conn *c, struct kpipe *p, size_t len)
{
	ssize_t n = splice(p->rd, NULL, c->h.fd, NULL, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

	if (n > 0) {
		if ((size_t)n < len)
			c->flags &= (uint16_t)~CF_WR_READY;
		return n;
	}
	return raw_write_failed(c, n);
}

static int raw_peek(struct conn *c)
{
	ssize_t n = recv(c->h.fd, &(char){0}, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n > 0)
		return 1;
	if (n == 0) {
		c->flags |= CF_EOF;
		return ERR;
	}
	return 0;
}

static void raw_shutw(struct conn *c)
{
	shutdown(c->h.fd, SHUT_WR);
	c->flags |= CF_SHUTW;
}

const struct xprt_ops xprt_raw = {
	.name = "raw",
	.recv = raw_recv,
	.send = raw_send,
	.splice_in = raw_splice_in,
	.splice_out = raw_splice_out,
	.peek = raw_peek,
	.shutw = raw_shutw,
	.movable = true,
};
