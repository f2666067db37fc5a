/* The modules keel is made of, registered once at start (src/process/modules.c). */
#ifndef KEEL_MODULES_H
#define KEEL_MODULES_H

/* Registers every module's configuration sections and keywords, its hooks into the proxy
 * sections, and the admin layer's services and subscriptions, in a fixed order (the order in
 * which their hooks run). Idempotent. Call before loading a configuration. */
void keel_modules_register(void);

#endif
