/* idleconns: holds N idle keep-alive HTTP/1.1 client connections, to measure what an idle
 * client costs a proxy; or N connections whose request heads never end (-H), a slow-head
 * (slowloris) client.
 *
 *   idleconns -u http://127.0.0.1:PORT/path -n N [-s SECONDS] [-p PARALLEL] [-t TIMEOUT_MS]
 *             [-H [-i INTERVAL_MS]] [-k [-r RATE]]
 *
 * Opens N connections, at most PARALLEL (default 1) being set up at once; on each sends one
 * GET and reads the whole response (2xx or 3xx, keep-alive), so that every connection is
 * established at the HTTP level. One at a time by default, so that the server's memory for
 * requests in progress is not mistaken for the cost of idle connections. Then prints "ready N" and
 * holds them all, idle, for SECONDS (default 60) or until SIGINT, SIGTERM or SIGUSR1, and ends by
 * printing "held N closed K", K being how many the server closed meanwhile. Exit status: 0, 1 when
 * a connection could not be set up (nothing is printed on stdout then), 3 when the server closed
 * some (K > 0). Only loopback addresses are accepted.
 *
 * -H: each connection sends the request line, the Host header and the start of one more header
 * ("X-Slow: "), then one more byte of that header's value every INTERVAL_MS (default 1000; 0:
 * nothing more), so that its head is never complete; it is set up once the first part is sent.
 *
 * -k: keep going, for more connections than the server will take: a connection the server closes
 * (during set-up or after) is counted, not an error, and set-up ends TIMEOUT_MS after it began
 * even if some connections are not set up (the server left them in its backlog): those stay
 * open, and later become idle or slow heads if the server gets to them; connections not opened
 * by then never are. Prints "ready R" (R: set up at that time), then "held H closed K" (H: still
 * open at the end, set up or not), also when interrupted during set-up; exit status 0 unless a
 * socket could not be created.
 *
 * -r RATE (with -k): after set-up, the connections the server closed (then or later) are
 * opened (and set up) again, at most RATE a second over all: clients that come back, so that the
 * pressure lasts. The last line then ends with " reopened M", H counting the connections open
 * or being opened again. */
#define _GNU_SOURCE
#include <errno.h>
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
#include <time.h>
#include <unistd.h>

#include "h1resp.h"
#include "url.h"

enum ic_state {
	IC_CONNECTING,
	IC_SENDING,
	IC_READING,
	IC_IDLE,
	IC_HEAD, /* -H: a head that never ends */
	IC_CLOSED,
};

struct ic {
	int fd;
	enum ic_state state;
	size_t wpos;
	uint64_t started_ns;
	struct h1resp resp;
};

static struct url target;
static char req[4600];
static size_t reqlen;
static volatile sig_atomic_t stop;
static int slow_heads, keep_going;
static long reopen_rate;

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

static _Noreturn void die(long i, const char *what, const char *why)
{
	fprintf(stderr, "idleconns: connection %ld: %s: %s\n", i, what, why);
	exit(1);
}

static int ic_open(struct ic *c, int ep, long i)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
				 .data.u64 = (uint64_t)i};
	int one = 1;

	c->fd = socket(target.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		die(i, "socket", strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->state = IC_CONNECTING;
	c->wpos = 0;
	c->started_ns = now_ns();
	h1resp_init(&c->resp, 0);
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) == -1)
		die(i, "epoll_ctl", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&target.addr, target.addrlen) == -1 &&
	    errno != EINPROGRESS)
		die(i, "connect", strerror(errno));
	return 0;
}

/* A connection that failed during set-up: fatal, or with -k closed and counted (returns -1). */
static int ic_fail(struct ic *c, long i, const char *what, const char *why)
{
	if (!keep_going)
		die(i, what, why);
	close(c->fd);
	c->state = IC_CLOSED;
	return -1;
}

/* Advances connection i during set-up. Returns 1 when it became idle (or, with -H, its partial
 * head is sent), 0 while in progress, -1 when the server closed it (-k). */
static int ic_setup(struct ic *c, uint32_t events, long i)
{
	char buf[16384];
	size_t used;
	ssize_t n;
	int err = 0, rc;
	socklen_t len = sizeof(err);

	if (c->state == IC_CONNECTING) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return 0;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err)
			return ic_fail(c, i, "connect", strerror(err));
		c->state = IC_SENDING;
	}
	while (c->state == IC_SENDING) {
		n = send(c->fd, req + c->wpos, reqlen - c->wpos, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno != EINTR)
				return ic_fail(c, i, "send", strerror(errno));
			continue;
		}
		c->wpos += (size_t)n;
		if (c->wpos == reqlen) {
			if (slow_heads) {
				c->state = IC_HEAD;
				return 1;
			}
			c->state = IC_READING;
		}
	}
	while (c->state == IC_READING) {
		n = recv(c->fd, buf, sizeof(buf), 0);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno != EINTR)
				return ic_fail(c, i, "recv", strerror(errno));
			continue;
		}
		if (!n && keep_going)
			return ic_fail(c, i, "response", "closed");
		rc = n ? h1resp_feed(&c->resp, buf, (size_t)n, &used) : h1resp_eof(&c->resp);
		if (rc == H1RESP_ERR)
			return ic_fail(c, i, "response", c->resp.error);
		if (rc == H1RESP_MORE)
			continue;
		if (c->resp.status < 200 || c->resp.status >= 400) {
			snprintf(buf, sizeof(buf), "status %d", c->resp.status);
			return ic_fail(c, i, "response", buf);
		}
		if (!n || !h1resp_reusable(&c->resp))
			return ic_fail(c, i, "response", "the server does not keep the connection open");
		if (used < (size_t)n)
			return ic_fail(c, i, "response", "bytes after the response");
		c->state = IC_IDLE;
		return 1;
	}
	return 0;
}

/* -H: one more byte of every slow head's endless header value. */
static void trickle(struct ic *conns, long opened)
{
	long i;

	for (i = 0; i < opened; i++)
		if (conns[i].state == IC_HEAD)
			(void)!send(conns[i].fd, "a", 1, MSG_NOSIGNAL); /* a close shows as an event */
}

static void usage(void)
{
	fprintf(stderr, "usage: idleconns -u http://127.0.0.1:PORT/path -n N [-s SECONDS] "
			"[-p PARALLEL] [-t TIMEOUT_MS] [-H [-i INTERVAL_MS]] [-k [-r RATE]]\n"
			"defaults: -s 60 -p 1 -t 10000 -i 1000. Loopback addresses only.\n");
}

static long arg(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		usage();
		exit(1);
	}
	return v;
}

/* Whether connection c is set up: idle, or (-H) its head started. */
static int ic_up(const struct ic *c)
{
	return c->state == IC_IDLE || c->state == IC_HEAD;
}

/* An event on connection i once it is set up: anything but a late EPOLLOUT edge (an ACK) means
 * the server closed it (or sent junk; -H: its 408). Returns 1 when it is gone. */
static int ic_gone(struct ic *c, uint32_t events)
{
	if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		return 0;
	close(c->fd);
	c->state = IC_CLOSED;
	return 1;
}

int main(int argc, char **argv)
{
	struct epoll_event evs[256];
	struct sigaction sa;
	struct rlimit rl;
	struct ic *conns;
	const char *url = NULL;
	long n = 0, hold_s = 60, parallel = 1, timeout_ms = 10000, interval_ms = 1000, opened = 0;
	long up = 0, closed = 0, setting_up = 0, first = 0, i, k;
	long *gone = NULL, ngone = 0, reopened = 0; /* -r: closed connections to open again */
	double credit = 0;
	uint64_t end_ns, setup_end_ns, next_trickle, last_ns;
	int ep, opt, rc, ne;

	while ((opt = getopt(argc, argv, "u:n:s:p:t:i:r:Hkh")) != -1) {
		switch (opt) {
		case 'u':
			url = optarg;
			break;
		case 'n':
			n = arg(optarg, 1, 1000000);
			break;
		case 's':
			hold_s = arg(optarg, 0, 86400);
			break;
		case 'p':
			parallel = arg(optarg, 1, 100000);
			break;
		case 't':
			timeout_ms = arg(optarg, 1, 3600000);
			break;
		case 'i':
			interval_ms = arg(optarg, 0, 3600000);
			break;
		case 'H':
			slow_heads = 1;
			break;
		case 'k':
			keep_going = 1;
			break;
		case 'r':
			reopen_rate = arg(optarg, 1, 1000000);
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 1;
		}
	}
	if (!url || !n || optind != argc || (reopen_rate && !keep_going)) {
		usage();
		return 1;
	}
	rc = url_parse(url, &target);
	if (rc) {
		fprintf(stderr, "idleconns: %s: %s\n", url,
			rc == URL_ERR_NOT_LOOPBACK ? "only loopback addresses are allowed"
						   : "not an http://HOST[:PORT][/path] URL");
		return 1;
	}
	reqlen = (size_t)snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n%s", target.path,
				  target.host, slow_heads ? "X-Slow: " : "\r\n");
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)n + 16 > rl.rlim_cur) {
		fprintf(stderr,
			"idleconns: %ld connections need more file descriptors than the "
			"limit (%llu)\n",
			n, (unsigned long long)rl.rlim_cur);
		return 1;
	}
	conns = calloc((size_t)n, sizeof(*conns));
	gone = calloc((size_t)n, sizeof(*gone));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!conns || !gone || ep == -1) {
		perror("idleconns");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Set-up: a window of PARALLEL connections in progress. */
	setup_end_ns = now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	next_trickle = now_ns() + (uint64_t)interval_ms * 1000000ULL;
	while (up + closed < n) {
		if (stop) {
			fprintf(stderr, "idleconns: interrupted with %ld of %ld connections up\n",
				up, n);
			if (keep_going)
				break; /* the counts are printed all the same */
			return 1;
		}
		if (keep_going && now_ns() >= setup_end_ns)
			break; /* the others wait in the server's backlog: they stay so */
		while (opened < n && setting_up < parallel) {
			ic_open(&conns[opened], ep, opened);
			opened++;
			setting_up++;
		}
		ne = epoll_wait(ep, evs, 256, 100);
		if (ne == -1 && errno != EINTR) {
			perror("idleconns: epoll_wait");
			return 1;
		}
		for (k = 0; k < ne; k++) {
			i = (long)evs[k].data.u64;
			if (conns[i].state == IC_CLOSED)
				continue;
			if (ic_up(&conns[i])) {
				if (!ic_gone(&conns[i], evs[k].events))
					continue;
				if (!keep_going) {
					fprintf(stderr,
						"idleconns: connection %ld: closed by the server during "
						"set-up\n",
						i);
					return 1;
				}
				up--;
				closed++;
				gone[ngone++] = i;
				continue;
			}
			rc = ic_setup(&conns[i], evs[k].events, i);
			if (rc) {
				setting_up--;
				if (rc > 0)
					up++;
				else {
					closed++;
					gone[ngone++] = i;
				}
			}
		}
		if (slow_heads && interval_ms && now_ns() >= next_trickle) {
			trickle(conns, opened);
			next_trickle += (uint64_t)interval_ms * 1000000ULL;
		}
		/* Connections are opened in order: the oldest in progress is the first to time out.
		 */
		while (first < opened && conns[first].state >= IC_IDLE)
			first++;
		if (!keep_going && first < opened &&
		    now_ns() - conns[first].started_ns > (uint64_t)timeout_ms * 1000000ULL)
			die(first, "set-up", "timeout");
	}
	printf("ready %ld\n", up);
	fflush(stdout);

	/* Hold: any event on a set-up connection means the server closed it (or sent junk); with
	 * -k, those still in set-up go on with it. */
	end_ns = now_ns() + (uint64_t)hold_s * 1000000000ULL;
	last_ns = now_ns();
	while (!stop) {
		uint64_t now = now_ns();
		int ms;

		if (now >= end_ns)
			break;
		ms = (int)((end_ns - now + 999999) / 1000000);
		if (reopen_rate) {
			/* -r: the closed ones come back, RATE a second at most */
			credit += (double)(now - last_ns) * (double)reopen_rate / 1e9;
			last_ns = now;
			if (credit > (double)reopen_rate)
				credit = (double)reopen_rate; /* at most a second's worth at once */
			while (ngone && credit >= 1) {
				i = gone[--ngone];
				ic_open(&conns[i], ep, i);
				setting_up++;
				reopened++;
				credit -= 1;
			}
			if (ngone && ms > 10)
				ms = 10;
		}
		if (slow_heads && interval_ms) {
			if (now >= next_trickle) {
				trickle(conns, opened);
				next_trickle += (uint64_t)interval_ms * 1000000ULL;
				if (next_trickle < now)
					next_trickle = now + (uint64_t)interval_ms * 1000000ULL;
			}
			if ((uint64_t)ms > (next_trickle - now) / 1000000 + 1)
				ms = (int)((next_trickle - now) / 1000000 + 1);
		}
		ne = epoll_wait(ep, evs, 256, ms > 1000 ? 1000 : ms);
		if (ne == -1) {
			if (errno == EINTR)
				continue;
			perror("idleconns: epoll_wait");
			return 1;
		}
		for (k = 0; k < ne; k++) {
			i = (long)evs[k].data.u64;
			if (conns[i].state == IC_CLOSED)
				continue;
			if (!ic_up(&conns[i])) {
				/* -k: the server got to a connection it had left waiting (or -r:
				 * one opened again) */
				rc = ic_setup(&conns[i], evs[k].events, i);
				if (rc)
					setting_up--;
				if (rc > 0)
					up++;
				if (rc < 0) {
					closed++;
					gone[ngone++] = i;
				}
				continue;
			}
			if (!ic_gone(&conns[i], evs[k].events))
				continue;
			if (!closed)
				fprintf(stderr, "idleconns: connection %ld closed by the server\n",
					i);
			up--;
			closed++;
			gone[ngone++] = i;
		}
	}
	if (reopen_rate)
		printf("held %ld closed %ld reopened %ld\n", opened - ngone, closed, reopened);
	else
		printf("held %ld closed %ld\n", opened - closed, closed);
	fflush(stdout);
	free(conns); /* the descriptors close at exit */
	free(gone);
	return closed && !keep_going ? 3 : 0;
}
