/* Idle client connections handed from the old process to the new one at a reload
 * (src/proxy/connpass.c; docs/internals/reload.md, "Idle connections"). */
#ifndef KEEL_CONNPASS_H
#define KEEL_CONNPASS_H

#include <stdbool.h>
#include <stdint.h>

/* Most descriptors in one message (the kernel takes at most 253). */
#define CONNPASS_BATCH 200

/* The old process. connpass_set_out(): where idle connections go, once the new process serves
 * (the process layer; the descriptor is taken). connpass_ready(): whether they can go; while
 * they can, responses during a soft stop stay keep-alive. connpass_send(): sends n sockets
 * (1..CONNPASS_BATCH): OK (the caller then forgets and closes its copies), AGAIN (the new
 * process is behind: try again soon) or ERR (it is gone: connpass_ready() is false from then on). */
void connpass_set_out(int fd);
bool connpass_ready(void);
int connpass_send(const int *fds, int n);
/* Connections sent so far. */
uint64_t connpass_count(void);

/* The new process. connpass_set_in(): the inherited socket the connections arrive on
 * (keel_reload_take_conns()), before the nworkers workers start. connpass_thread_start(): each
 * of them then takes connections from it as they come, each served by the listener it would have
 * been accepted on, until the old process closes it. OK, or ERR with *err. */
void connpass_set_in(int fd, int nworkers);
int connpass_thread_start(char **err);

#endif
