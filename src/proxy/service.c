/* The registry of services (include/keel/service.h). Filled at start, read-only afterwards. */
#include <string.h>

#include <keel/common.h>
#include <keel/proxy-t.h>
#include <keel/service.h>

#define MAX_SERVICES 8 /* the bits of struct proxy's svc_mask */

static const struct http_service *services[MAX_SERVICES];
static int nservices;

void http_service_register(const struct http_service *svc)
{
	REGISTER(services, nservices, svc);
}

const struct http_service *http_service_find(const char *name)
{
	int i;

	for (i = 0; i < nservices; i++)
		if (services[i]->name && !strcmp(services[i]->name, name))
			return services[i];
	return NULL;
}

unsigned http_service_mask(const struct proxy *fe)
{
	unsigned mask = 0;
	int i;

	for (i = 0; i < nservices; i++)
		if (services[i]->on && services[i]->on(fe))
			mask |= 1u << i;
	return mask;
}

const struct http_service *http_service_claim(const struct proxy *fe, const struct http_head *h)
{
	int i;

	for (i = 0; i < nservices; i++)
		if ((fe->svc_mask & (1u << i)) && services[i]->claims(fe, h))
			return services[i];
	return NULL;
}
