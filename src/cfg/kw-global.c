/* Keywords of the global section. */
#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <keel/cfg.h>
#include <keel/cli.h>
#include <keel/common.h>
#include <keel/state.h>

void cfg_global_defaults(void)
{
	memset(&global, 0, sizeof(global));
	global.uid = global.gid = -1;
	global.bufsize = 16384;
	global.bufsize_stream = 65536;
	global.maxrewrite = 1024;
	global.maxhdr = 101;
	global.spare_servers = 16;
	global.hard_stop_after = 30000;
	global.cli_mode = 0600;
	global.cli_level = CLI_LVL_ADMIN; /* the file mode restricts who may connect */
	global.cli_uid = global.cli_gid = -1;
	global.cli_timeout = 10000;
}

static const char *const facilities[] = {
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "auth2", "ftp", "ntp", "audit", "alert", "cron2",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
};

static const char *const levels[] = {
	"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

static int lookup(const char *s, const char *const *tab, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(s, tab[i]))
			return i;
	return -1;
}

int cfg_parse_log(struct cfg_ctx *c, struct log_targets *lt, int argc, char **argv)
{
	struct log_target t;
	const char *dst;
	int i = 1;

	memset(&t, 0, sizeof(t));
	t.fd = -1;
	t.level = 7;
	t.minlevel = 0;
	t.format = LOG_FMT_RFC3164;
	if (argc < 2) {
		cfg_err(c, "'log' expects an address or 'global'");
		return ERR;
	}
	dst = argv[i++];
	/* Optional "len N", "format F", "sample R:S" before the facility. */
	while (i + 1 < argc) {
		if (!strcmp(argv[i], "len")) {
			i += 2;
		} else if (!strcmp(argv[i], "format")) {
			if (!strcmp(argv[i + 1], "raw"))
				t.format = LOG_FMT_RAW;
			else if (!strcmp(argv[i + 1], "short"))
				t.format = LOG_FMT_SHORT;
			else if (!strcmp(argv[i + 1], "rfc3164") || !strcmp(argv[i + 1], "local"))
				t.format = LOG_FMT_RFC3164;
			else
				cfg_warn(c, "log format '%s' is not implemented; using rfc3164", argv[i + 1]);
			i += 2;
		} else if (!strcmp(argv[i], "sample")) {
			cfg_warn(c, "log 'sample' is not implemented; every line is logged");
			i += 2;
		} else {
			break;
		}
	}
	if (i >= argc) {
		cfg_err(c, "'log %s' expects a facility (e.g. local0)", dst);
		return ERR;
	}
	t.facility = lookup(argv[i], facilities, (int)ARRAY_SIZE(facilities));
	if (t.facility < 0) {
		const char *near = cfg_nearest(argv[i], facilities, ARRAY_SIZE(facilities));

		cfg_err(c, "unknown log facility '%s'%s%s%s", argv[i], near ? "; did you mean '" : "",
			near ? near : "", near ? "'?" : "");
		return ERR;
	}
	i++;
	if (i < argc) {
		t.level = lookup(argv[i], levels, (int)ARRAY_SIZE(levels));
		if (t.level < 0) {
			cfg_err(c, "unknown log level '%s' (expects emerg..debug)", argv[i]);
			return ERR;
		}
		i++;
	}
	if (i < argc) {
		t.minlevel = lookup(argv[i], levels, (int)ARRAY_SIZE(levels));
		if (t.minlevel < 0) {
			cfg_err(c, "unknown log level '%s' (expects emerg..debug)", argv[i]);
			return ERR;
		}
		i++;
	}
	if (!strcmp(dst, "stdout") || !strcmp(dst, "stderr")) {
		t.kind = LOG_T_FD;
		t.fd = !strcmp(dst, "stdout") ? 1 : 2;
		if (t.format == LOG_FMT_RFC3164)
			t.format = LOG_FMT_RAW;
	} else if (!strncmp(dst, "file@", 5)) {
		t.kind = LOG_T_FILE;
		t.path = arena_strdup(&cfg_arena, dst + 5);
		if (!t.path[0]) {
			cfg_err(c, "'log file@' expects a path");
			return ERR;
		}
		if (t.format == LOG_FMT_RFC3164)
			t.format = LOG_FMT_RAW;
	} else if (dst[0] == '/' || !strncmp(dst, "unix@", 5)) {
		struct sockaddr_un *un = (struct sockaddr_un *)&t.addr;
		const char *path = dst[0] == '/' ? dst : dst + 5;

		if (strlen(path) >= sizeof(un->sun_path)) {
			cfg_err(c, "log socket path too long: '%s'", path);
			return ERR;
		}
		t.kind = LOG_T_UNIX;
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, path);
		t.addrlen = sizeof(*un);
		t.path = arena_strdup(&cfg_arena, path);
	} else if (!strncmp(dst, "ring@", 5) || !strncmp(dst, "fd@", 3)) {
		cfg_warn(c, "log target '%s' is not implemented; ignored", dst);
		return OK;
	} else {
		char *err = NULL;
		bool noport;
		const char *a = !strncmp(dst, "udp@", 4) ? dst + 4 : dst;

		if (cfg_parse_addr(a, &t.addr, &t.addrlen, true, &noport, &err)) {
			cfg_err(c, "log: %s", err);
			free(err);
			return ERR;
		}
		if (noport) {
			if (t.addr.ss_family == AF_INET)
				((struct sockaddr_in *)&t.addr)->sin_port = htons(514);
			else
				((struct sockaddr_in6 *)&t.addr)->sin6_port = htons(514);
		}
		t.kind = LOG_T_UDP;
	}
	lt->t = arena_grow(&cfg_arena, lt->t, (size_t)lt->n, (size_t)lt->n + 1, sizeof(t));
	lt->t[lt->n++] = t;
	return OK;
}

static int kw_daemon(struct cfg_ctx *c, int argc, char **argv)
{
	(void)c, (void)argc, (void)argv;
	global.daemon = true;
	return OK;
}

static int kw_quiet(struct cfg_ctx *c, int argc, char **argv)
{
	(void)c, (void)argc, (void)argv;
	global.quiet = true;
	return OK;
}

static int kw_nosplice(struct cfg_ctx *c, int argc, char **argv)
{
	(void)c, (void)argc, (void)argv;
	global.nosplice = true;
	return OK;
}

static int one_arg(struct cfg_ctx *c, int argc, char **argv)
{
	if (argc != 2) {
		cfg_err(c, "'%s' expects exactly one argument", argv[0]);
		return ERR;
	}
	return OK;
}

static int kw_string(struct cfg_ctx *c, int argc, char **argv)
{
	char **dst;

	if (one_arg(c, argc, argv))
		return ERR;
	if (!strcmp(argv[0], "pidfile"))
		dst = &global.pidfile;
	else if (!strcmp(argv[0], "chroot"))
		dst = &global.chroot;
	else if (!strcmp(argv[0], "user"))
		dst = &global.user;
	else if (!strcmp(argv[0], "group"))
		dst = &global.group;
	else if (!strcmp(argv[0], "node"))
		dst = &global.node;
	else
		dst = &global.log_tag;
	*dst = arena_strdup(&cfg_arena, argv[1]);
	return OK;
}

static int kw_id(struct cfg_ctx *c, int argc, char **argv)
{
	long v;

	if (one_arg(c, argc, argv))
		return ERR;
	if (cfg_parse_int(argv[1], 0, 0x7fffffff, &v)) {
		cfg_err(c, "'%s' expects a number", argv[0]);
		return ERR;
	}
	if (!strcmp(argv[0], "uid"))
		global.uid = (int)v;
	else
		global.gid = (int)v;
	return OK;
}

static int kw_num(struct cfg_ctx *c, int argc, char **argv)
{
	long v;
	const char *kw = argv[0];

	if (one_arg(c, argc, argv))
		return ERR;
	if (!strcmp(kw, "nbthread")) {
		if (cfg_parse_int(argv[1], 1, KEEL_MAX_THREADS, &v)) {
			cfg_err(c, "'nbthread' expects a number from 1 to %d", KEEL_MAX_THREADS);
			return ERR;
		}
		global.nbthread = (int)v;
	} else if (!strcmp(kw, "maxconn")) {
		if (cfg_parse_int(argv[1], 1, 10000000, &v)) {
			cfg_err(c, "'maxconn' expects a positive number");
			return ERR;
		}
		global.maxconn = (int)v;
	} else if (!strcmp(kw, "ulimit-n")) {
		if (cfg_parse_int(argv[1], 64, 100000000, &v)) {
			cfg_err(c, "'ulimit-n' expects a number of at least 64");
			return ERR;
		}
		global.ulimit_n = (int)v;
	} else if (!strcmp(kw, "tune.http.maxhdr")) {
		if (cfg_parse_int(argv[1], 1, 32767, &v)) {
			cfg_err(c, "'tune.http.maxhdr' expects a number from 1 to 32767");
			return ERR;
		}
		global.maxhdr = (int)v;
	} else if (!strcmp(kw, "tune.spare-servers")) {
		if (cfg_parse_int(argv[1], 0, 4096, &v)) {
			cfg_err(c, "'tune.spare-servers' expects a number from 0 to 4096");
			return ERR;
		}
		global.spare_servers = (int)v;
	} else if (!strcmp(kw, "maxpipes")) {
		if (cfg_parse_int(argv[1], 0, 10000000, &v)) {
			cfg_err(c, "'maxpipes' expects a number (0: maxconn / 4)");
			return ERR;
		}
		global.maxpipes = (int)v;
	} else if (!strcmp(kw, "nbproc")) {
		if (cfg_parse_int(argv[1], 1, 64, &v) || v != 1)
			cfg_warn(c, "'nbproc' is obsolete; keel runs one process with 'nbthread' threads");
	}
	return OK;
}

static int kw_size(struct cfg_ctx *c, int argc, char **argv)
{
	const char *why;
	uint32_t v;

	if (one_arg(c, argc, argv))
		return ERR;
	if (cfg_parse_size(argv[1], &v, &why)) {
		cfg_err(c, "'%s': %s", argv[0], why);
		return ERR;
	}
	if (!strcmp(argv[0], "tune.bufsize")) {
		if (v < 1024 || v > (1u << 24)) {
			cfg_err(c, "'tune.bufsize' must be between 1024 and 16777216");
			return ERR;
		}
		global.bufsize = v;
	} else if (!strcmp(argv[0], "tune.bufsize.stream")) {
		if (v > (1u << 24)) {
			cfg_err(c, "'tune.bufsize.stream' must be at most 16777216 (0: off)");
			return ERR;
		}
		global.bufsize_stream = v;
	} else {
		global.maxrewrite = v;
	}
	return OK;
}

static int kw_hard_stop(struct cfg_ctx *c, int argc, char **argv)
{
	const char *why;

	if (one_arg(c, argc, argv))
		return ERR;
	if (cfg_parse_time(argv[1], &global.hard_stop_after, &why)) {
		cfg_err(c, "'hard-stop-after': %s", why);
		return ERR;
	}
	return OK;
}

static int kw_log(struct cfg_ctx *c, int argc, char **argv)
{
	return cfg_parse_log(c, &global.logs, argc, argv);
}

static int kw_setenv(struct cfg_ctx *c, int argc, char **argv)
{
	if (argc != 3) {
		cfg_err(c, "'%s' expects a name and a value", argv[0]);
		return ERR;
	}
	setenv(argv[1], argv[2], !strcmp(argv[0], "setenv"));
	return OK;
}

/* "stats socket PATH [mode OCTAL] [level user|operator|admin] [user U] [group G] [uid N] [gid N]"
 * (one unix socket, served by admin/cli.c), "stats timeout T", "stats maxconn N" (accepted). */
static int kw_stats(struct cfg_ctx *c, int argc, char **argv)
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

	if (one_arg(c, argc, argv))
		return ERR;
	if (state_check_path(argv[1], &err) != OK) {
		cfg_err(c, "%s", err);
		free(err);
		return ERR;
	}
	global.state_file = arena_strdup(&cfg_arena, argv[1]);
	return OK;
}

/* "no strict-limits": HAProxy then only warns, instead of refusing to start, when it cannot get
 * the file descriptor limit that maxconn needs. That is all keel ever does: raise_nofile() in
 * src/core/process.c raises the limit to ulimit-n (or 2 x maxconn + 256), falls back to the hard
 * limit with a warning when it may not, and when maxconn still needs more descriptors than that
 * warns that connections beyond the limit will be refused; it never fails start-up over it. So
 * the line is accepted silently. No other global keyword can be negated. */
static int kw_no(struct cfg_ctx *c, int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "strict-limits"))
		return OK;
	cfg_err(c, "'no %s' is not supported in 'global' (only 'no strict-limits' is)",
		argc > 1 ? argv[1] : "");
	return ERR;
}

const struct cfg_kw cfg_kw_global[] = {
	{"daemon", CFG_S_GLOBAL, kw_daemon, 0, NULL},
	{"quiet", CFG_S_GLOBAL, kw_quiet, 0, NULL},
	{"pidfile", CFG_S_GLOBAL, kw_string, 0, NULL},
	{"chroot", CFG_S_GLOBAL, kw_string, 0, NULL},
	{"user", CFG_S_GLOBAL, kw_string, 0, NULL},
	{"group", CFG_S_GLOBAL, kw_string, 0, NULL},
	{"uid", CFG_S_GLOBAL, kw_id, 0, NULL},
	{"gid", CFG_S_GLOBAL, kw_id, 0, NULL},
	{"node", CFG_S_GLOBAL, kw_string, 0, NULL},
	{"log-tag", CFG_S_GLOBAL, kw_string, 0, NULL},
	{"state-file", CFG_S_GLOBAL, kw_state_file, 0, NULL},
	{"nbthread", CFG_S_GLOBAL, kw_num, 0, NULL},
	{"nbproc", CFG_S_GLOBAL, kw_num, 0, NULL},
	{"maxconn", CFG_S_GLOBAL, kw_num, 0, NULL},
	{"maxpipes", CFG_S_GLOBAL, kw_num, 0, NULL},
	{"ulimit-n", CFG_S_GLOBAL, kw_num, 0, NULL},
	{"tune.http.maxhdr", CFG_S_GLOBAL, kw_num, 0, NULL},
	{"tune.spare-servers", CFG_S_GLOBAL, kw_num, 0, NULL},
	{"tune.bufsize", CFG_S_GLOBAL, kw_size, 0, NULL},
	{"tune.bufsize.stream", CFG_S_GLOBAL, kw_size, 0, NULL},
	{"tune.maxrewrite", CFG_S_GLOBAL, kw_size, 0, NULL},
	{"hard-stop-after", CFG_S_GLOBAL, kw_hard_stop, 0, NULL},
	{"log", CFG_S_GLOBAL, kw_log, 0, NULL},
	{"setenv", CFG_S_GLOBAL, kw_setenv, 0, NULL},
	{"presetenv", CFG_S_GLOBAL, kw_setenv, 0, NULL},
	{"stats", CFG_S_GLOBAL, kw_stats, 0, NULL},
	{"debug", CFG_S_GLOBAL, NULL, KW_IGNORE, NULL},
	{"description", CFG_S_GLOBAL, NULL, KW_IGNORE, NULL},
	{"log-send-hostname", CFG_S_GLOBAL, NULL, KW_UNIMPL, NULL},
	{"spread-checks", CFG_S_GLOBAL, NULL, KW_UNIMPL, "health checks are the health issue"},
	{"cpu-map", CFG_S_GLOBAL, NULL, KW_UNIMPL, NULL},
	{"master-worker", CFG_S_GLOBAL, NULL, KW_UNIMPL, "keel reloads without a master process (docs/admin.md, Reload)"},
	{"maxconnrate", CFG_S_GLOBAL, NULL, KW_UNIMPL, NULL},
	{"maxsessrate", CFG_S_GLOBAL, NULL, KW_UNIMPL, NULL},
	{"maxsslconn", CFG_S_GLOBAL, NULL, KW_UNIMPL, "TLS is not implemented yet"},
	{"ssl-default-bind-ciphers", CFG_S_GLOBAL, NULL, KW_UNIMPL, "TLS is not implemented yet"},
	{"ssl-default-bind-ciphersuites", CFG_S_GLOBAL, NULL, KW_UNIMPL, "TLS is not implemented yet"},
	{"ssl-default-bind-options", CFG_S_GLOBAL, NULL, KW_UNIMPL, "TLS is not implemented yet"},
	{"ssl-default-server-ciphers", CFG_S_GLOBAL, NULL, KW_UNIMPL, "TLS is not implemented yet"},
	{"ssl-default-server-options", CFG_S_GLOBAL, NULL, KW_UNIMPL, "TLS is not implemented yet"},
	{"ssl-server-verify", CFG_S_GLOBAL, NULL, KW_UNIMPL, "TLS is not implemented yet"},
	{"tune.ssl.default-dh-param", CFG_S_GLOBAL, NULL, KW_UNIMPL, "TLS is not implemented yet"},
	{"ca-base", CFG_S_GLOBAL, NULL, KW_UNIMPL, "TLS is not implemented yet"},
	{"crt-base", CFG_S_GLOBAL, NULL, KW_UNIMPL, "TLS is not implemented yet"},
	{"server-state-file", CFG_S_GLOBAL, NULL, KW_UNIMPL,
	 "keel does not load HAProxy's 'show servers state' dumps; use keel's 'state-file' (docs/admin.md)"},
	{"server-state-base", CFG_S_GLOBAL, NULL, KW_UNIMPL,
	 "keel does not load HAProxy's 'show servers state' dumps; use keel's 'state-file' (docs/admin.md)"},
	{"lua-load", CFG_S_GLOBAL, NULL, KW_UNIMPL, "keel has no Lua"},
	{"external-check", CFG_S_GLOBAL, NULL, KW_UNIMPL, NULL},
	{"insecure-fork-wanted", CFG_S_GLOBAL, NULL, KW_IGNORE, NULL},
	{"tune.maxaccept", CFG_S_GLOBAL, NULL, KW_UNIMPL, NULL},
	{"tune.maxpollevents", CFG_S_GLOBAL, NULL, KW_UNIMPL, NULL},
	{"tune.rcvbuf.client", CFG_S_GLOBAL, NULL, KW_UNIMPL, NULL},
	{"tune.sndbuf.client", CFG_S_GLOBAL, NULL, KW_UNIMPL, NULL},
	{"tune.rcvbuf.server", CFG_S_GLOBAL, NULL, KW_UNIMPL, NULL},
	{"tune.sndbuf.server", CFG_S_GLOBAL, NULL, KW_UNIMPL, NULL},
	{"noepoll", CFG_S_GLOBAL, NULL, KW_UNIMPL, "keel always uses epoll"},
	{"nosplice", CFG_S_GLOBAL, kw_nosplice, 0, NULL},
	{"no", CFG_S_GLOBAL, kw_no, 0, NULL},
	{"strict-limits", CFG_S_GLOBAL, NULL, KW_UNIMPL,
	 "keel only warns when the file descriptor limit is too low for maxconn"},
	{"h1-case-adjust", CFG_S_GLOBAL, NULL, KW_UNIMPL, NULL},
	{NULL, 0, NULL, 0, NULL},
};
