/* oload: an open-loop HTTP/1.1 load generator (libc only, one thread, epoll).
 *
 *   oload -u http://127.0.0.1:PORT/path -r RATE -d SECONDS [-c MAXCONNS] [-t TIMEOUT_MS]
 *         [-s SLOW_MS] [-m METHOD] [-b BODYBYTES] [-H 'Name: value']... [--csv FILE]
 *         [--id-header NAME [--id-base N] [--check-id]] [--start-at MONOTONIC_SECONDS] [--fifo]
 *         [--grow] [--lazy]
 *
 * Request i is due at start + i/RATE whatever happened to the earlier ones, and its latency is
 * measured from that due time, so a stall of the server shows in the percentiles instead of
 * slowing the load down (no coordinated omission; wrk's closed loop hides stalls). A due request
 * takes the most recently used idle keep-alive connection (--fifo: the least recently used, as
 * a round-robin pool does), or opens a new one while fewer than MAXCONNS are open; otherwise it
 * waits, first come first served, and the wait is part of its latency. --grow opens a new
 * connection for each due request until MAXCONNS are open, even when one is idle: with --fifo,
 * every connection then sits idle about MAXCONNS / RATE seconds between its requests, the
 * hardest case for a server that closes idle connections. --lazy ignores idle connections
 * until they are used again, as most HTTP client libraries do (Python's http.client, many
 * scripts): a connection the server closed while idle is noticed only when the next request on
 * it fails. One request at a time per connection (no pipelining).
 *
 * A request fails on: connect error, reset, the server closing before the whole response
 * (eof), a status outside 200-399, a malformed response (see h1resp.h), no complete response
 * TIMEOUT_MS after its due time (timeout, even when it was still waiting for a connection), or,
 * with --check-id, a 200-399 response that is not its own (mismatch, below). Responses are
 * framed by Content-Length, chunked encoding, or the close.
 *
 * Prints one line: sent= (requests due during the run; each ends ok or failed) ok= failed=
 * slow= (failed, or latency > SLOW_MS) p50_ms= p99_ms= p999_ms= max_ms= (nearest rank over
 * every request, a failed one counted at the time its failure was seen) status_5xx= then
 * status_4xx= err_connect= err_reset= err_eof= err_timeout= err_malformed= err_local=
 * err_mismatch= (failed
 * requests by cause; a 4xx/5xx answer is err "status") conns= (connections opened)
 * closed_idle= (idle connections the server closed) lag_max_ms= (how late oload itself issued
 * a request: above a millisecond or so, the machine was too busy to drive the load on time)
 * interrupted= (1 after SIGINT/SIGTERM: requests not yet due are not sent). --csv FILE writes a
 * header line then one line per request in schedule order: sched_ms,latency_ms,status,error
 * (status 0 when no response; error one of none connect reset eof timeout status malformed
 * local mismatch). Exit status 0 once the run is done (whatever failed), 1 on usage or setup
 * errors. Only loopback addresses are accepted.
 *
 * --id-header NAME gives request i the header "NAME: N+i" (N from --id-base, default 0), so that
 * a test origin can tell a request sent twice from two requests. With --check-id as well, the
 * server is expected to echo that header: a 200-399 response whose NAME header is missing,
 * repeated or not the request's id is another request's answer (a proxy that handed a server's
 * stray bytes to the wrong client), failed as "mismatch", and its connection is closed (what
 * follows on it is out of step). --start-at T makes request 0 due
 * at T seconds of CLOCK_MONOTONIC (Python's time.monotonic() on Linux), at most 60 s ahead: a
 * script can start several loads at the same instant and place events on their schedule. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "h1resp.h"
#include "url.h"

#define MAX_REQUESTS 50000000ULL /* 12 bytes each: 600 MB at most */
#define HEAD_MAX 8192
#define BODY_PATTERN 65536

enum oerr {
	OERR_NONE,
	OERR_CONNECT,
	OERR_RESET,
	OERR_EOF,
	OERR_TIMEOUT,
	OERR_STATUS,
	OERR_MALFORMED,
	OERR_LOCAL,
	OERR_MISMATCH,
	OERR_COUNT
};

static const char *const oerr_name[OERR_COUNT] = {
    "none", "connect", "reset", "eof", "timeout", "status", "malformed", "local", "mismatch"};

/* One scheduled request. */
struct oreq {
	uint32_t lat_us; /* from the due time to the response or the failure */
	uint16_t status; /* 0: no response */
	uint8_t err;	 /* enum oerr */
	uint8_t done;
	int32_t conn; /* slot of the connection carrying it, -1 when it has none */
};

enum conn_state {
	CONN_FREE,	 /* slot unused */
	CONN_CONNECTING, /* connect() in progress, a request bound to it */
	CONN_BUSY,	 /* a request in flight */
	CONN_IDLE,	 /* in the idle list */
};

struct oconn {
	int fd;
	enum conn_state state;
	int64_t req;	 /* request in flight, -1 none */
	size_t wpos;	 /* bytes of the request written */
	uint32_t served; /* responses completed on this connection */
	int prev, next;	 /* idle list (slot indices, -1 ends) */
	char *h;	 /* head of the request in flight: head, or hbuf with its id */
	size_t hlen;
	char *hbuf;   /* this slot's copy of the head, with --id-header */
	size_t idlen; /* digits of the id in hbuf at idoff (--check-id compares the echo) */
	struct h1resp resp;
};

/* Configuration. */
static struct url target;
static double rate;
static uint64_t timeout_ns, slow_ns;
static int maxc = 256;
static char head[HEAD_MAX];
static size_t headlen, idoff; /* idoff: where the id goes in head, with --id-header */
static uint64_t bodylen, id_base;
static const char *id_header;
static char id_lower[65]; /* id_header in lower case: the header --check-id captures */
static int check_id;
static char body_pattern[BODY_PATTERN];
static int head_request, req_close;

/* Run state. */
static struct oreq *reqs;
static struct oconn *conns;
static int *free_slots, nfree, nopen;
static int idle_head = -1, idle_tail = -1; /* head: most recently used */
static int fifo, grow, lazy;
static int ep = -1;
static uint64_t start_ns, total, issued, pend_head, oldest, nresolved;
static volatile sig_atomic_t stop;
static char rbuf[65536];

/* Counters. */
static uint64_t n_ok, n_failed, n_slow, n_err[OERR_COUNT], n_4xx, n_5xx, n_conns, n_closed_idle;
static uint64_t lag_max_ns;
static int complaints;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t due(uint64_t i)
{
	return start_ns + (uint64_t)((double)i * 1e9 / rate);
}

/* A few messages on stderr explain the first failures; the counters tell the rest. */
static void complain(const char *fmt, const char *what)
{
	if (complaints++ < 5) {
		fprintf(stderr, "oload: ");
		fprintf(stderr, fmt, what);
		fputc('\n', stderr);
	}
}

static void req_resolve(uint64_t k, enum oerr err, int status, uint64_t now)
{
	struct oreq *q = &reqs[k];
	uint64_t d = due(k), lat = now > d ? now - d : 0;

	q->lat_us = (uint32_t)((lat + 500) / 1000);
	q->status = (uint16_t)status;
	q->err = (uint8_t)err;
	q->done = 1;
	q->conn = -1;
	nresolved++;
	if (status >= 500)
		n_5xx++;
	else if (status >= 400)
		n_4xx++;
	if (err == OERR_NONE) {
		n_ok++;
	} else {
		n_failed++;
		n_err[err]++;
	}
	if (err != OERR_NONE || lat > slow_ns)
		n_slow++;
}

static void idle_push(struct oconn *c)
{
	int i = (int)(c - conns);

	c->state = CONN_IDLE;
	c->prev = -1;
	c->next = idle_head;
	if (idle_head >= 0)
		conns[idle_head].prev = i;
	else
		idle_tail = i;
	idle_head = i;
}

static void idle_remove(struct oconn *c)
{
	if (c->prev >= 0)
		conns[c->prev].next = c->next;
	else
		idle_head = c->next;
	if (c->next >= 0)
		conns[c->next].prev = c->prev;
	else
		idle_tail = c->prev;
	c->prev = c->next = -1;
}

static struct oconn *idle_pop(void)
{
	struct oconn *c;

	if (idle_head < 0)
		return NULL;
	c = &conns[fifo ? idle_tail : idle_head];
	idle_remove(c);
	return c;
}

/* Closes the connection; its request, if any, must have been resolved or is failed here. */
static void conn_close(struct oconn *c, enum oerr err)
{
	if (c->req >= 0) {
		req_resolve((uint64_t)c->req, err, 0, now_ns());
		c->req = -1;
	}
	if (c->state == CONN_IDLE)
		idle_remove(c);
	close(c->fd);
	c->fd = -1;
	c->state = CONN_FREE;
	free_slots[nfree++] = (int)(c - conns);
	nopen--;
}

/* Writes what is left of the request. Returns 0 (done or to be continued on EPOLLOUT), -1 when
 * the connection failed and was closed. */
static int conn_write(struct oconn *c)
{
	struct iovec iov[2];
	struct msghdr msg = {.msg_iov = iov};
	uint64_t b;
	ssize_t w;

	while (c->wpos < c->hlen + bodylen) {
		msg.msg_iovlen = 0;
		if (c->wpos < c->hlen) {
			iov[0].iov_base = c->h + c->wpos;
			iov[0].iov_len = c->hlen - c->wpos;
			msg.msg_iovlen = 1;
		}
		b = c->wpos > c->hlen ? c->wpos - c->hlen : 0;
		if (b < bodylen) {
			uint64_t off = b % BODY_PATTERN, n = BODY_PATTERN - off;

			iov[msg.msg_iovlen].iov_base = body_pattern + off;
			iov[msg.msg_iovlen].iov_len = n < bodylen - b ? n : bodylen - b;
			msg.msg_iovlen++;
		}
		w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		if (w == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			conn_close(c, OERR_RESET);
			return -1;
		}
		c->wpos += (size_t)w;
	}
	return 0;
}

/* Puts request k on connection c (connected, no request) and starts writing it. */
static void conn_assign(struct oconn *c, uint64_t k)
{
	c->req = (int64_t)k;
	c->wpos = 0;
	c->state = CONN_BUSY;
	c->h = head;
	c->hlen = headlen;
	if (id_header) {
		int n;

		memcpy(c->hbuf, head, idoff);
		n = sprintf(c->hbuf + idoff, "%llu", (unsigned long long)(id_base + k));
		memcpy(c->hbuf + idoff + n, head + idoff, headlen - idoff);
		c->h = c->hbuf;
		c->hlen = headlen + (size_t)n;
		c->idlen = (size_t)n;
	}
	h1resp_init(&c->resp, head_request);
	if (check_id)
		c->resp.capture = id_lower;
	reqs[k].conn = (int32_t)(c - conns);
	conn_write(c);
}

/* Opens a connection for request k. On failure the request is failed. */
static void conn_open(uint64_t k)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
	struct oconn *c;
	int one = 1, fd;

	fd = socket(target.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		complain("socket: %s", strerror(errno));
		req_resolve(k, OERR_LOCAL, 0, now_ns());
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = &conns[free_slots[--nfree]];
	c->fd = fd;
	c->req = (int64_t)k;
	c->served = 0;
	c->prev = c->next = -1;
	c->state = CONN_CONNECTING;
	reqs[k].conn = (int32_t)(c - conns);
	nopen++;
	n_conns++;
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
		complain("epoll_ctl: %s", strerror(errno));
		conn_close(c, OERR_LOCAL);
		return;
	}
	if (connect(fd, (struct sockaddr *)&target.addr, target.addrlen) == -1 &&
	    errno != EINPROGRESS) {
		complain("connect: %s", strerror(errno));
		conn_close(c,
			   errno == EADDRNOTAVAIL || errno == ENOBUFS ? OERR_LOCAL : OERR_CONNECT);
		return;
	}
	/* Even when connect() succeeded at once, writing waits for EPOLLOUT: one code path. */
}

/* Gives waiting requests to idle connections, or to new ones while the limit allows. */
static void dispatch(void)
{
	struct oconn *c;

	while (pend_head < issued) {
		if (grow && nopen < maxc) {
			conn_open(pend_head++);
			continue;
		}
		c = idle_pop();
		if (c) {
			conn_assign(c, pend_head++);
			continue;
		}
		if (nopen >= maxc)
			break;
		conn_open(pend_head++);
	}
}

/* With --check-id: non-zero when the response on c echoes the id of c's request. */
static int echoes_id(const struct oconn *c)
{
	const struct h1resp *r = &c->resp;

	return r->cap_count == 1 && r->cap_len == c->idlen &&
	       !memcmp(r->cap_val, c->hbuf + idoff, c->idlen);
}

/* A complete response on c. Returns 0 when c went back to the idle list, -1 when closed. */
static int conn_complete(struct oconn *c)
{
	int status = c->resp.status;
	enum oerr err = status >= 200 && status < 400 ? OERR_NONE : OERR_STATUS;

	if (err == OERR_NONE && check_id && !echoes_id(c)) {
		complain("%s", "a response that is not the request's own (--check-id)");
		err = OERR_MISMATCH;
	}
	req_resolve((uint64_t)c->req, err, status, now_ns());
	c->req = -1;
	c->served++;
	if (err != OERR_MISMATCH && h1resp_reusable(&c->resp) && !req_close &&
	    c->wpos == c->hlen + bodylen) {
		idle_push(c);
		return 0;
	}
	conn_close(c, OERR_NONE);
	return -1;
}

static void conn_read(struct oconn *c, uint32_t events)
{
	size_t off, used;
	ssize_t n;
	int rc;

	for (;;) {
		n = recv(c->fd, rbuf, sizeof(rbuf), 0);
		if (n > 0) {
			if (c->state != CONN_BUSY) {
				complain("%s", "bytes from the server with no request in flight");
				conn_close(c, OERR_NONE);
				return;
			}
			rc = h1resp_feed(&c->resp, rbuf, (size_t)n, &used);
			off = used;
			if (rc == H1RESP_ERR) {
				complain("malformed response: %s", c->resp.error);
				conn_close(c, OERR_MALFORMED);
				return;
			}
			if (rc == H1RESP_DONE) {
				if (conn_complete(c) < 0)
					return;
				if (off < (size_t)n) {
					complain("%s", "bytes after the end of a response");
					conn_close(c, OERR_NONE);
					return;
				}
			}
			/* A short read emptied the socket: what arrives later raises a new edge.
			 * Only a close seen in this event must be read now (it will not raise one).
			 */
			if ((size_t)n < sizeof(rbuf) &&
			    !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
				return;
			continue;
		}
		if (n == 0) {
			if (c->state != CONN_BUSY) {
				n_closed_idle++;
				conn_close(c, OERR_NONE);
				return;
			}
			rc = h1resp_eof(&c->resp);
			if (rc == H1RESP_DONE) {
				if (conn_complete(c) == 0)
					conn_close(c, OERR_NONE);
				return;
			}
			conn_close(c, OERR_EOF);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (c->state == CONN_BUSY)
			complain("recv: %s", strerror(errno));
		conn_close(c, OERR_RESET);
		return;
	}
}

static void conn_event(struct oconn *c, uint32_t events)
{
	if (c->state == CONN_FREE)
		return;
	if (c->state == CONN_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err || (events & EPOLLHUP)) {
			complain("connect: %s", strerror(err ? err : ECONNRESET));
			conn_close(c, OERR_CONNECT);
			return;
		}
		conn_assign(c, (uint64_t)c->req);
		if (c->state == CONN_FREE)
			return;
	} else if (c->state == CONN_BUSY && (events & EPOLLOUT) && c->wpos < c->hlen + bodylen) {
		if (conn_write(c) < 0)
			return;
	}
	/* --lazy: what happens to an idle connection is seen only when it is used again. */
	if (lazy && c->state == CONN_IDLE)
		return;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		conn_read(c, events);
}

/* Fails every unanswered request whose due time is TIMEOUT_MS past. Deadlines grow with the
 * request index, so the late ones are always the oldest unresolved ones. */
static void sweep(uint64_t now)
{
	struct oreq *q;

	while (oldest < issued) {
		q = &reqs[oldest];
		if (q->done) {
			oldest++;
			continue;
		}
		if (due(oldest) + timeout_ns > now)
			break;
		if (q->conn >= 0) {
			conn_close(&conns[q->conn], OERR_TIMEOUT);
		} else {
			/* Still waiting for a connection: it is the head of the wait queue. */
			pend_head = oldest + 1;
			req_resolve(oldest, OERR_TIMEOUT, 0, now);
		}
		oldest++;
	}
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int wait_events(struct epoll_event *evs, int max, uint64_t wake, uint64_t now)
{
	static int no_pwait2;
	struct timespec ts;
	uint64_t d = wake > now ? wake - now : 0;
	int n;

	if (!no_pwait2) {
		ts.tv_sec = (time_t)(d / 1000000000ULL);
		ts.tv_nsec = (long)(d % 1000000000ULL);
		n = epoll_pwait2(ep, evs, max, &ts, NULL);
		if (n != -1 || errno != ENOSYS)
			return n;
		no_pwait2 = 1;
	}
	return epoll_wait(ep, evs, max, (int)((d + 999999) / 1000000));
}

static int run(uint64_t start_at)
{
	struct epoll_event evs[512];
	uint64_t now, wake;
	int n, i;

	start_ns = start_at ? start_at : now_ns();
	for (;;) {
		now = now_ns();
		if (stop && total > issued)
			total = issued;
		while (issued < total && due(issued) <= now) {
			if (now - due(issued) > lag_max_ns)
				lag_max_ns = now - due(issued);
			issued++;
		}
		sweep(now);
		dispatch();
		if (issued == total && nresolved == total)
			return 0;
		wake = UINT64_MAX;
		if (issued < total)
			wake = due(issued);
		if (oldest < issued && due(oldest) + timeout_ns < wake)
			wake = due(oldest) + timeout_ns;
		n = wait_events(evs, (int)(sizeof(evs) / sizeof(evs[0])), wake, now);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			perror("oload: epoll_wait");
			return -1;
		}
		for (i = 0; i < n; i++)
			conn_event(evs[i].data.ptr, evs[i].events);
		dispatch();
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value with at least num/den of the values at or below it. */
static double pct_ms(const uint32_t *v, uint64_t n, uint64_t num, uint64_t den)
{
	uint64_t rank = (n * num + den - 1) / den;

	if (!n)
		return 0;
	return v[rank ? rank - 1 : 0] / 1000.0;
}

static void report(FILE *csv)
{
	uint32_t *lat = malloc((total ? total : 1) * sizeof(*lat));
	uint64_t i;

	if (!lat) {
		perror("oload: malloc");
		exit(1);
	}
	for (i = 0; i < total; i++)
		lat[i] = reqs[i].lat_us;
	qsort(lat, total, sizeof(*lat), cmp_u32);
	printf("sent=%llu ok=%llu failed=%llu slow=%llu p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f "
	       "max_ms=%.3f status_5xx=%llu status_4xx=%llu err_connect=%llu err_reset=%llu "
	       "err_eof=%llu err_timeout=%llu err_malformed=%llu err_local=%llu err_mismatch=%llu "
	       "conns=%llu closed_idle=%llu lag_max_ms=%.3f interrupted=%d\n",
	       (unsigned long long)total, (unsigned long long)n_ok, (unsigned long long)n_failed,
	       (unsigned long long)n_slow, pct_ms(lat, total, 50, 100), pct_ms(lat, total, 99, 100),
	       pct_ms(lat, total, 999, 1000), total ? lat[total - 1] / 1000.0 : 0.0,
	       (unsigned long long)n_5xx, (unsigned long long)n_4xx,
	       (unsigned long long)n_err[OERR_CONNECT], (unsigned long long)n_err[OERR_RESET],
	       (unsigned long long)n_err[OERR_EOF], (unsigned long long)n_err[OERR_TIMEOUT],
	       (unsigned long long)n_err[OERR_MALFORMED], (unsigned long long)n_err[OERR_LOCAL],
	       (unsigned long long)n_err[OERR_MISMATCH], (unsigned long long)n_conns,
	       (unsigned long long)n_closed_idle, lag_max_ns / 1e6, stop ? 1 : 0);
	fflush(stdout);
	if (lag_max_ns > 5000000)
		fprintf(
		    stderr,
		    "oload: warning: a request was issued %.1f ms late: the machine was too busy "
		    "to keep the schedule\n",
		    lag_max_ns / 1e6);
	free(lat);
	if (!csv)
		return;
	fprintf(csv, "sched_ms,latency_ms,status,error\n");
	for (i = 0; i < total; i++)
		fprintf(csv, "%.3f,%.3f,%u,%s\n", (due(i) - start_ns) / 1e6,
			reqs[i].lat_us / 1000.0, reqs[i].status, oerr_name[reqs[i].err]);
}

static int num(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

/* The name of a header line "Name: value" is (case-insensitively) name. */
static int header_is(const char *line, const char *name)
{
	size_t n = strlen(name);

	return !strncasecmp(line, name, n) && line[n] == ':';
}

/* "Name: value" with a token name and no CR or LF. */
static int header_valid(const char *h)
{
	size_t n = strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			     "!#$%&'*+-.^_`|~");

	return n && h[n] == ':' && !strpbrk(h, "\r\n");
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: oload -u http://127.0.0.1:PORT/path -r RATE -d SECONDS [-c MAXCONNS]\n"
	    "             [-t TIMEOUT_MS] [-s SLOW_MS] [-m METHOD] [-b BODYBYTES]\n"
	    "             [-H 'Name: value']... [--csv FILE]\n"
	    "             [--id-header NAME [--id-base N] [--check-id]]\n"
	    "             [--start-at MONOTONIC_SECONDS] [--fifo] [--grow] [--lazy]\n"
	    "defaults: -c 256 -t 5000 -s 1000 -m GET -b 0 (no body). Loopback addresses only.\n"
	    "--check-id: a 200-399 response must echo the request's id header, else it fails as\n"
	    "a mismatch (another request's answer).\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"csv", required_argument, NULL, 'C'},
	    {"id-header", required_argument, NULL, 'I'},
	    {"id-base", required_argument, NULL, 'B'},
	    {"start-at", required_argument, NULL, 'S'},
	    {"fifo", no_argument, NULL, 'F'},
	    {"grow", no_argument, NULL, 'G'},
	    {"lazy", no_argument, NULL, 'L'},
	    {"check-id", no_argument, NULL, 'K'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *url = NULL, *method = "GET", *csvpath = NULL;
	const char *hdrs[64];
	double v, dur = 0, tmo = 5000, slow = 1000, bytes = 0, start_at = 0;
	int nhdrs = 0, have_host = 0, opt, i, rc;
	struct rlimit rl;
	struct sigaction sa;
	FILE *csv = NULL;
	size_t n;

	rate = 0;
	while ((opt = getopt_long(argc, argv, "u:r:d:c:t:s:m:b:H:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			url = optarg;
			break;
		case 'r':
			if (num(optarg, 1e-3, 1e7, &rate))
				goto bad;
			break;
		case 'd':
			if (num(optarg, 1e-3, 86400, &dur))
				goto bad;
			break;
		case 'c':
			if (num(optarg, 1, 1000000, &v) || v != (int)v)
				goto bad;
			maxc = (int)v;
			break;
		case 't':
			if (num(optarg, 1, 3600000, &tmo))
				goto bad;
			break;
		case 's':
			if (num(optarg, 0, 3600000, &slow))
				goto bad;
			break;
		case 'm':
			method = optarg;
			for (n = 0; method[n]; n++)
				if (!strchr(
					"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_",
					method[n]))
					goto bad;
			if (!n)
				goto bad;
			break;
		case 'b':
			if (num(optarg, 0, 1e12, &bytes) || bytes != (double)(uint64_t)bytes)
				goto bad;
			break;
		case 'H':
			if (nhdrs == (int)(sizeof(hdrs) / sizeof(hdrs[0])) || !header_valid(optarg))
				goto bad;
			hdrs[nhdrs++] = optarg;
			break;
		case 'C':
			csvpath = optarg;
			break;
		case 'I':
			id_header = optarg;
			for (n = 0; id_header[n]; n++)
				if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					    "0123456789-_",
					    id_header[n]))
					goto bad;
			if (!n || n > 64)
				goto bad;
			break;
		case 'B':
			if (num(optarg, 0, 1e15, &v) || v != (double)(uint64_t)v)
				goto bad;
			id_base = (uint64_t)v;
			break;
		case 'S':
			if (num(optarg, 0, 1e9, &start_at))
				goto bad;
			break;
		case 'F':
			fifo = 1;
			break;
		case 'G':
			grow = 1;
			break;
		case 'L':
			lazy = 1;
			break;
		case 'K':
			check_id = 1;
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 1;
		}
	}
	if (optind != argc || !url || rate <= 0 || dur <= 0) {
		usage();
		return 1;
	}
	if (check_id && !id_header) {
		fprintf(stderr, "oload: --check-id needs --id-header\n");
		return 1;
	}
	for (n = 0; id_header && id_header[n]; n++)
		id_lower[n] = (char)(id_header[n] >= 'A' && id_header[n] <= 'Z' ? id_header[n] + 32
										: id_header[n]);
	rc = url_parse(url, &target);
	if (rc == URL_ERR_NOT_LOOPBACK) {
		fprintf(stderr,
			"oload: %s: only loopback addresses (127.0.0.0/8, ::1) are allowed\n", url);
		return 1;
	}
	if (rc) {
		fprintf(stderr, "oload: %s: not an http://HOST[:PORT][/path] URL\n", url);
		return 1;
	}
	/* Requests due before the end: i / RATE < SECONDS. */
	total = (uint64_t)(rate * dur);
	if ((double)total < rate * dur - 1e-6)
		total++;
	if (!total || total > MAX_REQUESTS) {
		fprintf(stderr, "oload: RATE x SECONDS must be between 1 and %llu requests\n",
			MAX_REQUESTS);
		return 1;
	}
	timeout_ns = (uint64_t)(tmo * 1e6);
	slow_ns = (uint64_t)(slow * 1e6);
	bodylen = (uint64_t)bytes;
	head_request = !strcmp(method, "HEAD");

	/* The request head, built once. */
	n = (size_t)snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\n", method, target.path);
	for (i = 0; i < nhdrs; i++) {
		if (header_is(hdrs[i], "host"))
			have_host = 1;
		if (header_is(hdrs[i], "content-length") ||
		    header_is(hdrs[i], "transfer-encoding")) {
			fprintf(stderr, "oload: the body is set with -b, not with -H '%s'\n",
				hdrs[i]);
			return 1;
		}
		if (header_is(hdrs[i], "connection") && strcasestr(hdrs[i] + 11, "close"))
			req_close = 1;
	}
	if (!have_host && n < sizeof(head))
		n += (size_t)snprintf(head + n, sizeof(head) - n, "Host: %s\r\n", target.host);
	for (i = 0; i < nhdrs && n < sizeof(head); i++)
		n += (size_t)snprintf(head + n, sizeof(head) - n, "%s\r\n", hdrs[i]);
	if (id_header && n < sizeof(head)) {
		n += (size_t)snprintf(head + n, sizeof(head) - n, "%s: ", id_header);
		idoff = n;
		if (n < sizeof(head))
			n += (size_t)snprintf(head + n, sizeof(head) - n, "\r\n");
	}
	if (bodylen && n < sizeof(head))
		n += (size_t)snprintf(head + n, sizeof(head) - n, "Content-Length: %llu\r\n",
				      (unsigned long long)bodylen);
	if (n < sizeof(head))
		n += (size_t)snprintf(head + n, sizeof(head) - n, "\r\n");
	if (n >= sizeof(head)) {
		fprintf(stderr, "oload: request head longer than %d bytes\n", HEAD_MAX);
		return 1;
	}
	headlen = n;
	for (i = 0; i < BODY_PATTERN; i++)
		body_pattern[i] = "0123456789abcdef"[i % 16];

	/* One descriptor per connection, a few more for the rest. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)maxc + 16 > rl.rlim_cur) {
		fprintf(stderr, "oload: -c %d needs more file descriptors than the limit (%llu)\n",
			maxc, (unsigned long long)rl.rlim_cur);
		return 1;
	}
	if (csvpath) {
		csv = fopen(csvpath, "w");
		if (!csv) {
			perror(csvpath);
			return 1;
		}
	}
	reqs = calloc(total, sizeof(*reqs));
	conns = calloc((size_t)maxc, sizeof(*conns));
	free_slots = calloc((size_t)maxc, sizeof(*free_slots));
	if (!reqs || !conns || !free_slots) {
		perror("oload: calloc");
		return 1;
	}
	for (i = 0; i < maxc; i++) {
		conns[i].fd = -1;
		conns[i].req = -1;
		free_slots[i] = maxc - 1 - i;
		/* The head and an id of at most 20 digits. */
		if (id_header && !(conns[i].hbuf = malloc(headlen + 24))) {
			perror("oload: malloc");
			return 1;
		}
	}
	nfree = maxc;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep == -1) {
		perror("oload: epoll_create1");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Wake-ups on time: the default 50 us timer slack would add to every latency. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

	if (start_at) {
		double ahead = start_at - now_ns() / 1e9;

		if (ahead < -1 || ahead > 60) {
			fprintf(stderr, "oload: --start-at %.3f is %.3f s from now (allowed: -1 to 60)\n",
				start_at, ahead);
			return 1;
		}
	}
	if (run(start_at ? (uint64_t)(start_at * 1e9) : 0))
		return 1;
	report(csv);
	if (csv && fclose(csv)) {
		perror(csvpath);
		return 1;
	}
	return 0;
bad:
	fprintf(stderr, "oload: invalid -%c %s\n", opt, optarg);
	usage();
	return 1;
}
