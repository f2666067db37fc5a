/* A controllable HTTP/1.1 origin: keep-alive, pipelining, Content-Length and chunked request
 * bodies (counted and checksummed), and misbehaviours chosen per request by query parameters
 * (?status= ?delay= ?size= ?chunked= ?close= ?hang= ?reset= ?partial= ?garbage= ?nolength=
 * ?slow= ?hdr= ?set-cookie=) or for every request through /__control. /__stats reports counters,
 * /__reset zeroes them. Control paths (/__...) are never delayed, hung or failed by the defaults.
 *
 * Faults for bench/faults, set through /__control (each /__control replaces all defaults):
 * - hang-every=N: one request in N (counted over all non-control requests) hangs forever.
 * - stray=1: after each response to a non-control request on a keep-alive connection, a second,
 *   complete response nobody asked for (STRAY_RESPONSE, without X-Req-Id), as a buggy or hostile
 *   application would send; with stray-delay=MS every other one is sent 1 to MS ms later instead
 *   of right after the response (the connection may be idle, or carry the next request, by
 *   then). A proxy that reuses the connection hands it to its next client.
 * - noread=1: from now on the origin accepts connections but reads none of them, old keep-alive
 *   connections included; only the connection that carried this control request is still read,
 *   and a later /__control (without noread) on that same connection ends the mode and serves
 *   whatever was left unread.
 * - SIGUSR1 (not a URL): stop like a server being shut down: close the listening sockets at once
 *   (connections are refused from then on), close idle connections, finish the requests in
 *   progress without keep-alive, and exit 0 when no connection is left.
 *
 * A non-control response echoes the request's X-Req-Id header, when it had one, so that a client
 * can tell its own answer from another request's (oload --check-id).
 *
 * POSTs are counted by their X-Req-Id header (any string; 64-bit FNV-1a of it) in a fixed table
 * of ID_SLOTS slots that tracks at most ID_MAX distinct ids (later new ids are counted as
 * "untracked"); /__stats reports the ids seen more than once. With origin_opts.id_log, the id
 * of every POST (or "-" when it has none) is also appended to that file, one per line, as soon
 * as the whole request has been received: a test that runs several origins, or kills one, merges
 * the files to find POSTs that reached origins more than once.
 *
 * Single-threaded, edge-triggered epoll; generated bodies are produced on the fly. It is a test
 * tool: simple over fast, but it never blocks on a socket and never grows without bound. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <keel/http.h>
#include <keel/origin.h>

#define IN_SIZE 65536
#define OUT_SIZE 32768
#define MAX_HDRS 8
#define ID_LEN 64	     /* X-Req-Id bytes kept (longer ones are cut) */
#define ID_SLOTS 65536	     /* POST id table: 1 MiB, a power of two */
#define ID_MAX (ID_SLOTS / 4 * 3) /* distinct ids tracked at most (open addressing stays fast) */

/* O_STRAY: a response was sent, its stray follow-up waits for its time (stray-delay). */
enum ost { O_HEAD, O_BODY, O_WAIT, O_SEND, O_HANG, O_ECHO, O_CLOSING, O_STRAY };

static const char STRAY_RESPONSE[] =
    "HTTP/1.1 200 OK\r\nX-Stray: 1\r\nContent-Length: 5\r\n\r\nstray";

struct params {
	int status;
	long delay_ms;
	long long size; /* -1: text body */
	bool chunked, close, hang, reset, partial, garbage, nolength, no100;
	bool noread;	/* /__control only */
	long hang_every; /* /__control only */
	long slow_ms;
	bool stray;	  /* a stray response after each one (see the top of the file) */
	long stray_delay; /* every other stray 1 to this many ms late (0: all at once) */
	char hdrs[MAX_HDRS][256];
	int nhdrs;
};

struct oconn {
	int fd;
	enum ost st;
	char in[IN_SIZE];
	uint32_t inlen;
	char out[OUT_SIZE];
	uint32_t outlen, outoff;
	/* request */
	bool keepalive, chunked_req, head_req, upgrade;
	long long body_left; /* Content-Length remaining, or chunk remaining */
	int chunk_state;     /* 0 size line, 1 data, 2 CRLF after data, 3 trailers */
	uint64_t body_len;
	uint32_t body_sum;
	uint32_t nreq;
	char method[16];
	char target[32768];
	char hdr_echo[8192];
	uint32_t hdr_echo_len;
	struct params p;
	/* response body generation */
	long long gen_left, gen_off, gen_total;
	bool gen_chunked;
	uint64_t wake_at_ms; /* O_WAIT (delay) or slow sending */
	bool slow_ok;        /* the pause before the next slow piece is over */
	struct oconn *next_wait;
	struct oconn *prev_all, *next_all; /* every open connection */
	char req_id[ID_LEN]; /* X-Req-Id of the current request, "" without */
	bool exempt;	     /* carried /__control?noread=1: still read in that mode */
	bool stalled;	     /* input left unread because of noread */
	bool stray_done;     /* the stray after the current response was sent or scheduled */
};

static const char *oname = "origin";
static struct params defaults = {.status = 200, .size = -1};
static struct {
	unsigned long long requests, conns, active, body_bytes;
	unsigned long long m_get, m_post, m_head, m_put, m_delete, m_options, m_other;
	unsigned long long post_ids, post_dup_ids, post_no_id, post_untracked, hung;
} st;
static struct {
	uint64_t key; /* 0: free slot */
	uint32_t count;
} ids[ID_SLOTS];
static int id_log_fd = -1;
static bool noread;	       /* accept, never read (see the top of the file) */
static bool kick;	       /* noread ended: serve the stalled connections */
static unsigned long hang_seq; /* non-control requests seen, for hang-every */
static unsigned long stray_seq; /* strays sent, for stray-delay: every other one is late */
static volatile sig_atomic_t draining; /* SIGUSR1 */
static struct oconn *all_conns;

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int origin_listen(const char *addr, char **err)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char host[128];
	const char *colon, *port;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (addr[0] == '[') {
		const char *e = strchr(addr, ']');

		if (!e || e[1] != ':' || (size_t)(e - addr - 1) >= sizeof(host))
			goto bad;
		memcpy(host, addr + 1, (size_t)(e - addr - 1));
		host[e - addr - 1] = '\0';
		port = e + 2;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || (size_t)(colon - addr) >= sizeof(host))
			goto bad;
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = '\0';
		port = colon + 1;
	}
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)atoi(port));
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)atoi(port));
		sl = sizeof(struct sockaddr_in6);
	} else {
		goto bad;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto sys;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 1024)) {
		close(fd);
		goto sys;
	}
	return fd;
sys:
	if (err) {
		*err = malloc(256);
		if (*err)
			snprintf(*err, 256, "cannot listen on %s: %s", addr, strerror(errno));
	}
	return -1;
bad:
	if (err) {
		*err = malloc(256);
		if (*err)
			snprintf(*err, 256, "invalid address '%s' (expects IP:PORT)", addr);
	}
	return -1;
}

static void url_decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '%' && s[1] && s[2]) {
			char h[3] = {s[1], s[2], 0};

			*o++ = (char)strtol(h, NULL, 16);
			s += 2;
		} else if (*s == '+') {
			*o++ = ' ';
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* The parameters that set one field of struct params, by their name in the query. */
enum ptype { PT_INT, PT_LONG, PT_LLONG, PT_BOOL };
static const struct {
	const char *name;
	enum ptype type;
	size_t off; /* in struct params */
} param_fields[] = {
	{"status", PT_INT, offsetof(struct params, status)},
	{"delay", PT_LONG, offsetof(struct params, delay_ms)},
	{"size", PT_LLONG, offsetof(struct params, size)},
	{"chunked", PT_BOOL, offsetof(struct params, chunked)},
	{"close", PT_BOOL, offsetof(struct params, close)},
	{"hang", PT_BOOL, offsetof(struct params, hang)},
	{"reset", PT_BOOL, offsetof(struct params, reset)},
	{"partial", PT_BOOL, offsetof(struct params, partial)},
	{"garbage", PT_BOOL, offsetof(struct params, garbage)},
	{"nolength", PT_BOOL, offsetof(struct params, nolength)},
	{"no100", PT_BOOL, offsetof(struct params, no100)},
	{"slow", PT_LONG, offsetof(struct params, slow_ms)},
	{"noread", PT_BOOL, offsetof(struct params, noread)},
	{"hang-every", PT_LONG, offsetof(struct params, hang_every)},
	{"stray", PT_BOOL, offsetof(struct params, stray)},
	{"stray-delay", PT_LONG, offsetof(struct params, stray_delay)},
};

/* Sets the field of p named k to v; false when no field has that name. */
static bool set_field(struct params *p, const char *k, const char *v)
{
	size_t i;
	char *f;

	for (i = 0; i < sizeof(param_fields) / sizeof(param_fields[0]); i++) {
		if (strcmp(k, param_fields[i].name))
			continue;
		f = (char *)p + param_fields[i].off;
		switch (param_fields[i].type) {
		case PT_INT: *(int *)f = atoi(v); break;
		case PT_LONG: *(long *)f = atol(v); break;
		case PT_LLONG: *(long long *)f = atoll(v); break;
		case PT_BOOL: *(bool *)f = atoi(v) != 0; break;
		}
		return true;
	}
	return false;
}

/* Applies query parameters (a=b&c=d) to p. */
static void parse_params(const char *q, struct params *p)
{
	char buf[4096];
	char *save = NULL, *kv;

	snprintf(buf, sizeof(buf), "%s", q);
	for (kv = strtok_r(buf, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
		char *v = strchr(kv, '=');

		if (v)
			*v++ = '\0';
		else
			v = "1";
		url_decode(v);
		if (set_field(p, kv, v))
			continue;
		if ((!strcmp(kv, "hdr") || !strcmp(kv, "set-cookie")) && p->nhdrs < MAX_HDRS) {
			if (!strcmp(kv, "hdr"))
				snprintf(p->hdrs[p->nhdrs++], 256, "%s", v);
			else
				snprintf(p->hdrs[p->nhdrs++], 256, "Set-Cookie: %s", v);
		}
	}
}

static void out_add(struct oconn *c, const char *s, size_t n)
{
	if (c->outlen + n > OUT_SIZE)
		n = OUT_SIZE - c->outlen;
	memcpy(c->out + c->outlen, s, n);
	c->outlen += (uint32_t)n;
}

static void out_printf(struct oconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct oconn *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(c->out + c->outlen, OUT_SIZE - c->outlen, fmt, ap);
	va_end(ap);
	if (n > 0)
		c->outlen += (uint32_t)n < OUT_SIZE - c->outlen ? (uint32_t)n : OUT_SIZE - c->outlen - 1;
}

static void count_method(const char *m)
{
	if (!strcmp(m, "GET"))
		st.m_get++;
	else if (!strcmp(m, "POST"))
		st.m_post++;
	else if (!strcmp(m, "HEAD"))
		st.m_head++;
	else if (!strcmp(m, "PUT"))
		st.m_put++;
	else if (!strcmp(m, "DELETE"))
		st.m_delete++;
	else if (!strcmp(m, "OPTIONS"))
		st.m_options++;
	else
		st.m_other++;
}

static int ep;
static struct oconn *waiting;

static void conn_close(struct oconn *c, bool rst)
{
	if (rst) {
		struct linger l = {1, 0};

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	close(c->fd);
	st.active--;
	if (c->prev_all)
		c->prev_all->next_all = c->next_all;
	else
		all_conns = c->next_all;
	if (c->next_all)
		c->next_all->prev_all = c->prev_all;
	/* unlink from the wait list */
	{
		struct oconn **pp = &waiting;

		while (*pp) {
			if (*pp == c) {
				*pp = c->next_wait;
				break;
			}
			pp = &(*pp)->next_wait;
		}
	}
	free(c);
}

static void wait_until(struct oconn *c, uint64_t at)
{
	c->wake_at_ms = at;
	c->next_wait = waiting;
	waiting = c;
}

/* Builds the response for the request just completed (head and body received). */
static void respond(struct oconn *c)
{
	struct params *p = &c->p;
	const char *path = c->target;
	bool control = !strncmp(path, "/__", 3);
	int i;

	c->outlen = c->outoff = 0;
	c->gen_left = c->gen_off = 0;
	if (!control && p->garbage) {
		out_printf(c, "HTTP/1.1 2xx BROKEN\r\n\r\n");
		c->keepalive = false;
		c->st = O_SEND;
		return;
	}
	if (!strncmp(path, "/__stats", 8)) {
		char body[1024];
		int n = snprintf(body, sizeof(body),
				 "{\"name\":\"%s\",\"requests\":%llu,\"methods\":{\"GET\":%llu,\"POST\":%llu,"
				 "\"HEAD\":%llu,\"PUT\":%llu,\"DELETE\":%llu,\"OPTIONS\":%llu,\"OTHER\":%llu},"
				 "\"conns\":%llu,\"active_conns\":%llu,\"body_bytes\":%llu,\"hung\":%llu,"
				 "\"posts\":{\"ids\":%llu,\"dup_ids\":%llu,\"no_id\":%llu,\"untracked\":%llu}}\n",
				 oname, st.requests, st.m_get, st.m_post, st.m_head, st.m_put, st.m_delete,
				 st.m_options, st.m_other, st.conns, st.active, st.body_bytes, st.hung,
				 st.post_ids, st.post_dup_ids, st.post_no_id, st.post_untracked);

		out_printf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
			      "X-Origin: %s\r\nServer: keel-origin\r\n\r\n%s", n, oname, body);
		c->st = O_SEND;
		return;
	}
	if (!strncmp(path, "/__reset", 8)) {
		unsigned long long conns = st.conns, active = st.active;

		memset(&st, 0, sizeof(st));
		memset(ids, 0, sizeof(ids));
		hang_seq = 0;
		st.conns = conns;
		st.active = active;
		out_printf(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Origin: %s\r\n\r\n", oname);
		c->st = O_SEND;
		return;
	}
	if (!strncmp(path, "/__control", 10)) {
		const char *q = strchr(path, '?');

		memset(&defaults, 0, sizeof(defaults));
		defaults.status = 200;
		defaults.size = -1;
		if (q)
			parse_params(q + 1, &defaults);
		if (defaults.noread && !noread)
			c->exempt = true;
		else if (!defaults.noread && noread)
			kick = true; /* at a safe point of the loop: serving them may close them */
		noread = defaults.noread;
		hang_seq = 0;
		stray_seq = 0;
		out_printf(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Origin: %s\r\n\r\n", oname);
		c->st = O_SEND;
		return;
	}
	if (c->upgrade) {
		out_printf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			      "Connection: Upgrade\r\nX-Origin: %s\r\n\r\n", oname);
		c->st = O_ECHO;
		return;
	}
	if (p->close || !c->keepalive || draining)
		c->keepalive = false;
	out_printf(c, "HTTP/1.1 %d %s\r\nX-Origin: %s\r\nServer: keel-origin\r\n", p->status,
		   http_reason(p->status), oname);
	if (c->req_id[0])
		out_printf(c, "X-Req-Id: %s\r\n", c->req_id);
	for (i = 0; i < p->nhdrs; i++) {
		char *colon = strchr(p->hdrs[i], ':');

		if (colon)
			out_printf(c, "%s\r\n", p->hdrs[i]);
	}
	if (!c->keepalive)
		out_printf(c, "Connection: close\r\n");
	if (p->status == 204 || p->status == 304 || p->status < 200) {
		out_printf(c, "\r\n");
		c->st = O_SEND;
		return;
	}
	if (p->size >= 0) {
		c->gen_total = p->size;
		c->gen_left = c->head_req ? 0 : p->size;
		c->gen_chunked = p->chunked && !c->head_req;
		if (p->partial) {
			out_printf(c, "Content-Length: %lld\r\n\r\n", p->size * 2);
			c->keepalive = false;
		} else if (p->nolength) {
			out_printf(c, "\r\n");
			c->keepalive = false;
		} else if (p->chunked) {
			out_printf(c, "Transfer-Encoding: chunked\r\n\r\n");
		} else {
			out_printf(c, "Content-Type: application/octet-stream\r\nContent-Length: %lld\r\n\r\n",
				   p->size);
		}
	} else {
		char body[12288];
		int n = snprintf(body, sizeof(body),
				 "origin %s\nmethod %s\npath %s\nbody_len %llu\nbody_sum %08x\nconn_req %u\n\n%.*s",
				 oname, c->method, c->target, (unsigned long long)c->body_len, c->body_sum,
				 c->nreq, (int)c->hdr_echo_len, c->hdr_echo);

		if (n < 0)
			n = 0;
		if (n >= (int)sizeof(body))
			n = (int)sizeof(body) - 1;
		if (p->nolength || p->partial) {
			out_printf(c, p->partial ? "Content-Length: %d\r\n\r\n" : "\r\n", n * 2);
			c->keepalive = false;
		} else if (p->chunked) {
			out_printf(c, "Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n");
			if (!c->head_req && n)
				out_printf(c, "%x\r\n", n);
		} else {
			out_printf(c, "Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n", n);
		}
		if (!c->head_req) {
			out_add(c, body, (size_t)n);
			if (p->chunked)
				out_printf(c, "%s0\r\n\r\n", n ? "\r\n" : "");
		}
	}
	c->st = O_SEND;
}

/* Fills the output with the next piece of a generated body. */
static void generate(struct oconn *c)
{
	long long room, n, i;

	if (c->gen_left <= 0 || c->outlen)
		return;
	room = OUT_SIZE - 64;
	if (c->p.slow_ms > 0 && room > 1024)
		room = 1024;
	n = c->gen_left < room ? c->gen_left : room;
	if (c->gen_chunked)
		out_printf(c, "%llx\r\n", (unsigned long long)n);
	for (i = 0; i < n; i++)
		c->out[c->outlen + i] = (char)('a' + (c->gen_off + i) % 26);
	c->outlen += (uint32_t)n;
	c->gen_off += n;
	c->gen_left -= n;
	if (c->gen_chunked)
		out_printf(c, c->gen_left ? "\r\n" : "\r\n0\r\n\r\n");
}

/* Counts a complete POST by its id (see the top of the file). */
static void post_record(struct oconn *c)
{
	uint64_t h = 14695981039346656037ull;
	uint32_t i;
	const char *s;

	if (id_log_fd != -1) {
		char line[ID_LEN + 2];
		int n = snprintf(line, sizeof(line), "%s\n", c->req_id[0] ? c->req_id : "-");

		/* A regular file: the write lands in the page cache (no socket to block on). */
		(void)!write(id_log_fd, line, (size_t)n);
	}
	if (!c->req_id[0]) {
		st.post_no_id++;
		return;
	}
	for (s = c->req_id; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	if (!h)
		h = 1;
	for (i = (uint32_t)h & (ID_SLOTS - 1); ids[i].key; i = (i + 1) & (ID_SLOTS - 1)) {
		if (ids[i].key == h) {
			if (++ids[i].count == 2)
				st.post_dup_ids++;
			return;
		}
	}
	if (st.post_ids >= ID_MAX) {
		st.post_untracked++;
		return;
	}
	ids[i].key = h;
	ids[i].count = 1;
	st.post_ids++;
}

static void finish_request(struct oconn *c)
{
	bool control = !strncmp(c->target, "/__", 3);

	if (!control && !strcmp(c->method, "POST"))
		post_record(c);
	if (!control && c->p.hang_every > 0 && ++hang_seq % (unsigned long)c->p.hang_every == 0)
		c->p.hang = true;
	if (c->p.hang) {
		st.hung++;
		c->st = O_HANG;
		return;
	}
	if (c->p.delay_ms > 0) {
		c->st = O_WAIT;
		wait_until(c, mono_ms() + (uint64_t)c->p.delay_ms);
		return;
	}
	respond(c);
}

/* Parses a complete head at the start of c->in. Returns its length, 0 if incomplete, -1 bad. */
static int parse_head(struct oconn *c)
{
	char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
	char *line, *save = NULL, *p;
	char version[16] = "";
	bool first = true, has_te = false, cl_set = false, conn_close = false, conn_ka = false,
	     conn_upgrade = false, upgrade = false, expect = false;
	size_t hl;

	if (!end)
		return c->inlen >= IN_SIZE - 1 ? -1 : 0;
	hl = (size_t)(end - c->in) + 4;
	*end = '\0';
	c->hdr_echo_len = 0;
	c->body_left = 0;
	c->chunked_req = false;
	c->req_id[0] = '\0';
	c->stray_done = false;
	for (line = strtok_r(c->in, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		if (first) {
			if (sscanf(line, "%15s %32767s %15s", c->method, c->target, version) != 3)
				return -1;
			if (strncmp(version, "HTTP/1.", 7))
				return -1;
			first = false;
			continue;
		}
		p = strchr(line, ':');
		if (!p)
			return -1;
		if (c->hdr_echo_len + strlen(line) + 2 < sizeof(c->hdr_echo)) {
			memcpy(c->hdr_echo + c->hdr_echo_len, line, strlen(line));
			c->hdr_echo_len += (uint32_t)strlen(line);
			c->hdr_echo[c->hdr_echo_len++] = '\n';
		}
		*p++ = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (!strcasecmp(line, "content-length")) {
			c->body_left = atoll(p);
			cl_set = true;
		} else if (!strcasecmp(line, "transfer-encoding")) {
			has_te = strcasestr(p, "chunked") != NULL;
		} else if (!strcasecmp(line, "connection")) {
			conn_close |= strcasestr(p, "close") != NULL;
			conn_ka |= strcasestr(p, "keep-alive") != NULL;
			conn_upgrade |= strcasestr(p, "upgrade") != NULL;
		} else if (!strcasecmp(line, "upgrade")) {
			upgrade = true;
		} else if (!strcasecmp(line, "expect")) {
			expect = strcasestr(p, "100-continue") != NULL;
		} else if (!strcasecmp(line, "x-req-id")) {
			size_t n = strcspn(p, " \t");

			if (n >= ID_LEN)
				n = ID_LEN - 1;
			memcpy(c->req_id, p, n);
			c->req_id[n] = '\0';
		}
	}
	if (first)
		return -1;
	c->keepalive = !strcmp(version, "HTTP/1.1") ? !conn_close : conn_ka;
	c->head_req = !strcmp(c->method, "HEAD");
	c->upgrade = upgrade && conn_upgrade;
	c->chunked_req = has_te;
	c->chunk_state = 0;
	if (has_te)
		c->body_left = 0;
	else if (!cl_set)
		c->body_left = 0;
	c->body_len = 0;
	c->body_sum = 2166136261u;
	c->nreq++;
	if (strncmp(c->target, "/__", 3)) {
		char *q = strchr(c->target, '?');

		c->p = defaults;
		if (q)
			parse_params(q + 1, &c->p);
	} else {
		/* Control paths must work whatever the defaults make of other requests. */
		memset(&c->p, 0, sizeof(c->p));
		c->p.status = 200;
		c->p.size = -1;
	}
	if (strncmp(c->target, "/__", 3)) {
		st.requests++;
		count_method(c->method);
	}
	if (expect && (has_te || c->body_left > 0) && !c->p.no100) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

		if (write(c->fd, cont, sizeof(cont) - 1) < 0)
			return -1;
	}
	return (int)hl;
}

static void body_bytes(struct oconn *c, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		c->body_sum ^= (unsigned char)p[i];
		c->body_sum *= 16777619u;
	}
	c->body_len += n;
	st.body_bytes += n;
}

/* Consumes body bytes from c->in; returns bytes consumed, -1 on a framing error. */
static long consume_body(struct oconn *c, bool *done)
{
	size_t pos = 0;

	*done = false;
	if (!c->chunked_req) {
		size_t n = (size_t)(c->body_left < (long long)c->inlen ? c->body_left : c->inlen);

		body_bytes(c, c->in, n);
		c->body_left -= (long long)n;
		*done = c->body_left == 0;
		return (long)n;
	}
	while (pos < c->inlen) {
		if (c->chunk_state == 0 || c->chunk_state == 3) {
			char *nl = memchr(c->in + pos, '\n', c->inlen - pos);

			if (!nl)
				break;
			if (c->chunk_state == 0) {
				c->body_left = strtoll(c->in + pos, NULL, 16);
				if (c->body_left < 0)
					return -1;
				pos = (size_t)(nl - c->in) + 1;
				c->chunk_state = c->body_left ? 1 : 3;
			} else {
				bool empty = nl - (c->in + pos) <= 1;

				pos = (size_t)(nl - c->in) + 1;
				if (empty) {
					*done = true;
					return (long)pos;
				}
			}
		} else if (c->chunk_state == 1) {
			size_t n = c->inlen - pos;

			if ((long long)n > c->body_left)
				n = (size_t)c->body_left;
			body_bytes(c, c->in + pos, n);
			pos += n;
			c->body_left -= (long long)n;
			if (!c->body_left)
				c->chunk_state = 2;
		} else {
			char *nl = memchr(c->in + pos, '\n', c->inlen - pos);

			if (!nl)
				break;
			pos = (size_t)(nl - c->in) + 1;
			c->chunk_state = 0;
		}
	}
	return (long)pos;
}

static void shift_in(struct oconn *c, size_t n)
{
	memmove(c->in, c->in + n, c->inlen - n);
	c->inlen -= (uint32_t)n;
}

/* Runs the connection's state machine on what it has. Returns false when it was closed. */
static bool process(struct oconn *c)
{
	for (;;) {
		if (c->st == O_HEAD) {
			int hl;

			if (!c->inlen)
				return true;
			hl = parse_head(c);
			if (hl < 0) {
				static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

				(void)!write(c->fd, bad, sizeof(bad) - 1);
				conn_close(c, false);
				return false;
			}
			if (!hl)
				return true;
			shift_in(c, (size_t)hl);
			if (c->p.reset && strncmp(c->target, "/__", 3)) {
				conn_close(c, true);
				return false;
			}
			if (c->chunked_req || c->body_left > 0) {
				c->st = O_BODY;
				continue;
			}
			finish_request(c);
			continue;
		}
		if (c->st == O_BODY) {
			bool done;
			long used = consume_body(c, &done);

			if (used < 0) {
				conn_close(c, false);
				return false;
			}
			shift_in(c, (size_t)used);
			if (!done)
				return true;
			finish_request(c);
			continue;
		}
		if (c->st == O_HANG) {
			c->inlen = 0; /* swallow everything */
			return true;
		}
		if (c->st == O_ECHO) {
			if (c->inlen && c->outlen < OUT_SIZE) {
				size_t n = c->inlen < OUT_SIZE - c->outlen ? c->inlen : OUT_SIZE - c->outlen;

				out_add(c, c->in, n);
				shift_in(c, n);
			}
		}
		if (c->st == O_SEND || c->st == O_ECHO) {
			while (c->outoff < c->outlen || (c->st == O_SEND && c->gen_left > 0)) {
				ssize_t n;

				if (c->outoff == c->outlen) {
					c->outlen = c->outoff = 0;
					/* ?slow=MS: one piece, then a pause */
					if (c->p.slow_ms > 0 && c->gen_off > 0 && !c->slow_ok) {
						wait_until(c, mono_ms() + (uint64_t)c->p.slow_ms);
						return true;
					}
					c->slow_ok = false;
					generate(c);
				}
				n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
				if (n < 0) {
					if (errno == EAGAIN)
						return true;
					conn_close(c, false);
					return false;
				}
				c->outoff += (uint32_t)n;
			}
			c->outlen = c->outoff = 0;
			if (c->st == O_ECHO) {
				if (c->inlen)
					continue; /* more input than one output buffer: echo the rest */
				return true;
			}
			if (!c->keepalive) {
				shutdown(c->fd, SHUT_WR);
				c->st = O_CLOSING;
				return true;
			}
			if (c->p.stray && !c->stray_done && strncmp(c->target, "/__", 3)) {
				c->stray_done = true;
				if (c->p.stray_delay > 0 && stray_seq++ % 2) {
					c->st = O_STRAY;
					wait_until(c, mono_ms() + 1 +
							  (uint64_t)rand() %
							      (uint64_t)c->p.stray_delay);
					return true;
				}
				out_add(c, STRAY_RESPONSE, sizeof(STRAY_RESPONSE) - 1);
				continue; /* still O_SEND: writes it */
			}
			c->st = O_HEAD;
			continue;
		}
		if (c->st == O_CLOSING) {
			c->inlen = 0;
			return true;
		}
		return true; /* O_WAIT, O_STRAY: the timer moves them on */
	}
}

static void on_readable(struct oconn *c)
{
	if (noread && !c->exempt) {
		/* Edge-triggered: nothing tells us later that this input is waiting. */
		c->stalled = true;
		return;
	}
	/* Edge-triggered: output may have drained (EPOLLOUT) as well as input arrived. */
	if (!process(c))
		return;
	for (;;) {
		ssize_t n;

		if (c->inlen >= IN_SIZE) {
			if (c->st == O_HEAD) {
				/* head too large */
				static const char big[] = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

				(void)!write(c->fd, big, sizeof(big) - 1);
				conn_close(c, false);
				return;
			}
			if (!process(c))
				return;
			if (c->inlen >= IN_SIZE)
				return; /* back-pressure: wait for output to drain */
			continue;
		}
		n = read(c->fd, c->in + c->inlen, IN_SIZE - c->inlen);
		if (n > 0) {
			c->inlen += (uint32_t)n;
			if (!process(c))
				return;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			conn_close(c, false);
			return;
		}
		if (errno == EAGAIN)
			return;
	}
}

static void on_sigusr1(int sig)
{
	(void)sig;
	draining = 1;
}

/* SIGUSR1 arrived: stop listening, close idle connections; the others close after their
 * response (respond() turns keep-alive off). Returns true when no connection is left. */
static bool drain(const struct origin_opts *o)
{
	static bool listeners_closed;
	struct oconn *c, *next;
	int i;

	if (!listeners_closed) {
		for (i = 0; i < o->nlisten; i++)
			close(o->listen_fds[i]);
		listeners_closed = true;
	}
	for (c = all_conns; c; c = next) {
		next = c->next_all;
		if ((c->st == O_HEAD && !c->inlen) || c->st == O_CLOSING)
			conn_close(c, false);
	}
	return !all_conns;
}

int origin_run(const struct origin_opts *o)
{
	struct epoll_event evs[256];
	struct sigaction sa;
	int i;

	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr1;
	sigaction(SIGUSR1, &sa, NULL);
	oname = o->name ? o->name : "origin";
	if (o->id_log) {
		id_log_fd = open(o->id_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (id_log_fd == -1) {
			fprintf(stderr, "keel-origin: %s: %s\n", o->id_log, strerror(errno));
			return 1;
		}
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return 1;
	for (i = 0; i < o->nlisten; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

		ev.data.u64 = (uint64_t)i | (1ull << 63);
		if (epoll_ctl(ep, EPOLL_CTL_ADD, o->listen_fds[i], &ev))
			return 1;
	}
	for (;;) {
		uint64_t now = mono_ms();
		int timeout = -1, n;
		struct oconn *w;

		for (w = waiting; w; w = w->next_wait) {
			int t = w->wake_at_ms <= now ? 0 : (int)(w->wake_at_ms - now);

			if (timeout < 0 || t < timeout)
				timeout = t;
		}
		if (draining && drain(o))
			return 0;
		if (draining && (timeout < 0 || timeout > 100))
			timeout = 100; /* a connection closed by its peer leaves without an event */
		n = epoll_wait(ep, evs, 256, timeout);
		if (n < 0 && errno != EINTR)
			return 1;
		for (i = 0; i < n; i++) {
			if (evs[i].data.u64 & (1ull << 63)) {
				int lfd = o->listen_fds[evs[i].data.u64 & 0xff];

				for (;;) {
					int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
					struct oconn *c;
					struct epoll_event ev;

					if (fd < 0)
						break;
					c = calloc(1, sizeof(*c));
					if (!c) {
						close(fd);
						continue;
					}
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					c->fd = fd;
					c->st = O_HEAD;
					ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
					ev.data.ptr = c;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
						close(fd);
						free(c);
						continue;
					}
					st.conns++;
					st.active++;
					c->next_all = all_conns;
					if (all_conns)
						all_conns->prev_all = c;
					all_conns = c;
				}
				continue;
			}
			{
				struct oconn *c = evs[i].data.ptr;

				/* Output drained or input arrived: process, then read on (may free c). */
				on_readable(c);
			}
		}
		/* Wake delayed and slow connections. */
		now = mono_ms();
		for (;;) {
			struct oconn **pp = &waiting, *c = NULL;

			while (*pp) {
				if ((*pp)->wake_at_ms <= now) {
					c = *pp;
					*pp = c->next_wait;
					break;
				}
				pp = &(*pp)->next_wait;
			}
			if (!c)
				break;
			if (c->st == O_WAIT) {
				respond(c);
			} else if (c->st == O_STRAY) {
				out_add(c, STRAY_RESPONSE, sizeof(STRAY_RESPONSE) - 1);
				c->st = O_SEND;
			} else {
				c->slow_ok = true;
			}
			process(c);
		}
		if (kick) {
			struct oconn *c, *next;

			kick = false;
			for (c = all_conns; c; c = next) {
				next = c->next_all; /* on_readable may close c, never another one */
				if (c->stalled) {
					c->stalled = false;
					on_readable(c);
				}
			}
		}
	}
	return 0;
}
