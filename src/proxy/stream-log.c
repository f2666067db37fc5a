/* The request log line: the format a frontend asks for (log-format, option httplog, option
 * logjson, the tcplog default), rendered once per transaction and handed to the logger thread
 * (src/core/log.c). */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <keel/cfg.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/global.h>
#include <keel/log.h>
#include <keel/sample.h>
#include <keel/stream-t.h>
#include <keel/stream.h>
#include <keel/worker.h>

static struct logformat fmt_httplog, fmt_tcplog;

static void ensure_formats(void)
{
	static atomic_int done;
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

	if (atomic_load(&done))
		return;
	pthread_mutex_lock(&lock);
	if (!atomic_load(&done)) {
		struct cfg_ctx c = {0};

		logformat_parse(&c, LOGFMT_HTTPLOG, &fmt_httplog);
		logformat_parse(&c, "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq",
				&fmt_tcplog);
		atomic_store(&done, 1);
	}
	pthread_mutex_unlock(&lock);
}

static size_t json_str(char *o, size_t cap, const char *s, size_t n)
{
	size_t k = 0, i;

	for (i = 0; i < n && k + 7 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\') {
			o[k++] = '\\';
			o[k++] = (char)ch;
		} else if (ch < 0x20 || ch >= 0x7f) {
			k += (size_t)snprintf(o + k, cap - k, "\\u%04x", ch);
		} else {
			o[k++] = (char)ch;
		}
	}
	return k;
}

static size_t render_json(struct stream *s, char *out, size_t cap)
{
	struct txn *t = s->txn;
	char ip[64], rl[KEEL_LOG_URI_LEN * 6 + 8], why[512];
	struct sample smp;
	struct sample_expr e = {.fetch = SMP_SRC};
	size_t rll, wl;
	long long tr = -1, tw = -1, tc_ = -1, tres = -1, ta = -1;

	sample_fetch(s, &e, &smp);
	sample_to_str(&smp, ip, sizeof(ip));
	rll = json_str(rl, sizeof(rl), t->reqline, t->reqline_len);
	wl = t->err_why ? json_str(why, sizeof(why), t->err_why, strlen(t->err_why)) : 0;
#define SPAN(a, b) ((a) && (b) && (b) >= (a) ? (long long)(((b) - (a)) / 1000) : -1)
	tr = SPAN(t->t_start, t->t_head);
	tw = SPAN(t->t_head, t->t_queue);
	tc_ = SPAN(t->t_queue, t->t_conn);
	tres = SPAN(t->t_conn, t->t_rsp);
	ta = SPAN(t->t_start, t->t_end);
#undef SPAN
	return (size_t)snprintf(
		out, cap,
		"{\"time\":%.3f,\"client_ip\":\"%s\",\"client_port\":%u,\"frontend\":\"%s\","
		"\"backend\":\"%s\",\"server\":\"%s\",\"TR\":%lld,\"Tw\":%lld,\"Tc\":%lld,"
		"\"Tr\":%lld,\"Ta\":%lld,\"status\":%u,\"bytes_read\":%llu,\"bytes_uploaded\":%llu,"
		"\"termination_state\":\"%c%c\",\"retries\":%d,\"request\":\"%.*s\"%s%.*s%s}",
		(double)t->wall_start / 1e6, ip,
		(unsigned)ntohs(s->sess->addr.sa.sa_family == AF_INET6 ? s->sess->addr.in6.sin6_port
									: s->sess->addr.in.sin_port),
		s->fe->name, s->be ? s->be->name : s->fe->name, s->srv ? s->srv->name : "<NOSRV>", tr,
		tw, tc_, tres, ta, t->status, (unsigned long long)t->bytes_out,
		(unsigned long long)t->bytes_in, t->term[0], t->term[1],
		s->be ? MAX(0, s->be->retries - t->retries) : 0, (int)rll, rl,
		wl ? ",\"reason\":\"" : "", (int)wl, why, wl ? "\"" : "");
}

void stream_log(struct stream *s)
{
	struct txn *t = s->txn;
	char line[4096];
	size_t n;
	const struct proxy *fe = s->fe;
	uint32_t opts = fe->opts;

	if (!t || (t->flags & TX_LOGGED))
		return;
	t->flags |= TX_LOGGED;
	if (!fe->logs.n && !(fe->log_global && global.logs.n))
		return;
	if ((opts & PO_DONTLOGNULL) && t->bytes_in == 0 && !t->reqline_len)
		return;
	if ((opts & PO_DONTLOG_NORMAL) && t->status < 500 && t->term[0] == '-')
		return;
	if (!t->t_end)
		t->t_end = now_us;
	ensure_formats();
	if (opts & PO_LOGJSON)
		n = render_json(s, line, sizeof(line));
	else if (fe->logfmt_set)
		n = logformat_render(&fe->logfmt, s, line, sizeof(line));
	else if (opts & PO_HTTPLOG)
		n = logformat_render(&fmt_httplog, s, line, sizeof(line));
	else
		n = logformat_render(&fmt_tcplog, s, line, sizeof(line));
	n = MIN(n, sizeof(line) - 1);
	log_request(this_worker->id, &fe->logs, fe->log_global,
		    (t->status >= 500 || t->term[0] != '-') && (opts & PO_LOG_SEPARATE_ERRORS)
			? LOG_LVL_ERR
			: LOG_LVL_INFO,
		    line, n);
}
