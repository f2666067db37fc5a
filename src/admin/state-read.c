/* Reading a state image: the line records of docs/admin.md ("Durable state", "Format") parsed and
 * applied to the loaded configuration, through the code the admin socket uses (health_set_*(),
 * server_add(), server_del(), stick_restore()), so that a restored change is logged and checked as
 * the original one was.
 *
 * The file is a versioned text of line records; unknown record types and fields are skipped, so
 * that additions need no new version. Nothing here fails: a problem is logged, counted in the
 * state_report and skipped, and where the file and the configuration disagree the configuration
 * wins.
 *
 * The words of the format that the writer (state-write.c) shares live here, beside the parser
 * that decides what is well-formed: an escape the writer adds is one dec() undoes. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/health.h>
#include <keel/log.h>
#include <keel/proxy.h>
#include <keel/sbuf.h>
#include <keel/server.h>
#include <keel/state.h>
#include <keel/stick.h>

/* ---- names in records: percent-encoded so that a token never holds a space, '=' or '#' ---- */

static bool needs_escape(unsigned char ch)
{
	return ch <= ' ' || ch >= 0x7f || ch == '%' || ch == '=' || ch == '#';
}

void state_enc(struct sbuf *o, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (needs_escape(ch))
			sbuf_printf(o, "%%%02X", ch);
		else
			sbuf_put(o, (const char *)&ch, 1);
	}
}

/* Decodes s in place. Returns false on a bad escape or an encoded NUL. */
static bool dec(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '%') {
			int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);

			if (hi < 0 || lo < 0 || (hi | lo) == 0)
				return false;
			*o++ = (char)(hi * 16 + lo);
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
	return true;
}

/* ---- the other words of the format, shared with the writer ---- */

const char *const state_stick_types[] = {"ip", "integer", "string"};

enum srv_admin state_cfg_admin(const struct server *srv)
{
	return srv->disabled ? SRV_ADMIN_MAINT : SRV_ADMIN_READY;
}

uint64_t state_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- parsing ---- */

static int parse_admin(const char *s)
{
	if (!strcmp(s, "ready"))
		return SRV_ADMIN_READY;
	if (!strcmp(s, "drain"))
		return SRV_ADMIN_DRAIN;
	if (!strcmp(s, "maint"))
		return SRV_ADMIN_MAINT;
	return -1;
}

static int parse_weight(const char *s)
{
	long v;

	if (cfg_parse_int(s, 0, 256, &v) != OK)
		return -1;
	return (int)v;
}

enum rec_kind {
	REC_SERVER,  /* a configured server's runtime state */
	REC_ADDED,   /* a server added at runtime ("add server"), replayed at start */
	REC_DELETED, /* a configured server deleted at runtime ("del server") */
	REC_STICK,   /* a stick table entry */
};

/* "added-server" carries up to 64 words of "add server" (DYN_MAX_ARGS) and a few fields. */
#define MAX_TOK 96

/* One record, fields not yet applied. -1: absent. */
struct rec {
	enum rec_kind kind;
	char *be, *srv, *addr, *rt_addr;
	int admin, weight, checks, cfg_admin, cfg_weight;
	char *args[MAX_TOK]; /* added-server: the "arg" fields, in order */
	int nargs;
	int type;		  /* stick: enum stick_type */
	uint8_t key[STICK_STR_MAX]; /* stick: the key's bytes ("key" is hex) */
	uint16_t klen;
	char *server; /* stick: the server's name */
	uint64_t exp; /* stick: wall-clock ms when it expires, 0 never */
};

/* Splits line (NUL-terminated, modified) into tokens. Returns their number, -1 when too many. */
static int split(char *line, char **tok)
{
	int n = 0;
	char *p = line;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		if (!*p || *p == '#')
			return n;
		if (n == MAX_TOK)
			return -1;
		tok[n++] = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\r')
			p++;
		if (*p)
			*p++ = 0;
	}
}

static bool parse_hex_key(const char *v, struct rec *r)
{
	size_t n = strlen(v), i;

	if (!n || n % 2 || n / 2 > sizeof(r->key))
		return false;
	for (i = 0; i < n; i += 2) {
		int hi = hexval(v[i]), lo = hexval(v[i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		r->key[i / 2] = (uint8_t)(hi * 16 + lo);
	}
	r->klen = (uint16_t)(n / 2);
	return true;
}

/* One "field=value" of a record. Returns NULL, or why the line is malformed; *known is false for
 * a field this keel does not know (a newer minor addition: skipped). */
static const char *parse_field(char *k, char *v, struct rec *r, bool *known)
{
	*known = true;
	if (!strcmp(k, "addr") || !strcmp(k, "rt-addr")) {
		if (!dec(v) || !*v)
			return "bad address";
		*(k[0] == 'r' ? &r->rt_addr : &r->addr) = v;
	} else if (!strcmp(k, "admin") || !strcmp(k, "cfg-admin")) {
		int a = parse_admin(v);

		if (a < 0)
			return "admin must be ready, drain or maint";
		*(k[0] == 'c' ? &r->cfg_admin : &r->admin) = a;
	} else if (!strcmp(k, "weight") || !strcmp(k, "cfg-weight")) {
		int w = parse_weight(v);

		if (w < 0)
			return "weight must be 0..256";
		*(k[0] == 'c' ? &r->cfg_weight : &r->weight) = w;
	} else if (!strcmp(k, "checks")) {
		if (strcmp(v, "on") && strcmp(v, "off"))
			return "checks must be on or off";
		r->checks = !strcmp(v, "on");
	} else if (!strcmp(k, "arg") && r->kind == REC_ADDED) {
		if (!dec(v) || !*v)
			return "bad arg";
		r->args[r->nargs++] = v;
	} else if (!strcmp(k, "type") && r->kind == REC_STICK) {
		for (r->type = 0; r->type < (int)ARRAY_SIZE(state_stick_types); r->type++)
			if (!strcmp(v, state_stick_types[r->type]))
				return NULL;
		return "type must be ip, integer or string";
	} else if (!strcmp(k, "key") && r->kind == REC_STICK) {
		if (!parse_hex_key(v, r))
			return "key must be 1 to 256 bytes in hex";
	} else if (!strcmp(k, "server") && r->kind == REC_STICK) {
		if (!dec(v) || !*v)
			return "bad server name";
		r->server = v;
	} else if (!strcmp(k, "exp") && r->kind == REC_STICK) {
		char *end;

		errno = 0;
		r->exp = strtoull(v, &end, 10);
		if (!*v || *end || errno || *v == '-')
			return "exp must be a number of ms";
	} else {
		*known = false;
	}
	return NULL;
}

/* Parses a record line's tokens. Returns NULL, or why the line is malformed. */
static const char *parse_rec(int n, char **tok, struct rec *r, const char **unknown)
{
	static const char *const kinds[] = {"server", "added-server", "deleted-server", "stick"};
	int i, first;

	memset(r, 0, sizeof(*r));
	r->admin = r->weight = r->checks = r->cfg_admin = r->cfg_weight = r->type = -1;
	*unknown = NULL;
	for (i = 0; i < (int)ARRAY_SIZE(kinds) && strcmp(tok[0], kinds[i]); i++)
		;
	r->kind = (enum rec_kind)i;
	first = r->kind == REC_STICK ? 2 : 3;
	if (n < first)
		return r->kind == REC_STICK ? "expected 'stick <backend> field=value...'"
					    : "expected '<record> <backend> <server> field=value...'";
	r->be = tok[1];
	r->srv = r->kind == REC_STICK ? NULL : tok[2];
	if (!dec(r->be) || !*r->be || (r->srv && (!dec(r->srv) || !*r->srv)))
		return "bad backend or server name";
	for (i = first; i < n; i++) {
		char *k = tok[i], *v = strchr(k, '=');
		const char *why;
		bool known;

		if (!v)
			return "a field without '='";
		*v++ = 0;
		why = parse_field(k, v, r, &known);
		if (why)
			return why;
		if (!known && !*unknown)
			*unknown = k;
	}
	if (r->kind == REC_ADDED && !r->nargs)
		return "an added server without its address (arg=)";
	if (r->kind == REC_STICK && (r->type < 0 || !r->klen || !r->server))
		return "a stick entry needs type, key and server";
	return NULL;
}

/* ---- applying ---- */

/* The server of that name in that backend, deleted ones too (a deleted server keeps its slot). */
static struct server *find_server(const char *be_name, const char *srv_name, bool deleted)
{
	struct proxy *be = proxy_by_name(be_name, PR_CAP_BE);
	int i, n;

	if (!be)
		return NULL;
	n = server_count(be);
	for (i = 0; i < n; i++)
		if (server_deleted(be->srv[i]) == deleted && !strcmp(be->srv[i]->name, srv_name))
			return be->srv[i];
	return NULL;
}

/* "IP:PORT", "[IPv6]:PORT" or "IP" (a server that takes the client's port) → server_set_addr().
 */
static const char *apply_rt_addr(struct server *srv, const char *text, char *err, size_t len)
{
	char ip[128];
	const char *colon = strrchr(text, ':');
	long port = 0;
	size_t n = strlen(text);

	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (!close || close[1] != ':')
			return "bad rt-addr";
		n = (size_t)(close - text - 1);
		text++;
		colon = close + 1;
	} else if (colon && strchr(text, ':') != colon) {
		colon = NULL; /* several colons, no brackets: a bare IPv6 address */
	} else if (colon) {
		n = (size_t)(colon - text);
	}
	if (n >= sizeof(ip) || (colon && cfg_parse_int(colon + 1, 1, 65535, &port) != OK))
		return "bad rt-addr";
	memcpy(ip, text, n);
	ip[n] = 0;
	if (server_set_addr(srv, ip, (int)port, "state file", err, len) != OK)
		return err;
	return NULL;
}

/* The runtime fields of a record, on a server that exists: admin state, weight, check switch,
 * runtime address. A field whose configuration value changed since the save keeps the
 * configuration's value (docs/admin.md). */
static void apply_runtime(struct server *srv, const char *name, int ln, const struct rec *r,
			  struct state_report *rep)
{
	bool any = false;
	const char *why;

	if (r->admin >= 0) {
		if (r->cfg_admin >= 0 && r->cfg_admin != (int)state_cfg_admin(srv)) {
			keel_log(
			    LOG_LVL_WARNING,
			    "server %s/%s: admin state changed in the configuration since the save "
			    "(%s -> %s): the configuration wins over the saved '%s' (%s:%d)",
			    r->be, r->srv, srv_admin_name((enum srv_admin)r->cfg_admin),
			    srv_admin_name(state_cfg_admin(srv)),
			    srv_admin_name((enum srv_admin)r->admin), name, ln);
			rep->conflicts++;
		} else {
			health_set_admin(srv, (enum srv_admin)r->admin, "state file");
			any = true;
		}
	}
	if (r->weight >= 0) {
		if (r->cfg_weight >= 0 && r->cfg_weight != srv->weight) {
			keel_log(LOG_LVL_WARNING,
				 "server %s/%s: weight changed in the configuration since the save "
				 "(%d -> %d): the configuration wins over the saved %d (%s:%d)",
				 r->be, r->srv, r->cfg_weight, srv->weight, r->weight, name, ln);
			rep->conflicts++;
		} else {
			health_set_weight(srv, r->weight, "state file");
			any = true;
		}
	}
	if (r->checks >= 0) {
		health_set_checks(srv, r->checks, "state file");
		any = true;
	}
	if (r->rt_addr) {
		char cur[96], err[512];

		server_addr_str(srv, cur, sizeof(cur));
		if (strcmp(cur, r->rt_addr) && (why = apply_rt_addr(srv, r->rt_addr, err, sizeof(err)))) {
			keel_log(LOG_LVL_WARNING,
				 "server %s/%s: the address set at runtime (%s) is not restored: %s "
				 "(%s:%d)",
				 r->be, r->srv, r->rt_addr, why, name, ln);
			rep->conflicts++;
		} else {
			any = true;
		}
	}
	if (any)
		rep->applied++;
}

/* Whether the configured address saved in r differs from srv's now: another machine under the
 * same name, which the saved state does not describe. */
static bool other_machine(const struct server *srv, const struct rec *r)
{
	return r->addr && srv->addr_str && strcmp(r->addr, srv->addr_str);
}

/* A configured server's record. A server not in the configuration is ignored; a changed
 * configured address means another machine: the record is ignored. */
static void apply_server(const char *name, int ln, const struct rec *r, struct state_report *rep)
{
	struct server *srv = find_server(r->be, r->srv, false);

	if (!srv || srv->dynamic) {
		keel_log(
		    LOG_LVL_WARNING,
		    "server %s/%s in the state file is not in the configuration: ignored (%s:%d)",
		    r->be, r->srv, name, ln);
		rep->unknown++;
		return;
	}
	if (other_machine(srv, r)) {
		keel_log(LOG_LVL_WARNING,
			 "server %s/%s: address changed in the configuration (state file: %s, "
			 "configuration: %s): its saved state is ignored (%s:%d)",
			 r->be, r->srv, r->addr, srv->addr_str, name, ln);
		rep->conflicts++;
		return;
	}
	apply_runtime(srv, name, ln, r, rep);
}

/* Whether srv was added with exactly these words (the same record applied twice). */
static bool same_args(const struct server *srv, const struct rec *r)
{
	int i;

	if (!srv->dynamic || srv->dyn_argc != r->nargs)
		return false;
	for (i = 0; i < r->nargs; i++)
		if (strcmp(srv->dyn_argv[i], r->args[i]))
			return false;
	return true;
}

/* A server added at runtime: added again, through "add server"'s own code, unless the
 * configuration now has a server of that name (the configuration wins). */
static void apply_added(const char *name, int ln, struct rec *r, struct state_report *rep)
{
	struct server *srv = find_server(r->be, r->srv, false);
	char target[600], err[512];
	char *argv[MAX_TOK + 1];
	int i;

	if (srv && !same_args(srv, r)) {
		keel_log(LOG_LVL_WARNING,
			 "server %s/%s, added at runtime, is in the configuration now: the "
			 "configuration wins (%s:%d)",
			 r->be, r->srv, name, ln);
		rep->conflicts++;
		return;
	}
	if (!srv) {
		snprintf(target, sizeof(target), "%s/%s", r->be, r->srv);
		argv[0] = target;
		for (i = 0; i < r->nargs; i++)
			argv[i + 1] = r->args[i];
		if (server_add(r->nargs + 1, argv, "state file", err, sizeof(err)) != OK) {
			keel_log(LOG_LVL_WARNING,
				 "server %s/%s, added at runtime, cannot be added again: %s (%s:%d)",
				 r->be, r->srv, err, name, ln);
			rep->conflicts++;
			return;
		}
		srv = find_server(r->be, r->srv, false);
		rep->added++;
	}
	/* its configuration is the record's own words: nothing to compare the runtime fields to */
	r->cfg_admin = r->cfg_weight = -1;
	apply_runtime(srv, name, ln, r, rep);
}

/* A configured server deleted at runtime: deleted again unless its address changed in the
 * configuration (another machine). */
static void apply_deleted(const char *name, int ln, const struct rec *r, struct state_report *rep)
{
	struct server *srv = find_server(r->be, r->srv, false);
	char err[512];

	if (!srv || srv->dynamic)
		return; /* removed from the configuration too, or already deleted */
	if (other_machine(srv, r)) {
		keel_log(LOG_LVL_WARNING,
			 "server %s/%s was deleted at runtime but its address changed in the "
			 "configuration (state file: %s, configuration: %s): it is kept (%s:%d)",
			 r->be, r->srv, r->addr, srv->addr_str, name, ln);
		rep->conflicts++;
		return;
	}
	health_set_admin(srv, SRV_ADMIN_MAINT, "state file");
	if (server_del(srv, "state file", err, sizeof(err)) != OK) {
		keel_log(LOG_LVL_WARNING, "server %s/%s cannot be deleted again: %s (%s:%d)", r->be,
			 r->srv, err, name, ln);
		rep->conflicts++;
		return;
	}
	rep->deleted++;
}

/* A stick table entry. Dropped (counted, not logged one by one: a table can be large) when the
 * table or the server is no longer configured, the key type changed, or it expired meanwhile. */
static void apply_stick(const struct rec *r, struct state_report *rep)
{
	struct stktable *t = stick_table_by_name(r->be);
	struct server *srv = t ? find_server(r->be, r->server, false) : NULL;
	uint64_t now = state_wall_ms();

	if (!t || !srv || r->type != t->type || r->klen > t->keylen ||
	    (t->type != STK_STRING && r->klen != t->keylen) || (r->exp && r->exp <= now) ||
	    stick_restore(t, r->key, r->klen, srv->id, r->exp ? r->exp - now : 0) != OK) {
		rep->stick_dropped++;
		return;
	}
	rep->sticks++;
}

static void apply_rec(const char *name, int ln, struct rec *r, struct state_report *rep)
{
	switch (r->kind) {
	case REC_SERVER:
		apply_server(name, ln, r, rep);
		break;
	case REC_ADDED:
		apply_added(name, ln, r, rep);
		break;
	case REC_DELETED:
		apply_deleted(name, ln, r, rep);
		break;
	case REC_STICK:
		apply_stick(r, rep);
		break;
	}
}

/* ---- the image ---- */

/* Reads the header line: OK (version supported), ERR (the file is refused, logged). */
static int check_header(const char *name, int n, char **tok)
{
	long v;

	if (n != 2 || strcmp(tok[0], "keel-state") || cfg_parse_int(tok[1], 1, 0x7fffffff, &v)) {
		keel_log(LOG_LVL_ERR,
			 "state file %s: not a keel state file (the first line must be 'keel-state "
			 "<version>'): ignored, starting from the configuration",
			 name);
		return ERR;
	}
	if (v > STATE_VERSION) {
		keel_log(LOG_LVL_ERR,
			 "state file %s: format version %ld is newer than this keel reads (%d): "
			 "the whole file is ignored, starting from the configuration; it will be "
			 "replaced at the first runtime change",
			 name, v, STATE_VERSION);
		return ERR;
	}
	return OK;
}

static bool known_kind(const char *k)
{
	return !strcmp(k, "server") || !strcmp(k, "added-server") ||
	       !strcmp(k, "deleted-server") || !strcmp(k, "stick");
}

void state_apply_buf(const char *name, const char *buf, size_t len, struct state_report *rep)
{
	char line[STATE_MAX_LINE + 1];
	char *tok[MAX_TOK];
	const char *p = buf, *end = buf + len;
	bool header = false;
	int ln = 0, nunk = 0, first_unk = 0;
	struct rec *r = malloc(sizeof(*r));

	*rep = (struct state_report){0};
	if (!r) {
		keel_log(LOG_LVL_ERR, "state file %s: out of memory: ignored", name);
		return;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = (size_t)((nl ? nl : end) - p);
		const char *why = NULL, *unknown = NULL;
		int n;

		ln++;
		if (l > STATE_MAX_LINE || memchr(p, 0, l)) {
			why = l > STATE_MAX_LINE ? "line too long" : "NUL byte";
			n = 0;
		} else {
			memcpy(line, p, l);
			line[l] = 0;
			n = split(line, tok);
			if (n < 0)
				why = "too many fields";
		}
		p = nl ? nl + 1 : end;
		if (!why && n == 0)
			continue; /* blank or comment */
		if (!header) {
			if (why || check_header(name, n, tok) != OK) {
				if (why)
					keel_log(LOG_LVL_ERR,
						 "state file %s:%d: %s in the header: the file is "
						 "ignored",
						 name, ln, why);
				rep->refused = 1;
				break;
			}
			header = true;
			continue;
		}
		if (!why && !known_kind(tok[0])) {
			/* A record type of a newer minor revision: skipped. */
			if (!nunk++)
				first_unk = ln;
			rep->skipped++;
			continue;
		}
		if (!why)
			why = parse_rec(n, tok, r, &unknown);
		if (why) {
			keel_log(LOG_LVL_WARNING, "state file %s:%d: malformed line skipped: %s",
				 name, ln, why);
			rep->malformed++;
			continue;
		}
		if (unknown) {
			if (!nunk++)
				first_unk = ln;
			rep->skipped++;
		}
		apply_rec(name, ln, r, rep);
	}
	free(r);
	if (rep->refused)
		return;
	if (!header) {
		keel_log(LOG_LVL_NOTICE, "state file %s is empty: starting from the configuration",
			 name);
		return;
	}
	if (nunk)
		keel_log(
		    LOG_LVL_NOTICE,
		    "state file %s: %d unknown record(s) or field(s) skipped (first at line %d)",
		    name, nunk, first_unk);
	if (rep->stick_dropped)
		keel_log(LOG_LVL_NOTICE,
			 "state file %s: %d stick table entr%s dropped (table or server no longer "
			 "configured, key type changed, or expired meanwhile)",
			 name, rep->stick_dropped, rep->stick_dropped == 1 ? "y" : "ies");
}
