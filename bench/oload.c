/* oload: an open-loop HTTP/1.1 load generator. Request i is due at start + i/RATE whatever
 * happened to the previous ones, and its latency is measured from that due time, so a stalled
 * server shows up in the percentiles instead of slowing the load down (wrk's closed loop hides
 * it). Keep-alive connections are reused from a pool; up to -c are open at once.
 *
 *   oload -u http://127.0.0.1:PORT/path -r RATE -d SECONDS [-c MAXCONNS] [-t TIMEOUT_MS]
 *         [-s SLOW_MS]
 *
 * Prints: sent= ok= failed= slow= p50_ms= p99_ms= p999_ms= max_ms=. Responses must carry a
 * Content-Length and fit in 64 KB (chunked and larger bodies count as failed). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct oc {
	int fd;
	int busy;        /* a request is in flight */
	uint64_t due_us; /* due time of the request in flight */
	char buf[65536];
	size_t len;
	long long need;  /* body bytes still expected (-1: unknown yet) */
	size_t head;     /* head length once parsed */
	int status;
	int closing; /* the response said Connection: close */
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static struct sockaddr_in addr;
static char req[1024];
static size_t reqlen;
static int ep;

static int open_conn(struct oc *c)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) && errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	return 0;
}

static void close_conn(struct oc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->busy = 0;
}

/* Returns 1 when a complete response is in c->buf, 0 if more is needed, -1 on garbage. */
static int parse(struct oc *c)
{
	char *end, *cl;

	if (!c->head) {
		end = memmem(c->buf, c->len, "\r\n\r\n", 4);
		if (!end)
			return c->len >= sizeof(c->buf) ? -1 : 0;
		c->head = (size_t)(end - c->buf) + 4;
		if (sscanf(c->buf, "HTTP/1.%*d %d", &c->status) != 1)
			return -1;
		cl = memmem(c->buf, c->head, "ontent-Length:", 14);
		if (!cl)
			cl = memmem(c->buf, c->head, "ontent-length:", 14);
		c->need = cl ? atoll(cl + 14) : 0;
		c->closing = memmem(c->buf, c->head, "onnection: close", 16) != NULL;
	}
	if ((long long)(c->len - c->head) >= c->need)
		return 1;
	/* Small responses only (the open-loop runs use tiny ones): a larger one counts as failed. */
	return c->len == sizeof(c->buf) ? -1 : 0;
}

int main(int argc, char **argv)
{
	const char *url = NULL;
	double rate = 1000, dur = 10;
	int maxc = 256, timeout_ms = 5000, slow_ms = 1000, i, opt;
	char host[256], path[512] = "/";
	int port = 80;
	struct oc *conns;
	uint64_t *lat, start, total, sent = 0, ok = 0, failed = 0, slow = 0, next;

	while ((opt = getopt(argc, argv, "u:r:d:c:t:s:")) != -1) {
		switch (opt) {
		case 'u': url = optarg; break;
		case 'r': rate = atof(optarg); break;
		case 'd': dur = atof(optarg); break;
		case 'c': maxc = atoi(optarg); break;
		case 't': timeout_ms = atoi(optarg); break;
		case 's': slow_ms = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (!url || sscanf(url, "http://%255[^:/]:%d%511s", host, &port, path) < 2 || rate <= 0 ||
	    dur <= 0 || maxc <= 0 || maxc > 20000)
		goto usage;
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1 || ntohl(addr.sin_addr.s_addr) >> 24 != 127) {
		fprintf(stderr, "oload: loopback IPv4 addresses only\n");
		return 1;
	}
	reqlen = (size_t)snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host);
	total = (uint64_t)(rate * dur);
	conns = calloc((size_t)maxc, sizeof(*conns));
	lat = calloc(total ? total : 1, sizeof(*lat));
	if (!conns || !lat)
		return 1;
	for (i = 0; i < maxc; i++)
		conns[i].fd = -1;
	ep = epoll_create1(0);
	start = now_us();
	next = 0;
	while (ok + failed < total) {
		uint64_t now = now_us();
		struct epoll_event evs[256];
		int n, k;

		/* Issue every request that is due, on a free connection. */
		while (next < total && start + (uint64_t)((double)next * 1e6 / rate) <= now) {
			struct oc *c = NULL;

			for (k = 0; k < maxc && !c; k++)
				if (!conns[k].busy && conns[k].fd >= 0)
					c = &conns[k];
			for (k = 0; k < maxc && !c; k++)
				if (conns[k].fd < 0 && open_conn(&conns[k]) == 0)
					c = &conns[k];
			if (!c)
				break; /* all connections busy: the request waits, its latency grows */
			c->busy = 1;
			c->due_us = start + (uint64_t)((double)next * 1e6 / rate);
			c->len = c->head = 0;
			c->status = 0;
			c->closing = 0;
			if (send(c->fd, req, reqlen, MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
			    errno != ENOTCONN) {
				close_conn(c);
				failed++;
				lat[sent++] = (uint64_t)timeout_ms * 1000;
				next++;
				continue;
			}
			next++;
			sent++;
		}
		/* Time out requests that took too long. */
		for (k = 0; k < maxc; k++)
			if (conns[k].busy && now > conns[k].due_us + (uint64_t)timeout_ms * 1000) {
				close_conn(&conns[k]);
				lat[ok + failed] = (uint64_t)timeout_ms * 1000;
				failed++;
			}
		n = epoll_wait(ep, evs, 256, 1);
		for (k = 0; k < n; k++) {
			struct oc *c = evs[k].data.ptr;
			ssize_t r;
			int p;

			if (c->fd < 0)
				continue;
			if (!c->busy) {
				/* an idle connection became readable: the server closed it */
				close_conn(c);
				continue;
			}
			r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				close_conn(c);
				lat[ok + failed] = now_us() - c->due_us;
				failed++;
				continue;
			}
			c->len += (size_t)r;
			p = parse(c);
			if (p < 0) {
				close_conn(c);
				lat[ok + failed] = now_us() - c->due_us;
				failed++;
			} else if (p == 1) {
				uint64_t l = now_us() - c->due_us;

				lat[ok + failed] = l;
				if (c->status >= 200 && c->status < 400)
					ok++;
				else
					failed++;
				if (l > (uint64_t)slow_ms * 1000)
					slow++;
				c->busy = 0;
				/* The server ends this connection (e.g. nginx after keepalive_requests):
				 * do not send another request on it. */
				if (c->closing)
					close_conn(c);
			}
		}
	}
	qsort(lat, ok + failed, sizeof(*lat), cmp_u64);
	{
		uint64_t cnt = ok + failed;

		printf("sent=%llu ok=%llu failed=%llu slow=%llu p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f\n",
		       (unsigned long long)sent, (unsigned long long)ok, (unsigned long long)failed,
		       (unsigned long long)(slow + failed), lat[cnt / 2] / 1000.0,
		       lat[cnt * 99 / 100] / 1000.0, lat[cnt * 999 / 1000] / 1000.0,
		       lat[cnt ? cnt - 1 : 0] / 1000.0);
	}
	return 0;
usage:
	fprintf(stderr, "usage: oload -u http://127.0.0.1:PORT/path -r RATE -d SECONDS [-c MAXCONNS] [-t TIMEOUT_MS] [-s SLOW_MS]\n");
	return 1;
}
