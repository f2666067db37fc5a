/* Writing the state: the image of the current state (state_dump()) and the atomic replacement of
 * the file (state_write_file()), for the writer thread and the reload hand-over (state.c).
 *
 * What is saved: for every server, its admin state, runtime weight, check switch and runtime
 * address, with the configuration values they replaced, so that a later configuration change can
 * be told apart from a runtime change (the configuration then wins); the servers added at
 * runtime (their "add server" words, replayed at start) and the configured ones deleted at
 * runtime; the stick table entries. Format and rules: docs/admin.md; the words of the format
 * (escapes, stick key types) are the reader's (state-read.c).
 *
 * The image is a snapshot: each server's health mutex is taken briefly, never across I/O. The file
 * is replaced, never edited (PATH.tmp, fsync, rename, fsync of the directory), so that PATH is
 * always a complete file, old or new, whatever happens. */
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
#include <unistd.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/health.h>
#include <keel/proxy.h>
#include <keel/sbuf.h>
#include <keel/server.h>
#include <keel/state.h>
#include <keel/stick.h>

ssize_t (*state_write_fn)(int fd, const void *buf, size_t n) = write;

/* ---- the image ---- */

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
		state_enc(o, addr);
	}
}

static void dump_name(struct sbuf *o, const char *kind, const struct proxy *p,
		      const struct server *s)
{
	sbuf_printf(o, "%s ", kind);
	state_enc(o, p->name);
	sbuf_put(o, " ", 1);
	state_enc(o, s->name);
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
		state_enc(o, s->addr_str ? s->addr_str : "");
		if (!server_deleted(s)) {
			dump_runtime(o, s);
			sbuf_printf(o, " cfg-admin=%s cfg-weight=%d",
				    srv_admin_name(state_cfg_admin(s)), s->weight);
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
			state_enc(o, s->dyn_argv[k]);
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
	state_enc(so->o, be->name);
	sbuf_printf(so->o, " type=%s key=", state_stick_types[so->t->type]);
	for (i = 0; i < klen; i++)
		sbuf_printf(so->o, "%02x", key[i]);
	sbuf_printf(so->o, " server=");
	state_enc(so->o, be->srv[srv_id]->name);
	sbuf_printf(so->o, " exp=%llu\n",
		    (unsigned long long)(left_ms ? so->now + left_ms : 0));
}

void state_sticks_taken(void)
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

	state_sticks_taken();
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
		struct stick_out so = {&o, p->stk.table, state_wall_ms()};

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

/* ---- the file ---- */

int state_write_all(ssize_t (*wr)(int, const void *, size_t), int fd, const char *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t w = wr(fd, buf + done, len - done);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) /* a write that moved nothing: a regular file that is full */
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
	e = state_write_all(state_write_fn, fd, buf, len);
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
