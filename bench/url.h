/* url: http://HOST[:PORT][/path] for the bench clients, loopback addresses only. */
#ifndef BENCH_URL_H
#define BENCH_URL_H

#include <sys/socket.h>

struct url {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char host[300];	 /* as written in the URL, port included: the Host header */
	char path[4096]; /* "/" when the URL has none */
};

#define URL_OK 0
#define URL_ERR_SYNTAX -1
#define URL_ERR_NOT_LOOPBACK -2 /* an address outside 127.0.0.0/8 and ::1, or a host name */

/* Parses s into u. HOST is an IPv4 address, [IPv6] or localhost (127.0.0.1). Returns URL_OK or
 * one of the URL_ERR_* codes. */
int url_parse(const char *s, struct url *u);

#endif
