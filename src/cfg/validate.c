/* Checks that need the whole file (names used before they are defined) and keel's own defaults
 * for everything left unset. keel never waits forever: every timeout has a value. */
#include <string.h>
#include <unistd.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/stick.h>

/* keel's defaults, in milliseconds (docs/configuration.md, "Timeouts"). */
#define DEF_CONNECT 5000
#define DEF_CLIENT 60000
#define DEF_SERVER 60000
#define DEF_HTTP_REQUEST 10000
#define DEF_QUEUE_MAX 5000
#define DEF_TUNNEL 3600000
#define DEF_FIN 5000
#define DEF_CHECK 2000

static void apply_timeouts(struct timeouts *t)
{
	if (!t->connect)
		t->connect = DEF_CONNECT;
	if (!t->client)
		t->client = DEF_CLIENT;
	if (!t->server)
		t->server = DEF_SERVER;
	if (!t->http_request)
		t->http_request = MIN(DEF_HTTP_REQUEST, t->client);
	if (!t->http_keep_alive)
		t->http_keep_alive = t->http_request;
	if (!t->queue)
		t->queue = MIN(DEF_QUEUE_MAX, t->connect);
	if (!t->tunnel)
		t->tunnel = DEF_TUNNEL;
	if (!t->client_fin)
		t->client_fin = MIN(DEF_FIN, t->client);
	if (!t->server_fin)
		t->server_fin = MIN(DEF_FIN, t->server);
	if (!t->check)
		t->check = DEF_CHECK;
}

static int count_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > KEEL_MAX_THREADS ? KEEL_MAX_THREADS : (int)n;
}

int cfg_validate(void)
{
	struct cfg_ctx c = {.file = global.file};
	struct list *l, *r;

	if (!global.nbthread)
		global.nbthread = count_cpus();
	if (global.maxrewrite >= global.bufsize / 2) {
		cfg_warn(&c, "tune.maxrewrite (%u) must be less than half of tune.bufsize (%u); using %u",
			 global.maxrewrite, global.bufsize, global.bufsize / 4);
		global.maxrewrite = global.bufsize / 4;
	}
	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		c.line = p->line;
		apply_timeouts(&p->to);
		if (p->disabled)
			continue;
		if ((p->cap & PR_CAP_FE) && list_empty(&p->binds)) {
			if (p->cap & PR_CAP_BE) {
				/* A listen section without bind is usable as a backend only. */
				p->cap &= ~(unsigned)PR_CAP_FE;
			} else {
				cfg_err(&c, "frontend '%s' has no 'bind' line", p->name);
			}
		}
		if (p->defbe_name) {
			p->defbe = proxy_by_name(p->defbe_name, PR_CAP_BE);
			if (!p->defbe)
				cfg_err(&c, "'%s': default_backend '%s' does not exist", p->name,
					p->defbe_name);
		}
		list_for_each(r, &p->switching) {
			struct switching_rule *sr = list_entry(r, struct switching_rule, list);

			sr->be = proxy_by_name(sr->be_name, PR_CAP_BE);
			if (!sr->be) {
				c.file = sr->file;
				c.line = sr->line;
				cfg_err(&c, "use_backend: backend '%s' does not exist", sr->be_name);
				c.file = global.file;
			}
		}
		if ((p->cap & PR_CAP_FE) && !(p->cap & PR_CAP_BE) && !p->defbe &&
		    list_empty(&p->switching) && !p->stats.enabled && !p->monitor_uri &&
		    !p->stats.prom_uri)
			cfg_warn(&c, "frontend '%s' has no default_backend nor use_backend: every request gets 503", p->name);
		if ((p->cap & PR_CAP_BE) && p->nsrv == 0 && !(p->stats.enabled && (p->cap & PR_CAP_FE)))
			cfg_warn(&c, "backend '%s' has no server: its requests get 503", p->name);
		if (p->cap & PR_CAP_BE) {
			int n = atomic_load(&p->nsrv);

			chk_validate(&c, p);
			health_validate(&c, p);
			/* Room for "add server": the array never moves once the workers run. */
			p->srv_cap = n + global.spare_servers;
			p->srv = arena_grow(&cfg_arena, p->srv, (size_t)n, (size_t)p->srv_cap,
					    sizeof(*p->srv));
			stick_validate(&c, p);
		}
		if (p->stats.enabled && (p->cap & PR_CAP_FE) && p->stats.nusers == 0)
			cfg_warn(&c, "'%s': stats page at '%s' has no 'stats auth': it is open to anyone who can reach it", p->name, p->stats.uri);
	}
	return c.nerr ? ERR : OK;
}
