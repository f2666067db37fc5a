/* The admin socket's commands (docs/admin.md, "Commands"), HAProxy's command names where the
 * meaning is the same: the command table and every handler. The transport (the socket, its
 * thread, the lines and their ';') is src/admin/cli.c, which reaches a command only through
 * cli_cmd_run().
 *
 * Threading. The commands run on the admin socket's own thread (src/admin/cli.c), which never
 * touches a session or anything else that a worker owns. It reads what is shared by design
 * (docs/internals/architecture.md, "Who owns what"): the configuration, the servers' and proxies'
 * atomics, the per-thread counters (relaxed loads, summed), and a server's health through
 * health_view(), which takes the server's mutex. Every state change goes through
 * health_set_admin(), health_set_weight() and health_set_checks(), the one place where a server's
 * admin state, weight and checks change (they log the change and bump the backend's srv_gen, so
 * the workers rebuild their balancing schedules). "show sess" therefore shows counts, never a list
 * of sessions.
 *
 * Protocol. An error is one line (cli_err()); a command that changes state answers nothing when it
 * succeeds. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <keel/backend.h>
#include <keel/cfg.h>
#include <keel/cli.h>
#include <keel/common.h>
#include <keel/drain.h>
#include <keel/global.h>
#include <keel/health.h>
#include <keel/proxy.h>
#include <keel/server.h>
#include <keel/session.h>
#include <keel/ssl.h>
#include <keel/stats.h>
#include <keel/stick.h>
#include <keel/worker.h>


#define CLI_WHO "admin socket"

static bool want_json(int *argc, char **argv)
{
	if (*argc > 0 && !strcmp(argv[*argc - 1], "json")) {
		(*argc)--;
		return true;
	}
	return false;
}

static uint64_t uptime_s(void)
{
	uint64_t now = (uint64_t)time(NULL);

	return keel_start_wall && now > keel_start_wall ? now - keel_start_wall : 0;
}

/* "BACKEND/SERVER" → the server, or NULL with the error line written. */
static struct server *find_server(const char *arg, struct sbuf *o)
{
	const char *slash = strchr(arg, '/');
	char bname[256];
	struct proxy *be;
	int i;

	if (!slash || slash == arg || !slash[1] || (size_t)(slash - arg) >= sizeof(bname)) {
		cli_err(o, "expects BACKEND/SERVER, not '%s'", arg);
		return NULL;
	}
	memcpy(bname, arg, (size_t)(slash - arg));
	bname[slash - arg] = 0;
	be = proxy_by_name(bname, PR_CAP_BE);
	if (!be) {
		cli_err(o, "no such backend '%s'", bname);
		return NULL;
	}
	for (i = 0; i < server_count(be); i++)
		if (!server_deleted(be->srv[i]) && !strcmp(be->srv[i]->name, slash + 1))
			return be->srv[i];
	cli_err(o, "no such server '%s' in backend '%s'", slash + 1, bname);
	return NULL;
}

static int cmd_help(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	cli_cmd_list(c, o);
	return OK;
}

static int cmd_prompt(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	c->interactive = !c->interactive;
	return OK;
}

static int cmd_quit(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	c->quit = true;
	return OK;
}

static int cmd_show_info(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	bool json = want_json(&argc, argv);
	uint64_t up = uptime_s();
	char upstr[64];

	if (argc)
		return cli_err(o, "'show info' expects no argument but 'json'");
	snprintf(upstr, sizeof(upstr), "%llud %lluh%02llum%02llus",
		 (unsigned long long)(up / 86400), (unsigned long long)(up / 3600 % 24),
		 (unsigned long long)(up / 60 % 60), (unsigned long long)(up % 60));
	if (json) {
		sbuf_printf(o,
			    "{\"Name\":\"keel\",\"Version\":\"%s\",\"Pid\":%d,\"Uptime\":\"%s\","
			    "\"Uptime_sec\":%llu,\"Nbthread\":%d,\"Maxconn\":%d,\"CurrConns\":%d,"
			    "\"Node\":",
			    KEEL_VERSION, (int)getpid(), upstr, (unsigned long long)up, keel_nworkers,
			    global.maxconn, atomic_load(&keel_actconn));
		sbuf_json_str(o, global.node ? global.node : "");
		sbuf_printf(o, "}\n");
		return OK;
	}
	sbuf_printf(o,
		    "Name: keel\nVersion: %s\nPid: %d\nUptime: %s\nUptime_sec: %llu\n"
		    "Nbthread: %d\nMaxconn: %d\nCurrConns: %d\nNode: %s\n",
		    KEEL_VERSION, (int)getpid(), upstr, (unsigned long long)up, keel_nworkers,
		    global.maxconn, atomic_load(&keel_actconn), global.node ? global.node : "");
	return OK;
}

/* One CSV field at *p (quoted or not) into f; advances *p past its comma. */
static void csv_field(const char **p, const char *end, struct sbuf *f)
{
	const char *s = *p;

	f->len = 0;
	if (s < end && *s == '"') {
		for (s++; s < end; s++) {
			if (*s == '"' && s + 1 < end && s[1] == '"') {
				sbuf_put(f, "\"", 1);
				s++;
			} else if (*s == '"') {
				s++;
				break;
			} else {
				sbuf_put(f, s, 1);
			}
		}
	} else {
		const char *e = memchr(s, ',', (size_t)(end - s));

		e = e ? e : end;
		sbuf_put(f, s, (size_t)(e - s));
		s = e;
	}
	if (s < end && *s == ',')
		s++;
	*p = s;
	sbuf_put(f, "", 0);
}

static bool is_number(const char *s, size_t len)
{
	size_t i;

	if (!len || len > 18 || (len > 1 && s[0] == '0'))
		return false;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* The stats CSV as one JSON document: an array with one object per row, keyed by the CSV's
 * column names; numbers are numbers, everything else strings (empty cells included). */
static void csv_to_json(const char *csv, size_t len, struct sbuf *o)
{
	const char *end = csv + len, *nl, *p;
	char *cols[128];
	int ncols = 0, i;
	bool first_row = true;
	struct sbuf f = {0};

	nl = memchr(csv, '\n', len);
	if (!nl)
		nl = end;
	p = csv + (len > 2 && csv[0] == '#' && csv[1] == ' ' ? 2 : 0);
	while (p < nl && ncols < (int)ARRAY_SIZE(cols)) {
		csv_field(&p, nl, &f);
		cols[ncols++] = xstrdup(f.p ? f.p : "");
	}
	sbuf_printf(o, "[");
	for (p = nl < end ? nl + 1 : end; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (nl == p)
			continue;
		sbuf_printf(o, "%s\n{", first_row ? "" : ",");
		first_row = false;
		for (i = 0; i < ncols && p <= nl; i++) {
			csv_field(&p, nl, &f);
			sbuf_printf(o, "%s", i ? "," : "");
			sbuf_json_str(o, cols[i]);
			sbuf_put(o, ":", 1);
			if (f.p && is_number(f.p, f.len))
				sbuf_put(o, f.p, f.len);
			else
				sbuf_json_str(o, f.p ? f.p : "");
			if (p == nl)
				p = nl + 1; /* the row ended: the remaining columns are absent */
		}
		sbuf_printf(o, "}");
		if (nl == end)
			break;
	}
	sbuf_printf(o, "\n]\n");
	for (i = 0; i < ncols; i++)
		free(cols[i]);
	free(f.p);
}

static int cmd_show_stat(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	bool json = want_json(&argc, argv);
	size_t len;
	char *csv;

	if (argc)
		return cli_err(o, "'show stat' expects no argument but 'json'");
	csv = stats_csv(&len);
	if (!csv)
		return cli_err(o, "out of memory");
	if (json)
		csv_to_json(csv, len, o);
	else
		sbuf_put(o, csv, len);
	free(csv);
	return OK;
}

/* HAProxy's "show servers state" (format version 1): its first ten columns, which mean the same
 * in keel, then keel's own. */
static void servers_state(struct proxy *p, bool json, bool *first, struct sbuf *o)
{
	uint64_t now_wall = (uint64_t)time(NULL) * 1000;
	int i;

	for (i = 0; i < server_count(p); i++) {
		struct server *s = p->srv[i];
		struct health_view v;
		struct sticky_count sc;
		struct sockaddr_storage sa;
		char ip[INET6_ADDRSTRLEN] = "-", state[sizeof(v.state)];
		int admin = atomic_load(&s->admin), port, k;
		int op = atomic_load(&s->oper) == SRV_OPER_UP ? 2 : 0;
		int adm = admin == SRV_ADMIN_MAINT ? 0x01 : admin == SRV_ADMIN_DRAIN ? 0x08 : 0;
		uint64_t since;

		if (server_deleted(s))
			continue;
		server_addr(s, &sa, NULL, NULL); /* the published one ("set server addr") */
		port = sockaddr_port(&sa);
		health_view(s, &v);
		drain_sticky_count(s, drain_clock_us(), &sc);
		since = v.since_wall && now_wall > v.since_wall ? (now_wall - v.since_wall) / 1000
								: uptime_s();
		if (sa.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, ip, sizeof(ip));
		else if (sa.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, ip, sizeof(ip));
		if (json) {
			sbuf_printf(o, "%s\n{\"be_id\":%d,\"be_name\":", *first ? "" : ",", p->id);
			sbuf_json_str(o, p->name);
			sbuf_printf(o, ",\"srv_id\":%d,\"srv_name\":", s->id + 1);
			sbuf_json_str(o, s->name);
			sbuf_printf(
			    o,
			    ",\"srv_addr\":\"%s\",\"srv_op_state\":%d,\"srv_admin_state\":%d,"
			    "\"srv_uweight\":%d,\"srv_iweight\":%d,"
			    "\"srv_time_since_last_change\":%llu,\"keel_port\":%d,"
			    "\"keel_state\":",
			    ip, op, adm, v.uweight, s->weight, (unsigned long long)since, port);
			sbuf_json_str(o, v.state);
			sbuf_printf(o,
				    ",\"keel_eweight\":%d,\"keel_cur_sess\":%d,\"keel_queue\":%d,"
				    "\"keel_backup\":%d,\"keel_why\":",
				    atomic_load(&s->eweight), atomic_load(&s->cur_sess),
				    atomic_load(&s->nbpend), s->backup);
			sbuf_json_str(o, v.why);
			sbuf_printf(o, ",\"keel_sticky_users\":%d,\"keel_sticky_pending_ms\":%lld}",
				    sc.users, (long long)sc.pending_ms);
		} else {
			/* Fields are space-separated: a state like "UP 2/3" becomes "UP_2/3". */
			snprintf(state, sizeof(state), "%s", v.state);
			for (k = 0; state[k]; k++)
				if (state[k] == ' ')
					state[k] = '_';
			sbuf_printf(o,
				    "%d %s %d %s %s %d %d %d %d %llu %d %s %d %d %d %d %d %lld\n",
				    p->id, p->name, s->id + 1, s->name, ip, op, adm, v.uweight,
				    s->weight, (unsigned long long)since, port, state,
				    atomic_load(&s->eweight), atomic_load(&s->cur_sess),
				    atomic_load(&s->nbpend), s->backup, sc.users,
				    (long long)sc.pending_ms);
		}
		*first = false;
	}
}

static int cmd_show_servers_state(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	bool json = want_json(&argc, argv), first = true;
	struct proxy *only = NULL;
	struct list *l;

	if (argc > 1)
		return cli_err(o, "'show servers state' expects at most a backend name and 'json'");
	if (argc == 1) {
		only = proxy_by_name(argv[0], PR_CAP_BE);
		if (!only)
			return cli_err(o, "no such backend '%s'", argv[0]);
	}
	if (json)
		sbuf_printf(o, "[");
	else
		sbuf_printf(o, "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state "
			       "srv_admin_state srv_uweight srv_iweight srv_time_since_last_change "
			       "keel_port keel_state keel_eweight keel_cur_sess keel_queue "
			       "keel_backup keel_sticky_users keel_sticky_pending_ms\n");
	list_for_each(l, &keel_proxies)
	{
		struct proxy *p = list_entry(l, struct proxy, list);

		if ((p->cap & PR_CAP_BE) && (!only || only == p))
			servers_state(p, json, &first, o);
	}
	if (json)
		sbuf_printf(o, "\n]\n");
	return OK;
}

static int cmd_show_backend(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	struct list *l;

	if (argc)
		return cli_err(o, "'show backend' expects no argument");
	sbuf_printf(o, "# name\n");
	list_for_each(l, &keel_proxies)
	{
		struct proxy *p = list_entry(l, struct proxy, list);

		if (p->cap & PR_CAP_BE)
			sbuf_printf(o, "%s\n", p->name);
	}
	return OK;
}

/* Counts only: sessions belong to their worker thread and are never read from here. */
static int cmd_show_sess(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	struct list *l;

	if (argc)
		return cli_err(o,
			       "'show sess' expects no argument (keel shows counts, not a list)");
	sbuf_printf(o, "CurrConns: %d\n", atomic_load(&keel_actconn));
	list_for_each(l, &keel_proxies)
	{
		struct proxy *p = list_entry(l, struct proxy, list);

		if (p->cap & PR_CAP_FE)
			sbuf_printf(o, "frontend %s: %d connections\n", p->name,
				    atomic_load(&p->feconn));
		if (p->cap & PR_CAP_BE)
			sbuf_printf(o, "backend %s: %d requests served, %d queued\n", p->name,
				    atomic_load(&p->beconn), atomic_load(&p->nbpend));
	}
	return OK;
}

static bool level_ok(struct cli_ctx *c, enum cli_level need, struct sbuf *o)
{
	if (c->level >= need)
		return true;
	cli_err(o, "Permission denied");
	return false;
}

/* "N" or "N%" (of the configured weight) → 0..256, or ERR with the error line written. */
static int parse_weight(const struct server *s, const char *arg, struct sbuf *o)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(arg, &end, 10);
	if (end == arg || errno || n < 0 || (*end && strcmp(end, "%")))
		return cli_err(o, "invalid weight '%s': expects a number from 0 to 256, or N%%",
			       arg);
	if (*end == '%') {
		if (n > 100000)
			return cli_err(o, "invalid weight '%s': too large", arg);
		n = n * s->weight / 100;
	}
	if (n > 256)
		return cli_err(o, "weight %ld out of range: expects 0 to 256", n);
	return (int)n;
}

static int set_weight(struct cli_ctx *c, struct server *s, const char *arg, struct sbuf *o)
{
	int w = parse_weight(s, arg, o);

	if (w < 0)
		return ERR;
	if (health_set_weight(s, w, CLI_WHO) != OK)
		return cli_err(o, "weight %d out of range: expects 0 to 256", w);
	return OK;
}

/* "set server B/S addr IP [port P]": published atomically, idle connections to the old address
 * are not reused (src/proxy/server.c). */
static int set_addr(struct cli_ctx *c, struct server *s, int argc, char **argv, struct sbuf *o)
{
	unsigned char buf[sizeof(struct in6_addr)];
	char err[512];
	long port = 0;

	if (argc != 1 && !(argc == 3 && !strcmp(argv[1], "port")))
		return cli_err(o, "'set server B/S addr' expects IP [port PORT]");
	if (inet_pton(AF_INET, argv[0], buf) != 1 && inet_pton(AF_INET6, argv[0], buf) != 1)
		return cli_err(o, "invalid address '%s': expects an IPv4 or IPv6 address", argv[0]);
	if (argc == 3 && cfg_parse_int(argv[2], 1, 65535, &port))
		return cli_err(o, "invalid port '%s': expects 1 to 65535", argv[2]);
	if (server_set_addr(s, argv[0], (int)port, "admin socket", err, sizeof(err)) != OK)
		return cli_err(o, "%s", err);
	return OK;
}

/* "add server B/S ADDRESS[:PORT] [options]": starts in maintenance (src/proxy/server.c). */
static int cmd_add_server(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	char err[512];

	if (server_add(argc, argv, "admin socket", err, sizeof(err)) != OK)
		return cli_err(o, "%s", err);
	return OK;
}

/* "del server B/S": only in maintenance with nothing in flight or queued. */
static int cmd_del_server(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	struct server *s;
	char err[512];

	if (argc != 1)
		return cli_err(o, "'del server' expects BACKEND/SERVER");
	s = find_server(argv[0], o);
	if (!s)
		return ERR;
	if (server_del(s, "admin socket", err, sizeof(err)) != OK)
		return cli_err(o, "%s", err);
	return OK;
}

/* "set server B/S state drain [idle T] [deadline T|off]": this drain's own limits. */
static int set_drain(struct server *s, int argc, char **argv, struct sbuf *o)
{
	struct drain_limits lim;
	char err[256];

	if (drain_parse_limits(argc, argv, &lim, err, sizeof(err)) != OK)
		return cli_err(o, "%s", err);
	health_set_drain(s, &lim, CLI_WHO);
	return OK;
}

static int cmd_set_server(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	struct server *s;

	if (argc < 3)
		return cli_err(o, "'set server' expects BACKEND/SERVER state|weight|addr VALUE");
	if (!strcmp(argv[1], "addr") && !level_ok(c, CLI_LVL_ADMIN, o))
		return ERR;
	s = find_server(argv[0], o);
	if (!s)
		return ERR;
	if (!strcmp(argv[1], "state")) {
		enum srv_admin st;

		if (argc > 3 && !strcmp(argv[2], "drain"))
			return set_drain(s, argc - 3, argv + 3, o);
		if (argc != 3)
			return cli_err(o, "'set server B/S state' expects ready, drain or maint");
		if (!strcmp(argv[2], "ready"))
			st = SRV_ADMIN_READY;
		else if (!strcmp(argv[2], "drain"))
			st = SRV_ADMIN_DRAIN;
		else if (!strcmp(argv[2], "maint"))
			st = SRV_ADMIN_MAINT;
		else
			return cli_err(o, "invalid state '%s': expects ready, drain or maint",
				       argv[2]);
		health_set_admin(s, st, CLI_WHO);
		return OK;
	}
	if (!strcmp(argv[1], "weight")) {
		if (argc != 3)
			return cli_err(o, "'set server B/S weight' expects one value");
		return set_weight(c, s, argv[2], o);
	}
	if (!strcmp(argv[1], "addr"))
		return set_addr(c, s, argc - 2, argv + 2, o);
	return cli_err(o, "unknown 'set server' action '%s': expects state, weight or addr",
		       argv[1]);
}

/* HAProxy's older "set weight B/S W". */
static int cmd_set_weight(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	struct server *s;

	if (argc != 2)
		return cli_err(o, "'set weight' expects BACKEND/SERVER WEIGHT");
	s = find_server(argv[0], o);
	return s ? set_weight(c, s, argv[1], o) : ERR;
}

static struct server *one_server(int argc, char **argv, const char *cmd, struct sbuf *o)
{
	if (argc != 1) {
		cli_err(o, "'%s' expects BACKEND/SERVER", cmd);
		return NULL;
	}
	return find_server(argv[0], o);
}

/* What "enable" and "disable" turn on or off: the server (admin state ready or maint), or its
 * active checks. */
enum srv_switch { SW_SERVER, SW_HEALTH };

/* "enable|disable server|health B/S": cmd names the command in the error line. */
static int switch_server(int argc, char **argv, const char *cmd, enum srv_switch what, bool on,
			 struct sbuf *o)
{
	struct server *s = one_server(argc, argv, cmd, o);

	if (!s)
		return ERR;
	if (what == SW_HEALTH)
		health_set_checks(s, on, CLI_WHO);
	else
		health_set_admin(s, on ? SRV_ADMIN_READY : SRV_ADMIN_MAINT, CLI_WHO);
	return OK;
}

static int cmd_enable_server(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	return switch_server(argc, argv, "enable server", SW_SERVER, true, o);
}

static int cmd_disable_server(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	return switch_server(argc, argv, "disable server", SW_SERVER, false, o);
}

static int cmd_enable_health(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	return switch_server(argc, argv, "enable health", SW_HEALTH, true, o);
}

static int cmd_disable_health(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	return switch_server(argc, argv, "disable health", SW_HEALTH, false, o);
}

/* "reload": answers once the new process serves (or why it could not start: this one goes on). */
static int (*reload_fn)(int *newpid, char **err);

void cli_set_reload(int (*fn)(int *newpid, char **err))
{
	reload_fn = fn;
}

static int cmd_reload(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	char *err = NULL;
	int pid = 0;

	if (argc)
		return cli_err(o, "'reload' expects no argument");
	if (!reload_fn)
		return cli_err(o, "reload is not available in this process");
	if (reload_fn(&pid, &err) != OK) {
		cli_err(o, "reload failed: %s", err);
		free(err);
		return ERR;
	}
	sbuf_printf(o, "reload: new process %d serving; process %d finishes its requests\n", pid,
		    (int)getpid());
	return OK;
}

/* "show table [NAME]": every table's summary line, or one table with its entries (stick.c). */
static int cmd_show_table(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	struct stktable *t;
	struct list *l;

	if (argc > 1)
		return cli_err(o, "'show table' expects at most a table (backend) name");
	if (argc == 1) {
		t = stick_table_by_name(argv[0]);
		if (!t)
			return cli_err(o, "no stick-table '%s'", argv[0]);
		stick_dump(t, true, o);
		return OK;
	}
	list_for_each(l, &keel_proxies)
	{
		struct proxy *p = list_entry(l, struct proxy, list);

		if ((p->cap & PR_CAP_BE) && (t = stick_table_by_name(p->name)) && t->be == p)
			stick_dump(t, false, o);
	}
	return OK;
}

/* "clear table NAME [key KEY]": removes every entry, or one. */
static int cmd_clear_table(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	uint8_t key[STICK_STR_MAX];
	struct stktable *t;
	uint16_t klen;

	if (argc != 1 && !(argc == 3 && !strcmp(argv[1], "key")))
		return cli_err(o, "'clear table' expects a table (backend) name [key KEY]");
	t = stick_table_by_name(argv[0]);
	if (!t)
		return cli_err(o, "no stick-table '%s'", argv[0]);
	if (argc == 1) {
		stick_clear(t);
		return OK;
	}
	if (!stick_key_text(t, argv[2], key, &klen))
		return cli_err(o, "invalid key '%s' for this table's type", argv[2]);
	stick_remove(t, key, klen);
	return OK;
}

/* ---- certificates (HAProxy's commands and answers: deployment scripts look for them) ---- */

static int cmd_show_ssl_cert(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	(void)c;
	ssl_cert_show(argc > 0 ? argv[0] : NULL, o);
	return OK;
}

static int cmd_set_ssl_cert(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	char *err = NULL;

	if (argc != 1 || !c->payload)
		return cli_err(o, "usage: set ssl cert FILE <<, then the PEM text (certificate, chain, "
				  "key), then an empty line");
	if (ssl_cert_set(argv[0], c->payload, c->payload_len, &err) != OK) {
		cli_err(o, "%s", err);
		free(err);
		return ERR;
	}
	sbuf_printf(o, "Transaction created for certificate %s!\n", argv[0]);
	return OK;
}

static int finish_ssl_cert(int argc, char **argv, struct sbuf *o, bool abort)
{
	char *err = NULL;

	if (argc != 1)
		return cli_err(o, "usage: %s ssl cert FILE", abort ? "abort" : "commit");
	if (ssl_cert_commit(argv[0], abort, &err) != OK) {
		cli_err(o, "%s", err);
		free(err);
		return ERR;
	}
	if (abort)
		sbuf_printf(o, "Transaction aborted for certificate '%s'!\n", argv[0]);
	else
		sbuf_printf(o, "Committing %s\nSuccess!\n", argv[0]);
	return OK;
}

static int cmd_commit_ssl_cert(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	(void)c;
	return finish_ssl_cert(argc, argv, o, false);
}

static int cmd_abort_ssl_cert(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	(void)c;
	return finish_ssl_cert(argc, argv, o, true);
}

struct cli_cmd {
	const char *words[3];
	enum cli_level level;
	int (*fn)(struct cli_ctx *c, int argc, char **argv, struct sbuf *o);
	const char *usage;
};

/* The commands. To add one, add a row: its words (at most 3; the words after them are the
 * handler's argv), the lowest level that may run it, its handler (OK, or ERR with one error line
 * written by cli_err()), and its line in "help" (usage: meaning; NULL: not listed); then document
 * it in docs/admin.md ("Levels", "Commands"). The first row whose words all match runs. */
static const struct cli_cmd cmds[] = {
    {{"help"}, CLI_LVL_USER, cmd_help, "help: this list"},
    {{"prompt"},
     CLI_LVL_USER,
     cmd_prompt,
     "prompt: toggle interactive mode (the connection stays open)"},
    {{"quit"}, CLI_LVL_USER, cmd_quit, "quit: close the connection"},
    {{"show", "info"}, CLI_LVL_USER, cmd_show_info, "show info [json]: process information"},
    {{"show", "stat"}, CLI_LVL_USER, cmd_show_stat, "show stat [json]: the stats page's CSV"},
    {{"show", "servers", "state"},
     CLI_LVL_USER,
     cmd_show_servers_state,
     "show servers state [BACKEND] [json]: servers' state, weights, sessions"},
    {{"show", "backend"}, CLI_LVL_USER, cmd_show_backend, "show backend: backend names"},
    {{"show", "sess"}, CLI_LVL_USER, cmd_show_sess, "show sess: connection and request counts"},
    {{"set", "server"},
     CLI_LVL_OPER,
     cmd_set_server,
     "set server B/S state ready|drain [idle T] [deadline T]|maint | weight N[%] | "
     "addr IP [port P]"},
    {{"set", "weight"},
     CLI_LVL_OPER,
     cmd_set_weight,
     "set weight B/S N[%]: same as set server B/S weight"},
    {{"enable", "server"}, CLI_LVL_OPER, cmd_enable_server, "enable server B/S: state ready"},
    {{"disable", "server"}, CLI_LVL_OPER, cmd_disable_server, "disable server B/S: state maint"},
    {{"enable", "health"},
     CLI_LVL_ADMIN,
     cmd_enable_health,
     "enable health B/S: resume active checks"},
    {{"disable", "health"},
     CLI_LVL_ADMIN,
     cmd_disable_health,
     "disable health B/S: pause active checks (their verdict is ignored)"},
    {{"add", "server"},
     CLI_LVL_ADMIN,
     cmd_add_server,
     "add server B/S ADDR[:PORT] [options]: a new server, in maintenance until enabled"},
    {{"del", "server"},
     CLI_LVL_ADMIN,
     cmd_del_server,
     "del server B/S: remove a server in maintenance with nothing in flight"},
    {{"show", "table"},
     CLI_LVL_USER,
     cmd_show_table,
     "show table [NAME]: stick tables (with NAME: its entries)"},
    {{"clear", "table"},
     CLI_LVL_ADMIN,
     cmd_clear_table,
     "clear table NAME [key KEY]: remove a stick table's entries (or one)"},
    {{"show", "ssl", "cert"},
     CLI_LVL_USER,
     cmd_show_ssl_cert,
     "show ssl cert [FILE]: the certificates served (subject, serial, expiry, names)"},
    {{"set", "ssl", "cert"},
     CLI_LVL_ADMIN,
     cmd_set_ssl_cert,
     "set ssl cert FILE <<: a new certificate for FILE (PEM lines, then an empty line)"},
    {{"commit", "ssl", "cert"},
     CLI_LVL_ADMIN,
     cmd_commit_ssl_cert,
     "commit ssl cert FILE: serve the new certificate to new connections"},
    {{"abort", "ssl", "cert"},
     CLI_LVL_ADMIN,
     cmd_abort_ssl_cert,
     "abort ssl cert FILE: drop the new certificate"},
    {{"reload"},
     CLI_LVL_ADMIN,
     cmd_reload,
     "reload: start a new process with the configuration file as it is now (hitless)"},
};

static const char *const level_names[] = {"user", "operator", "admin"};

void cli_cmd_list(const struct cli_ctx *c, struct sbuf *o)
{
	size_t i;

	sbuf_printf(o, "keel admin socket (level %s). Commands (';' separates several):\n",
		    level_names[c->level]);
	for (i = 0; i < ARRAY_SIZE(cmds); i++)
		if (cmds[i].usage)
			sbuf_printf(o, "  %s%s\n", cmds[i].usage,
				    cmds[i].level > c->level ? " (needs a higher level)" : "");
}

int cli_cmd_run(struct cli_ctx *c, int argc, char **argv, struct sbuf *o)
{
	size_t i;
	int n;

	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		const struct cli_cmd *k = &cmds[i];

		for (n = 0; n < 3 && k->words[n]; n++)
			if (n >= argc || strcmp(argv[n], k->words[n]))
				break;
		if (n < 3 && k->words[n])
			continue;
		if (!level_ok(c, k->level, o))
			return ERR;
		return k->fn(c, argc - n, argv + n, o);
	}
	if (argc >= 2)
		return cli_err(o, "unknown command '%s %s' (try 'help')", argv[0], argv[1]);
	return cli_err(o, "unknown command '%s' (try 'help')", argv[0]);
}
