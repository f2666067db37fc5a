/* The TLS transport: OpenSSL on the connection's socket, non-blocking, under the same contract as
 * raw TCP (include/keel/conn.h). What differs, and why:
 * - A short read proves nothing: OpenSSL hands out one record at a time and may hold more
 *   decrypted bytes. Only SSL_ERROR_WANT_READ proves the socket drained, so recv() reads until
 *   the buffer is full or OpenSSL wants the socket.
 * - Reading may need a write (a TLS 1.3 key update answered) and the handshake needs both: when
 *   OpenSSL wants to write, the read side is marked ready again so that the owner's next event
 *   (the socket turning writable) tries again from where it stopped.
 * - A write that OpenSSL could not finish must be repeated with the same bytes: the buffers allow
 *   it (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER: unsent bytes stay in place, maybe moved).
 * - No splice(2): the bytes must be encrypted in user space (kernel TLS is not used yet).
 * - Not movable: the keys are in this process's memory, so a reload cannot pass the connection. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <keel/clock.h>
#include <keel/common.h>
#include <keel/log.h>
#include <keel/conn.h>
#include <keel/list.h>
#include <keel/loop.h>
#include <keel/ssl.h>
#include <keel/worker.h>

static SSL *ssl_new(struct conn *c, SSL_CTX *ctx)
{
	SSL *ssl = SSL_new(ctx);

	if (!ssl)
		return NULL;
	if (!SSL_set_fd(ssl, c->h.fd)) {
		SSL_free(ssl);
		return NULL;
	}
	c->xprt_ctx = ssl;
	return ssl;
}

/* A client connection of a bind line: conf is its struct ssl_bind. */
static int ssl_init(struct conn *c, void *conf)
{
	struct ssl_bind *b = conf;
	SSL *ssl = ssl_new(c, atomic_load(&b->def->ctx));

	if (!ssl)
		return ERR;
	SSL_set_accept_state(ssl);
	return OK;
}

/* A connection to a server: conf is its struct ssl_server. The name to ask for, and the session
 * to resume, come next (ssl_srv_set_name()). */
static int ssl_init_srv(struct conn *c, void *conf)
{
	struct ssl_server *ss = conf;
	SSL *ssl = ssl_new(c, ss->ctx);

	if (!ssl)
		return ERR;
	SSL_set_app_data(ssl, ss);
	SSL_set_connect_state(ssl);
	return OK;
}

/* What an OpenSSL call that did not complete means for c's readiness: AGAIN when it waits for
 * the socket, else ERR with CF_EOF (the peer closed, cleanly or not) or CF_ERROR set. */
static int ssl_wait(struct conn *c, int r)
{
	SSL *ssl = c->xprt_ctx;

	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ:
		c->flags &= (uint16_t)~CF_RD_READY;
		return AGAIN;
	case SSL_ERROR_WANT_WRITE:
		c->flags &= (uint16_t)~CF_WR_READY;
		c->flags |= CF_RD_READY;
		return AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		c->flags |= CF_EOF;
		return ERR;
	case SSL_ERROR_SYSCALL:
		if (errno == EINTR || errno == EAGAIN)
			return AGAIN;
		/* A close without close_notify (SSL_OP_IGNORE_UNEXPECTED_EOF turns it into a clean
		 * end for reads; a reset lands here). */
		c->flags |= CF_ERROR;
		return ERR;
	default:
		c->flags |= CF_ERROR;
		return ERR;
	}
}

/* A client's failed handshake, for the operator (old clients, plain HTTP sent to a TLS port,
 * certificates refused): one line a second at most per worker, with the count of the others. */
static void log_failed_handshake(struct conn *c)
{
	static _Thread_local uint64_t next_us;
	static _Thread_local unsigned more;
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	char addr[INET6_ADDRSTRLEN] = "?";
	unsigned long e = ERR_peek_last_error();
	char why[160] = "connection closed";

	if (now_us < next_us) {
		more++;
		return;
	}
	if (getpeername(c->h.fd, (struct sockaddr *)&peer, &len) == 0)
		inet_ntop(peer.ss_family,
			  peer.ss_family == AF_INET ? (void *)&((struct sockaddr_in *)&peer)->sin_addr
						    : (void *)&((struct sockaddr_in6 *)&peer)->sin6_addr,
			  addr, sizeof(addr));
	if (e)
		ERR_error_string_n(e, why, sizeof(why));
	else if (c->flags & CF_ERROR)
		snprintf(why, sizeof(why), "connection error");
	keel_log(LOG_LVL_WARNING, "TLS handshake with client %s failed: %s%s", addr, why,
		 more ? " (and others in the last second)" : "");
	more = 0;
	next_us = now_us + 1000000;
}

/* A client's first handshake step costs a key exchange and a signature (0.5 to 1.5 ms of CPU):
 * a flood of them would make each loop iteration last long, and the established connections,
 * which need an iteration or two per request, would wait behind them for seconds. So a worker
 * runs at most SSL_HS_PER_ITER of them per iteration. The others wait in a queue, oldest first
 * (new ones go behind as long as it is not empty), and a tasklet gives them their turns at the
 * end of the following iterations: iterations stay short, and no handshake starves. */
#define SSL_HS_PER_ITER 4

static _Thread_local struct list hs_queue;
static _Thread_local struct tasklet hs_pump;
static _Thread_local struct conn *hs_turn; /* the connection the pump is running now */
static _Thread_local uint64_t hs_iter;
static _Thread_local unsigned hs_n;

/* One of this iteration's turns, if any is left. */
static bool hs_take(void)
{
	uint64_t iter = this_worker ? this_worker->loop.iter : 0;

	if (iter != hs_iter) {
		hs_iter = iter;
		hs_n = 0;
	}
	if (hs_n == SSL_HS_PER_ITER)
		return false;
	hs_n++;
	return true;
}

static void hs_pump_cb(struct tasklet *t)
{
	while (!list_empty(&hs_queue) && hs_take()) {
		struct conn *c = list_first(&hs_queue, struct conn, wait);

		list_del(&c->wait);
		c->flags |= CF_RD_READY; /* its ClientHello waits in the socket */
		hs_turn = c;
		c->h.cb(&c->h, 0); /* its owner reads, which runs the handshake */
		hs_turn = NULL;
	}
	if (!list_empty(&hs_queue))
		tasklet_wake(t);
}

/* Whether c may run its first handshake step now; if not, it is queued for its turn. */
static bool hs_budget(struct conn *c)
{
	if (!hs_queue.next) {
		list_init(&hs_queue);
		tasklet_init(&hs_pump, hs_pump_cb);
	}
	if (hs_turn == c)
		return true;
	if (list_empty(&hs_queue) && hs_take())
		return true;
	if (!list_linked(&c->wait))
		list_add_tail(&hs_queue, &c->wait);
	tasklet_wake(&hs_pump);
	return false;
}

static int ssl_handshake(struct conn *c)
{
	SSL *ssl = c->xprt_ctx;
	int r;

	if (SSL_is_init_finished(ssl))
		return OK;
	if (c->xprt == &xprt_ssl && SSL_in_before(ssl) && !hs_budget(c))
		return AGAIN;
	ERR_clear_error();
	r = SSL_do_handshake(ssl);
	if (r == 1)
		return OK;
	r = ssl_wait(c, r);
	if (r == ERR && c->xprt == &xprt_ssl)
		log_failed_handshake(c);
	return r;
}

static ssize_t ssl_recv(struct conn *c, void *buf, size_t len)
{
	SSL *ssl = c->xprt_ctx;
	size_t done = 0, n;
	int r;

	while (done < len) {
		ERR_clear_error();
		r = SSL_read_ex(ssl, (char *)buf + done, len - done, &n);
		if (r == 1) {
			done += n;
			continue;
		}
		r = ssl_wait(c, r);
		if (done)
			break; /* an EOF or an error shows at the next call */
		return r == AGAIN ? 0 : ERR;
	}
	return (ssize_t)done;
}

/* With partial writes on, SSL_write_ex() stops after a record: a short count proves nothing
 * about the socket, so this writes record after record until len is done or OpenSSL wants the
 * socket (only then is it full). */
static ssize_t ssl_send(struct conn *c, const void *buf, size_t len)
{
	SSL *ssl = c->xprt_ctx;
	size_t done = 0, n;
	int r;

	while (done < len) {
		ERR_clear_error();
		r = SSL_write_ex(ssl, (const char *)buf + done, len - done, &n);
		if (r == 1) {
			done += n;
			continue;
		}
		/* A write that needs a read (renegotiation) cannot happen: it is refused. */
		if (SSL_get_error(ssl, r) == SSL_ERROR_WANT_WRITE) {
			c->flags &= (uint16_t)~CF_WR_READY;
			break;
		}
		if (done)
			break; /* the failure shows at the next call */
		return ERR; /* as raw TCP: no flag, the caller decides */
	}
	return (ssize_t)done;
}

/* Application bytes only: records that carry none (a TLS 1.3 session ticket a server sends
 * after its first response) are processed and do not count, so that an idle server
 * connection is not taken for one that sent stray bytes. Before the handshake ends, any byte
 * in the socket counts. */
static int ssl_peek(struct conn *c)
{
	SSL *ssl = c->xprt_ctx;
	size_t n;
	ssize_t r;

	if (!SSL_is_init_finished(ssl)) {
		r = recv(c->h.fd, &(char){0}, 1, MSG_PEEK | MSG_DONTWAIT);
		if (r == 0)
			c->flags |= CF_EOF;
		return r > 0 ? 1 : r == 0 ? ERR : 0;
	}
	ERR_clear_error();
	if (SSL_peek_ex(ssl, &(char){0}, 1, &n) == 1)
		return 1;
	return ssl_wait(c, 0) == AGAIN ? 0 : ERR;
}

static void ssl_shutw(struct conn *c)
{
	SSL *ssl = c->xprt_ctx;

	/* close_notify first, so that the peer tells a complete response from a cut one; one
	 * attempt: the socket is never waited for. */
	if (SSL_is_init_finished(ssl) && !(c->flags & CF_ERROR)) {
		ERR_clear_error();
		SSL_shutdown(ssl);
	}
	shutdown(c->h.fd, SHUT_WR);
	c->flags |= CF_SHUTW;
}

static void ssl_close(struct conn *c)
{
	SSL *ssl = c->xprt_ctx;

	if (!ssl)
		return;
	if (list_linked(&c->wait))
		list_del(&c->wait); /* closed while waiting for its handshake's turn */
	if (!(c->flags & (CF_SHUTW | CF_ERROR)) && SSL_is_init_finished(ssl)) {
		ERR_clear_error();
		SSL_shutdown(ssl);
	}
	SSL_free(ssl);
	c->xprt_ctx = NULL;
	ERR_clear_error();
}

const struct xprt_ops xprt_ssl = {
	.name = "ssl",
	.init = ssl_init,
	.recv = ssl_recv,
	.send = ssl_send,
	.peek = ssl_peek,
	.shutw = ssl_shutw,
	.handshake = ssl_handshake,
	.close = ssl_close,
	.movable = false,
};

const struct xprt_ops xprt_ssl_srv = {
	.name = "ssl",
	.init = ssl_init_srv,
	.recv = ssl_recv,
	.send = ssl_send,
	.peek = ssl_peek,
	.shutw = ssl_shutw,
	.handshake = ssl_handshake,
	.close = ssl_close,
	.movable = false,
};

/* ---- what the samples read ---- */

static SSL *conn_ssl(const struct conn *c)
{
	return c->xprt == &xprt_ssl || c->xprt == &xprt_ssl_srv ? c->xprt_ctx : NULL;
}

bool ssl_conn_used(const struct conn *c)
{
	return conn_ssl(c) != NULL;
}

const char *ssl_conn_sni(const struct conn *c)
{
	SSL *ssl = conn_ssl(c);

	return ssl ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

const char *ssl_conn_protocol(const struct conn *c)
{
	SSL *ssl = conn_ssl(c);

	return ssl ? SSL_get_version(ssl) : NULL;
}

const char *ssl_conn_cipher(const struct conn *c)
{
	SSL *ssl = conn_ssl(c);

	return ssl ? SSL_get_cipher_name(ssl) : NULL;
}

const char *ssl_conn_alpn(const struct conn *c, unsigned *len)
{
	SSL *ssl = conn_ssl(c);
	const unsigned char *p = NULL;

	*len = 0;
	if (ssl)
		SSL_get0_alpn_selected(ssl, &p, len);
	return *len ? (const char *)p : NULL;
}

bool ssl_conn_client_cert(const struct conn *c)
{
	SSL *ssl = conn_ssl(c);

	return ssl && SSL_get0_peer_certificate(ssl);
}

long ssl_conn_verify(const struct conn *c)
{
	SSL *ssl = conn_ssl(c);

	return ssl ? SSL_get_verify_result(ssl) : -1;
}

int ssl_conn_client_dn(const struct conn *c, char *buf, size_t len)
{
	SSL *ssl = conn_ssl(c);
	X509 *x = ssl ? SSL_get0_peer_certificate(ssl) : NULL;

	if (!x || len < 2 || len > INT32_MAX)
		return -1;
	if (!X509_NAME_oneline(X509_get_subject_name(x), buf, (int)len))
		return -1;
	return (int)strlen(buf);
}
