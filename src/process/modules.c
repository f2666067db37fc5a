/* The list of modules, lowest layer first: the only place that knows them all. A module brings
 * its configuration keywords and sections (cfg_register()), its part in the proxy sections
 * (proxy_register_hooks()) and, for the admin layer, the services and events it subscribes to.
 * Order matters where hooks run in sequence: the global section's defaults first, the checks of
 * a backend in the order check, health, stick tables. */
#include <stdbool.h>

#include <keel/admin.h>
#include <keel/check.h>
#include <keel/health.h>
#include <keel/cookie.h>
#include <keel/drain.h>
#include <keel/global.h>
#include <keel/modules.h>
#include <keel/proxy.h>
#include <keel/stick.h>

void keel_modules_register(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	global_register(); /* ground: the global section */
	proxy_register();  /* runtime: proxy sections, binds, servers, rules, balancing */
	check_register();  /* active checks and the agent */
	health_register(); /* passive health, per-try timeouts, retry budget */
	cookie_register(); /* cookie persistence */
	stick_register();  /* stick tables */
	drain_register();  /* drain limits of sticky users */
	admin_register();  /* admin socket, state file, stats and metrics pages, history */
}
