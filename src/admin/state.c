/* Durable runtime state: the state file ("state-file PATH" in global).
 *
 * What is saved: for every server, its admin state, runtime weight and check switch, with the
 * configuration values they replaced, so that a later configuration change can be told apart
 * from a runtime change (the configuration then wins). The file is a versioned text of line
 * records; unknown record types and fields are skipped, so records for runtime-added servers or
 * stick tables can be added without a new version. Format and rules: docs/admin.md.
 *
 * Threads: health.c calls state_note_change() after a change, on any thread, perhaps under the
 * server's health mutex: it only sets a flag under st.lock (never held across I/O) and signals
 * the writer thread. The writer waits STATE_SETTLE_MS so that a burst becomes one write, takes a
 * snapshot (each server's health mutex, briefly) and writes PATH.tmp, fsync, rename, fsync of the
 * directory. A failure (ENOSPC, EACCES, EIO...) is logged once per failing streak, the previous
 * file stays, the state stays in memory, and the write is retried every STATE_RETRY_S seconds and
 * at the next change. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
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
#include <keel/server.h>
#include <keel/state.h>

#define STATE_SETTLE_MS 20 /* a burst of changes within this delay becomes one write */

ssize_t (*state_write_fn)(int fd, const void *buf, size_t n) = write;

static struct {
	int dirfd;	      /* the state file's directory, opened before chroot; -1: off */
	const char *base;     /* the file name inside it */
	atomic_bool on;	      /* the writer runs: changes are noted */
	pthread_mutex_t lock; /* protects the fields below; never held across I/O */
	pthread_cond_t cond;
	bool dirty, stop, failing;
	bool detached;	      /* a new process took over (reload): the file is its to write */
	pthread_t thread;
	bool started;
} st = {.dirfd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- names in records: percent-encoded so that a token never holds a space, '=' or '#' ---- */

static bool needs_escape(unsigned char ch)
{
	return ch <= ' ' || ch >= 0x7f || ch == '%' || ch == '=' || ch == '#';
}

/* Appends s encoded to out (cap bytes, NUL-terminated). Returns false when it does not fit. */
static bool enc(char *out, size_t cap, const char *s)
{
	size_t n = strlen(out);

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (n + 4 > cap)
			return false;
		if (needs_escape(ch))
			n += (size_t)snprintf(out + n, cap - n, "%%%02X", ch);
		else
			out[n++] = (char)ch;
	}
	out[n] = 0;
	return true;
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

/* One server record, fields not yet applied. -1: absent. */
struct srv_rec {
	char *be, *srv, *addr;
	int admin, weight, checks, cfg_admin, cfg_weight;
};

#define MAX_TOK 32

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

/* Parses the fields of a "server" record. Returns NULL, or why the line is malformed. */
static const char *parse_server(int n, char **tok, struct srv_rec *r, const char **unknown)
{
	int i;

	*r = (struct srv_rec){
	    .admin = -1, .weight = -1, .checks = -1, .cfg_admin = -1, .cfg_weight = -1};
	*unknown = NULL;
	if (n < 3)
		return "expected 'server <backend> <server> field=value...'";
	r->be = tok[1];
	r->srv = tok[2];
	if (!dec(r->be) || !dec(r->srv) || !*r->be || !*r->srv)
		return "bad backend or server name";
	for (i = 3; i < n; i++) {
		char *k = tok[i], *v = strchr(k, '=');

		if (!v)
			return "a field without '='";
		*v++ = 0;
		if (!strcmp(k, "addr")) {
			if (!dec(v))
				return "bad addr";
			r->addr = v;
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
		} else if (!*unknown) {
			*unknown = k; /* a newer minor field: skipped */
		}
	}
	return NULL;
}

static struct server *find_server(const char *be_name, const char *srv_name)
{
	struct proxy *be = proxy_by_name(be_name, PR_CAP_BE);
	int i;

	if (!be)
		return NULL;
	for (i = 0; i < be->nsrv; i++)
		if (!strcmp(be->srv[i]->name, srv_name))
			return be->srv[i];
	return NULL;
}

/* Applies a parsed record. The rules (docs/admin.md): a server not in the configuration is
 * ignored; a changed address means another machine: the record is ignored; a field whose
 * configuration value changed since the save keeps the configuration's value. */
static void apply_server(const char *name, int ln, const struct srv_rec *r,
			 struct state_report *rep)
{
	struct server *srv = find_server(r->be, r->srv);
	bool any = false;

	if (!srv) {
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
	if (any)
		rep->applied++;
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

void state_apply_buf(const char *name, const char *buf, size_t len, struct state_report *rep)
{
	char line[STATE_MAX_LINE + 1];
	char *tok[MAX_TOK];
	const char *p = buf, *end = buf + len;
	bool header = false;
	int ln = 0, nunk = 0, first_unk = 0;

	*rep = (struct state_report){0};
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = (size_t)((nl ? nl : end) - p);
		const char *why = NULL, *unknown = NULL;
		struct srv_rec r;
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
				return;
			}
			header = true;
			continue;
		}
		if (!why && !strcmp(tok[0], "server"))
			why = parse_server(n, tok, &r, &unknown);
		else if (!why) {
			/* A record type of a newer minor revision (stick tables...): skipped. */
			if (!nunk++)
				first_unk = ln;
			rep->skipped++;
			continue;
		}
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
		apply_server(name, ln, &r, rep);
	}
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
}

/* ---- writing ---- */

char *state_dump(size_t *len)
{
	size_t cap = 4096, n = 0;
	char *out = malloc(cap);
	struct list *l;

	if (!out)
		return NULL;
	n = (size_t)snprintf(out, cap,
			     "# keel state file: written by keel, read at start (docs/admin.md, "
			     "\"Durable state\")\nkeel-state %d\n",
			     STATE_VERSION);
	list_for_each(l, &keel_proxies)
	{
		struct proxy *p = list_entry(l, struct proxy, list);
		int i;

		if (!(p->cap & PR_CAP_BE))
			continue;
		for (i = 0; i < p->nsrv; i++) {
			struct server *s = p->srv[i];
			const char *addr = s->addr_str ? s->addr_str : "";
			size_t need;
			int w;
			bool off;

			/* Servers added or deleted at runtime are not journaled yet (docs/admin.md). */
			if (s->dynamic || server_deleted(s))
				continue;
			need = 3 * (strlen(p->name) + strlen(s->name) + strlen(addr)) + 200;

			if (!s->hl)
				continue;
			if (n + need > cap) {
				char *bigger = realloc(out, (n + need) * 2);

				if (!bigger) {
					free(out);
					return NULL;
				}
				out = bigger;
				cap = (n + need) * 2;
			}
			pthread_mutex_lock(&s->hl->lock);
			w = s->hl->uweight;
			off = s->hl->checks_off;
			pthread_mutex_unlock(&s->hl->lock);
			/* need covers every escape: enc() cannot fail here */
			strcpy(out + n, "server ");
			enc(out + n, need, p->name);
			strcat(out + n, " ");
			enc(out + n, need, s->name);
			strcat(out + n, " addr=");
			enc(out + n, need, addr);
			n += strlen(out + n);
			n += (size_t)snprintf(
			    out + n, cap - n,
			    " admin=%s weight=%d checks=%s cfg-admin=%s cfg-weight=%d\n",
			    srv_admin_name((enum srv_admin)atomic_load(&s->admin)), w,
			    off ? "off" : "on", srv_admin_name(cfg_admin(s)), s->weight);
		}
	}
	*len = n;
	return out;
}

int state_write_file(int dirfd, const char *name, const char *buf, size_t len, char **err)
{
	char tmp[PATH_MAX];
	size_t done = 0;
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
	while (done < len) {
		ssize_t w = state_write_fn(fd, buf + done, len - done);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			e = w == 0 ? ENOSPC
				   : errno; /* write() returning 0 on a regular file: full */
			what = "cannot write";
			goto out_close;
		}
		done += (size_t)w;
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
			 "state file %s restored: %d server(s) applied, %d not in the "
			 "configuration, %d kept from the configuration, %d malformed line(s)",
			 global.state_file, rep->applied, rep->unknown, rep->conflicts,
			 rep->malformed);
}

int state_handover_fd(char **err)
{
	size_t len = 0, off = 0;
	char *img = state_dump(&len);
	int fd = memfd_create("keel-state", MFD_CLOEXEC);

	if (!img || fd == -1) {
		*err = strfmt("cannot pass the runtime state on: %s",
			      img ? strerror(errno) : "out of memory");
		goto out;
	}
	while (off < len) {
		ssize_t w = write(fd, img + off, len - off);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			*err = strfmt("cannot pass the runtime state on: %s", strerror(errno));
			close(fd);
			fd = -1;
			goto out;
		}
		off += (size_t)w;
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
		 "runtime state of the previous process restored: %d server(s) applied, %d not in "
		 "the configuration, %d kept from the configuration",
		 rep->applied, rep->unknown, rep->conflicts);
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

static void *writer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&st.lock);
	for (;;) {
		while (!st.dirty && !st.stop) {
			struct timespec ts;

			if (!st.failing) {
				pthread_cond_wait(&st.cond, &st.lock);
				continue;
			}
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += STATE_RETRY_S;
			if (pthread_cond_timedwait(&st.cond, &st.lock, &ts) == ETIMEDOUT)
				st.dirty = true;
		}
		if (st.detached)
			break;
		if (st.stop && st.failing)
			st.dirty = true; /* one last try of the unsaved state */
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
			bool failed = write_once() != OK;

			pthread_mutex_lock(&st.lock);
			st.failing = failed;
		}
		if (st.stop && !st.dirty)
			break;
	}
	pthread_mutex_unlock(&st.lock);
	return NULL;
}

int state_start(char **err)
{
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
