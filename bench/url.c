/* url: parsing the bench clients' target (see url.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"

int url_parse(const char *s, struct url *u)
{
	const char *h, *p, *e;
	char name[256];
	long port = 80;
	size_t n;

	memset(u, 0, sizeof(*u));
	if (strncmp(s, "http://", 7))
		return URL_ERR_SYNTAX;
	h = s + 7;
	if (*h == '[') {
		e = strchr(h, ']');
		if (!e)
			return URL_ERR_SYNTAX;
		n = (size_t)(e - h - 1);
		p = e + 1;
		h++;
	} else {
		p = h + strcspn(h, ":/");
		n = (size_t)(p - h);
	}
	if (!n || n >= sizeof(name))
		return URL_ERR_SYNTAX;
	memcpy(name, h, n);
	name[n] = 0;
	if (*p == ':') {
		char *end;

		if (p[1] < '0' || p[1] > '9')
			return URL_ERR_SYNTAX;
		port = strtol(p + 1, &end, 10);
		if (end == p + 1 || port < 1 || port > 65535)
			return URL_ERR_SYNTAX;
		p = end;
	}
	if (*p && *p != '/')
		return URL_ERR_SYNTAX;
	if (snprintf(u->path, sizeof(u->path), "%s", *p ? p : "/") >= (int)sizeof(u->path) ||
	    strpbrk(u->path, " \t\r\n"))
		return URL_ERR_SYNTAX;
	if (snprintf(u->host, sizeof(u->host), "%.*s", (int)(p - s - 7), s + 7) >=
	    (int)sizeof(u->host))
		return URL_ERR_SYNTAX;
	if (!strcmp(name, "localhost"))
		strcpy(name, "127.0.0.1");
	if (inet_pton(AF_INET, name, &((struct sockaddr_in *)&u->addr)->sin_addr) == 1) {
		struct sockaddr_in *a = (struct sockaddr_in *)&u->addr;

		if (ntohl(a->sin_addr.s_addr) >> 24 != 127)
			return URL_ERR_NOT_LOOPBACK;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		u->addrlen = sizeof(*a);
		return URL_OK;
	}
	if (inet_pton(AF_INET6, name, &((struct sockaddr_in6 *)&u->addr)->sin6_addr) == 1) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&u->addr;

		if (!IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
			return URL_ERR_NOT_LOOPBACK;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		u->addrlen = sizeof(*a);
		return URL_OK;
	}
	return URL_ERR_NOT_LOOPBACK;
}
