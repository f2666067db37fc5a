/* The admin layer's registration (admin_register()): its configuration keywords (the admin
 * socket and the state file in the global section, the stats and metrics pages of the proxy
 * sections), the pages it serves on the frontends (services the request path asks), and its
 * subscriptions to the runtime's events (server changes, the health tick). */
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <keel/acl.h>
#include <keel/admin.h>
#include <keel/cfg.h>
#include <keel/cli.h>
#include <keel/common.h>
#include <keel/global.h>
#include <keel/health.h>
#include <keel/history.h>
#include <keel/http-ana.h>
#include <keel/http.h>
#include <keel/prom.h>
#include <keel/proxy-t.h>
#include <keel/server.h>
#include <keel/service.h>
#include <keel/state.h>
#include <keel/stats.h>

static void admin_begin(struct cfg_ctx *c)
{
	global.cli_mode = 0600;
	global.cli_level = CLI_LVL_ADMIN; /* the file mode restricts who may connect */
	global.cli_uid = global.cli_gid = -1;
	global.cli_timeout = 10000;
}

/* "stats socket PATH [mode OCTAL] [level user|operator|admin] [user U] [group G] [uid N] [gid N]"
 * (one unix socket, served by admin/cli.c), "stats timeout T", "stats maxconn N" (accepted). */
static int kw_global_stats(struct cfg_ctx *c, int argc, char **argv)
{
	struct sockaddr_un un;
	const char *path, *why;
	int i;

	if (argc >= 2 && !strcmp(argv[1], "timeout")) {
		if (argc != 3 || cfg_parse_time(argv[2], &global.cli_timeout, &why) ||
		    !global.cli_timeout) {
			cfg_err(c, "'stats timeout' expects a positive time");
			return ERR;
		}
		return OK;
	}
	if (argc >= 2 && !strcmp(argv[1], "maxconn"))
		return OK;
	if (argc < 2 || strcmp(argv[1], "socket")) {
		cfg_warn(c, "'stats %s' in global is not implemented; ignored", argc > 1 ? argv[1] : "");
		return OK;
	}
	if (argc < 3) {
		cfg_err(c, "'stats socket' expects a path");
		return ERR;
	}
	if (global.cli_path) {
		cfg_err(c, "only one 'stats socket' is supported (already '%s')", global.cli_path);
		return ERR;
	}
	path = argv[2];
	if (!strncmp(path, "unix@", 5))
		path += 5;
	if (path[0] != '/' && strncmp(path, "./", 2)) {
		cfg_err(c, "'stats socket %s': only unix socket paths are supported (absolute or ./)",
			argv[2]);
		return ERR;
	}
	if (strlen(path) >= sizeof(un.sun_path)) {
		cfg_err(c, "'stats socket' path too long (at most %zu bytes): '%s'",
			sizeof(un.sun_path) - 1, path);
		return ERR;
	}
	for (i = 3; i < argc; i += 2) {
		const char *kw = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;
		long n;

		if (!strcmp(kw, "expose-fd")) {
			/* HAProxy's "expose-fd listeners" lets a new process fetch the sockets over
			 * the admin socket; keel's reload passes them by inheritance: nothing to do. */
			continue;
		}
		if (!v) {
			cfg_err(c, "'stats socket': '%s' expects a value", kw);
			return ERR;
		}
		if (!strcmp(kw, "mode")) {
			n = strtol(v, &end, 8);
			if (!*v || *end || n < 0 || n > 0777) {
				cfg_err(c, "'stats socket': mode expects an octal number up to 0777, not '%s'", v);
				return ERR;
			}
			global.cli_mode = (int)n;
		} else if (!strcmp(kw, "level")) {
			if (!strcmp(v, "user"))
				global.cli_level = CLI_LVL_USER;
			else if (!strcmp(v, "operator"))
				global.cli_level = CLI_LVL_OPER;
			else if (!strcmp(v, "admin"))
				global.cli_level = CLI_LVL_ADMIN;
			else {
				cfg_err(c, "'stats socket': level expects user, operator or admin, not '%s'", v);
				return ERR;
			}
		} else if (!strcmp(kw, "user")) {
			global.cli_user = arena_strdup(&cfg_arena, v);
		} else if (!strcmp(kw, "group")) {
			global.cli_group = arena_strdup(&cfg_arena, v);
		} else if (!strcmp(kw, "uid") || !strcmp(kw, "gid")) {
			if (cfg_parse_int(v, 0, 0x7fffffff, &n)) {
				cfg_err(c, "'stats socket': %s expects a number", kw);
				return ERR;
			}
			*(kw[0] == 'u' ? &global.cli_uid : &global.cli_gid) = (int)n;
		} else {
			cfg_err(c, "'stats socket': unknown option '%s' (expects mode, level, user, group, uid or gid)", kw);
			return ERR;
		}
	}
	global.cli_path = arena_strdup(&cfg_arena, path);
	return OK;
}

/* "state-file PATH": durable runtime state (src/admin/state.c). Only the directory is checked
 * here (so also by -c); the file is read at start. */
static int kw_state_file(struct cfg_ctx *c, int argc, char **argv)
{
	char *err = NULL;

	if (argc != 2) {
		cfg_err(c, "'%s' expects exactly one argument", argv[0]);
		return ERR;
	}
	if (state_check_path(argv[1], &err) != OK) {
		cfg_err(c, "%s", err);
		free(err);
		return ERR;
	}
	global.state_file = arena_strdup(&cfg_arena, argv[1]);
	return OK;
}

static int kw_proxy_stats(struct cfg_ctx *c, int argc, char **argv)
{
	struct stats_conf *st = &c->cur->stats;
	const char *sub = argc > 1 ? argv[1] : "";
	const char *why;

	if (!strcmp(sub, "enable")) {
		st->enabled = true;
		if (!st->uri)
			st->uri = arena_strdup(&cfg_arena, "/haproxy?stats");
	} else if (!strcmp(sub, "uri")) {
		if (cfg_need_args(c, argc, argv, 2, "'uri' and a path"))
			return ERR;
		st->enabled = true;
		st->uri = arena_strdup(&cfg_arena, argv[2]);
	} else if (!strcmp(sub, "auth")) {
		char *colon;

		if (cfg_need_args(c, argc, argv, 2, "'auth' and USER:PASSWORD"))
			return ERR;
		colon = strchr(argv[2], ':');
		if (!colon || colon == argv[2]) {
			cfg_err(c, "'stats auth' expects USER:PASSWORD");
			return ERR;
		}
		st->enabled = true;
		if (!st->uri)
			st->uri = arena_strdup(&cfg_arena, "/haproxy?stats");
		st->users = arena_grow(&cfg_arena, st->users, (size_t)st->nusers,
				       (size_t)st->nusers + 1, sizeof(*st->users));
		st->users[st->nusers].user = arena_strndup(&cfg_arena, argv[2], (size_t)(colon - argv[2]));
		st->users[st->nusers].pass = arena_strdup(&cfg_arena, colon + 1);
		st->nusers++;
	} else if (!strcmp(sub, "prometheus-uri")) {
		if (cfg_need_args(c, argc, argv, 2, "'prometheus-uri' and a path"))
			return ERR;
		if (argv[2][0] != '/') {
			cfg_err(c, "'stats prometheus-uri' expects a path starting with '/'");
			return ERR;
		}
		st->prom_uri = arena_strdup(&cfg_arena, argv[2]);
	} else if (!strcmp(sub, "realm")) {
		if (cfg_need_args(c, argc, argv, 2, "'realm' and a name"))
			return ERR;
		st->realm = arena_strdup(&cfg_arena, argv[2]);
	} else if (!strcmp(sub, "refresh")) {
		uint32_t ms;

		if (cfg_need_args(c, argc, argv, 2, "'refresh' and a time"))
			return ERR;
		if (cfg_parse_time(argv[2], &ms, &why)) {
			cfg_err(c, "'stats refresh': %s", why);
			return ERR;
		}
		st->refresh_s = ms / 1000;
	} else if (!strcmp(sub, "hide-version")) {
		st->hide_version = true;
	} else if (!strcmp(sub, "admin")) {
		if (argc < 3) {
			cfg_err(c, "'stats admin' expects 'if' or 'unless' and a condition");
			return ERR;
		}
		st->admin = acl_cond_parse(c, c->cur, argc - 2, argv + 2);
		if (!st->admin)
			return ERR;
		st->admin_set = true;
	} else if (!strcmp(sub, "show-legends") || !strcmp(sub, "show-node") ||
		   !strcmp(sub, "show-desc") || !strcmp(sub, "show-modules")) {
		/* presentation hints: harmless to accept */
	} else if (!strcmp(sub, "scope") || !strcmp(sub, "http-request") ||
		   !strcmp(sub, "bind-process")) {
		cfg_warn(c, "'stats %s' is accepted but not implemented yet; ignored", sub);
	} else {
		static const char *const subs[] = {"enable", "uri", "auth", "realm", "refresh",
						   "hide-version", "admin", "show-legends", "prometheus-uri",
						   "show-node", "scope"};
		const char *near = cfg_nearest(sub, subs, ARRAY_SIZE(subs));

		cfg_err(c, "unknown 'stats %s'%s%s%s", sub, near ? "; did you mean '" : "",
			near ? near : "", near ? "'?" : "");
		return ERR;
	}
	return OK;
}

static const struct cfg_kw admin_kw[] = {
	{"stats", CFG_S_GLOBAL, kw_global_stats, 0, NULL},
	{"state-file", CFG_S_GLOBAL, kw_state_file, 0, NULL},
	{"stats", CFG_S_PROXY, kw_proxy_stats, 0, NULL},
	CFG_KW_END,
};

static const struct cfg_module admin_module = {
	.name = "admin",
	.keywords = admin_kw,
	.begin = admin_begin,
};

/* ---- pages ---- */

static void reply_auth(struct stream *s, const struct proxy *fe)
{
	http_reply_auth(s, fe->stats.realm ? fe->stats.realm : "HAProxy Statistics");
}

static bool metrics_on(const struct proxy *fe)
{
	return fe->stats.prom_uri != NULL;
}

/* "stats prometheus-uri": the exact path (a query string is ignored), before the stats prefix. */
static bool metrics_claims(const struct proxy *fe, const struct http_head *h)
{
	return fe->stats.prom_uri && h->path.len == strlen(fe->stats.prom_uri) &&
	       !memcmp(http_ptr(h, h->path), fe->stats.prom_uri, h->path.len);
}

static void metrics_serve(struct stream *s, const struct http_head *h)
{
	if (!stats_check_auth(s->fe, h))
		reply_auth(s, s->fe);
	else
		prom_serve(s);
}

static bool stats_on(const struct proxy *fe)
{
	return fe->stats.enabled;
}

static bool stats_claims(const struct proxy *fe, const struct http_head *h)
{
	return fe->stats.enabled && h->uri.len >= strlen(fe->stats.uri) &&
	       !memcmp(http_ptr(h, h->uri), fe->stats.uri, strlen(fe->stats.uri));
}

static void stats_page_serve(struct stream *s, const struct http_head *h)
{
	if (!stats_check_auth(s->fe, h))
		reply_auth(s, s->fe);
	else
		stats_serve(s, h);
}

/* "http-request use-service prometheus-exporter": the rule decides who gets it. */
static void exporter_serve(struct stream *s, const struct http_head *h)
{
	prom_serve(s);
}

static const struct http_service metrics_page = {NULL, metrics_on, metrics_claims, metrics_serve};
static const struct http_service stats_page = {NULL, stats_on, stats_claims, stats_page_serve};
static const struct http_service exporter = {"prometheus-exporter", NULL, NULL, exporter_serve};

void admin_register(void)
{
	cfg_register(&admin_module);
	http_service_register(&metrics_page);
	http_service_register(&stats_page);
	http_service_register(&exporter);
	server_on_change(state_note_change);
	health_on_tick(history_tick);
}
