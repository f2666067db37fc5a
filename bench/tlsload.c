/* tlsload: an HTTPS (HTTP/1.1 over TLS) load client for bench/tls, made to do TLS handshakes
 * cheaply so that the client is not what limits a handshake benchmark: one thread, non-blocking
 * sockets, epoll, OpenSSL 3 with certificate verification off (the server's CertificateVerify
 * signature is still checked: that is part of every handshake).
 *
 *   tlsload -u https://127.0.0.1:PORT/path [-c CONC] [-d SECONDS] [-n COUNT] [-t TIMEOUT_MS]
 *           [-R] [-2 [-N]] [-g GROUPS] [-C CIPHERSUITES]
 *   tlsload -u URL -k -r RATE [-c CONC] [-d SECONDS] ...     keep-alive latency probe
 *   tlsload -u URL -F [-c CONC] [-d SECONDS] ...               ClientHello flood
 *   tlsload -u URL -i N [-p PARALLEL] [-s SECONDS] ...        N idle TLS connections
 *
 * Handshake mode (the default): CONC connections (default 50) at all times, until SECONDS
 * (default 10) have passed or COUNT connections were opened. Each: connect, full TLS handshake,
 * one `GET path` with `Connection: close`, the whole response read, then the server's close
 * awaited (so that the server, not the client, keeps the TIME_WAIT), then close. -R: resumption:
 * every new connection offers the most recent session the server gave on an earlier connection
 * and not offered yet (a TLS 1.3 session ticket, which servers may accept only once; with -2 a
 * TLS 1.2 session ticket, or with -N a TLS 1.2 session id), a full handshake when there is none;
 * `resumed` counts the connections the server resumed. -2: TLS 1.2 only (default: TLS 1.3 only). -g: key exchange
 * groups offered (OpenSSL syntax, default X25519:P-256, a key share for X25519 only); -C: TLS 1.3 ciphersuites (default
 * TLS_AES_128_GCM_SHA256), or with -2 the TLS 1.2 cipher list (default ECDHE-ECDSA-AES128-GCM-SHA256:
 * ECDHE-RSA-AES128-GCM-SHA256).
 *
 * -F: handshake flood: like the handshake mode, but each connection only sends a ClientHello
 * (made once, the same bytes every time: no key is generated per connection) and reads the
 * server's first flight (ServerHello up to Finished, for which the server did its key exchange and
 * signature), then closes: what a cheap attacker makes a server do, at little cost to the client.
 * ok counts the flights received whole.
 *
 * -k: keep-alive latency probe: CONC connections (default 10) are set up (handshake and one
 * request each), then requests are due at RATE a second for SECONDS, request i at start + i/RATE,
 * each on the connection idle longest; a request due while none is idle waits for one. Latency
 * runs from the due time (no coordinated omission), so that a stall of the server shows. A
 * request fails (err_timeout) without a complete response TIMEOUT_MS after its due time, also
 * when it is still waiting for a connection then; a failed connection is replaced.
 *
 * -i N: N connections are set up, PARALLEL (default 1) at a time, each with one keep-alive
 * request whose response is read whole; then "ready N" is printed, the connections are held until
 * SIGINT/SIGTERM/SIGUSR1 or SECONDS (default 60), and "held N closed K" printed (K: closed by the
 * server meanwhile). Exit status 1 if one could not be set up.
 *
 * Output of the other modes, one line on stdout, key=value:
 *   mode=hs conns=N ok=N failed=N offered=N resumed=N err_connect=N err_tls=N err_reset=N err_eof=N
 *   err_timeout=N err_status=N err_malformed=N elapsed_s=S per_s=X p50_ms p99_ms p999_ms max_ms
 *   lag_max_ms tickets=T proto=P cipher=C group=G
 * ok: connections (-k: requests) that got a whole 2xx/3xx response; per_s: ok per second;
 * latencies: handshake mode from connect() to the end of the response; tickets: session tickets
 * received per connection; offered: connections that offered a session (-R); proto, cipher, group: what the first successful connection negotiated.
 * Only loopback targets. Exit status 0 once the run is done, whatever failed; 1 on usage or setup
 * errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "h1resp.h"
#include "url.h"

enum st {
	ST_FREE,
	ST_CONNECTING,
	ST_HANDSHAKE,
	ST_SENDING,
	ST_READING,
	ST_DRAIN, /* handshake mode: the response is read, waiting for the server's close */
	ST_IDLE,  /* -k, -i: waiting for the next request */
	ST_FLOOD, /* -F: the ClientHello is sent, reading the server's first flight */
};

enum err {
	E_CONNECT,
	E_TLS,
	E_RESET,
	E_EOF,
	E_TIMEOUT,
	E_STATUS,
	E_MALFORMED,
	E_COUNT,
};
static const char *const err_names[E_COUNT] = {"connect", "tls",    "reset",    "eof",
					       "timeout", "status", "malformed"};

struct conn {
	int fd;
	enum st state;
	SSL *ssl;
	size_t wpos;
	size_t rec_left;  /* -F: bytes to go in the current record, header included */
	size_t rec_have;  /* -F: header bytes of the current record seen */
	unsigned char rec_hdr[5];
	int flight_done;  /* -F: a complete encrypted record (type 23) came */
	uint64_t start_ns; /* connect(), or -k the due time of the current request */
	uint64_t deadline_ns;
	int tickets;
	struct h1resp resp;
	int due_req;		/* -k: the request in progress is a timed one */
	uint64_t idle_since_ns; /* -k */
};

static struct url target;
static char req[4600];
static size_t reqlen;
static SSL_CTX *ctx;
/* -R: sessions the server gave, each offered once (servers may keep TLS 1.3 tickets single-use),
 * the most recent first; the oldest are dropped beyond SESS_MAX. */
#define SESS_MAX 1024
static SSL_SESSION *sess_pool[SESS_MAX];
static unsigned sess_n;
static int ep;
static volatile sig_atomic_t stop;

static int opt_resume, opt_tls12, opt_keep, opt_idle_n, opt_flood;
/* -F: one ClientHello, made once, sent on every connection. */
static unsigned char hello[4096];
static size_t hellolen;
static long opt_conc = -1, opt_count = -1, opt_parallel = 1;
static double opt_secs = -1, opt_rate;
static long opt_timeout_ms = 5000;

static uint64_t n_conns, n_ok, n_failed, n_resumed, n_offered, n_tickets, errs[E_COUNT];
static double *lat;
static size_t nlat, caplat;
static double lag_max_ms;
static char neg_proto[32] = "-", neg_cipher[64] = "-", neg_group[32] = "-";

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static _Noreturn void fatal(const char *what, const char *why)
{
	fprintf(stderr, "tlsload: %s: %s\n", what, why);
	exit(1);
}

static void add_latency(uint64_t ns)
{
	if (nlat == caplat) {
		caplat = caplat ? caplat * 2 : 65536;
		lat = realloc(lat, caplat * sizeof(*lat));
		if (!lat)
			fatal("memory", "out of memory");
	}
	lat[nlat++] = (double)ns / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	size_t k;

	if (!nlat)
		return 0;
	k = (size_t)ceil(p / 100.0 * (double)nlat);
	return lat[(k ? k : 1) - 1];
}

/* The server gave a session (TLS 1.3: a ticket after the handshake; TLS 1.2: at its end). */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct conn *c = SSL_get_app_data(ssl);

	if (c)
		c->tickets++;
	n_tickets++;
	if (!opt_resume)
		return 0;
	if (sess_n == SESS_MAX) {
		SSL_SESSION_free(sess_pool[0]);
		memmove(sess_pool, sess_pool + 1, (SESS_MAX - 1) * sizeof(*sess_pool));
		sess_n--;
	}
	sess_pool[sess_n++] = sess;
	return 1; /* we keep the reference */
}

static void conn_close(struct conn *c)
{
	if (c->ssl) {
		/* As if close_notify had gone both ways (none is sent): OpenSSL would otherwise mark
		 * the connection's session, the last ticket received, as not resumable. */
		SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		SSL_set_app_data(c->ssl, NULL);
		/* Kept for the slot's next connection (SSL_clear): SSL_new is costly in OpenSSL 3. */
	}
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->state = ST_FREE;
}

static void conn_fail(struct conn *c, enum err e)
{
	if (opt_idle_n) {
		fprintf(stderr, "tlsload: connection set-up failed: %s", err_names[e]);
		if (e == E_STATUS)
			fprintf(stderr, " %d", c->resp.status);
		if (e == E_MALFORMED)
			fprintf(stderr, " (%s)", c->resp.error);
		fputc('\n', stderr);
		ERR_print_errors_fp(stderr);
		exit(1);
	}
	errs[e]++;
	n_failed++;
	if (opt_keep && c->due_req) /* the request's latency: up to the failure */
		add_latency(now_ns() - c->start_ns);
	c->due_req = 0;
	ERR_clear_error();
	conn_close(c);
}

static void conn_open(struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
	int one = 1;

	n_conns++;
	c->tickets = 0;
	c->due_req = 0;
	c->wpos = 0;
	c->start_ns = now_ns();
	c->deadline_ns = c->start_ns + (uint64_t)opt_timeout_ms * 1000000ULL;
	h1resp_init(&c->resp, 0);
	c->fd = socket(target.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		fatal("socket", strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) == -1)
		fatal("epoll_ctl", strerror(errno));
	if (opt_flood) {
		c->rec_left = c->rec_have = 0;
		c->flight_done = 0;
	} else if (c->ssl) {
		if (!SSL_clear(c->ssl))
			fatal("SSL_clear", "failed");
		SSL_set_session(c->ssl, NULL); /* SSL_clear keeps the last one: no resumption unless -R */
	} else if (!(c->ssl = SSL_new(ctx))) {
		fatal("SSL_new", "failed");
	}
	if (!opt_flood) {
		if (!SSL_set_fd(c->ssl, c->fd))
			fatal("SSL_set_fd", "failed");
		SSL_set_app_data(c->ssl, c);
		SSL_set_connect_state(c->ssl);
	}
	if (opt_resume && sess_n) {
		SSL_set_session(c->ssl, sess_pool[--sess_n]);
		n_offered++;
		SSL_SESSION_free(sess_pool[sess_n]); /* the SSL holds its own reference */
	}
	c->state = ST_CONNECTING;
	if (connect(c->fd, (struct sockaddr *)&target.addr, target.addrlen) == -1 &&
	    errno != EINPROGRESS) {
		conn_fail(c, E_CONNECT);
		return;
	}
}

/* An SSL call returned r <= 0: 0 when it only has to wait, otherwise the failure's cause. */
static int ssl_wait(struct conn *c, int r, enum err otherwise)
{
	int e = SSL_get_error(c->ssl, r);

	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return -1;
	if (e == SSL_ERROR_ZERO_RETURN)
		return E_EOF;
	if (e == SSL_ERROR_SYSCALL)
		return (errno == ECONNRESET || errno == EPIPE) ? E_RESET : (r == 0 ? E_EOF : otherwise);
	return otherwise;
}

static void note_negotiated(struct conn *c)
{
	int g;

	if (strcmp(neg_proto, "-"))
		return;
	snprintf(neg_proto, sizeof(neg_proto), "%s", SSL_get_version(c->ssl));
	snprintf(neg_cipher, sizeof(neg_cipher), "%s", SSL_get_cipher_name(c->ssl));
	g = SSL_get_negotiated_group(c->ssl);
	snprintf(neg_group, sizeof(neg_group), "%s", g ? OBJ_nid2sn(g & ~TLSEXT_nid_unknown) : "-");
}

/* -F: reads what the server sends after the ClientHello; once a whole encrypted record (the
 * server's EncryptedExtensions/Certificate/CertificateVerify/Finished, all computed by then) has
 * come and nothing more is there to read, the connection counts as ok and is closed. */
static void flood_read(struct conn *c)
{
	unsigned char buf[16384];
	ssize_t n, i;

	for (;;) {
		n = recv(c->fd, buf, sizeof(buf), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (c->flight_done) {
				n_ok++;
				add_latency(now_ns() - c->start_ns);
				conn_close(c);
			}
			return;
		}
		if (n <= 0) {
			if (c->flight_done) {
				n_ok++;
				add_latency(now_ns() - c->start_ns);
				conn_close(c);
			} else {
				conn_fail(c, n == 0 ? E_EOF : E_RESET);
			}
			return;
		}
		for (i = 0; i < n;) {
			if (c->rec_have < 5) {
				c->rec_hdr[c->rec_have++] = buf[i++];
				if (c->rec_have == 5) {
					if (c->rec_hdr[0] == 21) { /* an alert: the server refused */
						conn_fail(c, E_TLS);
						return;
					}
					c->rec_left = (size_t)c->rec_hdr[3] << 8 | c->rec_hdr[4];
				}
				continue;
			}
			size_t take = (size_t)(n - i) < c->rec_left ? (size_t)(n - i) : c->rec_left;

			i += (ssize_t)take;
			c->rec_left -= take;
			if (!c->rec_left) {
				if (c->rec_hdr[0] == 23)
					c->flight_done = 1;
				c->rec_have = 0;
			}
		}
	}
}

/* -F: the ClientHello OpenSSL would send, captured once through memory BIOs. */
static void make_hello(void)
{
	SSL *ssl = SSL_new(ctx);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	int n;

	if (!ssl || !rb || !wb)
		fatal("-F", "cannot make a ClientHello");
	SSL_set_bio(ssl, rb, wb);
	SSL_set_connect_state(ssl);
	if (SSL_do_handshake(ssl) == 1)
		fatal("-F", "unexpected handshake end");
	n = BIO_read(wb, hello, sizeof(hello));
	if (n <= 5 || hello[0] != 22)
		fatal("-F", "no ClientHello");
	hellolen = (size_t)n;
	SSL_free(ssl);
}

/* A response was read whole on c. */
static void response_done(struct conn *c);

/* Advances c as far as it goes without waiting. */
static void advance(struct conn *c, uint32_t events)
{
	char buf[65536];
	int r, e, err = 0;
	size_t used;
	socklen_t len = sizeof(err);

	if (c->state == ST_CONNECTING) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err) {
			conn_fail(c, E_CONNECT);
			return;
		}
		c->state = opt_flood ? ST_FLOOD : ST_HANDSHAKE;
		if (opt_flood) {
			if (send(c->fd, hello, hellolen, MSG_NOSIGNAL) != (ssize_t)hellolen) {
				conn_fail(c, E_RESET);
				return;
			}
		}
	}
	if (c->state == ST_FLOOD) {
		flood_read(c);
		return;
	}
	if (c->state == ST_HANDSHAKE) {
		r = SSL_do_handshake(c->ssl);
		if (r != 1) {
			e = ssl_wait(c, r, E_TLS);
			if (e >= 0)
				conn_fail(c, e == E_EOF ? E_TLS : (enum err)e);
			return;
		}
		if (SSL_session_reused(c->ssl)) {
			n_resumed++;
			/* A TLS 1.2 session stays valid when resumed, and none new comes: offer it again. */
			if (opt_tls12 && opt_resume && sess_n < SESS_MAX)
				sess_pool[sess_n++] = SSL_get1_session(c->ssl);
		}
		note_negotiated(c);
		c->state = ST_SENDING;
	}
	while (c->state == ST_SENDING) {
		r = SSL_write(c->ssl, req + c->wpos, (int)(reqlen - c->wpos));
		if (r <= 0) {
			e = ssl_wait(c, r, E_RESET);
			if (e >= 0)
				conn_fail(c, e);
			return;
		}
		c->wpos += (size_t)r;
		if (c->wpos == reqlen)
			c->state = ST_READING;
	}
	while (c->state == ST_READING || c->state == ST_DRAIN || c->state == ST_IDLE) {
		r = SSL_read(c->ssl, buf, sizeof(buf));
		if (r <= 0) {
			e = ssl_wait(c, r, E_RESET);
			if (e < 0)
				return;
			if (c->state == ST_DRAIN || c->state == ST_IDLE) { /* the server's close */
				if (c->state == ST_IDLE && opt_idle_n)
					n_failed++; /* counted as closed by the server */
				ERR_clear_error();
				conn_close(c);
				return;
			}
			if (e == E_EOF && h1resp_eof(&c->resp) == H1RESP_DONE) {
				response_done(c);
				ERR_clear_error();
				conn_close(c);
				return;
			}
			conn_fail(c, e);
			return;
		}
		if (c->state != ST_READING)
			continue; /* bytes after the response: ignored */
		r = h1resp_feed(&c->resp, buf, (size_t)r, &used);
		if (r == H1RESP_ERR) {
			conn_fail(c, E_MALFORMED);
			return;
		}
		if (r == H1RESP_DONE) {
			if (c->resp.status < 200 || c->resp.status >= 400) {
				conn_fail(c, E_STATUS);
				return;
			}
			response_done(c);
			if (c->state == ST_FREE)
				return;
		}
	}
}

/* -k: the schedule; requests go to the connection idle longest. */
static struct conn *k_conns;
static long k_n;
static uint64_t k_start_ns, k_due_i, k_total, k_measuring;

static void send_request(struct conn *c, uint64_t due_ns)
{
	c->due_req = 1;
	c->start_ns = due_ns;
	c->deadline_ns = due_ns + (uint64_t)opt_timeout_ms * 1000000ULL;
	c->wpos = 0;
	h1resp_init(&c->resp, 0);
	c->state = ST_SENDING;
	advance(c, 0);
}

static void response_done(struct conn *c)
{
	uint64_t t = now_ns();

	if (opt_idle_n) {
		c->state = ST_IDLE;
		n_ok++;
		return;
	}
	if (!opt_keep) {
		n_ok++;
		add_latency(t - c->start_ns);
		c->state = ST_DRAIN;
		c->deadline_ns = t + (uint64_t)opt_timeout_ms * 1000000ULL;
		return;
	}
	if (c->due_req) {
		n_ok++;
		add_latency(t - c->start_ns);
	}
	c->due_req = 0;
	if (!h1resp_reusable(&c->resp)) {
		conn_close(c);
		return;
	}
	c->state = ST_IDLE;
	c->idle_since_ns = t;
}

/* -k: hands the due requests to idle connections. */
static void dispatch(uint64_t now)
{
	struct conn *c;
	uint64_t due;
	long i;

	while (k_due_i < k_total) {
		due = k_start_ns + (uint64_t)((double)k_due_i * 1e9 / opt_rate);
		if (due > now)
			break;
		c = NULL;
		for (i = 0; i < k_n; i++)
			if (k_conns[i].state == ST_IDLE &&
			    (!c || k_conns[i].idle_since_ns < c->idle_since_ns))
				c = &k_conns[i];
		if (!c && now - due >= (uint64_t)opt_timeout_ms * 1000000ULL) {
			/* No connection for it within the timeout: it fails as a timeout. */
			errs[E_TIMEOUT]++;
			n_failed++;
			add_latency(now - due);
			k_due_i++;
			continue;
		}
		if (!c)
			break;
		if (c->idle_since_ns <= due && (double)(now - due) / 1e6 > lag_max_ms)
			lag_max_ms = (double)(now - due) / 1e6; /* idle in time: the lateness is ours */
		k_due_i++;
		send_request(c, due);
	}
}

static void check_timeouts(struct conn *conns, long n, uint64_t now)
{
	long i;

	for (i = 0; i < n; i++) {
		struct conn *c = &conns[i];

		if (c->state == ST_FREE || c->state == ST_IDLE || now < c->deadline_ns)
			continue;
		if (c->state == ST_FLOOD && c->flight_done) {
			n_ok++;
			conn_close(c);
			continue;
		}
		if (c->state == ST_DRAIN) { /* the response was counted; the close never came */
			conn_close(c);
			continue;
		}
		conn_fail(c, E_TIMEOUT);
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: tlsload -u https://127.0.0.1:PORT/path [-c CONC] [-d SECONDS] [-n COUNT] "
		"[-t TIMEOUT_MS]\n"
		"               [-R] [-2 [-N]] [-g GROUPS] [-C CIPHERS] [-k -r RATE] [-i N [-p "
		"PARALLEL] [-s SECONDS]]\n");
	exit(1);
}

static void setup_ctx(const char *groups, const char *ciphers, int no_tickets)
{
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		fatal("SSL_CTX_new", "failed");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_min_proto_version(ctx, opt_tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, opt_tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
	if (!SSL_CTX_set1_groups_list(ctx, groups))
		fatal("-g", "unknown group list");
	if (opt_tls12 ? !SSL_CTX_set_cipher_list(ctx, ciphers) : !SSL_CTX_set_ciphersuites(ctx, ciphers))
		fatal("-C", "unknown cipher list");
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session);
	if (no_tickets)
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
}

int main(int argc, char **argv)
{
	const char *url = NULL, *groups = "X25519:P-256", *ciphers = NULL;
	char ubuf[4200];
	struct epoll_event evs[256];
	struct conn *conns;
	struct rlimit rl;
	struct sigaction sa;
	struct itimerspec its = {0};
	uint64_t t0, end_ns, last_check = 0, now, tfd_exp;
	long nconn, i, opened = 0, ready_n = 0;
	int o, n, k, no_tickets = 0, tfd = -1;

	while ((o = getopt(argc, argv, "u:c:d:n:t:R2Ng:C:kr:i:p:s:Fh")) != -1) {
		switch (o) {
		case 'u': url = optarg; break;
		case 'c': opt_conc = atol(optarg); break;
		case 'd':
		case 's': opt_secs = atof(optarg); break;
		case 'n': opt_count = atol(optarg); break;
		case 't': opt_timeout_ms = atol(optarg); break;
		case 'R': opt_resume = 1; break;
		case '2': opt_tls12 = 1; break;
		case 'N': no_tickets = 1; break;
		case 'g': groups = optarg; break;
		case 'C': ciphers = optarg; break;
		case 'k': opt_keep = 1; break;
		case 'F': opt_flood = 1; break;
		case 'r': opt_rate = atof(optarg); break;
		case 'i': opt_idle_n = atoi(optarg); break;
		case 'p': opt_parallel = atol(optarg); break;
		default: usage();
		}
	}
	if (!url || optind != argc || strncmp(url, "https://", 8) || strlen(url) > 4000)
		usage();
	snprintf(ubuf, sizeof(ubuf), "http://%s", url + 8);
	if (url_parse(ubuf, &target) != URL_OK)
		fatal(url, "not an https URL to a loopback address");
	if ((opt_keep && opt_rate <= 0) || (opt_keep + !!opt_idle_n + opt_flood + opt_resume > 1) || opt_timeout_ms < 1 ||
	    opt_parallel < 1 || opt_idle_n < 0)
		usage();
	if (opt_conc < 0)
		opt_conc = opt_keep ? 10 : 50;
	if (opt_secs < 0)
		opt_secs = opt_idle_n ? 60 : 10;
	if (opt_conc < 1 || opt_secs <= 0)
		usage();
	if (!ciphers)
		ciphers = opt_tls12 ? "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
				    : "TLS_AES_128_GCM_SHA256";
	reqlen = (size_t)snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n",
				  target.path, target.host,
				  (opt_keep || opt_idle_n) ? "" : "Connection: close\r\n");
	setup_ctx(groups, ciphers, no_tickets);
	if (opt_flood)
		make_hello();

	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	nconn = opt_idle_n ? opt_idle_n : opt_conc;
	if ((rlim_t)nconn + 16 > rl.rlim_cur)
		fatal("connections", "more than the descriptor limit allows");
	conns = calloc((size_t)nconn, sizeof(*conns));
	if (!conns)
		fatal("memory", "out of memory");
	for (i = 0; i < nconn; i++)
		conns[i].fd = -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep == -1)
		fatal("epoll_create1", strerror(errno));

	t0 = now_ns();
	end_ns = t0 + (uint64_t)(opt_secs * 1e9);

	if (opt_idle_n) { /* set-up, PARALLEL at a time */
		long up;

		for (;;) {
			long busy = 0;

			up = 0;
			for (i = 0; i < opened; i++) {
				if (conns[i].state == ST_IDLE)
					up++;
				else if (conns[i].state != ST_FREE)
					busy++;
			}
			if (up == nconn)
				break;
			while (busy < opt_parallel && opened < nconn) {
				conn_open(&conns[opened++]);
				busy++;
			}
			if (stop)
				fatal("set-up", "interrupted");
			n = epoll_wait(ep, evs, 256, 100);
			for (k = 0; k < n; k++)
				advance(evs[k].data.ptr, evs[k].events);
			now = now_ns();
			check_timeouts(conns, opened, now);
			for (i = 0; i < opened; i++)
				if (conns[i].state == ST_FREE)
					fatal("set-up", "a connection was closed"); /* conn_fail exits first */
		}
		printf("ready %ld\n", nconn);
		fflush(stdout);
		n_failed = 0;
		end_ns = now_ns() + (uint64_t)(opt_secs * 1e9);
		while (!stop && now_ns() < end_ns) {
			n = epoll_wait(ep, evs, 256, 200);
			for (k = 0; k < n; k++)
				advance(evs[k].data.ptr, evs[k].events);
		}
		up = 0;
		for (i = 0; i < nconn; i++)
			if (conns[i].state == ST_IDLE)
				up++;
		printf("held %ld closed %llu\n", up, (unsigned long long)n_failed);
		return 0;
	}

	if (opt_keep) { /* set up the connections, then the timed requests */
		for (i = 0; i < nconn; i++)
			conn_open(&conns[i]);
		while (ready_n < nconn) {
			n = epoll_wait(ep, evs, 256, 100);
			for (k = 0; k < n; k++)
				advance(evs[k].data.ptr, evs[k].events);
			ready_n = 0;
			for (i = 0; i < nconn; i++) {
				if (conns[i].state == ST_FREE)
					fatal("set-up", "a keep-alive connection failed");
				ready_n += conns[i].state == ST_IDLE;
			}
			if (stop || now_ns() > t0 + (uint64_t)opt_timeout_ms * 1000000ULL)
				fatal("set-up", "the keep-alive connections are not up in time");
		}
		tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (tfd == -1)
			fatal("timerfd_create", strerror(errno));
		{
			struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

			epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
		}
		k_conns = conns;
		k_n = nconn;
		k_measuring = 1;
		k_start_ns = t0 = now_ns();
		k_total = (uint64_t)ceil(opt_rate * opt_secs);
		end_ns = t0 + (uint64_t)(opt_secs * 1e9);
	}

	for (;;) {
		int busy = 0;

		now = now_ns();
		if (opt_keep) {
			uint64_t due;

			dispatch(now);
			for (i = 0; i < nconn; i++)
				if (conns[i].state == ST_FREE && k_due_i < k_total && !stop) {
					conn_open(&conns[i]); /* replaces a failed one */
					busy = 1;
				}
			for (i = 0; i < nconn; i++)
				busy |= conns[i].state != ST_IDLE && conns[i].state != ST_FREE;
			if ((k_due_i >= k_total || stop) && !busy)
				break;
			if (stop)
				k_total = k_due_i;
			if (k_due_i < k_total) {
				due = k_start_ns + (uint64_t)((double)k_due_i * 1e9 / opt_rate);
				if (due > now) {
					its.it_value.tv_sec = (time_t)(due / 1000000000ULL);
					its.it_value.tv_nsec = (long)(due % 1000000000ULL);
					timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
				}
			}
		} else {
			int running = !stop && now < end_ns;

			for (i = 0; i < nconn; i++) {
				if (conns[i].state == ST_FREE && running &&
				    (opt_count < 0 || (long)n_conns < opt_count))
					conn_open(&conns[i]);
				busy |= conns[i].state != ST_FREE;
			}
			if (!busy)
				break;
		}
		n = epoll_wait(ep, evs, 256, 50);
		for (k = 0; k < n; k++) {
			if (!evs[k].data.ptr) {
				/* The timer only wakes the loop, which looks at the clock. */
				tfd_exp = (uint64_t)read(tfd, &tfd_exp, sizeof(tfd_exp));
				continue;
			}
			advance(evs[k].data.ptr, evs[k].events);
		}
		now = now_ns();
		if (now - last_check > 20000000ULL) {
			check_timeouts(conns, nconn, now);
			last_check = now;
		}
	}

	{
		double el = (double)(now_ns() - t0) / 1e9;
		uint64_t hs = n_conns ? n_conns : 1;

		qsort(lat, nlat, sizeof(*lat), cmp_double);
		printf("mode=%s conns=%llu ok=%llu failed=%llu offered=%llu resumed=%llu",
		       opt_keep ? "keepalive" : opt_flood ? "flood" : "hs", (unsigned long long)n_conns,
		       (unsigned long long)n_ok, (unsigned long long)n_failed,
		       (unsigned long long)n_offered, (unsigned long long)n_resumed);
		for (i = 0; i < E_COUNT; i++)
			printf(" err_%s=%llu", err_names[i], (unsigned long long)errs[i]);
		printf(" elapsed_s=%.3f per_s=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f "
		       "lag_max_ms=%.3f tickets=%.2f proto=%s cipher=%s group=%s\n",
		       el, (double)n_ok / el, pct(50), pct(99), pct(99.9), nlat ? lat[nlat - 1] : 0.0,
		       lag_max_ms, (double)n_tickets / (double)hs, neg_proto, neg_cipher, neg_group);
	}
	return 0;
}
