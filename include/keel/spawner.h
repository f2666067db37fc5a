/* The reload spawner (src/process/spawner.c): with chroot, a small process left outside the jail
 * that starts the new process of a reload. */
#ifndef KEEL_SPAWNER_H
#define KEEL_SPAWNER_H

#include <stdbool.h>
#include <sys/types.h>

/* Forks the spawner. Called once, single-threaded, before chroot and the switch of user. OK, or
 * ERR with *err (malloc'd). */
int spawner_start(char **err);
/* Whether this process has a spawner (it chrooted): reloads go through it. */
bool spawner_active(void);
/* Passes the descriptors on and has the spawner fork+exec keel with them (see
 * keel_reload_exec()). OK with *pid, or ERR with *err. */
struct reload_fds;
int spawner_spawn(const struct reload_fds *f, pid_t *pid, char **err);
/* Kills a process the spawner started (one that is not ready in time). */
void spawner_kill(pid_t pid);

#endif
