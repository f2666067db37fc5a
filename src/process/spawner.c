/* The reload spawner (docs/internals/reload.md, "With chroot").
 *
 * A process in a chroot jail cannot exec keel again: the binary, its libraries and the
 * configuration are outside the jail, and the process no longer has the privileges to bind a
 * port below 1024 or to chroot a new process. So when keel is about to chroot, it first forks this
 * small process, which stays outside the jail with the privileges keel started with and does one
 * thing: when the serving process asks for a reload, it receives the descriptors the new process
 * must inherit (the pipe it reports on, the state memfd, the admin socket, the socket on which
 * idle connections are handed over, the pipe holding the TLS ticket keys, the listening sockets)
 * and fork+execs keel with them, as the serving process itself does without chroot. The new
 * process starts its own spawner before it chroots. This one exits when the serving process
 * closes its end of the socket (its stop, or its exit after a handover).
 *
 * The protocol, on a SOCK_SEQPACKET socketpair: struct spawn_msg, with up to SPAWN_BATCH
 * descriptors in SCM_RIGHTS. SPAWN_FDS messages carry the descriptors in order (ready pipe,
 * state memfd, admin socket if any, the handover socket if any, the ticket keys' pipe if any,
 * listening sockets); SPAWN_GO forks and execs, and is answered
 * with the new pid or an errno; SPAWN_KILL kills a new process that did not get ready in time
 * (the serving process, as an unprivileged user, may not). */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <keel/common.h>
#include <keel/reload.h>
#include <keel/spawner.h>

#define SPAWN_BATCH 200 /* descriptors per message (the kernel takes at most 253) */
#define SPAWN_MAX 4096

enum spawn_kind { SPAWN_FDS = 1, SPAWN_GO, SPAWN_KILL };

/* SPAWN_GO: which of the optional descriptors follow the ready pipe and the state memfd. */
#define SPAWN_HAS_CLI 1u   /* the admin socket */
#define SPAWN_HAS_CONNS 2u /* the socket for the idle connections' handover */
#define SPAWN_HAS_TICKETS 4u /* the pipe holding the TLS ticket keys */

struct spawn_msg {
	int32_t kind;  /* enum spawn_kind */
	uint32_t opt;  /* SPAWN_GO: SPAWN_HAS_* */
	int32_t pid;   /* SPAWN_KILL: whom; the answer to SPAWN_GO: the new pid, or -errno */
};

static int spawner_fd = -1; /* the serving process's end; -1: no spawner */

bool spawner_active(void)
{
	return spawner_fd >= 0;
}

/* ---- the spawner ---- */

/* Receives one message and appends its descriptors to fds. Returns false at EOF or on error. */
static bool recv_msg(int sock, struct spawn_msg *m, int *fds, int *n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * SPAWN_BATCH)];
	struct iovec iov = {m, sizeof(*m)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *c;
	ssize_t r;

	do
		r = recvmsg(sock, &mh, 0);
	while (r == -1 && errno == EINTR);
	if (r != (ssize_t)sizeof(*m))
		return false;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t k, cnt;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (k = 0; k < cnt; k++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
			if (*n < SPAWN_MAX)
				fds[(*n)++] = fd;
			else
				close(fd);
		}
	}
	return true;
}

static void close_all(int *fds, int *n)
{
	while (*n > 0)
		close(fds[--*n]);
}

static void __attribute__((noreturn)) spawner_main(int sock)
{
	static int fds[SPAWN_MAX];
	struct spawn_msg m;
	int n = 0;

	signal(SIGCHLD, SIG_IGN); /* a new process that fails is reaped by the kernel */
	for (;;) {
		if (!recv_msg(sock, &m, fds, &n))
			_exit(0); /* the serving process is gone */
		if (m.kind == SPAWN_KILL && m.pid > 0) {
			kill(m.pid, SIGKILL);
		} else if (m.kind == SPAWN_GO) {
			int need = 2 + !!(m.opt & SPAWN_HAS_CLI) + !!(m.opt & SPAWN_HAS_CONNS) +
				   !!(m.opt & SPAWN_HAS_TICKETS);
			pid_t pid = n >= need ? fork() : (errno = EINVAL, -1);
			struct spawn_msg ans = {.kind = SPAWN_GO};

			if (pid == 0) {
				int k = 2;
				struct reload_fds f = {.ready = fds[0], .state = fds[1]};

				f.cli = m.opt & SPAWN_HAS_CLI ? fds[k++] : -1;
				f.conns = m.opt & SPAWN_HAS_CONNS ? fds[k++] : -1;
				f.tickets = m.opt & SPAWN_HAS_TICKETS ? fds[k++] : -1;
				f.fds = fds + k;
				f.n = n - k;
				signal(SIGCHLD, SIG_DFL);
				keel_reload_exec(keel_reload_envp(&f), &f);
			}
			ans.pid = pid > 0 ? (int32_t)pid : -errno;
			close_all(fds, &n);
			if (send(sock, &ans, sizeof(ans), MSG_NOSIGNAL) != sizeof(ans))
				_exit(0);
		} else if (m.kind != SPAWN_FDS) {
			close_all(fds, &n);
		}
	}
}

int spawner_start(char **err)
{
	int sv[2];
	pid_t parent = getpid(), pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		*err = strfmt("cannot start the reload spawner: socketpair: %s", strerror(errno));
		return ERR;
	}
	pid = fork();
	if (pid == -1) {
		*err = strfmt("cannot start the reload spawner: fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return ERR;
	}
	if (pid == 0) {
		/* Single-threaded here (before the workers): only its socket and stdio are kept, so
		 * that no listening socket or file stays open in it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		if (sv[1] > 3)
			close_range(3, (unsigned)sv[1] - 1, 0);
		close_range((unsigned)sv[1] + 1, ~0u, 0);
		spawner_main(sv[1]);
	}
	close(sv[1]);
	spawner_fd = sv[0];
	return OK;
}

/* ---- the serving process's side ---- */

static int send_fds(const int *fds, int n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * SPAWN_BATCH)];
	struct spawn_msg m = {.kind = SPAWN_FDS};
	struct iovec iov = {&m, sizeof(m)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *c;

	memset(cbuf, 0, sizeof(cbuf));
	mh.msg_control = cbuf;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
	return sendmsg(spawner_fd, &mh, MSG_NOSIGNAL) == (ssize_t)sizeof(m) ? OK : ERR;
}

int spawner_spawn(const struct reload_fds *f, pid_t *pid, char **err)
{
	int first[5] = {f->ready, f->state}, k = 2, i;
	struct spawn_msg m = {.kind = SPAWN_GO};
	ssize_t r;

	if (f->cli >= 0) {
		first[k++] = f->cli;
		m.opt |= SPAWN_HAS_CLI;
	}
	if (f->conns >= 0) {
		first[k++] = f->conns;
		m.opt |= SPAWN_HAS_CONNS;
	}
	if (f->tickets >= 0) {
		first[k++] = f->tickets;
		m.opt |= SPAWN_HAS_TICKETS;
	}
	if (send_fds(first, k) != OK)
		goto io;
	for (i = 0; i < f->n; i += SPAWN_BATCH)
		if (send_fds(f->fds + i, MIN(SPAWN_BATCH, f->n - i)) != OK)
			goto io;
	if (send(spawner_fd, &m, sizeof(m), MSG_NOSIGNAL) != sizeof(m))
		goto io;
	/* The spawner answers at once (it only forks): a blocking read is bounded. */
	do
		r = recv(spawner_fd, &m, sizeof(m), 0);
	while (r == -1 && errno == EINTR);
	if (r != sizeof(m))
		goto io;
	if (m.pid < 0) {
		*err = strfmt("the reload spawner cannot fork: %s", strerror(-m.pid));
		return ERR;
	}
	*pid = m.pid;
	return OK;
io:
	*err = strfmt("the reload spawner is gone (%s): restart keel to reload",
		      errno ? strerror(errno) : "closed");
	return ERR;
}

void spawner_kill(pid_t pid)
{
	struct spawn_msg m = {.kind = SPAWN_KILL, .pid = (int32_t)pid};

	if (send(spawner_fd, &m, sizeof(m), MSG_NOSIGNAL) != sizeof(m))
		return; /* the spawner is gone: so is its child's only reason to exist */
}
