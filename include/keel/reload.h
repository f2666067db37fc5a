/* Hitless reload and systemd notifications (src/process/reload.c, docs/internals/reload.md). */
#ifndef KEEL_RELOAD_H
#define KEEL_RELOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* Hitless reload (docs/admin.md, "Reload"; docs/internals/reload.md). keel_reload_init(): first
 * thing in main(); remembers argv and the binary, and in a process started by a reload takes the
 * descriptors the previous process passed (KEEL_RELOAD in the environment). keel_reload_failed():
 * such a process could not start (msg: the first error): tells the previous one, which keeps
 * serving. keel_reload(): starts a new process with the same command line, waits until it serves
 * (OK, its pid in *newpid; this process then soft-stops) or failed (ERR, *err malloc'd). Called
 * by the main thread (SIGUSR2, SIGHUP) or the admin thread ("reload"); one at a time. */
void keel_reload_init(char **argv);
void keel_reload_failed(const char *msg);
int keel_reload(int *newpid, char **err);
/* In a process started by a reload: the inherited sockets bound to addr (at most max, into fds;
 * each is handed out once), and the inherited admin socket when it is bound to path (else -1). */
int keel_reload_take_listeners(const struct sockaddr_storage *addr, int *fds, int max);
int keel_reload_take_cli(const char *path);
/* The rest of the new process's side: true when started by a reload; closes the inherited
 * sockets nobody took (after listeners_bind() and cli_bind()); the inherited state (a memfd in
 * the state file's format, -1: none); "ready" to the old process, READY=1 (and MAINPID) to
 * systemd, the watchdog armed (any start, reload or not). */
/* The descriptors a new process inherits (-1: none). */
struct reload_fds {
	int ready;      /* the pipe's write end: "ready" or "error: ..." */
	int state;      /* memfd: the runtime state, in the state file's format */
	int cli;        /* the admin socket */
	int conns;      /* where the old process sends its idle client connections (connpass.h) */
	int tickets;    /* a pipe holding the TLS session ticket keys (ssl_tickets_handover_fd()) */
	const int *fds; /* listening sockets */
	int n;
};
/* The new process's environment (KEEL_RELOAD naming the descriptors of f), malloc'd, then the
 * exec itself, which never returns: for keel_reload() and the chroot spawner
 * (src/process/spawner.c). Between fork and exec in a multithreaded process, only
 * keel_reload_exec() may be called: it makes async-signal-safe calls only. */
char **keel_reload_envp(const struct reload_fds *f);
void keel_reload_exec(char **envp, const struct reload_fds *f) __attribute__((noreturn));
bool keel_reloaded(void);
void keel_reload_close_unused(void);
int keel_reload_state_fd(void);
/* The socket on which the old process sends its idle client connections, -1 when none; the
 * caller owns it then. */
int keel_reload_take_conns(void);
/* The pipe holding the previous process's TLS ticket keys, -1 when none; the caller owns it. */
int keel_reload_take_tickets(void);
void keel_reload_ready(void);
/* systemd: WATCHDOG=1 at half of WATCHDOG_USEC (main thread, now in us); STOPPING=1 unless the
 * process handed over to a new one. Without systemd (no NOTIFY_SOCKET) they do nothing. */
void keel_notify_tick(uint64_t now);
void keel_notify_stopping(void);
/* Set by the main thread at a stop (a reload is then refused); set by keel_reload() when a new
 * process took over (this one then soft-stops, leaves the pid file and the admin socket file). */
extern atomic_bool keel_stopping;
extern atomic_bool keel_handed_over;

#endif
