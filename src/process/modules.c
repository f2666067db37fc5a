/* The list of modules, lowest layer first: the only place that knows them all. A module brings
 * its configuration keywords and sections (cfg_register()), its part in the proxy sections
 * (proxy_register_hooks()) and, for the admin layer, the services and events it subscribes to.
 * Order matters where hooks run in sequence: the global section's defaults first; a backend's
 * checks and a server's options in the order check, health, stick tables, drain. */
#include <stdbool.h>

#include <keel/acme.h>
#include <keel/admin.h>
#include <keel/cfg.h>
#include <keel/check.h>
#include <keel/cookie.h>
#include <keel/drain.h>
#include <keel/global.h>
#include <keel/health.h>
#include <keel/modules.h>
#include <keel/proxy.h>
#include <keel/service.h>
#include <keel/ssl.h>
#include <keel/stick.h>

void keel_modules_register(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	cfg_register(&global_module); /* ground: the global section */
	cfg_register(&proxy_module);  /* runtime: proxy sections, binds, servers, rules, balancing */
	cfg_register(&ssl_module);    /* TLS: certificates, bind options, global defaults */
	cfg_register(&acme_module);   /* ACME: "acme" sections, httpclient.ssl.* */
	/* Before the TLS hooks: a missing ACME certificate file is made before TLS loads it. */
	proxy_register_hooks(&acme_hooks);
	proxy_register_hooks(&ssl_hooks);
	proxy_register_hooks(&ssl_srv_hooks);
	cfg_register(&check_module);  /* active checks and the agent */
	proxy_register_hooks(&check_hooks);
	cfg_register(&health_module); /* passive health, per-try timeouts, retry budget */
	proxy_register_hooks(&health_hooks);
	cfg_register(&cookie_module); /* cookie persistence */
	cfg_register(&stick_module);  /* stick tables */
	proxy_register_hooks(&stick_hooks);
	proxy_register_hooks(&drain_hooks); /* drain limits of sticky users */
	http_service_register(&acme_http01); /* /.well-known/acme-challenge/TOKEN */
	admin_register(); /* admin socket, state file, stats and metrics pages, history */
}
