/* The admin socket's transport: "stats socket PATH" in global (docs/admin.md), its unix socket,
 * its thread, its connections and its line protocol. The commands are in src/admin/cli-cmd.c,
 * reached only through cli_cmd_run().
 *
 * Threading. The socket is created by the main thread while it is still privileged
 * (cli_bind(), before chroot and the user switch), and served by one dedicated thread
 * (cli_start()) that blocks in its own poll(): commands are rare, so no worker loop pays for them.
 * What the commands may read and change from this thread is described at the top of
 * src/admin/cli-cmd.c.
 *
 * Protocol. A client sends lines of at most CLI_LINE_MAX bytes; ';' separates commands on a line.
 * As in HAProxy, a connection runs one line and is closed after its answer, unless the line
 * enables "prompt" (interactive mode: the connection stays open, every answer is followed by the
 * prompt "> "). An error is one line starting with "error: ". */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <keel/cfg.h>
#include <keel/cli.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/global.h>

#define CLI_MAX_ARGS 48 /* "add server" takes server options */
#define CLI_MAX_CLIENTS 32
#define CLI_LINGER_MS 1000 /* how long a closing connection may take to read its answer */

/* ---- lines ---- */

int cli_err(struct sbuf *o, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sbuf_printf(o, "error: %s\n", msg);
	return ERR;
}

int cli_exec_line(struct cli_ctx *c, const char *line, size_t len, struct sbuf *o)
{
	char buf[CLI_LINE_MAX + 1];
	char *argv[CLI_MAX_ARGS + 1];
	size_t i, start = 0;
	int failed = 0;

	if (len > CLI_LINE_MAX) {
		cli_err(o, "line too long (at most %d bytes)", CLI_LINE_MAX - 1);
		return 1;
	}
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			cli_err(o, "invalid character 0x%02x in the command line", ch);
			return 1;
		}
	}
	memcpy(buf, line, len);
	buf[len] = 0;
	for (i = 0; i <= len; i++) {
		char *cmd, *tok, *save = NULL;
		int argc = 0;

		if (i < len && buf[i] != ';')
			continue;
		buf[i] = 0;
		cmd = buf + start;
		start = i + 1;
		for (tok = strtok_r(cmd, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
			if (argc == CLI_MAX_ARGS)
				break;
			argv[argc++] = tok;
		}
		if (!argc)
			continue;
		if (tok) {
			failed += cli_err(o, "too many words in one command (at most %d)",
					  CLI_MAX_ARGS) != OK;
			continue;
		}
		argv[argc] = NULL;
		failed += cli_cmd_run(c, argc, argv, o) != OK;
		if (c->quit)
			break;
	}
	return failed;
}

/* ---- the socket and its thread ---- */

struct cli_conn {
	int fd;
	struct cli_ctx ctx;
	char in[CLI_LINE_MAX];
	size_t inlen;
	/* A line that ended with "<<": it runs once its payload, the lines up to an empty one, is
	 * read (pl_line set). */
	char *pl_line;
	struct sbuf pl;
	struct sbuf out;
	size_t outpos;
	bool closing;	      /* close once out is sent */
	bool lingering;	      /* answer sent, write side shut: discarding input until EOF */
	uint64_t deadline_ms; /* idle timeout */
};

static int listen_fd = -1;
static int wake[2] = {-1, -1};
static pthread_t thread;
static bool thread_started;
static dev_t sock_dev;
static ino_t sock_ino;

static int resolve_owner(uid_t *uid, gid_t *gid, char **err)
{
	*uid = global.cli_uid >= 0 ? (uid_t)global.cli_uid : (uid_t)-1;
	*gid = global.cli_gid >= 0 ? (gid_t)global.cli_gid : (gid_t)-1;
	if (global.cli_user) {
		struct passwd *pw = getpwnam(global.cli_user);

		if (!pw) {
			*err = strfmt("stats socket: unknown user '%s'", global.cli_user);
			return ERR;
		}
		*uid = pw->pw_uid;
	}
	if (global.cli_group) {
		struct group *g = getgrnam(global.cli_group);

		if (!g) {
			*err = strfmt("stats socket: unknown group '%s'", global.cli_group);
			return ERR;
		}
		*gid = g->gr_gid;
	}
	return OK;
}

int cli_bind(int (*inherited)(const char *path), char **err)
{
	const char *path = global.cli_path;
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct stat st;
	uid_t uid;
	gid_t gid;
	mode_t old;
	int fd;

	if (!path)
		return OK;
	/* A reload: the previous process's socket, already bound to path and listening. */
	fd = inherited ? inherited(path) : -1;
	if (fd >= 0) {
		if (stat(path, &st) == 0) {
			sock_dev = st.st_dev;
			sock_ino = st.st_ino;
		}
		listen_fd = fd;
		return OK;
	}
	if (resolve_owner(&uid, &gid, err) != OK)
		return ERR;
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		*err = strfmt("stats socket '%s': %s", path, strerror(errno));
		return ERR;
	}
	if (lstat(path, &st) == 0) {
		int probe;

		if (!S_ISSOCK(st.st_mode)) {
			*err =
			    strfmt("stats socket '%s': the path exists and is not a socket", path);
			goto out_close_fd;
		}
		/* A socket file: stale unless a process still answers on it. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe != -1 && connect(probe, (struct sockaddr *)&un, sizeof(un)) == 0) {
			close(probe);
			*err =
			    strfmt("stats socket '%s' is in use by another running process", path);
			goto out_close_fd;
		}
		if (probe != -1)
			close(probe);
		if (unlink(path) == -1) {
			*err = strfmt("stats socket '%s': cannot remove the stale socket: %s", path,
				      strerror(errno));
			goto out_close_fd;
		}
	}
	/* Start-up is single-threaded here: the umask closes the window before chmod. */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&un, sizeof(un)) == -1) {
		umask(old);
		*err = strfmt("stats socket '%s': cannot bind: %s", path, strerror(errno));
		goto out_close_fd;
	}
	umask(old);
	if (chmod(path, (mode_t)global.cli_mode) == -1 ||
	    ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) == -1)) {
		*err = strfmt("stats socket '%s': cannot set its mode or owner: %s", path,
			      strerror(errno));
		goto out_unlink;
	}
	if (listen(fd, 16) == -1) {
		*err = strfmt("stats socket '%s': listen: %s", path, strerror(errno));
		goto out_unlink;
	}
	if (stat(path, &st) == 0) {
		sock_dev = st.st_dev;
		sock_ino = st.st_ino;
	}
	listen_fd = fd;
	return OK;

out_unlink:
	unlink(path);
out_close_fd:
	close(fd);
	return ERR;
}

static void conn_close(struct cli_conn **slot)
{
	struct cli_conn *k = *slot;

	close(k->fd);
	free(k->out.p);
	free(k->pl_line);
	free(k->pl.p);
	free(k);
	*slot = NULL;
}

/* A payload line of k (len bytes at k->in), or a line that starts one ("... <<"): true when it
 * was taken so. The empty line that ends a payload (or the end of the input) runs its command. */
static bool payload_line(struct cli_conn *k, size_t len, bool eof)
{
	if (!k->pl_line) {
		size_t n = len;

		while (n && (k->in[n - 1] == ' ' || k->in[n - 1] == '\t'))
			n--;
		if (n < 2 || k->in[n - 2] != '<' || k->in[n - 1] != '<')
			return false;
		k->pl_line = xstrndup(k->in, n - 2);
		k->pl.len = 0;
		if (!eof)
			return true;
	} else if (len) {
		if (k->pl.len + len + 1 > CLI_PAYLOAD_MAX) {
			cli_err(&k->out, "payload too large (at most %d bytes)", CLI_PAYLOAD_MAX);
			k->closing = true;
			return true;
		}
		sbuf_put(&k->pl, k->in, len);
		sbuf_put(&k->pl, "\n", 1);
		if (!eof)
			return true;
	}
	/* the end of the payload: run its command */
	if (k->pl.oom) {
		cli_err(&k->out, "out of memory reading the payload");
		k->closing = true;
		return true;
	}
	k->ctx.payload = k->pl.p ? k->pl.p : "";
	k->ctx.payload_len = k->pl.len;
	cli_exec_line(&k->ctx, k->pl_line, strlen(k->pl_line), &k->out);
	if (k->pl.p)
		memset(k->pl.p, 0, k->pl.len); /* it may hold a private key */
	k->ctx.payload = NULL;
	k->ctx.payload_len = 0;
	free(k->pl_line);
	k->pl_line = NULL;
	return true;
}

/* Runs the complete lines received; one line only unless the client is interactive. */
static void conn_process(struct cli_conn *k, bool eof)
{
	for (;;) {
		char *nl = memchr(k->in, '\n', k->inlen);
		size_t len, used;

		if (k->closing)
			return;
		if (!nl && eof && k->inlen) {
			nl = k->in + k->inlen; /* the last line without its newline */
			used = k->inlen;
		} else if (!nl) {
			if (k->inlen == sizeof(k->in)) {
				cli_err(&k->out, "line too long (at most %d bytes)",
					CLI_LINE_MAX - 1);
				k->closing = true;
			}
			return;
		} else {
			used = (size_t)(nl - k->in) + 1;
		}
		len = (size_t)(nl - k->in);
		if (len && k->in[len - 1] == '\r')
			len--;
		if (!payload_line(k, len, eof))
			cli_exec_line(&k->ctx, k->in, len, &k->out);
		memmove(k->in, k->in + used, k->inlen - used);
		k->inlen -= used;
		if (k->pl_line)
			continue; /* the payload goes on: no answer yet */
		if (k->ctx.quit || !k->ctx.interactive)
			k->closing = true;
		else
			sbuf_printf(&k->out, "> ");
		if (k->out.oom) {
			k->closing = true;
			return;
		}
	}
}

/* Reads what is there; false when the connection must be closed now. */
static bool conn_read(struct cli_conn *k)
{
	for (;;) {
		ssize_t n = read(k->fd, k->in + k->inlen, sizeof(k->in) - k->inlen);

		if (n > 0) {
			k->inlen += (size_t)n;
			conn_process(k, false);
			if (k->closing || k->out.len > k->outpos)
				return true;
			continue;
		}
		if (n == 0) {
			conn_process(k, true);
			k->closing = true;
			return k->out.len > k->outpos;
		}
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
	}
}

/* Sends what is pending; false when the connection must be closed now. */
static bool conn_write(struct cli_conn *k)
{
	while (k->outpos < k->out.len) {
		ssize_t n = send(k->fd, k->out.p + k->outpos, k->out.len - k->outpos, MSG_NOSIGNAL);

		if (n == -1)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
		k->outpos += (size_t)n;
	}
	k->out.len = k->outpos = 0;
	if (k->closing)
		return false;
	/* Interactive: lines that arrived while the answer was being sent. */
	conn_process(k, false);
	return true;
}

/* Lingering: reads and drops what the client still sends; false at EOF or on an error. */
static bool conn_discard(struct cli_conn *k)
{
	char sink[4096];

	for (;;) {
		ssize_t n = read(k->fd, sink, sizeof(sink));

		if (n > 0)
			continue;
		return n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
	}
}

static void accept_all(struct cli_conn **conns)
{
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), i;
		struct cli_conn *k;

		if (fd == -1)
			return;
		for (i = 0; i < CLI_MAX_CLIENTS && conns[i]; i++)
			;
		k = i < CLI_MAX_CLIENTS ? calloc(1, sizeof(*k)) : NULL;
		if (!k) {
			static const char busy[] = "error: too many admin connections, try again\n";

			(void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		k->fd = fd;
		k->ctx.level = (enum cli_level)global.cli_level;
		k->deadline_ms = now_ms() + global.cli_timeout;
		conns[i] = k;
	}
}

static void *cli_main(void *arg)
{
	struct cli_conn *conns[CLI_MAX_CLIENTS] = {0};
	struct pollfd pfd[CLI_MAX_CLIENTS + 2];
	int idx[CLI_MAX_CLIENTS + 2];
	int i;

	(void)arg;
	for (;;) {
		int n = 0, timeout = -1;

		clock_update();
		pfd[n++] = (struct pollfd){.fd = wake[0], .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
		for (i = 0; i < CLI_MAX_CLIENTS; i++) {
			struct cli_conn *k = conns[i];
			int64_t left;

			if (!k)
				continue;
			left = (int64_t)k->deadline_ms - (int64_t)now_ms();
			if (left <= 0) {
				conn_close(&conns[i]);
				continue;
			}
			if (timeout < 0 || left < timeout)
				timeout = (int)left;
			idx[n] = i;
			pfd[n++] = (struct pollfd){
			    .fd = k->fd,
			    .events = !k->lingering && k->out.len > k->outpos ? POLLOUT : POLLIN};
		}
		if (poll(pfd, (nfds_t)n, timeout) == -1 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		clock_update();
		if (pfd[1].revents & POLLIN)
			accept_all(conns);
		for (i = 2; i < n; i++) {
			struct cli_conn *k = conns[idx[i]];
			bool keep = true;

			if (!pfd[i].revents)
				continue;
			if (k->lingering) {
				if (!conn_discard(k))
					conn_close(&conns[idx[i]]);
				continue;
			}
			k->deadline_ms = now_ms() + global.cli_timeout;
			if (pfd[i].revents & POLLOUT)
				keep = conn_write(k);
			else if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
				keep = conn_read(k);
			/* An answer ready after reading: send it at once (the usual case). */
			if (keep && k->out.len > k->outpos)
				keep = conn_write(k);
			else if (keep && k->closing && k->out.len == k->outpos)
				keep = false;
			if (!keep && k->closing && k->out.len == k->outpos) {
				/* Answered: shut our side first, so that unread input (the rest of
				 * an overlong line, lines after the first) does not turn the close
				 * into a reset that could destroy the answer before the client
				 * reads it. */
				shutdown(k->fd, SHUT_WR);
				k->lingering = true;
				k->deadline_ms = now_ms() + CLI_LINGER_MS;
				if (conn_discard(k))
					continue;
			}
			if (!keep)
				conn_close(&conns[idx[i]]);
		}
	}
	for (i = 0; i < CLI_MAX_CLIENTS; i++)
		if (conns[i])
			conn_close(&conns[i]);
	return NULL;
}

int cli_start(char **err)
{
	int e;

	if (listen_fd == -1)
		return OK;
	if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) == -1) {
		*err = strfmt("admin socket: pipe: %s", strerror(errno));
		return ERR;
	}
	e = pthread_create(&thread, NULL, cli_main, NULL);
	if (e) {
		*err = strfmt("cannot start the admin socket thread: %s", strerror(e));
		return ERR;
	}
	thread_started = true;
	return OK;
}

int cli_listen_fd(void)
{
	return listen_fd;
}

void cli_stop(bool keep_file)
{
	struct stat st;

	if (thread_started) {
		(void)!write(wake[1], "x", 1);
		pthread_join(thread, NULL);
		thread_started = false;
	}
	if (wake[0] != -1) {
		close(wake[0]);
		close(wake[1]);
		wake[0] = wake[1] = -1;
	}
	if (listen_fd == -1)
		return;
	close(listen_fd);
	listen_fd = -1;
	/* Handed over to a new process (reload), which serves the same socket file. */
	if (keep_file)
		return;
	/* Only our own socket file (after chroot the path may name another file, or none). */
	if (global.cli_path && stat(global.cli_path, &st) == 0 && st.st_dev == sock_dev &&
	    st.st_ino == sock_ino)
		unlink(global.cli_path);
}
