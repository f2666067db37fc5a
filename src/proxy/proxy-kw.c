/* The proxy sections (defaults, frontend, backend, listen) and their keywords; the other runtime
 * modules add theirs with their own tables and hooks (include/keel/proxy.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <keel/acl.h>
#include <keel/cfg.h>
#include <keel/check.h>
#include <keel/common.h>
#include <keel/conn.h>
#include <keel/errors.h>
#include <keel/mux.h>
#include <keel/proxy.h>
#include <keel/sample.h>
#include <keel/service.h>

static int kw_mode(struct cfg_ctx *c, int argc, char **argv)
{
	if (cfg_need_args(c, argc, argv, 1, "'http'"))
		return ERR;
	if (!strcmp(argv[1], "http"))
		return OK;
	if (!strcmp(argv[1], "tcp") || !strcmp(argv[1], "health"))
		cfg_err(c, "'mode %s' is not supported yet: keel only proxies HTTP ('mode http')", argv[1]);
	else
		cfg_err(c, "unknown mode '%s' (expects http)", argv[1]);
	return ERR;
}

static const char *const bind_opts_ignored[] = {
	"v4v6", "v6only", "transparent", "defer-accept", "tfo", "nice", "process", "thread",
	"interface", "maxconn", "backlog", "mss", "id", "namespace", "tcp-ut", "user", "group",
	"mode", "uid", "gid", "accept-netscaler-cip", "level", "severity-output",
};

/* The bind options that other modules know (TLS), then keel's own. */
static const char *const bind_opts_known[] = {
	"ssl", "crt", "crt-list", "ca-file", "crl-file", "alpn", "verify", "strict-sni",
	"ssl-min-ver", "ssl-max-ver", "ciphers", "ciphersuites", "curves", "no-tls-tickets",
	"no-sslv3", "no-tlsv10", "no-tlsv11", "no-tlsv12", "no-tlsv13", "prefer-client-ciphers",
	"tls-ticket-keys", "name", "accept-proxy", "quic",
};

static int kw_bind(struct cfg_ctx *c, int argc, char **argv)
{
	struct proxy *p = c->cur;
	struct bind_conf tmpl = {.xprt = &xprt_raw, .mux = &mux_h1};
	char *addrs, *tok, *save = NULL, *err = NULL;
	int i, r;

	if (cfg_need_args(c, argc, argv, 1, "an address such as '*:80' or '127.0.0.1:8080'"))
		return ERR;
	for (i = 2; i < argc; i++) {
		size_t k;
		bool known = false;

		if (!strcmp(argv[i], "name") && i + 1 < argc) {
			tmpl.name = arena_strdup(&cfg_arena, argv[++i]);
			continue;
		}
		if (!strcmp(argv[i], "quic")) {
			cfg_err(c, "bind option 'quic': QUIC is not implemented");
			return ERR;
		}
		if (!strcmp(argv[i], "accept-proxy")) {
			cfg_err(c, "bind option 'accept-proxy': the PROXY protocol is not implemented yet");
			return ERR;
		}
		if ((r = proxy_bind_param(c, &tmpl, argc, argv, &i)) != 0) {
			if (r < 0)
				return ERR;
			continue;
		}
		for (k = 0; k < ARRAY_SIZE(bind_opts_ignored); k++)
			if (!strcmp(argv[i], bind_opts_ignored[k]))
				known = true;
		if (!known) {
			const char *cands[ARRAY_SIZE(bind_opts_ignored) + ARRAY_SIZE(bind_opts_known)];
			const char *near;

			memcpy(cands, bind_opts_ignored, sizeof(bind_opts_ignored));
			memcpy(cands + ARRAY_SIZE(bind_opts_ignored), bind_opts_known,
			       sizeof(bind_opts_known));
			near = cfg_nearest(argv[i], cands, ARRAY_SIZE(cands));
			cfg_err(c, "unknown bind option '%s'%s%s%s", argv[i],
				near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
			return ERR;
		}
		cfg_warn(c, "bind option '%s' is accepted but not implemented; ignored", argv[i]);
		/* Options that take a value. */
		if (strcmp(argv[i], "v4v6") && strcmp(argv[i], "v6only") &&
		    strcmp(argv[i], "transparent") && strcmp(argv[i], "defer-accept") &&
		    strcmp(argv[i], "tfo") && strcmp(argv[i], "accept-netscaler-cip") && i + 1 < argc)
			i++;
	}
	tmpl.file = c->file;
	tmpl.line = c->line;
	for (i = 0; i < KEEL_MAX_THREADS; i++)
		tmpl.fds[i] = -1;
	addrs = arena_strdup(&cfg_arena, argv[1]);
	for (tok = strtok_r(addrs, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct bind_conf *b = arena_alloc(&cfg_arena, sizeof(*b));

		*b = tmpl;
		if (cfg_parse_addr(tok, &b->addr, &b->addrlen, false, NULL, &err)) {
			cfg_err(c, "bind: %s", err);
			free(err);
			return ERR;
		}
		b->str = arena_strdup(&cfg_arena, tok);
		list_add_tail(&p->binds, &b->list);
	}
	return OK;
}

/* Parses server parameters from argv[i..] into s. */
static int parse_server_params(struct cfg_ctx *c, struct server *s, int i, int argc, char **argv)
{
	static const char *const known[] = {
		"check", "no-check", "inter", "fastinter", "downinter", "rise", "fall", "port",
		"addr", "weight", "maxconn", "maxqueue", "minconn", "backup", "no-backup",
		"disabled", "enabled", "cookie", "id", "slowstart", "agent-check", "agent-port",
		"agent-inter", "agent-addr", "agent-send", "on-error", "on-marked-down",
		"on-marked-up", "observe", "error-limit", "send-proxy", "send-proxy-v2", "ssl",
		"verify", "sni", "check-ssl", "resolvers", "resolve-prefer", "init-addr", "track",
		"pool-max-conn", "pool-purge-delay", "tfo", "redir", "non-stick", "check-send-proxy",
		"no-ssl", "ca-file", "crt", "alpn", "proto", "resolve-opts", "resolve-net",
		"pool-low-conn", "max-reuse", "namespace", "source", "usesrc", "ws", "log-proto",
		"check-proto", "health-check-interval", "drain-idle", "drain-deadline",
	};
	const char *why;

	for (; i < argc; i++) {
		const char *kw = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		long v;
		uint32_t t;
		int r;

		if ((r = proxy_server_param(c, s, argc, argv, &i)) != 0) {
			if (r < 0)
				return ERR;
		} else if (!strcmp(kw, "backup")) {
			s->backup = true;
		} else if (!strcmp(kw, "no-backup")) {
			s->backup = false;
		} else if (!strcmp(kw, "disabled")) {
			s->disabled = true;
		} else if (!strcmp(kw, "enabled")) {
			s->disabled = false;
		} else if (!strcmp(kw, "weight")) {
			if (!val || cfg_parse_int(val, 0, 256, &v)) {
				cfg_err(c, "server '%s': 'weight' expects a number from 0 to 256",
					s->name ? s->name : "default-server");
				return ERR;
			}
			s->weight = (int)v;
			i++;
		} else if (!strcmp(kw, "maxconn") || !strcmp(kw, "maxqueue")) {
			if (!val || cfg_parse_int(val, 0, 10000000, &v)) {
				cfg_err(c, "server: '%s' expects a non-negative number", kw);
				return ERR;
			}
			if (!strcmp(kw, "maxconn"))
				s->maxconn = (int)v;
			else
				s->maxqueue = (int)v;
			i++;
		} else if (!strcmp(kw, "cookie")) {
			if (!val) {
				cfg_err(c, "server: 'cookie' expects a value");
				return ERR;
			}
			s->cookie = arena_strdup(&cfg_arena, val);
			i++;
		} else if (!strcmp(kw, "pool-purge-delay")) {
			if (!val || cfg_parse_time(val, &t, &why)) {
				cfg_err(c, "server: 'pool-purge-delay': %s", val ? why : "expects a time");
				return ERR;
			}
			s->pool_purge_ms = t;
			i++;
		} else if (!strcmp(kw, "id") || !strcmp(kw, "minconn") ||
			   !strcmp(kw, "pool-max-conn") || !strcmp(kw, "max-reuse") ||
			   !strcmp(kw, "pool-low-conn")) {
			if (!val || cfg_parse_int(val, -1, 1000000000, &v)) {
				cfg_err(c, "server: '%s' expects a number", kw);
				return ERR;
			}
			if (!strcmp(kw, "minconn"))
				cfg_warn(c, "server option '%s' is accepted but not implemented yet; ignored", kw);
			i++;
		} else if (!strcmp(kw, "send-proxy") || !strcmp(kw, "send-proxy-v2") ||
			   !strcmp(kw, "check-send-proxy") || !strcmp(kw, "proto")) {
			cfg_err(c, "server option '%s' is not implemented yet (the PROXY protocol is planned)", kw);
			return ERR;
		} else {
			size_t k;
			bool found = false;

			for (k = 0; k < ARRAY_SIZE(known); k++)
				if (!strcmp(kw, known[k]))
					found = true;
			if (!found) {
				const char *near = cfg_nearest(kw, known, ARRAY_SIZE(known));

				cfg_err(c, "unknown server option '%s'%s%s%s", kw,
					near ? "; did you mean '" : "", near ? near : "",
					near ? "'?" : "");
				return ERR;
			}
			cfg_warn(c, "server option '%s' is accepted but not implemented yet; ignored", kw);
			/* Flags without a value. */
			if (strcmp(kw, "agent-check") && strcmp(kw, "check-ssl") &&
			    strcmp(kw, "tfo") && strcmp(kw, "non-stick") && strcmp(kw, "no-ssl") &&
			    strcmp(kw, "send-proxy") && i + 1 < argc)
				i++;
		}
	}
	return OK;
}

struct server *proxy_parse_server(struct cfg_ctx *c, struct proxy *p, int argc, char **argv)
{
	struct server *s;
	char *err = NULL;
	int i, n = atomic_load(&p->nsrv);

	if (cfg_need_args(c, argc, argv, 2, "a name and an address (server NAME ADDRESS:PORT [options])"))
		return NULL;
	if (!proxy_valid_name(argv[1])) {
		cfg_err(c, "invalid server name '%s'", argv[1]);
		return NULL;
	}
	for (i = 0; i < n; i++)
		if (!atomic_load(&p->srv[i]->deleted) && !strcmp(p->srv[i]->name, argv[1])) {
			if (p->srv[i]->dynamic)
				cfg_err(c, "server '%s' already exists in '%s' (added at runtime)",
					argv[1], p->name);
			else
				cfg_err(c, "server '%s' already exists in '%s' (line %d)", argv[1],
					p->name, p->srv[i]->line);
			return NULL;
		}
	s = arena_alloc(&cfg_arena, sizeof(*s));
	*s = p->defsrv;
	s->name = arena_strdup(&cfg_arena, argv[1]);
	s->be = p;
	s->id = n;
	s->file = c->file;
	s->line = c->line;
	s->addr_str = arena_strdup(&cfg_arena, argv[2]);
	if (cfg_parse_addr(argv[2], &s->addr, &s->addrlen, true, &s->port_from_client, &err)) {
		cfg_err(c, "server '%s': %s", argv[1], err);
		free(err);
		return NULL;
	}
	if (parse_server_params(c, s, 3, argc, argv))
		return NULL;
	return s;
}

static int kw_server(struct cfg_ctx *c, int argc, char **argv)
{
	struct proxy *p = c->cur;
	struct server *s = proxy_parse_server(c, p, argc, argv);
	int n = atomic_load(&p->nsrv);

	if (!s)
		return ERR;
	p->srv = arena_grow(&cfg_arena, p->srv, (size_t)n, (size_t)n + 1, sizeof(*p->srv));
	p->srv[n] = s;
	atomic_store(&p->nsrv, n + 1);
	return OK;
}

static int kw_default_server(struct cfg_ctx *c, int argc, char **argv)
{
	return parse_server_params(c, &c->cur->defsrv, 1, argc, argv);
}

static int set_timeout(struct cfg_ctx *c, const char *name, const char *val)
{
	static const struct {
		const char *name;
		size_t off;
	} tab[] = {
		{"connect", offsetof(struct timeouts, connect)},
		{"client", offsetof(struct timeouts, client)},
		{"server", offsetof(struct timeouts, server)},
		{"http-request", offsetof(struct timeouts, http_request)},
		{"http-keep-alive", offsetof(struct timeouts, http_keep_alive)},
		{"queue", offsetof(struct timeouts, queue)},
		{"tunnel", offsetof(struct timeouts, tunnel)},
		{"client-fin", offsetof(struct timeouts, client_fin)},
		{"server-fin", offsetof(struct timeouts, server_fin)},
		{"check", offsetof(struct timeouts, check)},
	};
	const char *names[ARRAY_SIZE(tab) + 1];
	const char *why;
	uint32_t ms;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tab); i++) {
		names[i] = tab[i].name;
		if (strcmp(name, tab[i].name))
			continue;
		if (!val) {
			cfg_err(c, "'timeout %s' expects a time", name);
			return ERR;
		}
		if (cfg_parse_time(val, &ms, &why)) {
			cfg_err(c, "'timeout %s %s': %s", name, val, why);
			return ERR;
		}
		*(uint32_t *)((char *)&c->cur->to + tab[i].off) = ms;
		return OK;
	}
	if (!strcmp(name, "tarpit")) {
		cfg_warn(c, "'timeout tarpit' is accepted but not implemented yet; ignored");
		return OK;
	}
	names[ARRAY_SIZE(tab)] = "tarpit";
	{
		const char *near = cfg_nearest(name, names, ARRAY_SIZE(names));

		cfg_err(c, "unknown timeout '%s'%s%s%s", name, near ? "; did you mean '" : "",
			near ? near : "", near ? "'?" : "");
	}
	return ERR;
}

static int kw_timeout(struct cfg_ctx *c, int argc, char **argv)
{
	if (cfg_need_args(c, argc, argv, 1, "a timeout name and a time"))
		return ERR;
	return set_timeout(c, argv[1], argc > 2 ? argv[2] : NULL);
}

static int kw_old_timeout(struct cfg_ctx *c, int argc, char **argv)
{
	const char *name = !strcmp(argv[0], "contimeout") ? "connect"
			   : !strcmp(argv[0], "clitimeout") ? "client" : "server";

	if (cfg_need_args(c, argc, argv, 1, "a time"))
		return ERR;
	return set_timeout(c, name, argv[1]);
}

static const struct {
	const char *name;
	uint32_t flag;       /* 0: accepted, not implemented */
	unsigned sections;
} options[] = {
	{"httplog", PO_HTTPLOG, CFG_S_PROXY},
	{"tcplog", PO_TCPLOG, CFG_S_PROXY},
	{"logjson", PO_LOGJSON, CFG_S_PROXY},
	{"dontlognull", PO_DONTLOGNULL, CFG_S_PROXY},
	{"dontlog-normal", PO_DONTLOG_NORMAL, CFG_S_PROXY},
	{"log-separate-errors", PO_LOG_SEPARATE_ERRORS, CFG_S_PROXY},
	{"forwardfor", PO_FORWARDFOR, CFG_S_PROXY},
	{"originalto", PO_ORIGINALTO, CFG_S_PROXY},
	{"http-server-close", PO_HTTP_SERVER_CLOSE, CFG_S_PROXY},
	{"httpclose", PO_HTTPCLOSE, CFG_S_PROXY},
	{"forceclose", PO_HTTPCLOSE, CFG_S_PROXY},
	{"http-keep-alive", 0x80000000u, CFG_S_PROXY},
	{"redispatch", PO_REDISPATCH, CFG_S_PROXY},
	{"httpchk", PO_HTTPCHK, CFG_S_PROXY},
	{"persist", PO_PERSIST, CFG_S_PROXY},
	{"allbackups", PO_ALLBACKUPS, CFG_S_PROXY},
	{"nolinger", PO_NOLINGER, CFG_S_PROXY},
	{"prefer-last-server", PO_PREFER_LAST_SERVER, CFG_S_PROXY},
	{"abortonclose", 0, CFG_S_PROXY},
	{"log-health-checks", 0, CFG_S_PROXY},
	{"tcp-check", PO_TCPCHK, CFG_S_PROXY},
	{"http-buffer-request", 0, CFG_S_PROXY},
	{"logasap", 0, CFG_S_PROXY},
	{"splice-auto", PO_SPLICE_AUTO, CFG_S_PROXY},
	{"splice-request", 0, CFG_S_PROXY},
	{"splice-response", PO_SPLICE_RSP, CFG_S_PROXY},
	{"http-expect-continue", PO_EXPECT_CONTINUE, CFG_S_PROXY},
	{"contstats", 0, CFG_S_PROXY},
	{"socket-stats", 0, CFG_S_PROXY},
	{"checkcache", 0, CFG_S_PROXY},
	{"independent-streams", 0, CFG_S_PROXY},
	{"http-pretend-keepalive", 0, CFG_S_PROXY},
	{"http-no-delay", 0, CFG_S_PROXY},
	{"http-use-htx", 0, CFG_S_PROXY},
	{"http-ignore-probes", 0, CFG_S_PROXY},
	{"http-use-proxy-header", 0, CFG_S_PROXY},
	{"http-restrict-req-hdr-names", 0, CFG_S_PROXY},
	{"tcpka", 0, CFG_S_PROXY},
	{"clitcpka", 0, CFG_S_PROXY},
	{"srvtcpka", 0, CFG_S_PROXY},
	{"ssl-hello-chk", 0, CFG_S_PROXY},
	{"mysql-check", 0, CFG_S_PROXY},
	{"pgsql-check", 0, CFG_S_PROXY},
	{"redis-check", 0, CFG_S_PROXY},
	{"smtpchk", 0, CFG_S_PROXY},
	{"ldap-check", 0, CFG_S_PROXY},
	{"spop-check", 0, CFG_S_PROXY},
	{"external-check", 0, CFG_S_PROXY},
	{"transparent", 0, CFG_S_PROXY},
	{"disable-h2-upgrade", 0, CFG_S_PROXY},
	{"idle-close-on-response", 0, CFG_S_PROXY},
	{"accept-invalid-http-request", 0, CFG_S_PROXY},
	{"accept-invalid-http-response", 0, CFG_S_PROXY},
};

static int opt_forwardfor(struct cfg_ctx *c, int argc, char **argv, int i)
{
	struct proxy *p = c->cur;

	for (; i < argc; i++) {
		if (!strcmp(argv[i], "except") && i + 1 < argc) {
			if (acl_parse_net(argv[i + 1], &p->fwdfor_except_family, p->fwdfor_except,
					  &p->fwdfor_except_prefix)) {
				cfg_err(c, "option forwardfor: invalid network '%s'", argv[i + 1]);
				return ERR;
			}
			p->fwdfor_except_set = true;
			i++;
		} else if (!strcmp(argv[i], "header") && i + 1 < argc) {
			p->fwdfor_hdr = arena_strdup(&cfg_arena, argv[i + 1]);
			p->fwdfor_hdrlen = (uint32_t)strlen(argv[i + 1]);
			i++;
		} else if (!strcmp(argv[i], "if-none")) {
			p->fwdfor_ifnone = true;
		} else {
			cfg_err(c, "option forwardfor: unknown argument '%s' (expects except, header or if-none)", argv[i]);
			return ERR;
		}
	}
	return OK;
}

static int kw_option(struct cfg_ctx *c, int argc, char **argv)
{
	struct proxy *p = c->cur;
	bool neg = !strcmp(argv[0], "no");
	int i = neg ? 2 : 1;
	const char *names[ARRAY_SIZE(options)];
	size_t k;

	if (neg && (argc < 2 || strcmp(argv[1], "option"))) {
		if (argc >= 2 && !strcmp(argv[1], "log")) {
			p->logs.n = 0;
			p->log_global = false;
			return OK;
		}
		cfg_err(c, "'no' expects 'option NAME' or 'log'");
		return ERR;
	}
	if (argc <= i) {
		cfg_err(c, "'option' expects an option name");
		return ERR;
	}
	for (k = 0; k < ARRAY_SIZE(options); k++) {
		names[k] = options[k].name;
		if (strcmp(argv[i], options[k].name))
			continue;
		if (!options[k].flag) {
			cfg_warn(c, "'option %s' is accepted but not implemented yet; ignored", argv[i]);
			return OK;
		}
		if (options[k].flag == 0x80000000u) { /* http-keep-alive: the default mode */
			if (!neg)
				p->opts &= ~(uint32_t)(PO_HTTP_SERVER_CLOSE | PO_HTTPCLOSE);
			return OK;
		}
		if (neg) {
			p->opts &= ~options[k].flag;
			return OK;
		}
		p->opts |= options[k].flag;
		if (options[k].flag == PO_HTTPCHK)
			return kw_opt_httpchk(c, argc, argv, i + 1);
		if (options[k].flag == PO_TCPCHK)
			return kw_opt_tcpchk(c, argc, argv, i + 1);
		if (options[k].flag == PO_FORWARDFOR)
			return opt_forwardfor(c, argc, argv, i + 1);
		if (options[k].flag == PO_HTTPLOG && argc > i + 1 && !strcmp(argv[i + 1], "clf")) {
			p->logfmt_set = false;
			return logformat_parse(c, LOGFMT_CLF, &p->logfmt) ? ERR : (p->logfmt_set = true, OK);
		}
		if (options[k].flag == PO_REDISPATCH && argc > i + 1)
			cfg_warn(c, "'option redispatch %s': the interval is ignored; keel redispatches on every retry", argv[i + 1]);
		return OK;
	}
	{
		const char *near = cfg_nearest(argv[i], names, ARRAY_SIZE(names));

		cfg_err(c, "unknown option '%s'%s%s%s", argv[i], near ? "; did you mean '" : "",
			near ? near : "", near ? "'?" : "");
	}
	return ERR;
}

static int kw_redispatch(struct cfg_ctx *c, int argc, char **argv)
{
	(void)argc, (void)argv;
	c->cur->opts |= PO_REDISPATCH;
	return OK;
}

static int kw_balance(struct cfg_ctx *c, int argc, char **argv)
{
	struct proxy *p = c->cur;
	const char *a;
	static const char *const algos[] = {"roundrobin", "static-rr", "leastconn", "random",
					    "first", "source", "uri", "hdr(NAME)", "url_param"};

	if (cfg_need_args(c, argc, argv, 1, "an algorithm"))
		return ERR;
	a = argv[1];
	if (!strcmp(a, "roundrobin"))
		p->lb = LB_ROUNDROBIN;
	else if (!strcmp(a, "static-rr"))
		p->lb = LB_STATIC_RR;
	else if (!strcmp(a, "leastconn"))
		p->lb = LB_LEASTCONN;
	else if (!strncmp(a, "random", 6) && (a[6] == '\0' || a[6] == '('))
		p->lb = LB_RANDOM;
	else if (!strcmp(a, "first"))
		p->lb = LB_FIRST;
	else if (!strcmp(a, "source"))
		p->lb = LB_SOURCE;
	else if (!strcmp(a, "uri")) {
		int i;

		p->lb = LB_URI;
		for (i = 2; i < argc; i++) {
			if (!strcmp(argv[i], "whole"))
				p->uri_whole = true;
			else if ((!strcmp(argv[i], "len") || !strcmp(argv[i], "depth")) && i + 1 < argc) {
				cfg_warn(c, "'balance uri %s' is not implemented; the whole path is hashed", argv[i]);
				i++;
			} else {
				cfg_warn(c, "'balance uri %s' is not implemented; ignored", argv[i]);
			}
		}
	} else if (!strncmp(a, "hdr(", 4) && a[strlen(a) - 1] == ')' && strlen(a) > 5) {
		p->lb = LB_HDR;
		p->lb_arg = arena_strndup(&cfg_arena, a + 4, strlen(a) - 5);
		p->lb_arglen = (uint32_t)strlen(p->lb_arg);
		if (argc > 2)
			cfg_warn(c, "'balance hdr' option '%s' is not implemented; ignored", argv[2]);
	} else if (!strcmp(a, "url_param")) {
		if (argc < 3) {
			cfg_err(c, "'balance url_param' expects a parameter name");
			return ERR;
		}
		p->lb = LB_URL_PARAM;
		p->lb_arg = arena_strdup(&cfg_arena, argv[2]);
		p->lb_arglen = (uint32_t)strlen(argv[2]);
	} else {
		const char *near = cfg_nearest(a, algos, ARRAY_SIZE(algos));

		if (!strncmp(a, "rdp-cookie", 10) || !strcmp(a, "hash"))
			cfg_err(c, "'balance %s' is not implemented yet", a);
		else
			cfg_err(c, "unknown balance algorithm '%s'%s%s%s", a,
				near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
		return ERR;
	}
	return OK;
}

static int kw_hash_type(struct cfg_ctx *c, int argc, char **argv)
{
	if (cfg_need_args(c, argc, argv, 1, "'map-based' or 'consistent'"))
		return ERR;
	if (!strcmp(argv[1], "map-based"))
		c->cur->hash_type = HASH_MAP;
	else if (!strcmp(argv[1], "consistent"))
		c->cur->hash_type = HASH_CONSISTENT;
	else {
		cfg_err(c, "unknown hash-type '%s' (expects map-based or consistent)", argv[1]);
		return ERR;
	}
	/* The hash function argument is accepted; keel always uses its own 64-bit hash. */
	return OK;
}

static int kw_int(struct cfg_ctx *c, int argc, char **argv)
{
	long v;

	if (cfg_need_args(c, argc, argv, 1, "a number"))
		return ERR;
	if (cfg_parse_int(argv[1], 0, 10000000, &v)) {
		cfg_err(c, "'%s' expects a non-negative number", argv[0]);
		return ERR;
	}
	if (!strcmp(argv[0], "retries"))
		c->cur->retries = (int)v;
	else
		c->cur->maxconn = (int)v;
	return OK;
}

static int kw_default_backend(struct cfg_ctx *c, int argc, char **argv)
{
	if (cfg_need_args(c, argc, argv, 1, "a backend name"))
		return ERR;
	c->cur->defbe_name = arena_strdup(&cfg_arena, argv[1]);
	return OK;
}

static int kw_use_backend(struct cfg_ctx *c, int argc, char **argv)
{
	struct switching_rule *r;

	if (cfg_need_args(c, argc, argv, 1, "a backend name and an optional condition"))
		return ERR;
	r = arena_alloc(&cfg_arena, sizeof(*r));
	r->be_name = arena_strdup(&cfg_arena, argv[1]);
	r->file = c->file;
	r->line = c->line;
	if (argc > 2) {
		r->cond = acl_cond_parse(c, c->cur, argc - 2, argv + 2);
		if (!r->cond)
			return ERR;
	}
	list_add_tail(&c->cur->switching, &r->list);
	return OK;
}

static int kw_acl(struct cfg_ctx *c, int argc, char **argv)
{
	return acl_parse(c, c->cur, argc, argv);
}

/* Finds "if"/"unless" in argv; returns its index or argc. */
static int cond_index(int argc, char **argv, int from)
{
	int i;

	for (i = from; i < argc; i++)
		if (!strcmp(argv[i], "if") || !strcmp(argv[i], "unless"))
			return i;
	return argc;
}

static const char *const req_actions_unimpl[] = {
	"set-var", "unset-var", "capture", "track-sc0", "track-sc1", "track-sc2", "tarpit",
	"set-log-level", "set-nice", "set-tos", "set-mark", "sc-inc-gpc0", "sc-inc-gpc1",
	"sc-set-gpt0", "silent-drop", "reject", "set-src", "set-dst", "set-priority-class",
	"set-priority-offset", "cache-use", "cache-store", "wait-for-body", "wait-for-handshake",
	"do-resolve", "normalize-uri", "set-query", "set-uri", "replace-uri", "replace-path",
	"replace-value", "set-map", "del-map", "add-acl", "del-acl", "early-hint", "strict-mode",
	"set-timeout", "use-service", "send-spoe-group", "disable-l7-retry", "set-bandwidth-limit",
};

/* A rule's value (set-header, redirect, set-path): a log format where a sample that finds
 * nothing gives an empty string, as in HAProxy. */
static int rule_value_parse(struct cfg_ctx *c, const char *s, struct logformat *lf)
{
	if (logformat_parse(c, s, lf))
		return ERR;
	lf->empty_missing = 1;
	return OK;
}

static int kw_http_rule(struct cfg_ctx *c, int argc, char **argv)
{
	struct proxy *p = c->cur;
	bool req = !strcmp(argv[0], "http-request");
	struct http_rule *r;
	const char *act;
	int ci, i;

	if (cfg_need_args(c, argc, argv, 1, "an action"))
		return ERR;
	act = argv[1];
	ci = cond_index(argc, argv, 2);
	r = arena_alloc(&cfg_arena, sizeof(*r));
	r->file = c->file;
	r->line = c->line;
	if (!strcmp(act, "set-header") || !strcmp(act, "add-header")) {
		if (ci < 4) {
			cfg_err(c, "'%s %s' expects a header name and a value", argv[0], act);
			return ERR;
		}
		r->action = act[0] == 's' ? HRA_SET_HDR : HRA_ADD_HDR;
		r->name = arena_strdup(&cfg_arena, argv[2]);
		r->namelen = (uint32_t)strlen(argv[2]);
		if (rule_value_parse(c, argv[3], &r->value))
			return ERR;
		if (ci > 4)
			cfg_warn(c, "'%s %s': extra arguments after the value are ignored (quote values with spaces)", argv[0], act);
	} else if (!strcmp(act, "del-header")) {
		if (ci < 3) {
			cfg_err(c, "'%s del-header' expects a header name", argv[0]);
			return ERR;
		}
		r->action = HRA_DEL_HDR;
		r->name = arena_strdup(&cfg_arena, argv[2]);
		r->namelen = (uint32_t)strlen(argv[2]);
		if (ci > 3)
			cfg_warn(c, "'%s del-header': matching options are not implemented; exact name only", argv[0]);
	} else if (!strcmp(act, "deny")) {
		r->action = HRA_DENY;
		r->status = req ? 403 : 502;
		for (i = 2; i < ci; i++) {
			long v;

			if (!strcmp(argv[i], "deny_status") && i + 1 < ci) {
				if (cfg_parse_int(argv[i + 1], 200, 599, &v)) {
					cfg_err(c, "deny_status expects an HTTP status");
					return ERR;
				}
				r->status = (int)v;
				i++;
			} else {
				cfg_warn(c, "'%s deny %s' is not implemented; ignored", argv[0], argv[i]);
			}
		}
	} else if (!strcmp(act, "allow")) {
		r->action = HRA_ALLOW;
	} else if (req && !strcmp(act, "auth")) {
		r->action = HRA_AUTH;
		r->realm = arena_strdup(&cfg_arena, "keel");
		for (i = 2; i + 1 < ci; i += 2)
			if (!strcmp(argv[i], "realm"))
				r->realm = arena_strdup(&cfg_arena, argv[i + 1]);
	} else if (req && !strcmp(act, "redirect")) {
		r->action = HRA_REDIRECT;
		r->status = 302;
		if (ci < 4) {
			cfg_err(c, "'http-request redirect' expects location|prefix|scheme and a value");
			return ERR;
		}
		if (!strcmp(argv[2], "location"))
			r->redir_kind = 0;
		else if (!strcmp(argv[2], "prefix"))
			r->redir_kind = 1;
		else if (!strcmp(argv[2], "scheme"))
			r->redir_kind = 2;
		else {
			cfg_err(c, "'http-request redirect %s': expects location, prefix or scheme", argv[2]);
			return ERR;
		}
		if (rule_value_parse(c, argv[3], &r->value))
			return ERR;
		for (i = 4; i < ci; i++) {
			long v;

			if (!strcmp(argv[i], "code") && i + 1 < ci) {
				if (cfg_parse_int(argv[i + 1], 301, 308, &v)) {
					cfg_err(c, "redirect code expects 301, 302, 303, 307 or 308");
					return ERR;
				}
				r->status = (int)v;
				i++;
			} else {
				cfg_warn(c, "redirect option '%s' is not implemented; ignored", argv[i]);
			}
		}
	} else if (req && !strcmp(act, "return")) {
		r->action = HRA_RETURN;
		r->status = 200;
		for (i = 2; i < ci; i++) {
			long v;

			if (!strcmp(argv[i], "status") && i + 1 < ci) {
				if (cfg_parse_int(argv[i + 1], 200, 599, &v)) {
					cfg_err(c, "return status expects an HTTP status");
					return ERR;
				}
				r->status = (int)v;
				i++;
			} else if (!strcmp(argv[i], "content-type") && i + 1 < ci) {
				r->content_type = arena_strdup(&cfg_arena, argv[++i]);
			} else if ((!strcmp(argv[i], "string") || !strcmp(argv[i], "lf-string")) &&
				   i + 1 < ci) {
				r->body = arena_strdup(&cfg_arena, argv[++i]);
			} else {
				cfg_warn(c, "'http-request return %s' is not implemented; ignored", argv[i]);
			}
		}
	} else if (req && !strcmp(act, "use-service") && ci >= 3 && http_service_find(argv[2])) {
		/* A service an upper layer registered (the metrics page); others (Lua) fall
		 * through to "not implemented". */
		r->action = HRA_USE_SERVICE;
		r->svc = http_service_find(argv[2]);
	} else if (req && !strcmp(act, "set-path")) {
		if (ci < 3) {
			cfg_err(c, "'http-request set-path' expects a value");
			return ERR;
		}
		r->action = HRA_SET_PATH;
		if (rule_value_parse(c, argv[2], &r->value))
			return ERR;
	} else {
		size_t k;

		for (k = 0; k < ARRAY_SIZE(req_actions_unimpl); k++)
			if (!strcmp(act, req_actions_unimpl[k]) || !strcmp(act, "replace-header") ||
			    !strcmp(act, "set-status") || !strcmp(act, "set-method")) {
				cfg_warn(c, "'%s %s' is accepted but not implemented yet; the rule is ignored", argv[0], act);
				return OK;
			}
		{
			static const char *const impl[] = {"set-header", "add-header", "del-header",
							   "deny", "allow", "auth", "redirect",
							   "return", "set-path"};
			const char *near = cfg_nearest(act, impl, ARRAY_SIZE(impl));

			cfg_err(c, "unknown %s action '%s'%s%s%s", argv[0], act,
				near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
		}
		return ERR;
	}
	if (ci < argc) {
		r->cond = acl_cond_parse(c, p, argc - ci, argv + ci);
		if (!r->cond)
			return ERR;
	}
	list_add_tail(req ? &p->req_rules : &p->rsp_rules, &r->list);
	return OK;
}

/* The old "redirect" keyword: redirect location|prefix|scheme X [code N] [if cond]. */
static int kw_redirect(struct cfg_ctx *c, int argc, char **argv)
{
	char *nargv[CFG_MAX_ARGS + 2];
	int i;

	if (argc + 1 > CFG_MAX_ARGS) {
		cfg_err(c, "too many arguments");
		return ERR;
	}
	nargv[0] = "http-request";
	for (i = 0; i < argc; i++)
		nargv[i + 1] = argv[i];
	nargv[argc + 1] = NULL;
	return kw_http_rule(c, argc + 1, nargv);
}

static int kw_monitor_uri(struct cfg_ctx *c, int argc, char **argv)
{
	if (cfg_need_args(c, argc, argv, 1, "a path"))
		return ERR;
	c->cur->monitor_uri = arena_strdup(&cfg_arena, argv[1]);
	return OK;
}

static int kw_errorfile(struct cfg_ctx *c, int argc, char **argv)
{
	struct errmsg *m;
	struct stat st;
	FILE *f;
	long code;
	int idx;

	if (cfg_need_args(c, argc, argv, 2, "a status code and a file"))
		return ERR;
	if (cfg_parse_int(argv[1], 200, 599, &code) || (idx = http_err_index((int)code)) < 0) {
		cfg_err(c, "errorfile: status %s cannot be customised (expects one of %s)", argv[1],
			HTTP_ERR_CODES_STR);
		return ERR;
	}
	f = fopen(argv[2], "r");
	if (!f) {
		cfg_err(c, "errorfile: cannot open '%s': %s", argv[2], strerror(errno));
		return ERR;
	}
	if (fstat(fileno(f), &st) || st.st_size > 65536 || !S_ISREG(st.st_mode)) {
		cfg_err(c, "errorfile '%s': must be a regular file of at most 64 KB", argv[2]);
		fclose(f);
		return ERR;
	}
	m = &c->cur->errmsg[idx];
	m->data = arena_alloc(&cfg_arena, (size_t)st.st_size + 1);
	m->len = (uint32_t)fread(m->data, 1, (size_t)st.st_size, f);
	fclose(f);
	if (m->len < 12 || strncmp(m->data, "HTTP/1.", 7)) {
		cfg_err(c, "errorfile '%s': must contain a whole HTTP response starting with 'HTTP/1.'", argv[2]);
		m->data = NULL;
		m->len = 0;
		return ERR;
	}
	return OK;
}

static int kw_log(struct cfg_ctx *c, int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "global")) {
		c->cur->log_global = true;
		return OK;
	}
	/* A proxy's own targets replace nothing: they add to "log global" if both are given. */
	if (c->cur->logs.n && c->sect != CFG_S_DEFAULTS && c->cur->logs.t == c->defaults->logs.t) {
		c->cur->logs.t = NULL;
		c->cur->logs.n = 0;
	}
	return cfg_parse_log(c, &c->cur->logs, argc, argv);
}

static int kw_log_format(struct cfg_ctx *c, int argc, char **argv)
{
	if (cfg_need_args(c, argc, argv, 1, "a format string (quote it)"))
		return ERR;
	if (argc > 2) {
		cfg_err(c, "'log-format': the format must be one argument; quote it");
		return ERR;
	}
	if (!strcmp(argv[1], "json")) {
		c->cur->opts |= PO_LOGJSON;
		return OK;
	}
	if (logformat_parse(c, argv[1], &c->cur->logfmt))
		return ERR;
	c->cur->logfmt_set = true;
	return OK;
}

static int kw_capture(struct cfg_ctx *c, int argc, char **argv)
{
	struct proxy *p = c->cur;
	struct capture *cap;
	long len;

	if (argc != 6 || (strcmp(argv[1], "request") && strcmp(argv[1], "response")) ||
	    strcmp(argv[2], "header") || strcmp(argv[4], "len")) {
		if (argc > 1 && !strcmp(argv[1], "cookie")) {
			cfg_warn(c, "'capture cookie' is accepted but not implemented yet; ignored");
			return OK;
		}
		cfg_err(c, "'capture' expects 'request|response header NAME len N'");
		return ERR;
	}
	if (cfg_parse_int(argv[5], 1, 4096, &len)) {
		cfg_err(c, "'capture ... len' expects a number from 1 to 4096");
		return ERR;
	}
	if (argv[1][2] == 'q') {
		if (p->nreq_cap >= (int)ARRAY_SIZE(p->req_cap)) {
			cfg_err(c, "too many request captures (max 8)");
			return ERR;
		}
		cap = &p->req_cap[p->nreq_cap++];
	} else {
		if (p->nrsp_cap >= (int)ARRAY_SIZE(p->rsp_cap)) {
			cfg_err(c, "too many response captures (max 8)");
			return ERR;
		}
		cap = &p->rsp_cap[p->nrsp_cap++];
	}
	cap->name = arena_strdup(&cfg_arena, argv[3]);
	cap->namelen = (uint32_t)strlen(argv[3]);
	cap->len = (uint32_t)len;
	return OK;
}

static int kw_disabled(struct cfg_ctx *c, int argc, char **argv)
{
	(void)argc;
	c->cur->disabled = !strcmp(argv[0], "disabled");
	return OK;
}

static int kw_removed(struct cfg_ctx *c, int argc, char **argv)
{
	(void)argc;
	cfg_err(c, "'%s' was removed from HAProxy 2.1; use 'http-request'/'http-response' rules instead", argv[0]);
	return ERR;
}

static int kw_http_reuse(struct cfg_ctx *c, int argc, char **argv)
{
	if (cfg_need_args(c, argc, argv, 1, "never, safe, aggressive or always"))
		return ERR;
	if (!strcmp(argv[1], "never")) {
		c->cur->opts |= PO_HTTP_SERVER_CLOSE;
	} else if (strcmp(argv[1], "safe") && strcmp(argv[1], "aggressive") &&
		   strcmp(argv[1], "always")) {
		cfg_err(c, "'http-reuse' expects never, safe, aggressive or always");
		return ERR;
	}
	return OK;
}

#define UNIMPL CFG_UNIMPL

const struct cfg_kw proxy_kw[] = {
	{"mode", CFG_S_PROXY, kw_mode, 0, NULL},
	{"bind", CFG_S_FE_ONLY, kw_bind, 0, NULL},
	{"server", CFG_S_BE_ONLY, kw_server, 0, NULL},
	{"default-server", CFG_S_BE, kw_default_server, 0, NULL},
	{"timeout", CFG_S_PROXY, kw_timeout, 0, NULL},
	{"contimeout", CFG_S_BE, kw_old_timeout, 0, NULL},
	{"clitimeout", CFG_S_FE, kw_old_timeout, 0, NULL},
	{"srvtimeout", CFG_S_BE, kw_old_timeout, 0, NULL},
	{"option", CFG_S_PROXY, kw_option, 0, NULL},
	{"no", CFG_S_PROXY, kw_option, 0, NULL},
	{"redispatch", CFG_S_BE, kw_redispatch, 0, NULL},
	{"balance", CFG_S_BE, kw_balance, 0, NULL},
	{"hash-type", CFG_S_BE, kw_hash_type, 0, NULL},
	{"retries", CFG_S_BE, kw_int, 0, NULL},
	{"maxconn", CFG_S_FE, kw_int, 0, NULL},
	{"default_backend", CFG_S_FE, kw_default_backend, 0, NULL},
	{"use_backend", CFG_S_FE_ONLY, kw_use_backend, 0, NULL},
	{"acl", CFG_S_NODEF, kw_acl, 0, NULL},
	{"http-request", CFG_S_NODEF, kw_http_rule, 0, NULL},
	{"http-response", CFG_S_NODEF, kw_http_rule, 0, NULL},
	{"redirect", CFG_S_NODEF, kw_redirect, 0, NULL},
	{"monitor-uri", CFG_S_FE, kw_monitor_uri, 0, NULL},
	{"errorfile", CFG_S_PROXY, kw_errorfile, 0, NULL},
	{"log", CFG_S_PROXY, kw_log, 0, NULL},
	{"log-format", CFG_S_PROXY, kw_log_format, 0, NULL},
	{"capture", CFG_S_FE_ONLY, kw_capture, 0, NULL},
	{"disabled", CFG_S_PROXY, kw_disabled, 0, NULL},
	{"enabled", CFG_S_PROXY, kw_disabled, 0, NULL},
	{"http-reuse", CFG_S_BE, kw_http_reuse, 0, NULL},
	{"description", CFG_S_PROXY, NULL, KW_IGNORE, NULL},
	{"id", CFG_S_NODEF, NULL, KW_IGNORE, NULL},
	{"reqadd", CFG_S_PROXY, kw_removed, 0, NULL},
	{"reqrep", CFG_S_PROXY, kw_removed, 0, NULL},
	{"reqirep", CFG_S_PROXY, kw_removed, 0, NULL},
	{"reqdel", CFG_S_PROXY, kw_removed, 0, NULL},
	{"reqidel", CFG_S_PROXY, kw_removed, 0, NULL},
	{"reqallow", CFG_S_PROXY, kw_removed, 0, NULL},
	{"reqdeny", CFG_S_PROXY, kw_removed, 0, NULL},
	{"rspadd", CFG_S_PROXY, kw_removed, 0, NULL},
	{"rsprep", CFG_S_PROXY, kw_removed, 0, NULL},
	{"rspirep", CFG_S_PROXY, kw_removed, 0, NULL},
	{"rspdel", CFG_S_PROXY, kw_removed, 0, NULL},
	{"rspidel", CFG_S_PROXY, kw_removed, 0, NULL},
	{"block", CFG_S_PROXY, kw_removed, 0, NULL},
	UNIMPL("persist", CFG_S_BE, NULL),
	UNIMPL("force-persist", CFG_S_NODEF, NULL),
	UNIMPL("ignore-persist", CFG_S_NODEF, NULL),
	UNIMPL("use-server", CFG_S_BE_ONLY, NULL),
	UNIMPL("external-check", CFG_S_BE, NULL),
	UNIMPL("compression", CFG_S_PROXY, NULL),
	UNIMPL("filter", CFG_S_NODEF, NULL),
	UNIMPL("tcp-request", CFG_S_NODEF, NULL),
	UNIMPL("tcp-response", CFG_S_BE_ONLY, NULL),
	UNIMPL("unique-id-format", CFG_S_FE, NULL),
	UNIMPL("unique-id-header", CFG_S_FE, NULL),
	UNIMPL("rate-limit", CFG_S_FE, NULL),
	UNIMPL("source", CFG_S_BE, NULL),
	UNIMPL("email-alert", CFG_S_PROXY, NULL),
	UNIMPL("server-template", CFG_S_BE_ONLY, NULL),
	UNIMPL("dynamic-cookie-key", CFG_S_BE, NULL),
	UNIMPL("fullconn", CFG_S_BE, NULL),
	UNIMPL("errorloc", CFG_S_PROXY, NULL),
	UNIMPL("errorloc302", CFG_S_PROXY, NULL),
	UNIMPL("errorloc303", CFG_S_PROXY, NULL),
	UNIMPL("errorfiles", CFG_S_PROXY, NULL),
	UNIMPL("http-error", CFG_S_PROXY, NULL),
	UNIMPL("declare", CFG_S_FE_ONLY, NULL),
	UNIMPL("load-server-state-from-file", CFG_S_BE,
	       "keel does not load HAProxy's 'show servers state' dumps; use keel's 'state-file' (docs/admin.md)"),
	UNIMPL("server-state-file-name", CFG_S_BE,
	       "keel does not load HAProxy's 'show servers state' dumps; use keel's 'state-file' (docs/admin.md)"),
	UNIMPL("monitor", CFG_S_FE_ONLY, NULL),
	UNIMPL("monitor-net", CFG_S_FE, NULL),
	UNIMPL("bind-process", CFG_S_PROXY, NULL),
	UNIMPL("grace", CFG_S_PROXY, NULL),
	UNIMPL("dispatch", CFG_S_BE_ONLY, NULL),
	UNIMPL("max-keep-alive-queue", CFG_S_BE, NULL),
	UNIMPL("http-send-name-header", CFG_S_BE, NULL),
	UNIMPL("log-tag", CFG_S_PROXY, NULL),
	UNIMPL("backlog", CFG_S_FE, NULL),
	UNIMPL("retry-on", CFG_S_BE, "keel retries connection failures and, for idempotent requests, empty responses"),
	UNIMPL("http-after-response", CFG_S_NODEF, NULL),
	UNIMPL("appsession", CFG_S_BE, NULL),
	CFG_KW_END,
};

/* ---- sections ---- */

static void open_defaults(struct cfg_ctx *c, int argc, char **argv)
{
	c->sect = CFG_S_DEFAULTS;
	/* Each defaults section starts from scratch and applies to the proxies that follow. */
	c->defaults = arena_alloc(&cfg_arena, sizeof(*c->defaults));
	proxy_init_defaults(c->defaults);
	c->defaults->name = arena_strdup(&cfg_arena, argc > 1 ? argv[1] : "");
	c->cur = c->defaults;
	if (argc > 2 && strcmp(argv[2], "from"))
		cfg_warn(c, "defaults: extra arguments after the name are ignored");
}

static void open_proxy(struct cfg_ctx *c, int argc, char **argv)
{
	const char *kw = argv[0];
	enum cfg_section s;
	unsigned cap;

	if (!strcmp(kw, "frontend")) {
		s = CFG_S_FRONTEND;
		cap = PR_CAP_FE;
	} else if (!strcmp(kw, "backend")) {
		s = CFG_S_BACKEND;
		cap = PR_CAP_BE;
	} else {
		s = CFG_S_LISTEN;
		cap = PR_CAP_FE | PR_CAP_BE;
	}
	c->sect = s;
	if (argc < 2) {
		cfg_err(c, "'%s' needs a name", kw);
		c->cur = NULL;
		c->sect = CFG_S_IGNORED;
		return;
	}
	c->cur = proxy_new(c, argv[1], cap);
	/* The old "listen NAME ADDR:PORT" form carries its bind address on the section line. */
	if (c->cur && argc > 2) {
		if (s != CFG_S_FRONTEND && s != CFG_S_LISTEN) {
			cfg_err(c, "'%s %s': unexpected argument '%s'", kw, argv[1], argv[2]);
		} else {
			char *bargv[3] = {"bind", argv[2], NULL};

			kw_bind(c, 2, bargv);
			if (argc > 3)
				cfg_warn(c, "'%s %s': arguments after the address are ignored", kw, argv[1]);
		}
	}
}

static void open_userlist(struct cfg_ctx *c, int argc, char **argv)
{
	c->sect = CFG_S_USERLIST;
	c->cur = NULL;
	cfg_warn(c, "'userlist' sections are not implemented yet; its users are ignored (use 'stats auth USER:PASS')");
}

static const struct cfg_sect proxy_sections[] = {
	{"defaults", open_defaults},
	{"frontend", open_proxy},
	{"backend", open_proxy},
	{"listen", open_proxy},
	{"userlist", open_userlist},
	{NULL, NULL},
};

/* Proxies inherit from the last defaults section before them; before any, from keel's. */
static void proxy_begin(struct cfg_ctx *c)
{
	c->defaults = arena_alloc(&cfg_arena, sizeof(*c->defaults));
	proxy_init_defaults(c->defaults);
}

static void proxy_parsed(struct cfg_ctx *c)
{
	if (list_empty(&keel_proxies))
		cfg_err(c, "no frontend, backend or listen section: nothing to do");
}

static void proxy_reset(void)
{
	list_init(&keel_proxies);
}

const struct cfg_module proxy_module = {
	.name = "proxy",
	.keywords = proxy_kw,
	.sections = proxy_sections,
	.begin = proxy_begin,
	.parsed = proxy_parsed,
	.check = proxy_check_all,
	.reset = proxy_reset,
};

