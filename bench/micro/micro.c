/* Micro-benchmarks of keel's hot paths: HTTP head scanning, parsing and analysis, balancer picks,
 * timer heap operations, buffers, and the passive health hooks. One binary linked against
 * libkeel.a (like tests/unit), one thread, no sockets: each benchmark is a tight loop of N calls
 * timed with clock_gettime(), N calibrated to about 20 ms, repeated R times in rounds (one
 * repetition of every benchmark per round), and reported as ns per call: median, min and max over
 * the repetitions. Meant for before/after comparisons of a change on the same machine; see
 * docs/benchmarks.md ("Micro-benchmarks").
 *
 *	build/bench/micro [--filter SUBSTR] [--reps R] [--quick] [--markdown] [--cpu-clock] [--list]
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <keel/backend.h>
#include <keel/buf.h>
#include <keel/cfg.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/global.h>
#include <keel/health.h>
#include <keel/http-ana.h>
#include <keel/http.h>
#include <keel/lb.h>
#include <keel/loop.h>
#include <keel/modules.h>
#include <keel/pool.h>
#include <keel/proxy.h>
#include <keel/session.h>
#include <keel/stream-t.h>
#include <keel/timer.h>
#include <keel/worker.h>

/* ---- keeping the compiler from deleting the work ---- */

/* The value is "used" by an empty asm: the computation that produced it must happen. */
static inline void sink_u64(uint64_t v)
{
	__asm__ volatile("" : : "r"(v));
}

static inline void sink_ptr(const void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

/* Forces memory to be considered read and written (inline code such as buf_compact). */
static inline void clobber(void)
{
	__asm__ volatile("" : : : "memory");
}

static volatile uint64_t sink_total;

/* xorshift64: deterministic inputs, identical from run to run. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return x;
}

/* ---- the runtime: one configuration, one worker's loop and thread context ---- */

/* Every backend the benchmarks use, loaded once. "fe" is the frontend of the analysis
 * benchmarks; the others are one balancing algorithm each. */
/* clang-format off */
static const char config[] =
	"global\n"
	" nbthread 1\n"
	"defaults\n"
	" mode http\n"
	" timeout connect 5s\n"
	" timeout client 30s\n"
	" timeout server 30s\n"
	"frontend fe\n"
	" bind 127.0.0.1:1\n"
	" option forwardfor\n"
	" default_backend web\n"
	"backend web\n"
	" balance roundrobin\n"
	" server a 127.0.0.1:1\n"
	" server b 127.0.0.1:2\n"
	"backend rr2\n"
	" balance roundrobin\n"
	" server a 127.0.0.1:1\n"
	" server b 127.0.0.1:2\n"
	"backend rr5\n"
	" balance roundrobin\n"
	" server a 127.0.0.1:1 weight 1\n"
	" server b 127.0.0.1:2 weight 2\n"
	" server c 127.0.0.1:3 weight 3\n"
	" server d 127.0.0.1:4 weight 5\n"
	" server e 127.0.0.1:5 weight 10\n"
	"backend lc5\n"
	" balance leastconn\n"
	" server a 127.0.0.1:1 weight 1\n"
	" server b 127.0.0.1:2 weight 2\n"
	" server c 127.0.0.1:3 weight 3\n"
	" server d 127.0.0.1:4 weight 5\n"
	" server e 127.0.0.1:5 weight 10\n"
	"backend rnd5\n"
	" balance random\n"
	" server a 127.0.0.1:1 weight 1\n"
	" server b 127.0.0.1:2 weight 2\n"
	" server c 127.0.0.1:3 weight 3\n"
	" server d 127.0.0.1:4 weight 5\n"
	" server e 127.0.0.1:5 weight 10\n"
	"backend urimap5\n"
	" balance uri\n"
	" hash-type map-based\n"
	" server a 127.0.0.1:1 weight 1\n"
	" server b 127.0.0.1:2 weight 2\n"
	" server c 127.0.0.1:3 weight 3\n"
	" server d 127.0.0.1:4 weight 5\n"
	" server e 127.0.0.1:5 weight 10\n"
	"backend urich5\n"
	" balance uri\n"
	" hash-type consistent\n"
	" server a 127.0.0.1:1 weight 1\n"
	" server b 127.0.0.1:2 weight 2\n"
	" server c 127.0.0.1:3 weight 3\n"
	" server d 127.0.0.1:4 weight 5\n"
	" server e 127.0.0.1:5 weight 10\n";
/* clang-format on */

static struct worker wk;
static struct proxy_thread thr;

/* The set-up of a worker thread (worker_main in src/process/process.c), as tests/unit does it. */
static int runtime_setup(void)
{
	char *err = NULL;

	keel_modules_register();
	cfg_silent = true;
	if (cfg_load_string("micro.cfg", config, strlen(config)) != OK) {
		fprintf(stderr, "micro: the built-in configuration was rejected\n");
		return ERR;
	}
	keel_nworkers = 1;
	proxy_runtime_init();
	if (health_init(1, &err) != OK)
		goto out_err;
	if (loop_init(&wk.loop, 0, global.bufsize, &err) != OK)
		goto out_err;
	worker_bind(&wk);
	if (proxy_thread_init(&thr, &err) != OK)
		goto out_err;
	clock_update();
	return OK;
out_err:
	fprintf(stderr, "micro: runtime set-up: %s\n", err ? err : "?");
	return ERR;
}

/* ---- HTTP heads ---- */

/* A browser's request for a script: 12 headers, 516 bytes. */
/* clang-format off */
static const char req_browser[] =
	"GET /static/js/app.3f9a2c71.js?v=20261123 HTTP/1.1\r\n"
	"Host: www.example.com\r\n"
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
	"Accept: */*\r\n"
	"Accept-Language: en-US,en;q=0.5\r\n"
	"Accept-Encoding: gzip, deflate, br\r\n"
	"Referer: https://www.example.com/products/index.html\r\n"
	"Connection: keep-alive\r\n"
	"Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; _ga=GA1.2.12345.17000\r\n"
	"Sec-Fetch-Dest: script\r\n"
	"Sec-Fetch-Mode: no-cors\r\n"
	"Sec-Fetch-Site: same-origin\r\n"
	"If-None-Match: \"5f3a-1a2b3c4d\"\r\n"
	"\r\n";
/* clang-format on */

/* curl's default request: 3 headers, 90 bytes. */
static const char req_curl[] = "GET /api/v1/items HTTP/1.1\r\n"
			       "Host: 127.0.0.1:8080\r\n"
			       "User-Agent: curl/7.88.1\r\n"
			       "Accept: */*\r\n"
			       "\r\n";

/* A static file from nginx: 9 headers, 295 bytes. */
static const char rsp_static[] = "HTTP/1.1 200 OK\r\n"
				 "Server: nginx/1.22.1\r\n"
				 "Date: Mon, 23 Nov 2026 06:36:00 GMT\r\n"
				 "Content-Type: application/javascript\r\n"
				 "Content-Length: 48213\r\n"
				 "Last-Modified: Fri, 20 Nov 2026 17:02:11 GMT\r\n"
				 "Connection: keep-alive\r\n"
				 "ETag: \"5f3a-1a2b3c4d\"\r\n"
				 "Cache-Control: public, max-age=31536000\r\n"
				 "Accept-Ranges: bytes\r\n"
				 "\r\n";

/* The benchmark origin's answer (bench/run): 5 headers, 148 bytes. */
static const char rsp_small[] = "HTTP/1.1 200 OK\r\n"
				"Server: nginx/1.22.1\r\n"
				"Date: Mon, 23 Nov 2026 06:36:00 GMT\r\n"
				"Content-Type: text/plain\r\n"
				"Content-Length: 19\r\n"
				"Connection: keep-alive\r\n"
				"\r\n";

static struct http_hdr *hdrs;
static llhttp_t parser;

/* The text a benchmark works on, chosen by its argument. */
static const char *const heads[] = {req_browser, req_curl, rsp_static, rsp_small};
static const int head_type[] = {HTTP_REQUEST, HTTP_REQUEST, HTTP_RESPONSE, HTTP_RESPONSE};

static int http_setup(void)
{
	hdrs = calloc((size_t)global.maxhdr, sizeof(*hdrs));
	return hdrs ? OK : ERR;
}

static uint32_t scan(const char *s, uint32_t len)
{
	uint32_t pos = 0, hlen = 0;
	bool line1 = false;

	if (http_scan_head(s, len, &pos, &hlen, &line1) != HTTP_SCAN_DONE)
		abort();
	return hlen;
}

static int parse(int type, const char *s, uint32_t len, struct http_head *h)
{
	h->hdr = hdrs;
	h->maxhdr = (uint16_t)global.maxhdr;
	h->skip_body = false;
	return http_parse_head(&parser, type, s, len, h);
}

/* Checks once, before timing, that the inputs are what the benchmark claims. */
static int http_check(void)
{
	size_t i;
	struct http_head h;

	for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		uint32_t len = (uint32_t)strlen(heads[i]);

		if (scan(heads[i], len) != len || parse(head_type[i], heads[i], len, &h) != OK) {
			fprintf(stderr, "micro: head %zu does not parse: %s\n", i,
				h.err ? h.err : "scan");
			return ERR;
		}
	}
	return OK;
}

static void bench_scan(uint64_t n, int arg)
{
	const char *s = heads[arg];
	uint32_t len = (uint32_t)strlen(s);
	uint64_t acc = 0;

	while (n--) {
		sink_ptr(s);
		acc += scan(s, len);
	}
	sink_total += acc;
}

static void bench_parse(uint64_t n, int arg)
{
	const char *s = heads[arg];
	uint32_t len = (uint32_t)strlen(s);
	struct http_head h;
	uint64_t acc = 0;

	while (n--) {
		sink_ptr(s);
		acc += (uint64_t)parse(head_type[arg], s, len, &h) + h.nhdr;
	}
	sink_total += acc;
}

/* What the session does when a head arrives in one read: scan for its end, then parse it. */
static void bench_scan_parse(uint64_t n, int arg)
{
	const char *s = heads[arg];
	uint32_t len = (uint32_t)strlen(s);
	struct http_head h;
	uint64_t acc = 0;

	while (n--) {
		uint32_t hlen;

		sink_ptr(s);
		hlen = scan(s, len);
		acc += (uint64_t)parse(head_type[arg], s, hlen, &h) + h.nhdr;
	}
	sink_total += acc;
}

/* A header lookup that misses: every name is compared (what "balance hdr" or a capture of an
 * absent header costs). */
static void bench_hdr_find(uint64_t n, int arg)
{
	struct http_head h;
	uint64_t acc = 0;

	parse(HTTP_REQUEST, req_browser, (uint32_t)strlen(req_browser), &h);
	while (n--) {
		sink_ptr(&h);
		acc += (uint64_t)http_hdr_find(&h, "x-request-id", 12, 0);
	}
	sink_total += acc;
}

/* ---- full head analysis (src/proxy/http-ana.c) on a stream that has no sockets ---- */

static struct stream ana_sess;
static struct session ana_cli; /* its client connection: the address */
static struct txn ana_txn;

static int ana_setup(void)
{
	struct stream *s = &ana_sess;

	memset(s, 0, sizeof(*s));
	memset(&ana_txn, 0, sizeof(ana_txn));
	s->fe = proxy_by_name("fe", PR_CAP_FE);
	s->be = proxy_by_name("web", PR_CAP_BE);
	if (!s->fe || !s->be)
		return ERR;
	s->txn = &ana_txn;
	s->sess = &ana_cli;
	ana_cli.addr.in.sin_family = AF_INET;
	ana_cli.addr.in.sin_addr.s_addr = htonl(0xc0000207); /* 192.0.2.7 */
	if (!buf_get(&s->req.b) || !buf_get(&s->rsp.b))
		return ERR;
	return OK;
}

static void ana_teardown(void)
{
	buf_release(&ana_sess.req.b, true);
	buf_release(&ana_sess.rsp.b, true);
}

/* Puts a request head at the start of the request channel, as a read would have. */
static void ana_load_req(const char *s, uint32_t len)
{
	struct chan *c = &ana_sess.req;

	memcpy(c->b.data, s, len);
	c->b.head = 0;
	c->b.tail = len;
	c->out = c->fwd = 0;
	ana_txn.flags = 0;
	ana_sess.be = NULL;
	ana_sess.rq = RQ_HEAD; /* as req_process() leaves it before the analysis (a fixture) */
}

/* Parse, rules, backend choice, X-Forwarded-For/-Proto, hop-by-hop removal and the rewrite of
 * the head in place; includes copying the head into the buffer first (a memcpy of its size). */
static void bench_ana_request(uint64_t n, int arg)
{
	const char *s = heads[arg];
	uint32_t len = (uint32_t)strlen(s);
	uint64_t acc = 0;

	while (n--) {
		ana_load_req(s, len);
		if (http_ana_request(&ana_sess, len) != OK)
			abort();
		acc += ana_sess.req.b.tail;
	}
	sink_total += acc;
}

static void bench_ana_response(uint64_t n, int arg)
{
	const char *s = heads[arg];
	uint32_t len = (uint32_t)strlen(s);
	struct chan *c = &ana_sess.rsp;
	uint64_t acc = 0;
	bool interim;

	ana_sess.be = proxy_by_name("web", PR_CAP_BE);
	while (n--) {
		memcpy(c->b.data, s, len);
		c->b.head = 0;
		c->b.tail = len;
		c->out = c->fwd = 0;
		ana_txn.flags = TX_CLI_KEEPALIVE | TX_SRV_KEEPALIVE;
		ana_sess.rs = RS_HEAD; /* as rsp_process() leaves it before the analysis */
		if (http_ana_response(&ana_sess, len, &interim) != OK)
			abort();
		acc += c->b.tail;
	}
	sink_total += acc;
}

/* ---- balancers ---- */

static struct stream lb_sess;
static struct session lb_cli;
static struct txn lb_txn;
static struct be_tctx *lb_bt;

#define NKEYS 1024
#define KEYLEN 48
static char keys[NKEYS][KEYLEN];
static uint32_t keylens[NKEYS];

static const char *const lb_backends[] = {"rr2", "rr5", "lc5", "rnd5", "urimap5", "urich5"};

static int lb_setup(int arg)
{
	struct proxy *be = proxy_by_name(lb_backends[arg], PR_CAP_BE);
	int i;

	if (!be)
		return ERR;
	memset(&lb_sess, 0, sizeof(lb_sess));
	memset(&lb_txn, 0, sizeof(lb_txn));
	lb_sess.be = lb_sess.fe = be;
	lb_sess.txn = &lb_txn;
	lb_sess.sess = &lb_cli;
	lb_bt = &thr.be[be->id];
	/* Servers carry some load, different on each, so that leastconn and random compare. */
	for (i = 0; i < be->nsrv; i++)
		atomic_store(&be->srv[i]->cur_sess, (int)(rnd() % 20));
	for (i = 0; i < NKEYS; i++)
		keylens[i] = (uint32_t)snprintf(keys[i], KEYLEN, "/img/products/%04d/thumb-%d.jpg",
						(int)(rnd() % 10000), i);
	return OK;
}

static void bench_lb_pick(uint64_t n, int arg)
{
	uint64_t acc = 0;

	while (n--)
		acc += (uint64_t)(uintptr_t)lb_pick(&lb_sess, lb_bt, NULL);
	sink_total += acc;
}

/* The hash-based algorithms: the key is hashed at analysis (lb_hash_key, a path of about 32
 * bytes, a different one each time), then lb_pick() chooses from it. */
static void bench_lb_hash_pick(uint64_t n, int arg)
{
	uint64_t acc = 0, i = 0;

	lb_txn.flags |= TX_HAS_HASH;
	while (n--) {
		uint32_t k = (uint32_t)(i++ % NKEYS);

		lb_txn.lb_hash = lb_hash(keys[k], keylens[k]);
		acc += (uint64_t)(uintptr_t)lb_pick(&lb_sess, lb_bt, NULL);
	}
	sink_total += acc;
}

static void bench_lb_hash(uint64_t n, int arg)
{
	uint64_t acc = 0, i = 0;

	while (n--) {
		uint32_t k = (uint32_t)(i++ % NKEYS);

		acc += lb_hash(keys[k], keylens[k]);
	}
	sink_total += acc;
}

/* ---- timers ---- */

static struct timer_heap th;
static struct timer *tms;
static uint32_t ntm;
static uint64_t tnow; /* the benchmarks' own clock, in "microseconds" */

#define SPAN 30000000u /* deadlines spread over 30 s, like client timeouts */

static void on_timer(struct timer *t)
{
	(void)t;
}

/* The periodic timer of the "run" benchmark: re-armed one full period later. */
static void on_periodic(struct timer *t)
{
	timer_heap_arm(&th, t, t->expire + ntm);
}

/* A heap of n timers (plus one spare, unarmed) with deadlines spread at random over SPAN, or,
 * periodic, at tnow+1 .. tnow+n (one due per tick) in a shuffled order. */
static int timers_fill(uint32_t n, timer_cb cb, bool periodic)
{
	uint32_t i, *perm;

	timer_heap_free(&th);
	free(tms);
	tms = calloc((size_t)n + 1, sizeof(*tms));
	perm = malloc(n * sizeof(*perm));
	if (!tms || !perm)
		goto out_free;
	ntm = n;
	tnow = 1000;
	for (i = 0; i < n; i++) { /* inside-out Fisher-Yates */
		uint32_t j = (uint32_t)(rnd() % (i + 1));

		if (j != i)
			perm[i] = perm[j];
		perm[j] = i;
	}
	for (i = 0; i < n; i++) {
		timer_init(&tms[i], cb);
		if (timer_heap_arm(&th, &tms[i],
				   periodic ? tnow + 1 + perm[i] : tnow + rnd() % SPAN) != OK)
			goto out_free;
	}
	timer_init(&tms[n], on_timer);
	free(perm);
	return OK;
out_free:
	free(perm);
	return ERR;
}

static const uint32_t timer_sizes[] = {10000, 100000};

static int timer_setup_rand(int arg)
{
	return timers_fill(timer_sizes[arg], on_timer, false);
}

static uint32_t tcur; /* the next timer "rearm later" moves */

/* An idle timeout pushed forward after I/O on every connection in turn, all with the same
 * timeout: the timer moved is always the earliest (the root) and its new deadline the latest, so
 * every re-arm is a sift-down through the whole depth of the heap, the worst case. (The session
 * layer avoids paying this per read: it only moves a timer earlier and lets a timer that fires
 * too early re-arm itself, see session_update_timer().) */
static void bench_timer_rearm_later(uint64_t n, int arg)
{
	while (n--) {
		tcur = (tcur + 7919) % ntm;
		tnow++;
		timer_heap_arm(&th, &tms[tcur], tnow + SPAN);
	}
	sink_u64(th.h[0]->expire);
}

/* The steady state of "rearm later": every timer re-armed once, in the benchmark's order. */
static int timer_setup_later(int arg)
{
	if (timers_fill(timer_sizes[arg], on_timer, false) != OK)
		return ERR;
	tcur = 0;
	bench_timer_rearm_later(ntm, arg);
	return OK;
}

/* A deadline moved anywhere (earlier or later) on a random timer. */
static void bench_timer_rearm_random(uint64_t n, int arg)
{
	while (n--) {
		uint32_t i = (uint32_t)(rnd() % ntm);

		timer_heap_arm(&th, &tms[i], tnow + rnd() % SPAN);
	}
	sink_u64(th.h[0]->expire);
}

/* A new timer armed then disarmed (a connect timeout that did not fire): insert and remove. */
static void bench_timer_arm_disarm(uint64_t n, int arg)
{
	struct timer *t = &tms[ntm];

	while (n--) {
		timer_heap_arm(&th, t, tnow + rnd() % SPAN);
		timer_heap_disarm(&th, t);
	}
	sink_u64(th.n);
}

static int timer_setup_periodic(int arg)
{
	return timers_fill(timer_sizes[arg], on_periodic, true);
}

/* One timer due per call of timer_heap_run(): it is removed from the top of the heap, its
 * callback runs and re-arms it one period later. */
static void bench_timer_run(uint64_t n, int arg)
{
	uint64_t fired = 0, todo = n;

	while (n--)
		fired += timer_heap_run(&th, ++tnow);
	if (fired != todo)
		abort(); /* exactly one timer is due at each tick */
}

static void timer_teardown(void)
{
	timer_heap_free(&th);
	free(tms);
	tms = NULL;
}

/* ---- buffers ---- */

/* A connection's buffer taken from the thread's pool and given back (a pool hit). */
static void bench_buf_get_release(uint64_t n, int arg)
{
	struct buf b = {0};
	uint64_t acc = 0;

	while (n--) {
		if (!buf_get(&b))
			abort();
		acc += (uintptr_t)b.data;
		buf_release(&b, false);
	}
	sink_total += acc;
}

static const uint32_t compact_sizes[] = {64, 1024, 8192};

/* chan_compact (src/proxy/session.c): the live bytes at the end of the buffer move to its start
 * (a pipelined request left behind, a partly sent response). */
static void bench_buf_compact(uint64_t n, int arg)
{
	struct buf b = {0};
	uint32_t live = compact_sizes[arg];

	if (!buf_get(&b))
		abort();
	memset(b.data, 'x', b.size);
	while (n--) {
		b.head = b.size - live;
		b.tail = b.size;
		clobber();
		buf_compact(&b);
		sink_ptr(b.data);
	}
	buf_release(&b, true);
}

/* ---- health ---- */

static uint64_t lat_us[4096];

static int health_setup(void)
{
	int i;

	/* Powers of two from 16 us to 8 s, with a little jitter. */
	for (i = 0; i < 4096; i++)
		lat_us[i] = 16ull << (rnd() % 20) | (rnd() & 15);
	return OK;
}

static void bench_health_response(uint64_t n, int arg)
{
	struct proxy *be = proxy_by_name("rr5", PR_CAP_BE);
	uint64_t i = 0;

	while (n--) {
		struct server *srv = be->srv[i % (uint64_t)be->nsrv];

		health_response(srv, lat_us[i++ & 4095], 200);
	}
	sink_ptr(be);
}

static void bench_lat_bucket(uint64_t n, int arg)
{
	uint64_t acc = 0, i = 0;

	while (n--)
		acc += (uint64_t)lat_bucket(lat_us[i++ & 4095]);
	sink_total += acc;
}

/* ---- reference ---- */

/* Not keel code: a small byte-wise state machine over the browser head, branchy like a parser
 * and unchanged by any keel commit. Its time moves only with the machine (on the shared 2-CPU
 * VMs, spells of a few seconds slow it, like the parsers, by up to 2x) and the compiler: when it
 * differs between two runs, their other rows cannot be compared. */
static void bench_ref(uint64_t n, int arg)
{
	const unsigned char *p0 = (const unsigned char *)req_browser;
	size_t len = sizeof(req_browser) - 1;

	while (n--) {
		unsigned st = 0, cnt = 0;
		size_t i;

		sink_ptr(p0);
		for (i = 0; i < len; i++) {
			unsigned char c = p0[i];

			switch (st) {
			case 0:
				st = c == ':' ? 1 : c == '\r' ? 2 : 0;
				break;
			case 1:
				st = c == ' ' ? 1 : c == '\r' ? 2 : 3;
				cnt += st == 3;
				break;
			case 2:
				st = c == '\n' ? 0 : 4;
				break;
			case 3:
				st = c == '\r' ? 2 : (c == ';' || c == ',') ? 1 : 3;
				break;
			default:
				st = 0;
			}
		}
		sink_u64(cnt + st);
	}
}

/* ---- the table of benchmarks ---- */

struct bench {
	const char *name;
	void (*run)(uint64_t n, int arg);
	int arg;
	int (*setup)(int arg); /* before the repetitions (untimed) */
	void (*teardown)(void);
};

static int no_setup(int arg)
{
	return OK;
}

static int ana_setup_arg(int arg)
{
	return ana_setup();
}

/* One benchmark per line. */
/* clang-format off */
static const struct bench benches[] = {
	{"ref/state machine 516 B", bench_ref, 0, no_setup, NULL},
	{"http/scan req browser", bench_scan, 0, no_setup, NULL},
	{"http/parse req browser", bench_parse, 0, no_setup, NULL},
	{"http/scan+parse req browser", bench_scan_parse, 0, no_setup, NULL},
	{"http/scan req curl", bench_scan, 1, no_setup, NULL},
	{"http/parse req curl", bench_parse, 1, no_setup, NULL},
	{"http/scan+parse req curl", bench_scan_parse, 1, no_setup, NULL},
	{"http/scan+parse rsp static", bench_scan_parse, 2, no_setup, NULL},
	{"http/scan+parse rsp small", bench_scan_parse, 3, no_setup, NULL},
	{"http/hdr_find miss (12 hdrs)", bench_hdr_find, 0, no_setup, NULL},
	{"http/ana_request browser", bench_ana_request, 0, ana_setup_arg, ana_teardown},
	{"http/ana_request curl", bench_ana_request, 1, ana_setup_arg, ana_teardown},
	{"http/ana_response static", bench_ana_response, 2, ana_setup_arg, ana_teardown},
	{"http/ana_response small", bench_ana_response, 3, ana_setup_arg, ana_teardown},
	{"lb/roundrobin 2 srv w1", bench_lb_pick, 0, lb_setup, NULL},
	{"lb/roundrobin 5 srv w1-10", bench_lb_pick, 1, lb_setup, NULL},
	{"lb/leastconn 5 srv", bench_lb_pick, 2, lb_setup, NULL},
	{"lb/random 5 srv (2 draws)", bench_lb_pick, 3, lb_setup, NULL},
	{"lb/uri map-based 5 srv", bench_lb_hash_pick, 4, lb_setup, NULL},
	{"lb/uri consistent 5 srv", bench_lb_hash_pick, 5, lb_setup, NULL},
	{"lb/lb_hash 32 B key", bench_lb_hash, 0, lb_setup, NULL},
	{"timer/rearm later 10k", bench_timer_rearm_later, 0, timer_setup_later, timer_teardown},
	{"timer/rearm later 100k", bench_timer_rearm_later, 1, timer_setup_later, timer_teardown},
	{"timer/rearm random 10k", bench_timer_rearm_random, 0, timer_setup_rand, timer_teardown},
	{"timer/rearm random 100k", bench_timer_rearm_random, 1, timer_setup_rand, timer_teardown},
	{"timer/arm+disarm 10k", bench_timer_arm_disarm, 0, timer_setup_rand, timer_teardown},
	{"timer/arm+disarm 100k", bench_timer_arm_disarm, 1, timer_setup_rand, timer_teardown},
	{"timer/run 1 due 10k", bench_timer_run, 0, timer_setup_periodic, timer_teardown},
	{"timer/run 1 due 100k", bench_timer_run, 1, timer_setup_periodic, timer_teardown},
	{"buf/get+release", bench_buf_get_release, 0, no_setup, NULL},
	{"buf/compact 64 B", bench_buf_compact, 0, no_setup, NULL},
	{"buf/compact 1 KB", bench_buf_compact, 1, no_setup, NULL},
	{"buf/compact 8 KB", bench_buf_compact, 2, no_setup, NULL},
	{"health/health_response", bench_health_response, 0, no_setup, NULL},
	{"health/lat_bucket", bench_lat_bucket, 0, no_setup, NULL},
};
/* clang-format on */

#define NBENCH (sizeof(benches) / sizeof(benches[0]))

/* ---- measuring ---- */

static clockid_t clk = CLOCK_MONOTONIC;

static uint64_t clock_ns(void)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t time_run(const struct bench *b, uint64_t n)
{
	uint64_t t0 = clock_ns(), t1;

	b->run(n, b->arg);
	t1 = clock_ns();
	return t1 - t0;
}

/* Iterations for one repetition of about target_ns, rounded to two significant digits. The
 * fastest of three timings at the final count: one taken in a slow spell of the machine would
 * make every repetition short. */
static uint64_t calibrate(const struct bench *b, uint64_t target_ns)
{
	uint64_t n = 1, t = 0, p = 1;
	int i;

	while (n < (1ull << 40)) {
		t = time_run(b, n);
		if (t >= target_ns / 8)
			break;
		n *= 2;
	}
	for (i = 0; i < 2; i++) {
		uint64_t t2 = time_run(b, n);

		if (t2 < t)
			t = t2;
	}
	n = t ? (uint64_t)((double)n * (double)target_ns / (double)t) : n;
	if (n < 1)
		n = 1;
	while (n >= 100) {
		n /= 10;
		p *= 10;
	}
	return n * p;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#define MAXREPS 255

struct result {
	const struct bench *b;
	uint64_t iters;
	double v[MAXREPS]; /* ns/op of each repetition */
	double med, min, max;
};

/* Every run of a benchmark starts from the same set-up and the same pseudo-random inputs. */
static int bench_begin(const struct bench *b)
{
	rng_state = 0x9e3779b97f4a7c15ull;
	if (b->setup(b->arg) != OK) {
		fprintf(stderr, "micro: set-up of %s failed\n", b->name);
		return ERR;
	}
	return OK;
}

static void bench_end(const struct bench *b)
{
	if (b->teardown)
		b->teardown();
}

/* Calibrates each benchmark, then runs the repetitions in rounds (one repetition of every
 * benchmark per round) rather than all repetitions of one benchmark in a row: on a shared machine
 * whose speed drifts for seconds at a time, a slow period then spreads over every benchmark's
 * repetitions instead of shifting one benchmark's median. Each repetition is preceded by an
 * untimed warm-up run of an eighth of its iterations (caches, branch predictors, pools). */
static int measure_all(struct result *res, size_t nres, int reps, uint64_t target_ns)
{
	size_t k;
	int r;

	for (k = 0; k < nres; k++) {
		if (bench_begin(res[k].b) != OK)
			return ERR;
		res[k].iters = calibrate(res[k].b, target_ns);
		bench_end(res[k].b);
	}
	for (r = 0; r < reps; r++) {
		for (k = 0; k < nres; k++) {
			const struct bench *b = res[k].b;

			if (bench_begin(b) != OK)
				return ERR;
			b->run(res[k].iters / 8 + 1, b->arg);
			res[k].v[r] = (double)time_run(b, res[k].iters) / (double)res[k].iters;
			bench_end(b);
		}
	}
	for (k = 0; k < nres; k++) {
		double *v = res[k].v;

		qsort(v, (size_t)reps, sizeof(v[0]), cmp_double);
		res[k].min = v[0];
		res[k].max = v[reps - 1];
		res[k].med = reps % 2 ? v[reps / 2] : (v[reps / 2 - 1] + v[reps / 2]) / 2;
	}
	return OK;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: micro [--filter SUBSTR] [--reps R] [--quick] [--markdown] [--cpu-clock] "
	    "[--list]\n"
	    "  --filter SUBSTR  only the benchmarks whose name contains SUBSTR (e.g. lb/, timer/)\n"
	    "  --reps R         repetitions per benchmark (default 11, 1..255)\n"
	    "  --quick          3 repetitions of ~5 ms (default: ~20 ms each)\n"
	    "  --markdown       print the table in markdown\n"
	    "  --cpu-clock      time with CLOCK_THREAD_CPUTIME_ID instead of CLOCK_MONOTONIC\n"
	    "  --list           print the benchmarks' names and exit\n");
}

int main(int argc, char **argv)
{
	const char *filter = NULL;
	int reps = 11, i;
	bool quick = false, markdown = false, reps_set = false;
	uint64_t target_ns;
	struct result *res;
	size_t k, nres = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--filter") && i + 1 < argc) {
			filter = argv[++i];
		} else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);

			if (*end || v < 1 || v > 255) {
				fprintf(stderr, "micro: --reps expects 1..255\n");
				return 2;
			}
			reps = (int)v;
			reps_set = true;
		} else if (!strcmp(argv[i], "--quick")) {
			quick = true;
		} else if (!strcmp(argv[i], "--markdown")) {
			markdown = true;
		} else if (!strcmp(argv[i], "--cpu-clock")) {
			clk = CLOCK_THREAD_CPUTIME_ID;
		} else if (!strcmp(argv[i], "--list")) {
			for (k = 0; k < NBENCH; k++)
				printf("%s\n", benches[k].name);
			return 0;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (quick && !reps_set)
		reps = 3;
	target_ns = quick ? 5000000u : 20000000u;

	if (runtime_setup() != OK || http_setup() != OK || health_setup() != OK ||
	    http_check() != OK)
		return 1;

	res = calloc(NBENCH, sizeof(*res));
	if (!res)
		return 1;
	for (k = 0; k < NBENCH; k++)
		if (!filter || strstr(benches[k].name, filter))
			res[nres++].b = &benches[k];
	if (!nres) {
		fprintf(stderr, "micro: no benchmark matches \"%s\" (--list)\n", filter);
		return 2;
	}
	fprintf(stderr, "micro: %zu benchmark(s), %d round(s)\n", nres, reps);
	if (measure_all(res, nres, reps, target_ns) != OK)
		return 1;
	if (markdown) {
		printf("| benchmark | iterations | ns/op median | min | max |\n");
		printf("|---|---:|---:|---:|---:|\n");
	} else {
		printf("%s, %d repetitions of ~%" PRIu64 " ms, ns per operation\n",
		       clk == CLOCK_MONOTONIC ? "CLOCK_MONOTONIC" : "CLOCK_THREAD_CPUTIME_ID", reps,
		       target_ns / 1000000);
		printf("%-30s %12s %10s %10s %10s\n", "benchmark", "iterations", "median", "min",
		       "max");
	}
	for (k = 0; k < nres; k++) {
		const struct result *r = &res[k];

		if (markdown)
			printf("| %s | %" PRIu64 " | %.1f | %.1f | %.1f |\n", r->b->name, r->iters,
			       r->med, r->min, r->max);
		else
			printf("%-30s %12" PRIu64 " %10.1f %10.1f %10.1f\n", r->b->name, r->iters,
			       r->med, r->min, r->max);
	}
	free(res);
	return 0;
}
