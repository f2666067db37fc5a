/* Proxies as configured: the list, lookups, a new proxy's inheritance from its defaults section,
 * the hooks through which the other runtime modules take part in the proxy sections, and the
 * checks that need the whole file (names used before they are defined), with keel's own
 * defaults for everything left unset. keel never waits forever: every timeout has a value. */
#include <ctype.h>
#include <string.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/conn.h>
#include <keel/drain.h>
#include <keel/errors.h>
#include <keel/global.h>
#include <keel/lb.h>
#include <keel/proxy.h>
#include <keel/service.h>
#include <keel/worker.h>

struct list keel_proxies = LIST_HEAD_INIT(keel_proxies);

#define PROXY_MAX_HOOKS 8

static const struct proxy_hooks *hooks[PROXY_MAX_HOOKS];
static int nhooks;

void proxy_register_hooks(const struct proxy_hooks *h)
{
	REGISTER(hooks, nhooks, h);
}

static int next_proxy_id;

void proxy_init_defaults(struct proxy *p)
{
	int i;

	memset(p, 0, sizeof(*p));
	p->retries = 3;
	p->opts = PO_EXPECT_CONTINUE;
	p->lb = LB_ROUNDROBIN;
	p->hash_type = HASH_MAP;
	p->defsrv.weight = 1;
	p->defsrv.pool_purge_ms = 4000;
	p->defsrv.drain_idle_ms = DRAIN_IDLE_DEF_MS;
	p->defsrv.xprt = &xprt_raw;
	for (i = 0; i < nhooks; i++)
		if (hooks[i]->init_defaults)
			hooks[i]->init_defaults(p);
	list_init(&p->binds);
	list_init(&p->acls);
	list_init(&p->switching);
	list_init(&p->req_rules);
	list_init(&p->rsp_rules);
	list_init(&p->list);
}

struct proxy *proxy_by_name(const char *name, unsigned cap)
{
	struct list *l;

	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		if ((p->cap & cap) && !strcmp(p->name, name))
			return p;
	}
	return NULL;
}

bool proxy_valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '-' || *s == '_' || *s == '.' || *s == ':'))
			return false;
	return true;
}

struct proxy *proxy_new(struct cfg_ctx *c, const char *name, unsigned cap)
{
	struct proxy *p, *dup;

	if (!proxy_valid_name(name)) {
		cfg_err(c, "invalid proxy name '%s' (letters, digits, '-', '_', '.', ':')", name);
		return NULL;
	}
	dup = proxy_by_name(name, cap);
	if (dup) {
		cfg_err(c, "a %s named '%s' already exists (%s:%d)",
			(dup->cap & cap & PR_CAP_BE) ? "backend" : "frontend", name, dup->file, dup->line);
		return NULL;
	}
	p = arena_alloc(&cfg_arena, sizeof(*p));
	/* Inherit everything from the current defaults, then give the proxy its own lists. */
	*p = *c->defaults;
	list_init(&p->binds);
	list_init(&p->acls);
	list_init(&p->switching);
	list_init(&p->req_rules);
	list_init(&p->rsp_rules);
	p->srv = NULL;
	p->nsrv = 0;
	p->name = arena_strdup(&cfg_arena, name);
	p->cap = cap;
	p->id = ++next_proxy_id;
	p->file = c->file;
	p->line = c->line;
	p->defbe = NULL;
	if (!(cap & PR_CAP_BE))
		p->stats.enabled = p->stats.enabled && (cap & PR_CAP_FE);
	list_add_tail(&keel_proxies, &p->list);
	return p;
}

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

/* The modules' checks of p's binds (TLS loads its certificates there), each reported at its
 * line. */
static void check_binds(struct cfg_ctx *c, struct proxy *p)
{
	struct list *l;
	int k;

	list_for_each(l, &p->binds) {
		struct bind_conf *b = list_entry(l, struct bind_conf, list);

		c->line = b->line;
		for (k = 0; k < nhooks; k++)
			if (hooks[k]->check_bind && hooks[k]->check_bind(c, p, b) != OK)
				break;
	}
	c->line = p->line;
}

void proxy_check_all(struct cfg_ctx *c)
{
	struct list *l, *r;
	int i;

	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		c->line = p->line;
		apply_timeouts(&p->to);
		if (p->disabled)
			continue;
		if ((p->cap & PR_CAP_FE) && list_empty(&p->binds)) {
			if (p->cap & PR_CAP_BE) {
				/* A listen section without bind is usable as a backend only. */
				p->cap &= ~(unsigned)PR_CAP_FE;
			} else {
				cfg_err(c, "frontend '%s' has no 'bind' line", p->name);
			}
		}
		if (p->cap & PR_CAP_FE)
			check_binds(c, p);
		if (p->defbe_name) {
			p->defbe = proxy_by_name(p->defbe_name, PR_CAP_BE);
			if (!p->defbe)
				cfg_err(c, "'%s': default_backend '%s' does not exist", p->name,
					p->defbe_name);
		}
		list_for_each(r, &p->switching) {
			struct switching_rule *sr = list_entry(r, struct switching_rule, list);

			sr->be = proxy_by_name(sr->be_name, PR_CAP_BE);
			if (!sr->be) {
				c->file = sr->file;
				c->line = sr->line;
				cfg_err(c, "use_backend: backend '%s' does not exist", sr->be_name);
				c->file = global.file;
			}
		}
		if ((p->cap & PR_CAP_FE) && !(p->cap & PR_CAP_BE) && !p->defbe &&
		    list_empty(&p->switching) && !p->stats.enabled && !p->monitor_uri &&
		    !p->stats.prom_uri)
			cfg_warn(c, "frontend '%s' has no default_backend nor use_backend: every request gets 503", p->name);
		if ((p->cap & PR_CAP_BE) && p->nsrv == 0 && !(p->stats.enabled && (p->cap & PR_CAP_FE)))
			cfg_warn(c, "backend '%s' has no server: its requests get 503", p->name);
		if (p->cap & PR_CAP_BE) {
			int n = atomic_load(&p->nsrv);

			/* Room for "add server": the array never moves once the workers run. */
			p->srv_cap = n + global.spare_servers;
			p->srv = arena_grow(&cfg_arena, p->srv, (size_t)n, (size_t)p->srv_cap,
					    sizeof(*p->srv));
			for (i = 0; i < nhooks; i++)
				if (hooks[i]->check_backend)
					hooks[i]->check_backend(c, p);
		}
		if (p->cap & PR_CAP_FE)
			p->svc_mask = (uint8_t)http_service_mask(p);
		if (p->stats.enabled && (p->cap & PR_CAP_FE) && p->stats.nusers == 0)
			cfg_warn(c, "'%s': stats page at '%s' has no 'stats auth': it is open to anyone who can reach it", p->name, p->stats.uri);
	}
}

int proxy_check_server(struct cfg_ctx *c, struct proxy *p, struct server *s)
{
	int i;

	for (i = 0; i < nhooks; i++)
		if (hooks[i]->check_server && hooks[i]->check_server(c, p, s) != OK)
			return ERR;
	return OK;
}

int proxy_bind_param(struct cfg_ctx *c, struct bind_conf *b, int argc, char **argv, int *i)
{
	int k, r;

	for (k = 0; k < nhooks; k++)
		if (hooks[k]->bind_param && (r = hooks[k]->bind_param(c, b, argc, argv, i)) != 0)
			return r;
	return 0;
}

int proxy_server_param(struct cfg_ctx *c, struct server *s, int argc, char **argv, int *i)
{
	int k, r;

	for (k = 0; k < nhooks; k++)
		if (hooks[k]->server_param && (r = hooks[k]->server_param(c, s, argc, argv, i)) != 0)
			return r;
	return 0;
}

bool proxy_any_splice(void)
{
	struct list *l;

	list_for_each(l, &keel_proxies)
		if (list_entry(l, struct proxy, list)->opts & (PO_SPLICE_RSP | PO_SPLICE_AUTO))
			return true;
	return false;
}

void proxy_runtime_init(void)
{
	struct list *l;
	int i;

	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		p->ctr = arena_alloc_aligned(&cfg_arena, sizeof(*p->ctr) * (size_t)keel_nworkers, 64);
		for (i = 0; i < p->nsrv; i++) {
			struct server *s = p->srv[i];

			s->ctr = arena_alloc_aligned(&cfg_arena, sizeof(*s->ctr) * (size_t)keel_nworkers,
						     64);
			atomic_store(&s->admin, s->disabled ? SRV_ADMIN_MAINT : SRV_ADMIN_READY);
			atomic_store(&s->oper, SRV_OPER_UP);
			atomic_store(&s->eweight, s->weight);
		}
	}
	lb_build_rings();
	http_err_response(NULL, NULL, 503, &(uint32_t){0}); /* builds the pages before threads */
}
