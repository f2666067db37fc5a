/* The global section: the process-wide settings (struct global), their keywords and their checks
 * once loaded. The admin layer registers its own global keywords ("stats socket",
 * "state-file"). */
#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/global.h>

struct global global;

static void global_begin(struct cfg_ctx *c)
{
	memset(&global, 0, sizeof(global));
	global.file = c->file;
	global.uid = global.gid = -1;
	global.bufsize = 16384;
	global.bufsize_stream = 65536;
	global.maxrewrite = 1024;
	global.maxhdr = 101;
	global.spare_servers = 16;
	global.hard_stop_after = 30000;
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

/* The numeric global settings: their range and what the error says they expect. */
static const struct {
	const char *name;
	int *dst;
	long min, max;
	const char *expects;
} nums[] = {
	{"nbthread", &global.nbthread, 1, KEEL_MAX_THREADS, "a number from 1 to " KEEL_STR(KEEL_MAX_THREADS)},
	{"maxconn", &global.maxconn, 1, 10000000, "a positive number"},
	{"ulimit-n", &global.ulimit_n, 64, 100000000, "a number of at least 64"},
	{"tune.http.maxhdr", &global.maxhdr, 1, 32767, "a number from 1 to 32767"},
	{"tune.spare-servers", &global.spare_servers, 0, 4096, "a number from 0 to 4096"},
	{"maxpipes", &global.maxpipes, 0, 10000000, "a number (0: maxconn / 4)"},
};

static int kw_num(struct cfg_ctx *c, int argc, char **argv)
{
	long v;
	size_t i;

	if (one_arg(c, argc, argv))
		return ERR;
	if (!strcmp(argv[0], "nbproc")) {
		if (cfg_parse_int(argv[1], 1, 64, &v) || v != 1)
			cfg_warn(c, "'nbproc' is obsolete; keel runs one process with 'nbthread' threads");
		return OK;
	}
	for (i = 0; i < ARRAY_SIZE(nums); i++) {
		if (strcmp(argv[0], nums[i].name))
			continue;
		if (cfg_parse_int(argv[1], nums[i].min, nums[i].max, &v)) {
			cfg_err(c, "'%s' expects %s", argv[0], nums[i].expects);
			return ERR;
		}
		*nums[i].dst = (int)v;
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

/* "no strict-limits": HAProxy then only warns, instead of refusing to start, when it cannot get
 * the file descriptor limit that maxconn needs. That is all keel ever does: raise_nofile() in
 * src/process/process.c raises the limit to ulimit-n (or 2 x maxconn + 256), falls back to the hard
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

static const struct cfg_kw global_kw[] = {
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
	{"debug", CFG_S_GLOBAL, NULL, KW_IGNORE, NULL},
	{"description", CFG_S_GLOBAL, NULL, KW_IGNORE, NULL},
	{"log-send-hostname", CFG_S_GLOBAL, NULL, KW_UNIMPL, NULL},
	{"spread-checks", CFG_S_GLOBAL, NULL, KW_UNIMPL, "health checks are the health issue"},
	{"cpu-map", CFG_S_GLOBAL, NULL, KW_UNIMPL, NULL},
	{"master-worker", CFG_S_GLOBAL, NULL, KW_UNIMPL, "keel reloads without a master process (docs/admin.md, Reload)"},
	{"maxconnrate", CFG_S_GLOBAL, NULL, KW_UNIMPL, NULL},
	{"maxsessrate", CFG_S_GLOBAL, NULL, KW_UNIMPL, NULL},
	{"maxsslconn", CFG_S_GLOBAL, NULL, KW_UNIMPL, "maxconn counts TLS connections too"},
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
	CFG_KW_END,
};

static int count_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > KEEL_MAX_THREADS ? KEEL_MAX_THREADS : (int)n;
}

static void global_check(struct cfg_ctx *c)
{
	if (!global.nbthread)
		global.nbthread = count_cpus();
	if (global.maxrewrite >= global.bufsize / 2) {
		cfg_warn(c, "tune.maxrewrite (%u) must be less than half of tune.bufsize (%u); using %u",
			 global.maxrewrite, global.bufsize, global.bufsize / 4);
		global.maxrewrite = global.bufsize / 4;
	}
}

static void global_reset(void)
{
	memset(&global, 0, sizeof(global));
}

const struct cfg_module global_module = {
	.name = "global",
	.keywords = global_kw,
	.begin = global_begin,
	.check = global_check,
	.reset = global_reset,
};

