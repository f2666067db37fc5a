/* idleconns: holds N idle keep-alive HTTP/1.1 client connections, to measure what an idle
 * client costs a proxy.
 *
 *   idleconns -u http://127.0.0.1:PORT/path -n N [-s SECONDS] [-p PARALLEL] [-t TIMEOUT_MS]
 *
 * Opens N connections, at most PARALLEL (default 1) being set up at once; on each sends one
 * GET and reads the whole response (2xx or 3xx, keep-alive), so that every connection is
 * established at the HTTP level. One at a time by default, so that the server's memory for
 * requests in progress is not mistaken for the cost of idle connections. Then prints "ready N" and
 * holds them all, idle, for SECONDS (default 60) or until SIGINT, SIGTERM or SIGUSR1, and ends by
 * printing "held N closed K", K being how many the server closed meanwhile. Exit status: 0, 1 when
 * a connection could not be set up (nothing is printed on stdout then), 3 when the server closed
 * some (K > 0). Only loopback addresses are accepted. */
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

/* Advances connection i during set-up. Returns 1 when it became idle, 0 otherwise. */
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
			die(i, "connect", strerror(err));
		c->state = IC_SENDING;
	}
	while (c->state == IC_SENDING) {
		n = send(c->fd, req + c->wpos, reqlen - c->wpos, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno != EINTR)
				die(i, "send", strerror(errno));
			continue;
		}
		c->wpos += (size_t)n;
		if (c->wpos == reqlen)
			c->state = IC_READING;
	}
	while (c->state == IC_READING) {
		n = recv(c->fd, buf, sizeof(buf), 0);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno != EINTR)
				die(i, "recv", strerror(errno));
			continue;
		}
		rc = n ? h1resp_feed(&c->resp, buf, (size_t)n, &used) : h1resp_eof(&c->resp);
		if (rc == H1RESP_ERR)
			die(i, "response", c->resp.error);
		if (rc == H1RESP_MORE)
			continue;
		if (c->resp.status < 200 || c->resp.status >= 400) {
			snprintf(buf, sizeof(buf), "status %d", c->resp.status);
			die(i, "response", buf);
		}
		if (!n || !h1resp_reusable(&c->resp))
			die(i, "response", "the server does not keep the connection open");
		if (used < (size_t)n)
			die(i, "response", "bytes after the response");
		c->state = IC_IDLE;
		return 1;
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: idleconns -u http://127.0.0.1:PORT/path -n N [-s SECONDS] "
			"[-p PARALLEL] [-t TIMEOUT_MS]\n"
			"defaults: -s 60 -p 1 -t 10000. Loopback addresses only.\n");
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

int main(int argc, char **argv)
{
	struct epoll_event evs[256];
	struct sigaction sa;
	struct rlimit rl;
	struct ic *conns;
	const char *url = NULL;
	long n = 0, hold_s = 60, parallel = 1, timeout_ms = 10000, opened = 0, idle = 0, closed = 0;
	long setting_up = 0, first = 0, i, k;
	uint64_t end_ns;
	int ep, opt, rc, ne;

	while ((opt = getopt(argc, argv, "u:n:s:p:t:h")) != -1) {
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
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 1;
		}
	}
	if (!url || !n || optind != argc) {
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
	reqlen = (size_t)snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n",
				  target.path, target.host);
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
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!conns || ep == -1) {
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
	while (idle < n) {
		if (stop) {
			fprintf(stderr, "idleconns: interrupted with %ld of %ld connections up\n",
				idle, n);
			return 1;
		}
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
			if (conns[i].state == IC_IDLE) {
				/* A late EPOLLOUT edge (an ACK) says nothing; anything else is a
				 * close. */
				if (!(evs[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
					continue;
				fprintf(stderr,
					"idleconns: connection %ld: closed by the server during "
					"set-up\n",
					i);
				return 1;
			}
			if (ic_setup(&conns[i], evs[k].events, i)) {
				idle++;
				setting_up--;
			}
		}
		/* Connections are opened in order: the oldest in progress is the first to time out.
		 */
		while (first < opened && conns[first].state == IC_IDLE)
			first++;
		if (first < opened &&
		    now_ns() - conns[first].started_ns > (uint64_t)timeout_ms * 1000000ULL)
			die(first, "set-up", "timeout");
	}
	printf("ready %ld\n", n);
	fflush(stdout);

	/* Hold: any event on an idle connection means the server closed it (or sent junk). */
	end_ns = now_ns() + (uint64_t)hold_s * 1000000000ULL;
	while (!stop) {
		uint64_t now = now_ns();
		int ms;

		if (now >= end_ns)
			break;
		ms = (int)((end_ns - now + 999999) / 1000000);
		ne = epoll_wait(ep, evs, 256, ms > 1000 ? 1000 : ms);
		if (ne == -1) {
			if (errno == EINTR)
				continue;
			perror("idleconns: epoll_wait");
			return 1;
		}
		for (k = 0; k < ne; k++) {
			i = (long)evs[k].data.u64;
			if (conns[i].state != IC_IDLE ||
			    !(evs[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
				continue;
			if (!closed)
				fprintf(stderr, "idleconns: connection %ld closed by the server\n",
					i);
			close(conns[i].fd);
			conns[i].state = IC_CLOSED;
			closed++;
		}
	}
	printf("held %ld closed %ld\n", n - closed, closed);
	fflush(stdout);
	free(conns); /* the descriptors close at exit */
	return closed ? 3 : 0;
}
