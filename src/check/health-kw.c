/* Keywords of passive detection, latency awareness, per-try timeouts and the retry budget.
 * Defaults are chosen so that a backend with no health settings at all still stops sending users
 * to a server that accepts connections but no longer answers (docs/configuration.md, "Health"). */
#include <string.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/health.h>
#include <keel/proxy.h>

/* keel's defaults (documented in docs/configuration.md). */
#define DEF_ERROR_LIMIT 3       /* HAProxy: 10, and only with "observe" */
#define DEF_EJECT_MS 5000       /* first ejection; doubles on each repeat */
#define DEF_PERTRY_MIN 250
#define DEF_PERTRY_MAX 3000
#define DEF_BUDGET_PCT 10
#define DEF_BUDGET_MIN 100       /* per 10 s window: 10 retries a second */
#define DEF_MAX_EJECT_PCT 50
#define DEF_SLOW_FACTOR 5
#define DEF_SLOW_FLOOR 200

static void kw_health_defaults(struct proxy *p)
{
	struct chk_proxy_conf *k = &p->chk;
	struct chk_srv_conf *s = &p->defsrv.chk;

	k->pertry_min_ms = DEF_PERTRY_MIN;
	k->pertry_max_ms = DEF_PERTRY_MAX;
	k->budget_pct = DEF_BUDGET_PCT;
	k->budget_min = DEF_BUDGET_MIN;
	k->fail_open = true;
	k->max_eject_pct = DEF_MAX_EJECT_PCT;
	k->slow_factor = DEF_SLOW_FACTOR;
	k->slow_floor_ms = DEF_SLOW_FLOOR;
	s->error_limit = DEF_ERROR_LIMIT;
	s->eject_ms = DEF_EJECT_MS;
}

static int want_time(struct cfg_ctx *c, const char *kw, const char *val, uint32_t *out)
{
	const char *why;

	if (!val || cfg_parse_time(val, out, &why)) {
		cfg_err(c, "'%s': %s", kw, val ? why : "expects a time such as 500ms or 2s");
		return ERR;
	}
	return OK;
}

static int kw_health_server_param(struct cfg_ctx *c, struct server *s, int argc, char **argv, int *i)
{
	const char *kw = argv[*i];
	const char *val = *i + 1 < argc ? argv[*i + 1] : NULL;
	long v;

	if (!strcmp(kw, "slowstart")) {
		if (want_time(c, kw, val, &s->chk.slowstart))
			return ERR;
	} else if (!strcmp(kw, "eject-time")) {
		if (want_time(c, kw, val, &s->chk.eject_ms))
			return ERR;
		if (s->chk.eject_ms < 100) {
			cfg_err(c, "'eject-time' must be at least 100ms");
			return ERR;
		}
	} else if (!strcmp(kw, "error-limit")) {
		if (!val || cfg_parse_int(val, 1, 1000, &v)) {
			cfg_err(c, "'error-limit' expects a number from 1 to 1000");
			return ERR;
		}
		s->chk.error_limit = (int)v;
	} else if (!strcmp(kw, "observe")) {
		if (!val || (strcmp(val, "layer4") && strcmp(val, "layer7") && strcmp(val, "none"))) {
			cfg_err(c, "'observe' expects layer4, layer7 or none");
			return ERR;
		}
		s->chk.observe_l7 = !strcmp(val, "layer7");
		s->chk.observe_off = !strcmp(val, "none");
	} else if (!strcmp(kw, "on-error")) {
		static const char *const acts[] = {"fastinter", "fail-check", "sudden-death",
						   "mark-down"};
		size_t k;

		for (k = 0; val && k < ARRAY_SIZE(acts); k++)
			if (!strcmp(val, acts[k]))
				break;
		if (!val || k == ARRAY_SIZE(acts)) {
			cfg_err(c, "'on-error' expects fastinter, fail-check, sudden-death or mark-down");
			return ERR;
		}
		/* keel has one reaction to an error streak: eject and probe (docs). */
	} else if (!strcmp(kw, "on-marked-down") || !strcmp(kw, "on-marked-up")) {
		if (!val) {
			cfg_err(c, "'%s' expects an action", kw);
			return ERR;
		}
		cfg_warn(c, "server option '%s' is accepted but not implemented yet; ignored", kw);
	} else {
		return 0;
	}
	(*i)++;
	return 1;
}

static int parse_pct(struct cfg_ctx *c, const char *kw, const char *val, uint32_t *out)
{
	long v;

	if (val && val[0] && val[strlen(val) - 1] == '%') {
		char tmp[16];
		size_t n = strlen(val) - 1;

		if (n >= sizeof(tmp))
			n = sizeof(tmp) - 1;
		memcpy(tmp, val, n);
		tmp[n] = 0;
		if (!cfg_parse_int(tmp, 0, 100, &v)) {
			*out = (uint32_t)v;
			return OK;
		}
	} else if (val && !cfg_parse_int(val, 0, 100, &v)) {
		*out = (uint32_t)v;
		return OK;
	}
	cfg_err(c, "'%s' expects a percentage from 0 to 100", kw);
	return ERR;
}

/* per-try-timeout auto|off|<time> [min <time>] [max <time>] */
static int kw_pertry_timeout(struct cfg_ctx *c, int argc, char **argv)
{
	struct chk_proxy_conf *k = &c->cur->chk;
	int i;

	if (argc < 2) {
		cfg_err(c, "'per-try-timeout' expects auto, off or a time");
		return ERR;
	}
	k->pertry_off = !strcmp(argv[1], "off");
	k->pertry_fixed_ms = 0;
	if (!k->pertry_off && strcmp(argv[1], "auto") &&
	    want_time(c, argv[0], argv[1], &k->pertry_fixed_ms))
		return ERR;
	for (i = 2; i < argc; i += 2) {
		uint32_t *dst;

		if (!strcmp(argv[i], "min"))
			dst = &k->pertry_min_ms;
		else if (!strcmp(argv[i], "max"))
			dst = &k->pertry_max_ms;
		else {
			cfg_err(c, "'per-try-timeout': unexpected '%s' (expects min <time> or max <time>)", argv[i]);
			return ERR;
		}
		if (want_time(c, argv[0], i + 1 < argc ? argv[i + 1] : NULL, dst))
			return ERR;
	}
	if (k->pertry_min_ms > k->pertry_max_ms) {
		cfg_err(c, "'per-try-timeout': min (%u ms) is above max (%u ms)", k->pertry_min_ms,
			k->pertry_max_ms);
		return ERR;
	}
	return OK;
}

/* retry-budget <percent> [min <n>] */
static int kw_retry_budget(struct cfg_ctx *c, int argc, char **argv)
{
	struct chk_proxy_conf *k = &c->cur->chk;
	long v;

	if (parse_pct(c, argv[0], argc > 1 ? argv[1] : NULL, &k->budget_pct))
		return ERR;
	if (argc == 2)
		return OK;
	if (argc != 4 || strcmp(argv[2], "min") || cfg_parse_int(argv[3], 0, 1000000, &v)) {
		cfg_err(c, "'retry-budget' expects <percent> [min <number of retries>]");
		return ERR;
	}
	k->budget_min = (uint32_t)v;
	return OK;
}

/* all-servers-down fail-open|maintenance */
static int kw_all_servers_down(struct cfg_ctx *c, int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "fail-open") && strcmp(argv[1], "maintenance"))) {
		cfg_err(c, "'all-servers-down' expects fail-open or maintenance");
		return ERR;
	}
	c->cur->chk.fail_open = !strcmp(argv[1], "fail-open");
	return OK;
}

static int kw_max_eject_percent(struct cfg_ctx *c, int argc, char **argv)
{
	if (argc != 2)
		return parse_pct(c, argv[0], NULL, &c->cur->chk.max_eject_pct);
	return parse_pct(c, argv[0], argv[1], &c->cur->chk.max_eject_pct);
}

/* slow-server off | [factor <n>] [floor <time>] */
static int kw_slow_server(struct cfg_ctx *c, int argc, char **argv)
{
	struct chk_proxy_conf *k = &c->cur->chk;
	long v;
	int i;

	if (argc == 2 && !strcmp(argv[1], "off")) {
		k->slow_off = true;
		return OK;
	}
	k->slow_off = false;
	if (argc < 3 || (argc - 1) % 2) {
		cfg_err(c, "'slow-server' expects off, or factor <n> and/or floor <time>");
		return ERR;
	}
	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "factor")) {
			if (cfg_parse_int(argv[i + 1], 2, 100, &v)) {
				cfg_err(c, "'slow-server factor' expects a number from 2 to 100");
				return ERR;
			}
			k->slow_factor = (uint32_t)v;
		} else if (!strcmp(argv[i], "floor")) {
			if (want_time(c, "slow-server floor", argv[i + 1], &k->slow_floor_ms))
				return ERR;
		} else {
			cfg_err(c, "'slow-server': unexpected '%s' (expects factor or floor)", argv[i]);
			return ERR;
		}
	}
	return OK;
}

static int health_validate(struct cfg_ctx *c, struct proxy *p)
{
	struct chk_proxy_conf *k = &p->chk;

	/* A try never waits longer than the whole server timeout allows. */
	if (k->pertry_max_ms > p->to.server)
		k->pertry_max_ms = p->to.server;
	if (k->pertry_min_ms > k->pertry_max_ms)
		k->pertry_min_ms = k->pertry_max_ms;
	if (k->pertry_fixed_ms && k->pertry_fixed_ms >= p->to.server) {
		cfg_warn(c, "'%s': per-try-timeout (%u ms) is not below timeout server (%u ms): per-try retries are off",
			 p->name, k->pertry_fixed_ms, p->to.server);
		k->pertry_off = true;
	}
	return OK;
}

static const struct cfg_kw health_kw[] = {
	{"per-try-timeout", CFG_S_BE, kw_pertry_timeout, 0, NULL},
	{"retry-budget", CFG_S_BE, kw_retry_budget, 0, NULL},
	{"all-servers-down", CFG_S_BE, kw_all_servers_down, 0, NULL},
	{"max-eject-percent", CFG_S_BE, kw_max_eject_percent, 0, NULL},
	{"slow-server", CFG_S_BE, kw_slow_server, 0, NULL},
	CFG_KW_END,
};

const struct cfg_module health_module = {
	.name = "health",
	.keywords = health_kw,
};

const struct proxy_hooks health_hooks = {
	.init_defaults = kw_health_defaults,
	.server_param = kw_health_server_param,
	.check_backend = health_validate,
};

