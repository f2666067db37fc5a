/* The admin layer's registration (src/admin/admin.c). */
#ifndef KEEL_ADMIN_H
#define KEEL_ADMIN_H

/* Registers the admin layer's configuration keywords, the pages it serves on the frontends (the
 * stats and metrics pages) and its subscriptions: server changes to the state file, the health
 * tick to the stats page's history. */
void admin_register(void);

#endif
