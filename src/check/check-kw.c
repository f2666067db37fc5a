/* Keywords of active health checks and the agent: the server words ("check", "inter", "rise",
 * "agent-check"...), "option httpchk", "option tcp-check", "http-check" and "tcp-check", and the
 * validation that resolves what was left unset (docs/configuration.md, "Health checks").
 *
 * A backend's check request and rules are inherited from its defaults section until the backend
 * gives its own: the first "http-check expect" (or "tcp-check" rule) of a backend replaces the
 * inherited list instead of adding to it, as HAProxy does. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <pcre2.h>
#include <string.h>
#include <strings.h>

#include <keel/cfg.h>
#include <keel/check.h>
#include <keel/common.h>
#include <keel/proxy.h>

/* keel's defaults (docs/configuration.md). HAProxy: inter 2s, rise 2, fall 3, fastinter and
 * downinter = inter. keel checks faster while a server changes state (fastinter, at most 1 s) so
 * that a failing server is out, and a recovered one back, within a few seconds. */
#define DEF_INTER 2000
#define DEF_FASTINTER_MAX 1000
#define DEF_RISE 2
#define DEF_FALL 3
#define MIN_SANE_INTER 100

static void kw_check_defaults(struct proxy *p)
{
	struct chk_proxy_conf *k = &p->chk;
	struct chk_srv_conf *s = &p->defsrv.chk;

	/* Only the fields of active checks: the others are kw-health.c's. */
	k->kind = CHK_KIND_TCP;
	k->method = k->uri = k->version = k->hdrs = k->body = NULL;
	k->nexpect = 0;
	k->nsteps = 0;
	s->enabled = false;
	s->inter = DEF_INTER;
	s->fastinter = 0; /* 0: resolved by chk_validate() */
	s->downinter = 0;
	s->rise = DEF_RISE;
	s->fall = DEF_FALL;
	s->port = 0;
	s->has_addr = false;
	s->agent = false;
	s->agent_port = 0;
	s->agent_inter = 0;
	s->has_agent_addr = false;
	s->agent_send = NULL;
}

/* ---- server parameters ---- */

static const char *srv_name(const struct server *s)
{
	return s->name ? s->name : "default-server";
}

static int srv_time(struct cfg_ctx *c, struct server *s, const char *kw, const char *val,
		    uint32_t *out)
{
	const char *why;
	uint32_t t;

	if (!val) {
		cfg_err(c, "server '%s': '%s' expects a time such as 500ms or 2s", srv_name(s), kw);
		return ERR;
	}
	if (cfg_parse_time(val, &t, &why)) {
		cfg_err(c, "server '%s': '%s %s': %s", srv_name(s), kw, val, why);
		return ERR;
	}
	if (t == 0) {
		cfg_err(c, "server '%s': '%s' must be greater than 0", srv_name(s), kw);
		return ERR;
	}
	*out = t;
	return OK;
}

static int srv_int(struct cfg_ctx *c, struct server *s, const char *kw, const char *val, long min,
		   long max, int *out)
{
	long v;

	if (!val || cfg_parse_int(val, min, max, &v)) {
		cfg_err(c, "server '%s': '%s' expects a number from %ld to %ld", srv_name(s), kw,
			min, max);
		return ERR;
	}
	*out = (int)v;
	return OK;
}

static int srv_addr(struct cfg_ctx *c, struct server *s, const char *kw, const char *val,
		    struct sockaddr_storage *ss, socklen_t *len)
{
	char *err = NULL;
	bool no_port;

	if (!val) {
		cfg_err(c, "server '%s': '%s' expects an address", srv_name(s), kw);
		return ERR;
	}
	if (cfg_parse_addr(val, ss, len, true, &no_port, &err)) {
		cfg_err(c, "server '%s': '%s': %s", srv_name(s), kw, err);
		free(err);
		return ERR;
	}
	return OK;
}

/* The words that take no value. */
static int srv_flag(struct server *s, const char *kw)
{
	if (!strcmp(kw, "check"))
		s->chk.enabled = true;
	else if (!strcmp(kw, "no-check"))
		s->chk.enabled = false;
	else if (!strcmp(kw, "agent-check"))
		s->chk.agent = true;
	else if (!strcmp(kw, "no-agent-check"))
		s->chk.agent = false;
	else
		return 0;
	return 1;
}

static int kw_check_server_param(struct cfg_ctx *c, struct server *s, int argc, char **argv, int *i)
{
	const char *kw = argv[*i];
	const char *val = *i + 1 < argc ? argv[*i + 1] : NULL;
	struct chk_srv_conf *k = &s->chk;
	int rc = OK;

	if (srv_flag(s, kw))
		return 1;
	if (!strcmp(kw, "inter"))
		rc = srv_time(c, s, kw, val, &k->inter);
	else if (!strcmp(kw, "fastinter"))
		rc = srv_time(c, s, kw, val, &k->fastinter);
	else if (!strcmp(kw, "downinter"))
		rc = srv_time(c, s, kw, val, &k->downinter);
	else if (!strcmp(kw, "agent-inter"))
		rc = srv_time(c, s, kw, val, &k->agent_inter);
	else if (!strcmp(kw, "rise"))
		rc = srv_int(c, s, kw, val, 1, 100000, &k->rise);
	else if (!strcmp(kw, "fall"))
		rc = srv_int(c, s, kw, val, 1, 100000, &k->fall);
	else if (!strcmp(kw, "port"))
		rc = srv_int(c, s, kw, val, 1, 65535, &k->port);
	else if (!strcmp(kw, "agent-port"))
		rc = srv_int(c, s, kw, val, 1, 65535, &k->agent_port);
	else if (!strcmp(kw, "addr"))
		rc = srv_addr(c, s, kw, val, &k->addr, &k->addrlen);
	else if (!strcmp(kw, "agent-addr"))
		rc = srv_addr(c, s, kw, val, &k->agent_addr, &k->agent_addrlen);
	else if (!strcmp(kw, "agent-send")) {
		if (!val) {
			cfg_err(c, "server '%s': 'agent-send' expects a string", srv_name(s));
			return ERR;
		}
		k->agent_send = arena_strdup(&cfg_arena, val);
	} else
		return 0;
	if (rc != OK)
		return ERR;
	if (!strcmp(kw, "addr"))
		k->has_addr = true;
	else if (!strcmp(kw, "agent-addr"))
		k->has_agent_addr = true;
	(*i)++;
	return 1;
}

/* ---- option httpchk, option tcp-check ---- */

/* option httpchk [URI] | [METHOD URI [VERSION]]. HAProxy 1.x configurations append headers to the
 * version ("HTTP/1.1\r\nHost:\ www"): the tokenizer has decoded the escapes, so the version
 * is split at its first CR LF and the rest becomes the check's headers. The option defines the
 * whole request: headers and body set before it are dropped. */
int kw_opt_httpchk(struct cfg_ctx *c, int argc, char **argv, int i)
{
	struct chk_proxy_conf *k = &c->cur->chk;
	const char *method = "OPTIONS", *uri = "/", *ver = "HTTP/1.0";
	const char *crlf;
	int n = argc - i;

	if (n > 3) {
		cfg_err(c, "'option httpchk' expects [URI] or [METHOD URI [VERSION]], not %d words",
			n);
		return ERR;
	}
	if (n == 1) {
		uri = argv[i];
	} else if (n >= 2) {
		method = argv[i];
		uri = argv[i + 1];
		if (n == 3)
			ver = argv[i + 2];
	}
	if (!*method || !*uri || strpbrk(method, " \r\n") || strpbrk(uri, " \r\n")) {
		cfg_err(c, "'option httpchk': invalid method or URI");
		return ERR;
	}
	k->method = arena_strdup(&cfg_arena, method);
	k->uri = arena_strdup(&cfg_arena, uri);
	k->hdrs = NULL;
	k->body = NULL;
	crlf = strstr(ver, "\r\n");
	if (crlf) {
		size_t hl = strlen(crlf + 2);

		k->version = arena_strndup(&cfg_arena, ver, (size_t)(crlf - ver));
		/* Each header line ends with CR LF, including the last one. */
		while (hl >= 2 && !memcmp(crlf + 2 + hl - 2, "\r\n", 2))
			hl -= 2;
		if (hl) {
			k->hdrs = arena_alloc(&cfg_arena, hl + 3);
			memcpy(k->hdrs, crlf + 2, hl);
			memcpy(k->hdrs + hl, "\r\n", 3);
		}
	} else {
		k->version = arena_strdup(&cfg_arena, ver);
	}
	if (!*k->version || strpbrk(k->version, " \r\n")) {
		cfg_err(c, "'option httpchk': invalid HTTP version '%s'", k->version);
		return ERR;
	}
	k->kind = CHK_KIND_HTTP;
	c->cur->opts &= ~(uint32_t)PO_TCPCHK; /* the last check option wins */
	return OK;
}

int kw_opt_tcpchk(struct cfg_ctx *c, int argc, char **argv, int i)
{
	if (argc > i) {
		cfg_err(c,
			"'option tcp-check' takes no argument (the rules are 'tcp-check' lines)");
		return ERR;
	}
	c->cur->chk.kind = CHK_KIND_TCP;
	c->cur->opts &= ~(uint32_t)PO_HTTPCHK;
	return OK;
}

/* ---- expect rules (shared by http-check and tcp-check) ---- */

static void free_re(void *re)
{
	pcre2_code_free(re);
}

static int compile_re(struct cfg_ctx *c, const char *kw, const char *re, void **out)
{
	PCRE2_SIZE eo;
	int ec;
	pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);

	if (!code) {
		PCRE2_UCHAR msg[128];

		pcre2_get_error_message(ec, msg, sizeof(msg));
		cfg_err(c, "'%s': invalid regex '%s' at offset %zu: %s", kw, re, (size_t)eo,
			(const char *)msg);
		return ERR;
	}
	arena_on_free(&cfg_arena, free_re, code);
	*out = code;
	return OK;
}

/* Checks a status list: "200", "200-399", "200,204,300-310" (codes 100 to 599). */
static bool valid_status_list(const char *s)
{
	for (;;) {
		long lo, hi;
		char *end;

		if (*s < '1' || *s > '5')
			return false;
		lo = strtol(s, &end, 10);
		hi = lo;
		if (*end == '-') {
			if (end[1] < '1' || end[1] > '5')
				return false;
			hi = strtol(end + 1, &end, 10);
		}
		if (lo < 100 || hi > 599 || lo > hi)
			return false;
		if (!*end)
			return true;
		if (*end != ',')
			return false;
		s = end + 1;
	}
}

/* Decodes an even number of hex digits into a fresh arena string. */
static char *decode_hex(const char *hex, uint32_t *len)
{
	size_t n = strlen(hex), i;
	char *out;

	if (!n || n % 2)
		return NULL;
	out = arena_alloc(&cfg_arena, n / 2 + 1);
	for (i = 0; i < n; i += 2) {
		int h = hexval(hex[i]), l = hexval(hex[i + 1]);

		if (h < 0 || l < 0)
			return NULL;
		out[i / 2] = (char)(h * 16 + l);
	}
	*len = (uint32_t)(n / 2);
	return out;
}

/* Parses "[!] TYPE ARG" from argv[i...] into e. tcp selects the tcp-check types (string, rstring,
 * binary); http the http-check ones (status, rstatus, string, rstring). For string and binary,
 * *data and *len receive the bytes to look for. Returns the index after ARG, or ERR. */
static int parse_expect(struct cfg_ctx *c, int argc, char **argv, int i, bool tcp,
			struct chk_expect *e, char **data, uint32_t *len)
{
	const char *kw = tcp ? "tcp-check expect" : "http-check expect";
	const char *type, *arg;

	memset(e, 0, sizeof(*e));
	if (i < argc && !strcmp(argv[i], "!")) {
		e->negate = true;
		i++;
	}
	if (i + 1 >= argc) {
		cfg_err(c, "'%s' expects [!] %s and a pattern", kw,
			tcp ? "string|rstring|binary" : "status|rstatus|string|rstring");
		return ERR;
	}
	type = argv[i];
	arg = argv[i + 1];
	e->arg = arena_strdup(&cfg_arena, arg);
	if (!strcmp(type, "string")) {
		e->type = CHK_EXP_STRING;
		if (!*arg) {
			cfg_err(c, "'%s string' expects a non-empty string", kw);
			return ERR;
		}
		*data = e->arg;
		*len = (uint32_t)strlen(arg);
	} else if (!strcmp(type, "rstring")) {
		e->type = CHK_EXP_RSTRING;
		if (compile_re(c, kw, arg, &e->re))
			return ERR;
	} else if (!tcp && !strcmp(type, "status")) {
		e->type = CHK_EXP_STATUS;
		if (!valid_status_list(arg)) {
			cfg_err(c,
				"'%s status %s': expects status codes or ranges from 100 to 599, "
				"such as 200, 200-399 or 200,204",
				kw, arg);
			return ERR;
		}
	} else if (!tcp && !strcmp(type, "rstatus")) {
		e->type = CHK_EXP_RSTATUS;
		if (compile_re(c, kw, arg, &e->re))
			return ERR;
	} else if (tcp && !strcmp(type, "binary")) {
		e->type = CHK_EXP_STRING;
		*data = decode_hex(arg, len);
		if (!*data) {
			cfg_err(c, "'%s binary %s': expects an even number of hexadecimal digits",
				kw, arg);
			return ERR;
		}
	} else {
		cfg_err(c, "'%s %s' is not implemented (expects %s)", kw, type,
			tcp ? "string, rstring or binary" : "status, rstatus, string or rstring");
		return ERR;
	}
	return i + 2;
}

/* ---- http-check ---- */

/* Rules copied from the defaults section are replaced, not extended, by the proxy's own. */
static bool expects_inherited(struct cfg_ctx *c)
{
	const struct chk_proxy_conf *k = &c->cur->chk, *d = &c->defaults->chk;

	return c->cur != c->defaults && k->nexpect && k->nexpect == d->nexpect &&
	       !memcmp(k->expect, d->expect, sizeof(k->expect));
}

static bool steps_inherited(struct cfg_ctx *c)
{
	const struct chk_proxy_conf *k = &c->cur->chk, *d = &c->defaults->chk;

	return c->cur != c->defaults && k->nsteps && k->nsteps == d->nsteps &&
	       !memcmp(k->steps, d->steps, sizeof(k->steps));
}

static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			return true;
	return false;
}

/* Appends "Name: value\r\n" to the request's headers. */
static int add_hdr(struct cfg_ctx *c, struct chk_proxy_conf *k, const char *name, const char *value)
{
	size_t old = k->hdrs ? strlen(k->hdrs) : 0, nl = strlen(name), vl = strlen(value);
	char *h;

	if (!nl || strpbrk(name, " \t:") || has_ctl(name) || has_ctl(value)) {
		cfg_err(c,
			"'http-check send hdr': invalid header '%s' (no spaces, colons or control "
			"characters in the name, no control characters in the value)",
			name);
		return ERR;
	}
	h = arena_alloc(&cfg_arena, old + nl + vl + 5);
	if (old)
		memcpy(h, k->hdrs, old);
	memcpy(h + old, name, nl);
	memcpy(h + old + nl, ": ", 2);
	memcpy(h + old + nl + 2, value, vl);
	memcpy(h + old + nl + 2 + vl, "\r\n", 3);
	k->hdrs = h;
	return OK;
}

/* http-check send [meth M] [uri U] [ver V] [hdr NAME VALUE]... [body STR]: changes the parts it
 * names; headers given here replace the previous ones. */
static int http_check_send(struct cfg_ctx *c, int argc, char **argv)
{
	struct chk_proxy_conf *k = &c->cur->chk;
	bool hdrs_reset = false;
	int i;

	for (i = 2; i < argc; i++) {
		const char *w = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v) {
			cfg_err(c, "'http-check send %s' expects a value", w);
			return ERR;
		}
		if (!strcmp(w, "hdr")) {
			if (i + 2 >= argc) {
				cfg_err(c, "'http-check send hdr' expects a name and a value");
				return ERR;
			}
			if (!hdrs_reset)
				k->hdrs = NULL;
			hdrs_reset = true;
			if (add_hdr(c, k, v, argv[i + 2]))
				return ERR;
			i += 2;
			continue;
		}
		if ((!strcmp(w, "meth") || !strcmp(w, "uri") || !strcmp(w, "ver")) &&
		    (!*v || strpbrk(v, " \r\n"))) {
			cfg_err(c, "'http-check send %s': invalid value '%s'", w, v);
			return ERR;
		}
		if (!strcmp(w, "meth"))
			k->method = arena_strdup(&cfg_arena, v);
		else if (!strcmp(w, "uri"))
			k->uri = arena_strdup(&cfg_arena, v);
		else if (!strcmp(w, "ver"))
			k->version = arena_strdup(&cfg_arena, v);
		else if (!strcmp(w, "body"))
			k->body = arena_strdup(&cfg_arena, v);
		else if (!strcmp(w, "comment"))
			; /* a label for the logs in HAProxy: nothing to do */
		else {
			cfg_err(c,
				"'http-check send %s' is not implemented (expects meth, uri, ver, "
				"hdr or body)",
				w);
			return ERR;
		}
		i++;
	}
	return OK;
}

static int http_check_expect(struct cfg_ctx *c, int argc, char **argv)
{
	struct chk_proxy_conf *k = &c->cur->chk;
	struct chk_expect e;
	char *data = NULL;
	uint32_t len = 0;
	int next;

	next = parse_expect(c, argc, argv, 2, false, &e, &data, &len);
	if (next < 0)
		return ERR;
	if (next < argc) {
		cfg_err(c, "'http-check expect': unexpected '%s' after the pattern", argv[next]);
		return ERR;
	}
	if (expects_inherited(c))
		k->nexpect = 0;
	if (k->nexpect >= CHK_MAX_EXPECT) {
		cfg_err(c, "'http-check expect': at most %d rules per backend", CHK_MAX_EXPECT);
		return ERR;
	}
	k->expect[k->nexpect++] = e;
	return OK;
}

static int kw_http_check(struct cfg_ctx *c, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";

	if (!strcmp(sub, "send"))
		return http_check_send(c, argc, argv);
	if (!strcmp(sub, "expect"))
		return http_check_expect(c, argc, argv);
	if (!strcmp(sub, "disable-on-404") || !strcmp(sub, "send-state") ||
	    !strcmp(sub, "comment") || !strcmp(sub, "connect")) {
		cfg_warn(c, "'http-check %s' is accepted but not implemented; ignored", sub);
		return OK;
	}
	cfg_err(c, "'http-check %s' is not implemented (expects send or expect)", sub);
	return ERR;
}

/* ---- tcp-check ---- */

static struct tcpchk_step *new_step(struct cfg_ctx *c, enum tcpchk_step_type type)
{
	struct chk_proxy_conf *k = &c->cur->chk;
	struct tcpchk_step *st;

	if (steps_inherited(c))
		k->nsteps = 0;
	if (k->nsteps >= CHK_MAX_STEPS) {
		cfg_err(c, "'tcp-check': at most %d rules per backend", CHK_MAX_STEPS);
		return NULL;
	}
	st = &k->steps[k->nsteps];
	memset(st, 0, sizeof(*st));
	st->type = type;
	return st;
}

/* tcp-check connect [port N] [linger] [comment TEXT] */
static int tcp_check_connect(struct cfg_ctx *c, int argc, char **argv)
{
	struct tcpchk_step st = {.type = TCPCHK_CONNECT};
	struct tcpchk_step *dst;
	int i;

	/* A unique pointer, so that a proxy's own rules never compare equal to inherited ones. */
	st.data = arena_alloc(&cfg_arena, 1);

	for (i = 2; i < argc; i++) {
		long v;

		if (!strcmp(argv[i], "port")) {
			if (i + 1 >= argc || cfg_parse_int(argv[i + 1], 1, 65535, &v)) {
				cfg_err(c,
					"'tcp-check connect port' expects a port from 1 to 65535");
				return ERR;
			}
			st.port = (int)v;
			i++;
		} else if (!strcmp(argv[i], "comment") && i + 1 < argc) {
			i++;
		} else if (!strcmp(argv[i], "linger")) {
			/* keel always closes check connections with a plain close */
		} else {
			cfg_err(c, "'tcp-check connect %s' is not implemented (expects port)",
				argv[i]);
			return ERR;
		}
	}
	dst = new_step(c, TCPCHK_CONNECT);
	if (!dst)
		return ERR;
	*dst = st;
	c->cur->chk.nsteps++;
	return OK;
}

/* tcp-check send STRING | send-binary HEX. The tokenizer has already decoded \r \n \t \\ and
 * \xHH outside single quotes, as HAProxy's parser does: the bytes are sent as they are. */
static int tcp_check_send(struct cfg_ctx *c, int argc, char **argv, bool binary)
{
	struct tcpchk_step *st;
	char *data;
	uint32_t len;

	if (argc < 3 || (argc > 3 && (argc != 5 || strcmp(argv[3], "comment")))) {
		cfg_err(c, "'tcp-check %s' expects one %s", argv[1],
			binary ? "hexadecimal string" : "string (quote it if it has spaces)");
		return ERR;
	}
	if (binary) {
		data = decode_hex(argv[2], &len);
		if (!data) {
			cfg_err(c,
				"'tcp-check send-binary %s': expects an even number of hexadecimal "
				"digits",
				argv[2]);
			return ERR;
		}
	} else {
		len = (uint32_t)strlen(argv[2]);
		if (!len) {
			cfg_err(c, "'tcp-check send' expects a non-empty string");
			return ERR;
		}
		data = arena_strdup(&cfg_arena, argv[2]);
	}
	st = new_step(c, TCPCHK_SEND);
	if (!st)
		return ERR;
	st->data = data;
	st->len = len;
	c->cur->chk.nsteps++;
	return OK;
}

static int tcp_check_expect(struct cfg_ctx *c, int argc, char **argv)
{
	struct tcpchk_step tmp = {.type = TCPCHK_EXPECT}, *st;
	int next;

	next = parse_expect(c, argc, argv, 2, true, &tmp.exp, &tmp.data, &tmp.len);
	if (next < 0)
		return ERR;
	if (next < argc) {
		cfg_err(c, "'tcp-check expect': unexpected '%s' after the pattern", argv[next]);
		return ERR;
	}
	st = new_step(c, TCPCHK_EXPECT);
	if (!st)
		return ERR;
	*st = tmp;
	c->cur->chk.nsteps++;
	return OK;
}

static int kw_tcp_check(struct cfg_ctx *c, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";

	if (!strcmp(sub, "connect"))
		return tcp_check_connect(c, argc, argv);
	if (!strcmp(sub, "send"))
		return tcp_check_send(c, argc, argv, false);
	if (!strcmp(sub, "send-binary"))
		return tcp_check_send(c, argc, argv, true);
	if (!strcmp(sub, "expect"))
		return tcp_check_expect(c, argc, argv);
	if (!strcmp(sub, "comment"))
		return OK;
	cfg_err(c,
		"'tcp-check %s' is not implemented (expects connect, send, send-binary or expect)",
		sub);
	return ERR;
}

/* ---- validation ---- */

/* Fills what the server left unset and rejects checks that cannot run. */
static void validate_server(struct cfg_ctx *c, struct proxy *p, struct server *s)
{
	struct chk_srv_conf *k = &s->chk;

	if (!k->fastinter)
		k->fastinter = MIN(k->inter, DEF_FASTINTER_MAX);
	if (!k->downinter)
		k->downinter = k->inter;
	if (!k->agent_inter)
		k->agent_inter = k->inter;
	c->file = s->file;
	c->line = s->line;
	if (k->enabled && k->inter < MIN_SANE_INTER)
		cfg_warn(c,
			 "server '%s/%s': 'inter %u' is below %u ms: checks this frequent load the "
			 "server for little gain",
			 p->name, s->name, k->inter, MIN_SANE_INTER);
	if (k->enabled && s->port_from_client && !k->port && !(k->has_addr && sockaddr_port(&k->addr)))
		cfg_err(c,
			"server '%s/%s' has 'check' but its address has no port: add 'port <N>' "
			"for the checks",
			p->name, s->name);
	if (k->agent && !k->agent_port && !(k->has_agent_addr && sockaddr_port(&k->agent_addr)))
		cfg_err(c, "server '%s/%s' has 'agent-check' but no 'agent-port'", p->name,
			s->name);
	if (!k->agent && (k->agent_port || k->has_agent_addr || k->agent_send))
		cfg_warn(c, "server '%s/%s': agent settings without 'agent-check' are ignored",
			 p->name, s->name);
}

static int chk_validate_server(struct cfg_ctx *c, struct proxy *p, struct server *s)
{
	int nerr = c->nerr;

	validate_server(c, p, s);
	return c->nerr > nerr ? ERR : OK;
}

static int chk_validate(struct cfg_ctx *c, struct proxy *p)
{
	struct chk_proxy_conf *k = &p->chk;
	const char *file = c->file;
	int line = c->line, nerr = c->nerr, i, nchk = 0;

	/* "no option httpchk" only clears the flag: the flags decide the kind. */
	k->kind = (p->opts & PO_HTTPCHK) ? CHK_KIND_HTTP : CHK_KIND_TCP;
	if (k->kind == CHK_KIND_HTTP) {
		if (!k->method)
			k->method = arena_strdup(&cfg_arena, "OPTIONS");
		if (!k->uri)
			k->uri = arena_strdup(&cfg_arena, "/");
		if (!k->version)
			k->version = arena_strdup(&cfg_arena, "HTTP/1.0");
	}
	for (i = 0; i < p->nsrv; i++) {
		validate_server(c, p, p->srv[i]);
		nchk += p->srv[i]->chk.enabled;
	}
	c->file = file;
	c->line = line;
	if (nchk && k->kind != CHK_KIND_HTTP && (k->nexpect || k->hdrs || k->body))
		cfg_warn(c, "'%s': 'http-check' rules are ignored without 'option httpchk'",
			 p->name);
	if (nchk && k->nsteps && !(p->opts & PO_TCPCHK))
		cfg_warn(c, "'%s': 'tcp-check' rules are ignored without 'option tcp-check'",
			 p->name);
	if (nchk && k->kind == CHK_KIND_HTTP && strncmp(k->version, "HTTP/1.", 7))
		cfg_warn(c,
			 "'%s': 'option httpchk' version '%s' is not HTTP/1.x: servers may reject "
			 "the checks",
			 p->name, k->version);
	return c->nerr > nerr ? ERR : OK;
}

static const struct cfg_kw check_kw[] = {
	{"http-check", CFG_S_BE, kw_http_check, 0, NULL},
	{"tcp-check", CFG_S_BE, kw_tcp_check, 0, NULL},
	CFG_KW_END,
};

const struct cfg_module check_module = {
	.name = "check",
	.keywords = check_kw,
};

const struct proxy_hooks check_hooks = {
	.init_defaults = kw_check_defaults,
	.server_param = kw_check_server_param,
	.check_backend = chk_validate,
	.check_server = chk_validate_server,
};

