/* Dynamic servers: "add server", "del server" and "set server B/S addr" (docs/admin.md), run by
 * the admin thread. The protocol with the workers (docs/internals/dynamic-servers.md):
 *
 * - Capacity is reserved at load: a backend's server array has room for tune.spare-servers more
 *   servers and never moves; each worker's per-server arrays (idle pools) and check slots cover
 *   the whole capacity from the start.
 * - "add server" builds the server completely (parsed with the configuration's own server parser,
 *   counters, health state, maintenance), stores it in the next free slot, then publishes it with
 *   a release store of the backend's count; readers load the count (acquire) before they index the
 *   array. It then bumps srv_gen (balancing schedules are rebuilt on the next pick) and, for
 *   consistent hashing, publishes a new ring by pointer swap. Each worker's check runner starts
 *   the checks of the new slots it owns on its next scan (every 200 ms).
 * - "del server" only takes a server in maintenance with nothing in flight or queued. It sets
 *   `deleted`: the server is hidden from the admin socket and the stats, stays in maintenance for
 *   good, its checks are stopped and its idle connections closed by their own threads. The slot
 *   and the object are never reused or freed (a late reader may still hold the pointer).
 * - "set server addr" publishes a new immutable struct srv_addr (release) with a higher
 *   generation; a pooled connection remembers the generation it was opened with and is closed
 *   instead of reused when it differs. Replaced addresses stay allocated until exit.
 *
 * All allocations here come from cfg_arena under dyn_lock (the configuration is complete by then,
 * and nothing else allocates from the arena at runtime). */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <keel/backend.h>
#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/global.h>
#include <keel/health.h>
#include <keel/lb.h>
#include <keel/log.h>
#include <keel/proxy.h>
#include <keel/server.h>
#include <keel/worker.h>

#define DYN_MAX_ARGS 64

atomic_uint server_changes;
static pthread_mutex_t dyn_lock = PTHREAD_MUTEX_INITIALIZER;

#define MAX_CHANGE_FNS 4

/* Filled at start, before the workers: read without a lock afterwards. */
static void (*change_fns[MAX_CHANGE_FNS])(struct server *srv);
static int nchange_fns;

void server_on_change(void (*fn)(struct server *srv))
{
	REGISTER(change_fns, nchange_fns, fn);
}

void server_changed(struct server *srv)
{
	int i;

	for (i = 0; i < nchange_fns; i++)
		change_fns[i](srv);
}


static int __attribute__((format(printf, 3, 4))) fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return ERR;
}

void server_addr_str(const struct server *s, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	bool no_port;
	char ip[INET6_ADDRSTRLEN] = "-";

	server_addr(s, &ss, NULL, &no_port);
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof(ip));
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof(ip));
	if (no_port)
		snprintf(buf, len, "%s", ip);
	else if (ss.ss_family == AF_INET6)
		snprintf(buf, len, "[%s]:%d", ip, sockaddr_port(&ss));
	else
		snprintf(buf, len, "%s:%d", ip, sockaddr_port(&ss));
}

/* "B/S" → the backend (and a copy of S), or NULL with err set. */
static struct proxy *split_name(const char *arg, char *sname, size_t slen, char *err, size_t len)
{
	const char *slash = strchr(arg, '/');
	char bname[256];
	struct proxy *be;

	if (!slash || slash == arg || !slash[1] || (size_t)(slash - arg) >= sizeof(bname) ||
	    strlen(slash + 1) >= slen) {
		fail(err, len, "expects BACKEND/SERVER, not '%s'", arg);
		return NULL;
	}
	memcpy(bname, arg, (size_t)(slash - arg));
	bname[slash - arg] = 0;
	be = proxy_by_name(bname, PR_CAP_BE);
	if (!be || !be->hl) {
		fail(err, len, "no such backend '%s'", bname);
		return NULL;
	}
	snprintf(sname, slen, "%s", slash + 1);
	return be;
}

static void changed(struct proxy *be)
{
	atomic_fetch_add_explicit(&be->srv_gen, 1, memory_order_release);
	atomic_fetch_add_explicit(&server_changes, 1, memory_order_release);
}

int server_add(int argc, char **argv, const char *who, char *err, size_t err_len)
{
	char sname[256], msg[512] = "";
	char *av[DYN_MAX_ARGS + 2];
	struct cfg_ctx c = {0};
	struct proxy *be;
	struct server *s;
	int i, n, ret = ERR;

	if (argc < 2)
		return fail(err, err_len, "'add server' expects BACKEND/SERVER ADDRESS[:PORT] [options]");
	if (argc > DYN_MAX_ARGS)
		return fail(err, err_len, "'add server': too many words (at most %d)", DYN_MAX_ARGS);
	be = split_name(argv[0], sname, sizeof(sname), err, err_len);
	if (!be)
		return ERR;
	/* The configuration's parser sees "server NAME ADDRESS options...". */
	av[0] = "server";
	av[1] = sname;
	for (i = 1; i < argc; i++)
		av[i + 1] = argv[i];
	av[argc + 1] = NULL;
	c.file = who;
	c.sect = CFG_S_BACKEND;
	c.cur = be;
	c.msg = msg;
	c.msgcap = sizeof(msg);

	pthread_mutex_lock(&dyn_lock);
	n = server_count(be);
	if (n >= be->srv_cap) {
		fail(err, err_len,
		     "backend '%s' has no room for another server (%d slots, deleted ones are not "
		     "reused): raise 'tune.spare-servers' (now %d) and restart",
		     be->name, be->srv_cap, global.spare_servers);
		goto out;
	}
	s = proxy_parse_server(&c, be, argc + 1, av);
	if (s && proxy_check_server(&c, be, s) != OK)
		s = NULL;
	if (!s) {
		fail(err, err_len, "%s", msg[0] ? msg : "invalid server");
		goto out;
	}
	s->dynamic = true;
	s->line = 0;
	/* Kept for the state file, which replays them at the next start. */
	s->dyn_argc = argc - 1;
	s->dyn_argv = arena_alloc(&cfg_arena, sizeof(char *) * (size_t)argc);
	for (i = 1; i < argc; i++)
		s->dyn_argv[i - 1] = arena_strdup(&cfg_arena, argv[i]);
	s->ctr = arena_alloc_aligned(&cfg_arena, sizeof(*s->ctr) * (size_t)keel_nworkers, 64);
	memset(s->ctr, 0, sizeof(*s->ctr) * (size_t)keel_nworkers);
	/* As in HAProxy, a dynamic server starts in maintenance: "enable server" puts it in. */
	atomic_store(&s->admin, SRV_ADMIN_MAINT);
	atomic_store(&s->oper, SRV_OPER_UP);
	atomic_store(&s->cur_sess, 0);
	atomic_store(&s->max_sess, 0);
	atomic_store(&s->nbpend, 0);
	atomic_store(&s->paddr, NULL);
	atomic_store(&s->deleted, false);
	if (health_srv_init(s) != OK) {
		fail(err, err_len, "out of memory");
		goto out;
	}
	snprintf(s->hl->why, sizeof(s->hl->why), "added by %s, in maintenance", who);
	be->srv[n] = s;
	/* Publish: everything above happens before any reader that sees the new count. */
	atomic_store_explicit(&be->nsrv, n + 1, memory_order_release);
	lb_build_ring(be);
	changed(be);
	server_changed(s);
	keel_log(LOG_LVL_NOTICE, "Server %s/%s added at %s (in maintenance, by %s)", be->name,
		 s->name, s->addr_str, who);
	ret = OK;
out:
	pthread_mutex_unlock(&dyn_lock);
	return ret;
}

int server_del(struct server *s, const char *who, char *err, size_t err_len)
{
	struct proxy *be = s->be;
	int ret = ERR, cur, q;

	pthread_mutex_lock(&dyn_lock);
	if (server_deleted(s)) {
		fail(err, err_len, "no such server '%s' in backend '%s'", s->name, be->name);
		goto out;
	}
	if (atomic_load(&s->admin) != SRV_ADMIN_MAINT) {
		fail(err, err_len,
		     "server '%s/%s' is not in maintenance: 'set server %s/%s state drain', wait for its "
		     "requests to finish, then 'state maint'",
		     be->name, s->name, be->name, s->name);
		goto out;
	}
	cur = atomic_load(&s->cur_sess);
	q = atomic_load(&s->nbpend);
	if (cur || q) {
		fail(err, err_len,
		     "server '%s/%s' still has %d request(s) in flight and %d queued: wait for them "
		     "to finish",
		     be->name, s->name, cur, q);
		goto out;
	}
	/* Under the health lock: set_admin() then refuses to move it out of maintenance. */
	pthread_mutex_lock(&s->hl->lock);
	atomic_store(&s->deleted, true);
	snprintf(s->hl->why, sizeof(s->hl->why), "deleted by %s", who);
	pthread_mutex_unlock(&s->hl->lock);
	lb_build_ring(be);
	changed(be);
	server_changed(s);
	keel_log(LOG_LVL_NOTICE, "Server %s/%s deleted (by %s)", be->name, s->name, who);
	ret = OK;
out:
	pthread_mutex_unlock(&dyn_lock);
	return ret;
}

int server_set_addr(struct server *s, const char *ip, int port, const char *who, char *err,
		    size_t err_len)
{
	struct sockaddr_storage cur, ss;
	struct srv_addr *a;
	bool from_client;
	unsigned gen;
	char was[96];

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		return fail(err, err_len, "invalid address '%s': expects an IPv4 or IPv6 address", ip);
	pthread_mutex_lock(&dyn_lock);
	gen = server_addr(s, &cur, NULL, &from_client);
	server_addr_str(s, was, sizeof(was));
	a = arena_alloc(&cfg_arena, sizeof(*a));
	memset(a, 0, sizeof(*a));
	a->ss = ss;
	a->len = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	a->gen = gen + 1;
	a->port_from_client = port ? false : from_client;
	sockaddr_set_port(&a->ss, port ? port : from_client ? 0 : sockaddr_port(&cur));
	if (a->port_from_client)
		snprintf(a->str, sizeof(a->str), "%s", ip);
	else if (ss.ss_family == AF_INET6)
		snprintf(a->str, sizeof(a->str), "[%s]:%d", ip, sockaddr_port(&a->ss));
	else
		snprintf(a->str, sizeof(a->str), "%s:%d", ip, sockaddr_port(&a->ss));
	/* The old srv_addr is not freed: a worker may be copying it (see the top comment). */
	atomic_store_explicit(&s->paddr, a, memory_order_release);
	atomic_fetch_add_explicit(&server_changes, 1, memory_order_release);
	server_changed(s);
	keel_log(LOG_LVL_NOTICE, "Server %s/%s address changed from %s to %s (by %s)", s->be->name,
		 s->name, was, a->str, who);
	pthread_mutex_unlock(&dyn_lock);
	return OK;
}
