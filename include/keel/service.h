/* Services: pages keel answers itself instead of a server, provided by an upper layer (the stats
 * and metrics pages of src/admin/) and registered at start, so that the request path calls them
 * without knowing them (src/proxy/service.c). */
#ifndef KEEL_SERVICE_H
#define KEEL_SERVICE_H

#include <keel/http-t.h>
#include <keel/proxy-t.h>
#include <keel/service-t.h>

/* Registers svc (at start, before the configuration is loaded: rules look services up). */
void http_service_register(const struct http_service *svc);
/* The service named name, or NULL. */
const struct http_service *http_service_find(const char *name);
/* The services that fe has at their own URIs, as a bit mask (bit i: the i-th registered); the
 * proxy module keeps it in fe->svc_mask once the configuration is loaded. */
unsigned http_service_mask(const struct proxy *fe);
/* The first service of fe->svc_mask that claims a request to fe by its URI, or NULL. */
const struct http_service *http_service_claim(const struct proxy *fe, const struct http_head *h);

#endif
