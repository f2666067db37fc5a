/* Listening sockets: bound once at start-up (one SO_REUSEPORT socket per bind and worker), then
 * accepted from by each worker's own loop. */
#ifndef KEEL_LISTENER_H
#define KEEL_LISTENER_H

#include <keel/listener-t.h>
#include <keel/proxy-t.h>

/* Binds every frontend's addresses, nbthread sockets each. inherited (may be NULL): in a process
 * started by a reload, the sockets the previous process passed on for an address (into fds, at
 * most max; their count), used instead of new ones. Returns OK, or ERR with a one-line message
 * in *err ("cannot bind 127.0.0.1:80: address already in use"). */
int listeners_bind(int nbthread, int (*inherited)(const struct sockaddr_storage *addr, int *fds, int max),
		   char **err);
/* Every listening socket bound (or inherited) at start, into fds (at most max). Returns their
 * count. Any thread: the set is fixed after start-up. For a reload, which passes them on. */
int listeners_fds(int *fds, int max);
/* Registers this worker's sockets with its loop. */
int listeners_start(char **err);
/* This worker's listener that would accept a connection made to local (its own address), an
 * exact address before the wildcard; NULL when none. Also after listeners_stop(): for
 * connections handed over at a reload. */
struct listener *listener_for(const struct sockaddr_storage *local);
/* Stops accepting (soft stop): closes this worker's sockets (after a reload, the new process
 * holds them too: they stay open there). */
void listeners_stop(void);

#endif
