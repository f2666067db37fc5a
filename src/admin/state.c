/* Durable runtime state: the state file ("state-file PATH" in global).
 *
 * What is saved: for every server, its admin state, runtime weight, check switch and runtime
 * address, with the configuration values they replaced, so that a later configuration change can
 * be told apart from a runtime change (the configuration then wins); the servers added at
 * runtime (their "add server" words, replayed at start) and the configured ones deleted at
 * runtime; the stick table entries. The file is a versioned text of line records; unknown record
 * types and fields are skipped, so that additions need no new version. Format and rules:
 * docs/admin.md.
 *
 * Threads: health.c calls state_note_change() after a change, on any thread, perhaps under the
 * server's health mutex: it only sets a flag under st.lock (never held across I/O) and signals
 * the writer thread. The writer waits STATE_SETTLE_MS so that a burst becomes one write, takes a
 * snapshot (each server's health mutex, briefly) and writes PATH.tmp, fsync, rename, fsync of the
 * directory. A failure (ENOSPC, EACCES, EIO...) is logged once per failing streak, the previous
 * file stays, the state stays in memory, and the write is retried every STATE_RETRY_S seconds and
 * at the next change.
 *
 * Stick tables change with the traffic, not through health.c: the stores raise a flag per table
 * (stktable.changed, or .touched when only an expiry moved), which the writer polls every
 * STATE_STICK_MS; a change is saved within that delay, a refreshed expiry within
 * STATE_TOUCH_MS. Writes are at least 10 times their own duration apart, so that a huge table
 * cannot keep the disk busy. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <keel/cfg.h>
#include <keel/check.h>
#include <keel/common.h>
#include <keel/log.h>
#include <keel/sbuf.h>
#include <keel/server.h>
#include <keel/state.h>
#include <keel/stick.h>

#define STATE_SETTLE_MS 20  /* a burst of changes within this delay becomes one write */
#define STATE_STICK_MS 1000 /* stick tables: a new or moved entry is saved within this delay */
#define STATE_TOUCH_MS 30000 /* and an entry whose expiry was refreshed within this one */

ssize_t (*state_write_fn)(int fd, const void *buf, size_t n) = write;

static struct {
	int dirfd;	      /* the state file's directory, opened before chroot; -1: off */
	const char *base;     /* the file name inside it */
	atomic_bool on;	      /* the writer runs: changes are noted */
	pthread_mutex_t lock; /* protects the fields below; never held across I/O */
	pthread_cond_t cond;
	bool dirty, stop, failing;
	bool detached;	      /* a new process took over (reload): the file is its to write */
	bool sticks;	      /* some backend has a stick table: the writer polls it */
	uint64_t last_ms;     /* monotonic end of the last write */
	uint64_t gap_ms;      /* the least time between two stick-driven writes */
	pthread_t thread;
	bool started;
} st = {.dirfd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- names in records: percent-encoded so that a token never holds a space, '=' or '#' ---- */

static bool needs_escape(unsigned char ch)
{
	return ch <= ' ' || ch >= 0x7f || ch == '%' || ch == '=' || ch == '#';
}

static void enc(struct sbuf *o, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (needs_escape(ch))
			sbuf_printf(o, "%%%02X", ch);
		else
			sbuf_put(o, (const char *)&ch, 1);
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
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

/* ---- reading ---- */

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

static enum srv_admin cfg_admin(const struct server *srv)
{
	return srv->disabled ? SRV_ADMIN_MAINT : SRV_ADMIN_READY;
}

static const char *const stick_types[] = {"ip", "integer", "string"};

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
		for (r->type = 0; r->type < (int)ARRAY_SIZE(stick_types); r->type++)
			if (!strcmp(v, stick_types[r->type]))
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
		if (r->cfg_admin >= 0 && r->cfg_admin != (int)cfg_admin(srv)) {
			keel_log(
			    LOG_LVL_WARNING,
			    "server %s/%s: admin state changed in the configuration since the save "
			    "(%s -> %s): the configuration wins over the saved '%s' (%s:%d)",
			    r->be, r->srv, srv_admin_name((enum srv_admin)r->cfg_admin),
			    srv_admin_name(cfg_admin(srv)),
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
	if (r->addr && srv->addr_str && strcmp(r->addr, srv->addr_str)) {
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
	if (r->addr && srv->addr_str && strcmp(r->addr, srv->addr_str)) {
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

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A stick table entry. Dropped (counted, not logged one by one: a table can be large) when the
 * table or the server is no longer configured, the key type changed, or it expired meanwhile. */
static void apply_stick(const struct rec *r, struct state_report *rep)
{
	struct stktable *t = stick_table_by_name(r->be);
	struct server *srv = t ? find_server(r->be, r->server, false) : NULL;
	uint64_t now = wall_ms();

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

/* ---- writing ---- */

/* " admin=... weight=... checks=... [rt-addr=...]": what changes at runtime. */
static void dump_runtime(struct sbuf *o, struct server *s)
{
	char addr[96];
	int w;
	bool off;

	pthread_mutex_lock(&s->hl->lock);
	w = s->hl->uweight;
	off = s->hl->checks_off;
	pthread_mutex_unlock(&s->hl->lock);
	sbuf_printf(o, " admin=%s weight=%d checks=%s",
		    srv_admin_name((enum srv_admin)atomic_load(&s->admin)), w, off ? "off" : "on");
	if (server_addr_gen(s)) {
		server_addr_str(s, addr, sizeof(addr));
		sbuf_printf(o, " rt-addr=");
		enc(o, addr);
	}
}

static void dump_name(struct sbuf *o, const char *kind, const struct proxy *p,
		      const struct server *s)
{
	sbuf_printf(o, "%s ", kind);
	enc(o, p->name);
	sbuf_put(o, " ", 1);
	enc(o, s->name);
}

/* One backend's servers: the configured ones (deleted or not), then the runtime-added ones. */
static void dump_servers(struct sbuf *o, struct proxy *p)
{
	int i, k, n = server_count(p);

	for (i = 0; i < n; i++) {
		struct server *s = p->srv[i];

		if (s->dynamic || !s->hl)
			continue;
		dump_name(o, server_deleted(s) ? "deleted-server" : "server", p, s);
		sbuf_printf(o, " addr=");
		enc(o, s->addr_str ? s->addr_str : "");
		if (!server_deleted(s)) {
			dump_runtime(o, s);
			sbuf_printf(o, " cfg-admin=%s cfg-weight=%d", srv_admin_name(cfg_admin(s)),
				    s->weight);
		}
		sbuf_put(o, "\n", 1);
	}
	for (i = 0; i < n; i++) {
		struct server *s = p->srv[i];

		if (!s->dynamic || server_deleted(s) || !s->hl)
			continue;
		dump_name(o, "added-server", p, s);
		for (k = 0; k < s->dyn_argc; k++) {
			sbuf_printf(o, " arg=");
			enc(o, s->dyn_argv[k]);
		}
		dump_runtime(o, s);
		sbuf_put(o, "\n", 1);
	}
}

struct stick_out {
	struct sbuf *o;
	struct stktable *t;
	uint64_t now;
};

static void dump_entry(void *arg, const uint8_t *key, uint16_t klen, int srv_id, uint64_t left_ms)
{
	struct stick_out *so = arg;
	struct proxy *be = so->t->be;
	uint16_t i;

	if (srv_id < 0 || srv_id >= server_count(be) || server_deleted(be->srv[srv_id]))
		return;
	sbuf_printf(so->o, "stick ");
	enc(so->o, be->name);
	sbuf_printf(so->o, " type=%s key=", stick_types[so->t->type]);
	for (i = 0; i < klen; i++)
		sbuf_printf(so->o, "%02x", key[i]);
	sbuf_printf(so->o, " server=");
	enc(so->o, be->srv[srv_id]->name);
	sbuf_printf(so->o, " exp=%llu\n",
		    (unsigned long long)(left_ms ? so->now + left_ms : 0));
}

/* Clears the tables' "changed" and "touched" flags: what follows is in this write. */
static void sticks_taken(void)
{
	struct list *l;

	list_for_each(l, &keel_proxies)
	{
		struct stktable *t = list_entry(l, struct proxy, list)->stk.table;

		if (t && t->shards) {
			atomic_store(&t->changed, false);
			atomic_store(&t->touched, false);
		}
	}
}

char *state_dump(size_t *len)
{
	struct sbuf o = {0};
	struct list *l;

	sticks_taken();
	sbuf_printf(&o,
		    "# keel state file: written by keel, read at start (docs/admin.md, "
		    "\"Durable state\")\nkeel-state %d\n",
		    STATE_VERSION);
	list_for_each(l, &keel_proxies)
	{
		struct proxy *p = list_entry(l, struct proxy, list);

		if (p->cap & PR_CAP_BE)
			dump_servers(&o, p);
	}
	/* after every server: an entry names its server, which must exist when it is read */
	list_for_each(l, &keel_proxies)
	{
		struct proxy *p = list_entry(l, struct proxy, list);
		struct stick_out so = {&o, p->stk.table, wall_ms()};

		if ((p->cap & PR_CAP_BE) && so.t && so.t->shards && so.t->be == p)
			stick_foreach(so.t, dump_entry, &so);
	}
	if (o.oom) {
		free(o.p);
		return NULL;
	}
	*len = o.len;
	return o.p;
}

/* Writes all of buf with wr. Returns 0, or the errno of the failure (ENOSPC for a write that
 * moved nothing: a regular file that is full). */
static int write_all(ssize_t (*wr)(int, const void *, size_t), int fd, const char *buf,
		     size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t w = wr(fd, buf + done, len - done);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return w == 0 ? ENOSPC : errno;
		done += (size_t)w;
	}
	return 0;
}

int state_write_file(int dirfd, const char *name, const char *buf, size_t len, char **err)
{
	char tmp[PATH_MAX];
	int fd, e;
	const char *what;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= sizeof(tmp)) {
		*err = strfmt("state file name too long");
		return ERR;
	}
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1) {
		e = errno;
		what = "cannot create";
		goto out_err;
	}
	e = write_all(state_write_fn, fd, buf, len);
	if (e) {
		what = "cannot write";
		goto out_close;
	}
	if (fsync(fd) == -1) {
		e = errno;
		what = "cannot sync";
		goto out_close;
	}
	if (close(fd) == -1) {
		e = errno;
		what = "cannot close";
		goto out_unlink;
	}
	if (renameat(dirfd, tmp, dirfd, name) == -1) {
		e = errno;
		what = "cannot rename";
		goto out_unlink;
	}
	/* The rename is durable once the directory is synced; a failure here leaves a complete file
	 * (old or new), so it is reported but nothing is undone. */
	if (fsync(dirfd) == -1 && errno != EINVAL) {
		*err = strfmt("cannot sync the directory of %s: %s", name, strerror(errno));
		return ERR;
	}
	return OK;

out_close:
	close(fd);
out_unlink:
	unlinkat(dirfd, tmp, 0);
out_err:
	*err = strfmt("%s %s: %s", what, tmp, strerror(e));
	return ERR;
}

/* ---- start-up, the writer thread ---- */

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

int state_check_path(const char *path, char **err)
{
	char *dir;
	struct stat sb;
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
		*err = strfmt("state-file '%s': not a file name", path);
		return ERR;
	}
	dir = dir_of(path);
	if (stat(dir, &sb) == -1 || (!S_ISDIR(sb.st_mode) && (errno = ENOTDIR))) {
		*err = strfmt("state-file '%s': directory '%s' %s", path, dir,
			      errno == ENOENT ? "does not exist" : "is not a usable directory");
		free(dir);
		return ERR;
	}
	free(dir);
	return OK;
}

int state_open(char **err)
{
	char *dir;
	const char *slash;

	if (!global.state_file)
		return OK;
	dir = dir_of(global.state_file);
	st.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st.dirfd == -1) {
		*err = strfmt("state-file '%s': cannot open directory '%s': %s", global.state_file,
			      dir, strerror(errno));
		free(dir);
		return ERR;
	}
	free(dir);
	slash = strrchr(global.state_file, '/');
	st.base = slash ? slash + 1 : global.state_file;
	return OK;
}

void state_restore(struct state_report *rep)
{
	struct stat sb;
	char *buf;
	ssize_t got = 0;
	int fd;

	*rep = (struct state_report){0};
	if (st.dirfd == -1)
		return;
	fd = openat(st.dirfd, st.base, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		if (errno == ENOENT)
			keel_log(
			    LOG_LVL_NOTICE,
			    "state file %s does not exist yet: starting from the configuration",
			    global.state_file);
		else
			keel_log(
			    LOG_LVL_ERR,
			    "cannot read the state file %s: %s; starting from the configuration",
			    global.state_file, strerror(errno));
		return;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) || sb.st_size > STATE_MAX_FILE) {
		keel_log(LOG_LVL_ERR,
			 "state file %s: not a regular file or larger than %u bytes: ignored, "
			 "starting from the configuration",
			 global.state_file, STATE_MAX_FILE);
		rep->refused = 1;
		close(fd);
		return;
	}
	buf = malloc((size_t)sb.st_size + 1);
	while (buf && got < sb.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)(sb.st_size - got));

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += r;
	}
	close(fd);
	if (!buf) {
		keel_log(LOG_LVL_ERR, "state file %s: out of memory: ignored", global.state_file);
		return;
	}
	state_apply_buf(global.state_file, buf, (size_t)got, rep);
	free(buf);
	if (!rep->refused)
		keel_log(LOG_LVL_NOTICE,
			 "state file %s restored: %d server(s) applied (%d added at runtime, %d "
			 "deleted at runtime), %d stick table entries, %d not in the "
			 "configuration, %d kept from the configuration, %d malformed line(s)",
			 global.state_file, rep->applied, rep->added, rep->deleted, rep->sticks,
			 rep->unknown, rep->conflicts, rep->malformed);
}

int state_handover_fd(char **err)
{
	size_t len = 0;
	int e;
	char *img = state_dump(&len);
	int fd = memfd_create("keel-state", MFD_CLOEXEC);

	if (!img || fd == -1) {
		*err = strfmt("cannot pass the runtime state on: %s",
			      img ? strerror(errno) : "out of memory");
		goto out;
	}
	e = write_all(write, fd, img, len);
	if (e) {
		*err = strfmt("cannot pass the runtime state on: %s", strerror(e));
		close(fd);
		fd = -1;
	}
out:
	free(img);
	return fd;
}

void state_restore_fd(int fd, struct state_report *rep)
{
	struct stat sb;
	char *buf = NULL;
	ssize_t got = 0;

	*rep = (struct state_report){0};
	if (fstat(fd, &sb) == -1 || sb.st_size > STATE_MAX_FILE ||
	    !(buf = malloc((size_t)sb.st_size + 1))) {
		keel_log(LOG_LVL_ERR, "cannot read the previous process's state: starting from the "
				      "configuration");
		return;
	}
	while (got < sb.st_size) {
		ssize_t r = pread(fd, buf + got, (size_t)(sb.st_size - got), got);

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += r;
	}
	state_apply_buf("(previous process)", buf, (size_t)got, rep);
	free(buf);
	keel_log(LOG_LVL_NOTICE,
		 "runtime state of the previous process restored: %d server(s) applied (%d added at "
		 "runtime, %d deleted at runtime), %d stick table entries, %d not in the "
		 "configuration, %d kept from the configuration",
		 rep->applied, rep->added, rep->deleted, rep->sticks, rep->unknown, rep->conflicts);
	/* Whatever the old process had not saved yet: the file catches up now. */
	if (st.dirfd != -1) {
		pthread_mutex_lock(&st.lock);
		st.dirty = true;
		pthread_mutex_unlock(&st.lock);
	}
}

void state_detach(void)
{
	if (!st.started)
		return;
	atomic_store(&st.on, false);
	pthread_mutex_lock(&st.lock);
	st.detached = st.stop = true;
	pthread_cond_signal(&st.cond);
	pthread_mutex_unlock(&st.lock);
	pthread_join(st.thread, NULL);
	pthread_cond_destroy(&st.cond);
	st.started = false;
}

/* One write of the current state. Logs the first failure of a streak and the recovery. */
static int write_once(void)
{
	char *err = NULL, *img;
	size_t len = 0;
	int rc;

	img = state_dump(&len);
	if (!img)
		err = strfmt("out of memory");
	rc = img ? state_write_file(st.dirfd, st.base, img, len, &err) : ERR;
	free(img);
	if (rc != OK && !st.failing)
		keel_log(LOG_LVL_ERR,
			 "cannot save the state file %s: %s; the previous file is kept and the "
			 "state stays in memory (retrying every %d s and at each change)",
			 global.state_file, err, STATE_RETRY_S);
	else if (rc == OK && st.failing)
		keel_log(LOG_LVL_NOTICE, "state file %s saved again", global.state_file);
	free(err);
	return rc;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Whether the stick tables are due for a write (see the top comment); stopping: whether they
 * changed at all since the last one. */
static bool sticks_due(bool stopping)
{
	uint64_t since = stopping ? UINT64_MAX : mono_ms() - st.last_ms;
	struct list *l;

	if (since < st.gap_ms)
		return false;
	list_for_each(l, &keel_proxies)
	{
		struct stktable *t = list_entry(l, struct proxy, list)->stk.table;

		if (!t || !t->shards)
			continue;
		if (atomic_load(&t->changed) || (atomic_load(&t->touched) && since >= STATE_TOUCH_MS))
			return true;
	}
	return false;
}

/* Waits (under st.lock) until there is something to write or the writer must stop: a change,
 * the retry delay after a failure, the stick tables' poll. */
static void writer_wait(void)
{
	while (!st.dirty && !st.stop) {
		struct timespec ts;
		uint64_t ms = st.failing ? STATE_RETRY_S * 1000 : STATE_STICK_MS;

		if (!st.failing && !st.sticks) {
			pthread_cond_wait(&st.cond, &st.lock);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(ms / 1000);
		ts.tv_nsec += (long)(ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&st.cond, &st.lock, &ts) == ETIMEDOUT)
			st.dirty = st.failing || sticks_due(false);
	}
}

static void *writer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&st.lock);
	for (;;) {
		writer_wait();
		if (st.detached)
			break;
		if (st.stop && (st.failing || sticks_due(true)))
			st.dirty = true; /* one last try of the unsaved state, the latest bindings */
		if (!st.dirty)
			break; /* stopping with nothing to save */
		if (!st.stop) {
			struct timespec settle = {0, STATE_SETTLE_MS * 1000000L};

			pthread_mutex_unlock(&st.lock);
			nanosleep(&settle, NULL);
			pthread_mutex_lock(&st.lock);
		}
		st.dirty = false;
		pthread_mutex_unlock(&st.lock);
		/* st.failing is only written by this thread (under the lock, for the waits above):
		 * write_once() reads it without the lock. */
		{
			uint64_t t0 = mono_ms();
			bool failed = write_once() != OK;

			pthread_mutex_lock(&st.lock);
			st.failing = failed;
			st.last_ms = mono_ms();
			st.gap_ms = MAX((uint64_t)STATE_STICK_MS, 10 * (st.last_ms - t0));
		}
		if (st.stop && !st.dirty)
			break;
	}
	pthread_mutex_unlock(&st.lock);
	return NULL;
}

int state_start(char **err)
{
	struct list *l;
	pthread_condattr_t ca;
	int e;

	if (st.dirfd == -1)
		return OK;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&st.cond, &ca);
	pthread_condattr_destroy(&ca);
	/* The restore itself is not a change to save, except what a previous process passed on
	 * (state_restore_fd()) and may not have saved. */
	st.stop = st.failing = false;
	st.sticks = false;
	list_for_each(l, &keel_proxies)
	{
		struct stktable *t = list_entry(l, struct proxy, list)->stk.table;

		st.sticks |= t && t->shards;
	}
	if (!st.dirty)
		sticks_taken(); /* what the restore stored is in the file already */
	st.last_ms = mono_ms();
	st.gap_ms = STATE_STICK_MS;
	e = pthread_create(&st.thread, NULL, writer_main, NULL);
	if (e) {
		*err = strfmt("cannot start the state file writer: %s", strerror(e));
		pthread_cond_destroy(&st.cond);
		return ERR;
	}
	st.started = true;
	atomic_store(&st.on, true);
	return OK;
}

void state_stop(void)
{
	if (st.started) {
		atomic_store(&st.on, false);
		pthread_mutex_lock(&st.lock);
		st.stop = true;
		pthread_cond_signal(&st.cond);
		pthread_mutex_unlock(&st.lock);
		pthread_join(st.thread, NULL);
		pthread_cond_destroy(&st.cond);
		st.started = false;
	}
	if (st.dirfd != -1)
		close(st.dirfd);
	st.dirfd = -1;
}

void state_note_change(struct server *srv)
{
	(void)srv; /* the whole state is rewritten: small, and always consistent */
	if (!atomic_load_explicit(&st.on, memory_order_acquire))
		return;
	pthread_mutex_lock(&st.lock);
	st.dirty = true;
	pthread_cond_signal(&st.cond);
	pthread_mutex_unlock(&st.lock);
}
