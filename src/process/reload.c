/* Hitless reload and systemd notifications (docs/admin.md, "Reload"; docs/internals/reload.md).
 *
 * The running process (old) fork+execs its own binary with the same command line. The child
 * (new) inherits, across exec, every listening socket, the admin socket, a memfd holding the
 * runtime state (the state file's format), the write end of a pipe and one end of a socket pair
 * on which old later sends its idle client connections (src/proxy/connpass.c) and a pipe holding
 * the TLS session ticket keys (src/ssl/ssl-tickets.c); KEEL_RELOAD in its environment names
 * them: "ready=FD state=FD cli=FD conns=FD tickets=FD fds=FD,FD,...". new loads its configuration,
 * adopts the inherited sockets whose addresses are still bound (the same sockets: connections
 * waiting in their backlogs are kept), binds the others, closes the inherited ones it no longer
 * needs, restores the state, starts its workers and writes "ready" to the pipe, or "error: ..."
 * and exits. old waits for that line (RELOAD_TIMEOUT_MS at most): on "ready" it soft-stops
 * (SIGTERM to itself), otherwise it keeps serving and reports the error.
 *
 * Between fork and exec the child only makes async-signal-safe calls (fcntl, sigprocmask,
 * execve): old is multithreaded. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <keel/cfg.h>
#include <keel/cli.h>
#include <keel/common.h>
#include <keel/connpass.h>
#include <keel/listener.h>
#include <keel/log.h>
#include <keel/process.h>
#include <keel/reload.h>
#include <keel/spawner.h>
#include <keel/ssl.h>
#include <keel/state.h>

#define RELOAD_ENV "KEEL_RELOAD"
#define RELOAD_TIMEOUT_MS 25000 /* under keelctl's 30 s: the admin command always answers */
#define RELOAD_MAX_FDS 4096


atomic_bool keel_stopping;
atomic_bool keel_handed_over;

static char **saved_argv;
static char exe_path[PATH_MAX];
static atomic_bool reloading;

/* What a process started by a reload inherited; ready_fd -1 otherwise. */
static struct {
	int ready_fd, state_fd, cli_fd, conns_fd, tickets_fd;
	int n;
	int *fds;
	struct sockaddr_storage *addr;
} inh = {.ready_fd = -1, .state_fd = -1, .cli_fd = -1, .conns_fd = -1, .tickets_fd = -1};

/* ---- the new process ---- */

static int parse_fd(const char *s, char **end)
{
	long v;

	errno = 0;
	v = strtol(s, end, 10);
	if (*end == s || errno || v < 3 || v > INT_MAX || fcntl((int)v, F_GETFD) == -1)
		return -1;
	/* Back to close-on-exec: the next reload passes on only what it chooses. */
	fcntl((int)v, F_SETFD, FD_CLOEXEC);
	return (int)v;
}

static void parse_env(const char *env)
{
	char *copy = xstrdup(env), *tok, *save = NULL, *end;

	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (!strncmp(tok, "ready=", 6)) {
			inh.ready_fd = parse_fd(tok + 6, &end);
		} else if (!strncmp(tok, "state=", 6)) {
			inh.state_fd = parse_fd(tok + 6, &end);
		} else if (!strncmp(tok, "cli=", 4)) {
			inh.cli_fd = parse_fd(tok + 4, &end);
		} else if (!strncmp(tok, "conns=", 6)) {
			inh.conns_fd = parse_fd(tok + 6, &end);
		} else if (!strncmp(tok, "tickets=", 8)) {
			inh.tickets_fd = parse_fd(tok + 8, &end);
		} else if (!strncmp(tok, "fds=", 4)) {
			const char *p = tok + 4;

			while (*p && inh.n < RELOAD_MAX_FDS) {
				int fd = parse_fd(p, &end);
				socklen_t len = sizeof(*inh.addr);

				if (fd < 0)
					break;
				inh.fds = xrealloc(inh.fds, sizeof(*inh.fds) * (size_t)(inh.n + 1));
				inh.addr =
				    xrealloc(inh.addr, sizeof(*inh.addr) * (size_t)(inh.n + 1));
				memset(&inh.addr[inh.n], 0, sizeof(*inh.addr));
				getsockname(fd, (struct sockaddr *)&inh.addr[inh.n], &len);
				inh.fds[inh.n++] = fd;
				p = *end == ',' ? end + 1 : end;
			}
		}
	}
	free(copy);
}

void keel_reload_init(char **argv)
{
	const char *env = getenv(RELOAD_ENV);
	ssize_t n;

	saved_argv = argv;
	/* The path, not /proc/self/exe itself: a binary replaced at the same path (an upgrade)
	 * is what the next reload runs. */
	n = readlink("/proc/self/exe", exe_path, sizeof(exe_path) - 1);
	if (n <= 0 || n >= (ssize_t)sizeof(exe_path) - 1 || strstr(exe_path, " (deleted)"))
		snprintf(exe_path, sizeof(exe_path), "/proc/self/exe");
	else
		exe_path[n] = 0;
	if (!env)
		return;
	parse_env(env);
	unsetenv(RELOAD_ENV);
	/* systemd's watchdog variables name the process they were given to, a previous keel (our
	 * parent, or with chroot our spawner's): now this one. */
	if (getenv("WATCHDOG_PID")) {
		char pid[16];

		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		setenv("WATCHDOG_PID", pid, 1);
	}
}

bool keel_reloaded(void)
{
	return inh.ready_fd >= 0;
}

static void report(const char *line)
{
	size_t len = strlen(line), off = 0;

	while (off < len) {
		ssize_t w = write(inh.ready_fd, line + off, len - off);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(inh.ready_fd);
	inh.ready_fd = -1;
}

void keel_reload_failed(const char *msg)
{
	char *line;

	if (inh.ready_fd < 0)
		return;
	line = strfmt("error: %s\n", msg && *msg ? msg : "the new process could not start");
	/* One line: a multi-line message would be cut by the reader anyway. */
	for (char *p = line; p[0] && p[1]; p++)
		if (*p == '\n')
			*p = ' ';
	report(line);
	free(line);
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
	}
	return false;
}

int keel_reload_take_listeners(const struct sockaddr_storage *addr, int *fds, int max)
{
	int i, n = 0;

	for (i = 0; i < inh.n && n < max; i++) {
		if (inh.fds[i] < 0 || !same_addr(addr, &inh.addr[i]))
			continue;
		fds[n++] = inh.fds[i];
		inh.fds[i] = -1;
	}
	return n;
}

int keel_reload_take_cli(const char *path)
{
	struct sockaddr_un un;
	socklen_t len = sizeof(un);
	int fd = inh.cli_fd;

	if (fd < 0 || getsockname(fd, (struct sockaddr *)&un, &len) == -1 ||
	    len <= offsetof(struct sockaddr_un, sun_path) ||
	    strncmp(un.sun_path, path, sizeof(un.sun_path)))
		return -1;
	inh.cli_fd = -1;
	return fd;
}

void keel_reload_close_unused(void)
{
	int i;

	/* Addresses no longer in the configuration: their sockets close with the old process. */
	for (i = 0; i < inh.n; i++)
		if (inh.fds[i] >= 0)
			close(inh.fds[i]);
	free(inh.fds);
	free(inh.addr);
	inh.fds = NULL;
	inh.addr = NULL;
	inh.n = 0;
	if (inh.cli_fd >= 0)
		close(inh.cli_fd);
	inh.cli_fd = -1;
}

int keel_reload_state_fd(void)
{
	return inh.state_fd;
}

int keel_reload_take_conns(void)
{
	int fd = inh.conns_fd;

	inh.conns_fd = -1;
	return fd;
}

int keel_reload_take_tickets(void)
{
	int fd = inh.tickets_fd;

	inh.tickets_fd = -1;
	return fd;
}

/* ---- the old process ---- */

/* "KEEL_RELOAD=..." naming the descriptors the new process inherits. */
static char *child_env(const struct reload_fds *f)
{
	size_t cap = 112 + (size_t)f->n * 12, len;
	char *s = xmalloc(cap);
	int i;

	len = (size_t)snprintf(s, cap,
			       RELOAD_ENV "=ready=%d state=%d cli=%d conns=%d tickets=%d fds=",
			       f->ready, f->state, f->cli, f->conns, f->tickets);
	for (i = 0; i < f->n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s%d", i ? "," : "", f->fds[i]);
	return s;
}

/* The environment of the new process: "ours" (KEEL_RELOAD, first: keel_reload_envp_free()
 * frees it) then our own variables. */
static char **child_environ(char *ours)
{
	size_t n = 0, i, k = 0;
	char **envp;

	while (environ[n])
		n++;
	envp = xcalloc(n + 2, sizeof(*envp));
	envp[k++] = ours;
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], RELOAD_ENV "=", sizeof(RELOAD_ENV)))
			envp[k++] = environ[i];
	envp[k] = NULL;
	return envp;
}

char **keel_reload_envp(const struct reload_fds *f)
{
	return child_environ(child_env(f));
}

void keel_reload_exec(char **envp, const struct reload_fds *f)
{
	sigset_t none;
	int i;

	fcntl(f->ready, F_SETFD, 0);
	fcntl(f->state, F_SETFD, 0);
	if (f->cli >= 0)
		fcntl(f->cli, F_SETFD, 0);
	if (f->conns >= 0)
		fcntl(f->conns, F_SETFD, 0);
	if (f->tickets >= 0)
		fcntl(f->tickets, F_SETFD, 0);
	for (i = 0; i < f->n; i++)
		fcntl(f->fds[i], F_SETFD, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(exe_path, saved_argv, envp);
	_exit(127);
}

/* Kills a new process that is not ready in time; ours, or the spawner's child. */
static void kill_new(pid_t pid, bool ours)
{
	if (!ours) {
		spawner_kill(pid);
		return;
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Reads the new process's one-line verdict. Returns OK ("ready"), or ERR with *err. ours: it is
 * our child (not the spawner's), whose exit status can be read. */
static int wait_verdict(int fd, pid_t pid, bool ours, char **err)
{
	char buf[1024];
	size_t n = 0;
	uint64_t deadline;
	struct timespec ts;
	int status;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	deadline = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + RELOAD_TIMEOUT_MS;
	while (n < sizeof(buf) - 1 && !memchr(buf, '\n', n)) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		uint64_t now;
		ssize_t r;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
		if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) == 0) {
			kill_new(pid, ours);
			*err = strfmt("the new process (pid %d) was not ready after %d s: killed",
				      (int)pid, RELOAD_TIMEOUT_MS / 1000);
			return ERR;
		}
		r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	if (!strcmp(buf, "ready\n"))
		return OK;
	while (ours && waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (!strncmp(buf, "error: ", 7)) {
		buf[strcspn(buf, "\n")] = 0;
		*err = strfmt("%s", buf + 7);
	} else if (!ours) {
		*err = strfmt("the new process (pid %d) exited before it was ready", (int)pid);
	} else if (WIFEXITED(status)) {
		*err = strfmt("the new process exited with status %d before it was ready",
			      WEXITSTATUS(status));
	} else {
		*err = strfmt("the new process was killed by signal %d before it was ready",
			      WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	}
	return ERR;
}

int keel_reload(int *newpid, char **err)
{
	int rp[2] = {-1, -1}, hv[2] = {-1, -1}, state_fd = -1, tickets_fd = -1, n, i, rc = ERR;
	int *fds = NULL;
	struct reload_fds f;
	char **envp = NULL;
	pid_t pid;

	if (atomic_exchange(&reloading, true)) {
		*err = strfmt("a reload is already in progress");
		return ERR;
	}
	if (atomic_load(&keel_stopping)) {
		*err = strfmt("keel is stopping");
		goto out;
	}
	keel_log(LOG_LVL_NOTICE, "reload: starting a new process (%s)", exe_path);
	{
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
			   (unsigned long long)ts.tv_sec * 1000000 +
			       (unsigned long long)ts.tv_nsec / 1000);
	}
	n = listeners_fds(NULL, 0);
	fds = xcalloc((size_t)n + 1, sizeof(*fds));
	listeners_fds(fds, n);
	state_fd = state_handover_fd(err);
	if (state_fd < 0)
		goto out;
	/* Without them the reload still works: returning TLS clients do one full handshake. */
	{
		char *terr = NULL;

		tickets_fd = ssl_tickets_handover_fd(&terr);
		if (tickets_fd < 0) {
			keel_log(LOG_LVL_WARNING, "reload: TLS ticket keys not passed on: %s", terr);
			free(terr);
		}
	}
	if (pipe2(rp, O_CLOEXEC) == -1) {
		*err = strfmt("pipe: %s", strerror(errno));
		goto out;
	}
	/* Without it the reload still works: idle connections then close as at a stop. */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, hv) == -1)
		keel_log(LOG_LVL_WARNING, "reload: socketpair: %s; idle connections will be closed, not handed over",
			 strerror(errno));
	f = (struct reload_fds){.ready = rp[1], .state = state_fd, .cli = cli_listen_fd(),
				.conns = hv[1], .tickets = tickets_fd, .fds = fds, .n = n};
	if (spawner_active()) {
		/* chroot: the spawner, outside the jail, starts the new process */
		if (spawner_spawn(&f, &pid, err) != OK)
			goto out;
	} else {
		/* built before fork: the child of a multithreaded process only execs */
		envp = keel_reload_envp(&f);
		pid = fork();
		if (pid == 0)
			keel_reload_exec(envp, &f);
		if (pid < 0) {
			*err = strfmt("fork: %s", strerror(errno));
			goto out;
		}
	}
	close(rp[1]);
	rp[1] = -1;
	if (hv[1] >= 0)
		close(hv[1]);
	hv[1] = -1;
	if (wait_verdict(rp[0], pid, !spawner_active(), err) != OK)
		goto out;
	*newpid = (int)pid;
	rc = OK;
out:
	if (rc != OK) {
		keel_log(LOG_LVL_ALERT, "reload failed: %s; this process goes on serving", *err);
		sd_notifyf(0, "READY=1\nSTATUS=reload failed: %s", *err);
	} else {
		keel_log(LOG_LVL_NOTICE, "reload: new process %d serving; soft stop of this one",
			 *newpid);
		atomic_store(&keel_handed_over, true);
		if (hv[0] >= 0)
			connpass_set_out(hv[0]);
		hv[0] = -1;
		keel_stop_accepting();
		kill(getpid(), SIGTERM); /* the main thread's soft stop (deadline, handover) */
	}
	for (i = 0; i < 2; i++) {
		if (rp[i] >= 0)
			close(rp[i]);
		if (hv[i] >= 0)
			close(hv[i]);
	}
	if (state_fd >= 0)
		close(state_fd);
	if (tickets_fd >= 0)
		close(tickets_fd);
	free(fds);
	if (envp)
		free(envp[0]);
	free(envp);
	if (rc != OK)
		atomic_store(&reloading, false);
	return rc;
}

/* ---- systemd ---- */

static uint64_t watchdog_us, last_ping_us;

void keel_reload_ready(void)
{
	uint64_t usec = 0;

	if (inh.state_fd >= 0)
		close(inh.state_fd);
	inh.state_fd = -1;
	if (inh.tickets_fd >= 0)
		close(inh.tickets_fd);
	inh.tickets_fd = -1;
	if (inh.ready_fd >= 0)
		report("ready\n");
	if (sd_watchdog_enabled(0, &usec) > 0)
		watchdog_us = usec;
	/* MAINPID: after a reload systemd follows the new process (NotifyAccess=all). */
	sd_notifyf(0, "MAINPID=%d\nREADY=1\nSTATUS=serving", (int)getpid());
}

void keel_notify_tick(uint64_t now)
{
	/* After a handover the new process pings: ours would hide a hung successor. */
	if (!watchdog_us || now - last_ping_us < watchdog_us / 2 || atomic_load(&keel_handed_over))
		return;
	last_ping_us = now;
	sd_notify(0, "WATCHDOG=1");
}

void keel_notify_stopping(void)
{
	if (!atomic_load(&keel_handed_over))
		sd_notify(0, "STOPPING=1");
}
