/* Dynamic servers: "add server", "del server", "set server B/S addr" (src/proxy/server.c,
 * docs/internals/dynamic-servers.md). All of these run on the admin thread; the workers only
 * read what they publish (the backend's server count, a server's address) with acquire loads. */
#ifndef KEEL_SERVER_H
#define KEEL_SERVER_H

#include <stdatomic.h>
#include <stddef.h>

#include <keel/proxy-t.h>

/* Bumped (release) by "del server" and "set server addr": each worker then purges its idle
 * connections that must not be reused. */
extern atomic_uint server_changes;

/* Subscribes fn to server changes: a server's admin state, runtime weight, check switch or
 * address changed, or it was added or deleted at runtime (the state file subscribes). At start,
 * before the workers. fn runs on any thread, maybe under the server's health mutex: it must not
 * block or do I/O. */
void server_on_change(void (*fn)(struct server *srv));
/* Tells the subscribers that srv changed (health.c and the dynamic-server functions call it). */
void server_changed(struct server *srv);

/* The number of published servers of p: p->srv[0..n) are complete. */
static inline int server_count(const struct proxy *p)
{
	return atomic_load_explicit(&p->nsrv, memory_order_acquire);
}

static inline bool server_deleted(const struct server *s)
{
	return atomic_load_explicit(&s->deleted, memory_order_relaxed);
}

/* The address workers connect to and its generation (0: the configured one). */
static inline unsigned server_addr(const struct server *s, struct sockaddr_storage *ss,
				   socklen_t *len, bool *port_from_client)
{
	const struct srv_addr *a = atomic_load_explicit(&s->paddr, memory_order_acquire);

	if (!a) {
		if (ss)
			*ss = s->addr;
		if (len)
			*len = s->addrlen;
		if (port_from_client)
			*port_from_client = s->port_from_client;
		return 0;
	}
	if (ss)
		*ss = a->ss;
	if (len)
		*len = a->len;
	if (port_from_client)
		*port_from_client = a->port_from_client;
	return a->gen;
}

static inline unsigned server_addr_gen(const struct server *s)
{
	const struct srv_addr *a = atomic_load_explicit(&s->paddr, memory_order_acquire);

	return a ? a->gen : 0;
}

/* "add server B/S ADDR [options]": args[0] is "B/S", args[1] the address, then server options
 * as in the configuration. The new server starts in maintenance (as in HAProxy). OK, or ERR
 * with a one-line reason in err (err_len bytes). who ("admin socket", "state file") is logged. */
int server_add(int argc, char **argv, const char *who, char *err, size_t err_len);
/* "del server": s must be in maintenance with nothing in flight or queued. */
int server_del(struct server *s, const char *who, char *err, size_t err_len);
/* "set server B/S addr IP [port P]": port 0 keeps the current port. */
int server_set_addr(struct server *s, const char *ip, int port, const char *who, char *err,
		    size_t err_len);
/* The address a server uses now, as "IP" or "IP:PORT" text for the admin socket and the state file. */
void server_addr_str(const struct server *s, char *buf, size_t len);

#endif
