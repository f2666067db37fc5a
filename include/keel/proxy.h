/* Proxies as configured: the list of frontends, backends and listen sections, their lookup, the
 * proxy sections of the configuration (src/proxy/proxy-kw.c) and their validation
 * (src/proxy/proxy.c). The other runtime modules take part in the proxy sections through hooks
 * they register at start (struct proxy_hooks): their defaults, their server options and their
 * checks of a complete backend. */
#ifndef KEEL_PROXY_H
#define KEEL_PROXY_H

#include <keel/cfg-t.h>
#include <keel/proxy-t.h>

/* Every proxy of the loaded configuration, in file order (struct proxy.list). */
extern struct list keel_proxies;
/* The proxy sections' keyword table (exposed for the "did you mean" unit test). */
extern const struct cfg_kw proxy_kw[];

/* Registers h (at start, before the first configuration load). */
void proxy_register_hooks(const struct proxy_hooks *h);
/* The proxy sections and their keywords (registered at start, src/process/modules.c). */
extern const struct cfg_module proxy_module;

/* The proxy named name with one of the capabilities in cap (enum proxy_cap), or NULL. */
struct proxy *proxy_by_name(const char *name, unsigned cap);
/* Whether s is a valid proxy or server name (letters, digits, '-', '_', '.', ':'). */
bool proxy_valid_name(const char *s);
/* A defaults section's starting point: keel's defaults and every module's. */
void proxy_init_defaults(struct proxy *p);
/* A new proxy inheriting from c->defaults, appended to keel_proxies; NULL (reported) when the
 * name is invalid or taken. */
struct proxy *proxy_new(struct cfg_ctx *c, const char *name, unsigned cap);
/* Parses "server NAME ADDR [options]" (argv[0] is "server") into a new server of p that is not
 * yet in p->srv (id = the next slot). NULL with the error reported through c. */
struct server *proxy_parse_server(struct cfg_ctx *c, struct proxy *p, int argc, char **argv);
/* A server option at argv[*i], asked of every module's hook (struct proxy_hooks): 1 consumed, 0 not
 * known to any module, ERR on error. */
int proxy_server_param(struct cfg_ctx *c, struct server *s, int argc, char **argv, int *i);
/* A bind option at argv[*i], asked of every module's hook, into b (the line's template): as
 * proxy_server_param(). */
int proxy_bind_param(struct cfg_ctx *c, struct bind_conf *b, int argc, char **argv, int *i);
/* Runs the modules' checks of one runtime-added server. OK or ERR (reported). */
int proxy_check_server(struct cfg_ctx *c, struct proxy *p, struct server *s);
/* Validates every proxy once the file is read (the proxy module's check hook). */
void proxy_check_all(struct cfg_ctx *c);
/* Prepares the runtime side of the loaded proxies for keel_nworkers threads: per-thread
 * counters, servers' initial states, consistent-hashing rings, the built-in error pages. Before
 * the workers start (unit tests call it too). */
void proxy_runtime_init(void);
/* Whether a proxy asks for splice(2) ("option splice-response" or "splice-auto"). */
bool proxy_any_splice(void);

#endif
