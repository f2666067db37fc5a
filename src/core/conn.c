/* Connections (include/keel/conn.h): set-up, the epoll events, closing. */
#include <errno.h>
#include <sys/socket.h>

#include <keel/common.h>
#include <keel/conn.h>
#include <keel/loop.h>

int conn_init(struct conn *c, int fd, const struct xprt_ops *x, void *conf,
	      void (*cb)(struct fdh *, uint32_t))
{
	c->h.cb = cb;
	c->flags = 0;
	c->xprt = x;
	c->xprt_ctx = NULL;
	list_init(&c->wait);
	c->h.fd = fd;
	if (x->init && x->init(c, conf) != OK)
		return ERR;
	if (loop_add(&c->h, fd) != OK) {
		if (x->close)
			x->close(c);
		return ERR;
	}
	return OK;
}

int conn_connect_error(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->h.fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return errno;
	return err;
}

void conn_close(struct conn *c)
{
	if (c->xprt && c->xprt->close)
		c->xprt->close(c);
	loop_close(&c->h);
}
