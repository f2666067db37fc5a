/* keelctl: sends one command to keel's admin socket ("stats socket" in global) and prints the
 * answer. See docs/admin.md.
 *
 *   keelctl [-s SOCKET] COMMAND...           e.g. keelctl show servers state be
 *   keelctl [-s SOCKET] drain B/S [--idle T] [--deadline T] [--wait] [--timeout T]
 *   keelctl [-s SOCKET] reload               hitless reload: answers once the new process serves
 *
 * The socket is -s, else $KEEL_SOCKET, else /run/keel/admin.sock. Exit status: 0 success, 1 the
 * answer holds an error line ("error: ...") or the drain wait timed out, 2 usage or connection
 * problems. Standalone: it links nothing of keel. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/keel/admin.sock"
#define IO_TIMEOUT_MS 30000
#define LINE_MAX_LEN 4095
#define PRINT_EVERY_MS 2000 /* drain --wait: how often it says what it waits for */
/* drain --wait without --timeout: this long, or this long past the time keel gives the cookie
 * users not seen yet (drain-idle from the start of the drain), whichever is later */
#define DRAIN_WAIT_MS 60000L

static const char *sock_path;

static void usage(FILE *f)
{
	fprintf(f, "usage: keelctl [-s SOCKET] COMMAND...        (try: keelctl help)\n"
		   "       keelctl [-s SOCKET] drain BACKEND/SERVER [--idle T] [--deadline T]\n"
		   "                                 [--wait] [--timeout T]\n"
		   "       keelctl [-s SOCKET] reload\n"
		   "SOCKET defaults to $KEEL_SOCKET, else " DEFAULT_SOCKET ".\n"
		   "Exit status: 0 success, 1 error answer or drain timeout, 2 usage or connection "
		   "problem.\n");
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sends line and reads the whole answer (the server closes after it) into a malloc'd string.
 * Returns 0, or 2 with a message printed. */
static int ask(const char *line, char **answer, size_t *alen)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	size_t len = strlen(line), cap = 4096, n = 0, off = 0;
	char *buf;
	int fd;

	if (strlen(sock_path) >= sizeof(un.sun_path)) {
		fprintf(stderr, "keelctl: socket path too long: %s\n", sock_path);
		return 2;
	}
	if (len > LINE_MAX_LEN) {
		fprintf(stderr, "keelctl: command too long (at most %d bytes)\n", LINE_MAX_LEN);
		return 2;
	}
	strcpy(un.sun_path, sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&un, sizeof(un)) == -1) {
		fprintf(stderr, "keelctl: cannot connect to %s: %s\n", sock_path, strerror(errno));
		if (fd != -1)
			close(fd);
		return 2;
	}
	while (off <= len) {
		const char *p = off < len ? line + off : "\n";
		size_t k = off < len ? len - off : 1;
		ssize_t w = send(fd, p, k, MSG_NOSIGNAL);

		if (w == -1) {
			fprintf(stderr, "keelctl: sending to %s: %s\n", sock_path, strerror(errno));
			close(fd);
			return 2;
		}
		off += (size_t)w;
	}
	buf = malloc(cap);
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t r;

		if (!buf) {
			fprintf(stderr, "keelctl: out of memory\n");
			close(fd);
			return 2;
		}
		if (poll(&pfd, 1, IO_TIMEOUT_MS) == 0) {
			fprintf(stderr, "keelctl: no answer from %s within %d s\n", sock_path,
				IO_TIMEOUT_MS / 1000);
			free(buf);
			close(fd);
			return 2;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			fprintf(stderr, "keelctl: reading from %s: %s\n", sock_path,
				strerror(errno));
			free(buf);
			close(fd);
			return 2;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (cap - n < 2) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				free(buf);
			buf = nb;
			cap *= 2;
		}
	}
	close(fd);
	buf[n] = 0;
	*answer = buf;
	*alen = n;
	return 0;
}

/* Prints the answer (error lines on stderr); 1 when it holds an error line. */
static int print_answer(const char *a)
{
	int rc = 0;

	while (*a) {
		const char *nl = strchr(a, '\n');
		size_t l = nl ? (size_t)(nl - a) + 1 : strlen(a);
		bool err = !strncmp(a, "error: ", 7);

		fwrite(a, 1, l, err ? stderr : stdout);
		rc |= err;
		a += l;
	}
	return rc;
}

/* "10", "10s", "500ms", "2m" → ms; -1 when invalid. */
static long parse_time_ms(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || v < 0 || v > 86400000)
		return -1;
	if (!*end || !strcmp(end, "s"))
		return v * 1000;
	if (!strcmp(end, "ms"))
		return v;
	if (!strcmp(end, "m"))
		return v * 60000;
	return -1;
}

/* What "drain --wait" waits for, from a row of "show servers state B". The sticky columns are
 * absent from an older keel's answer: then only requests count. */
struct drain_row {
	int cur, queue, sticky;
	long long pending_ms; /* cookie users not seen yet may come for this long; -1: for ever */
	bool has_sticky;
};

/* Fills r from "show servers state be" for server srv: 1 found, 0 missing, -2 on an error answer
 * (printed; *rc set). */
static int server_row(const char *be, const char *srv, struct drain_row *r, int *rc)
{
	enum { C_CUR, C_QUEUE, C_STICKY, C_PENDING, C_N };
	static const char *const names[C_N] = {"keel_cur_sess", "keel_queue", "keel_sticky_users",
					       "keel_sticky_pending_ms"};
	char line[600], *ans, *p, *save = NULL;
	int col[C_N] = {-1, -1, -1, -1}, found = 0, k;
	size_t alen;

	snprintf(line, sizeof(line), "show servers state %s", be);
	*rc = ask(line, &ans, &alen);
	if (*rc)
		return -2;
	if (!strncmp(ans, "error: ", 7)) {
		*rc = print_answer(ans);
		free(ans);
		return -2;
	}
	for (p = strtok_r(ans, "\n", &save); p; p = strtok_r(NULL, "\n", &save)) {
		char *tok, *s2 = NULL;
		long long v[C_N] = {-1, -1, -1, -1};
		int i = 0;
		bool hdr = p[0] == '#', match = false;

		for (tok = strtok_r(hdr ? p + 1 : p, " ", &s2); tok;
		     tok = strtok_r(NULL, " ", &s2), i++) {
			for (k = 0; k < C_N; k++) {
				if (hdr && !strcmp(tok, names[k]))
					col[k] = i;
				else if (!hdr && i == col[k])
					v[k] = atoll(tok);
			}
			if (!hdr && i == 3 && !strcmp(tok, srv))
				match = true;
		}
		if (match && v[C_CUR] >= 0 && v[C_QUEUE] >= 0) {
			r->cur = (int)v[C_CUR];
			r->queue = (int)v[C_QUEUE];
			r->has_sticky = col[C_STICKY] >= 0 && col[C_PENDING] >= 0;
			r->sticky = r->has_sticky ? (int)v[C_STICKY] : 0;
			r->pending_ms = r->has_sticky ? v[C_PENDING] : 0;
			found = 1;
		}
	}
	free(ans);
	return found;
}

static bool drained(const struct drain_row *r)
{
	return !r->cur && !r->queue && !r->sticky && !r->pending_ms;
}

/* "be/s1: 2 request(s) in flight (0 queued), 5 sticky user(s), cookie users not seen since the
 * drain began count for 8 s more" on f. */
static void print_row(FILE *f, const char *target, const struct drain_row *r)
{
	fprintf(f, "%s: %d request(s) in flight (%d queued)", target, r->cur, r->queue);
	if (r->has_sticky) {
		fprintf(f, ", %d sticky user(s)", r->sticky);
		if (r->pending_ms > 0)
			fprintf(f,
				", cookie users not seen since the drain began count for %lld s "
				"more",
				(r->pending_ms + 999) / 1000);
		else if (r->pending_ms < 0)
			fprintf(f, ", cookie users are kept for ever (drain-idle 0, no "
				   "drain-deadline)");
	}
	fputc('\n', f);
}

static int drain(int argc, char **argv)
{
	const char *target = NULL, *idle = NULL, *dl = NULL;
	char be[512], line[700], *ans, *slash;
	long timeout_ms = -1; /* no --timeout: DRAIN_WAIT_MS, stretched to the drain's own time */
	bool wait = false, told = false;
	uint64_t start, last_print = 0;
	size_t alen;
	int i, rc, n;
	struct drain_row r = {0};

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--wait")) {
			wait = true;
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			timeout_ms = parse_time_ms(argv[++i]);
			if (timeout_ms < 0) {
				fprintf(stderr,
					"keelctl: invalid timeout '%s' (e.g. 30, 30s, 500ms, 2m)\n",
					argv[i]);
				return 2;
			}
		} else if ((!strcmp(argv[i], "--idle") || !strcmp(argv[i], "--deadline")) &&
			   i + 1 < argc && argv[i + 1][0] &&
			   strspn(argv[i + 1], "0123456789abcdefghijklmnopqrstuvwxyz") ==
			       strlen(argv[i + 1]) &&
			   strlen(argv[i + 1]) < 32) {
			/* passed on as they are (one word: no ';' starting another command); keel
			 * checks them */
			*(argv[i][2] == 'i' ? &idle : &dl) = argv[i + 1];
			i++;
		} else if (!target && argv[i][0] != '-') {
			target = argv[i];
		} else {
			usage(stderr);
			return 2;
		}
	}
	slash = target ? strchr(target, '/') : NULL;
	if (!slash || slash == target || !slash[1] || (size_t)(slash - target) >= sizeof(be) ||
	    strlen(target) > 400) {
		fprintf(stderr, "keelctl: drain expects BACKEND/SERVER\n");
		return 2;
	}
	memcpy(be, target, (size_t)(slash - target));
	be[slash - target] = 0;
	snprintf(line, sizeof(line), "set server %s state drain%s%s%s%s", target,
		 idle ? " idle " : "", idle ? idle : "", dl ? " deadline " : "", dl ? dl : "");
	rc = ask(line, &ans, &alen);
	if (rc)
		return rc;
	rc = print_answer(ans);
	free(ans);
	if (rc || !wait)
		return rc;
	start = mono_ms();
	for (;;) {
		n = server_row(be, slash + 1, &r, &rc);
		if (n == -2)
			return rc;
		if (n == 0) {
			fprintf(stderr, "keelctl: server %s not found in 'show servers state'\n",
				target);
			return 1;
		}
		if (drained(&r)) {
			printf("%s drained: no request in flight%s\n", target,
			       r.has_sticky ? ", no sticky user left" : "");
			return 0;
		}
		if (!told) {
			/* at the first answer: a drain that keeps its cookie users for 10 minutes
			 * (the default drain-idle) is waited for, not cut at one minute */
			if (timeout_ms < 0)
				timeout_ms = DRAIN_WAIT_MS + (r.pending_ms > 0 ? (long)r.pending_ms : 0);
			printf("waiting for %s to drain, at most %ld s (--timeout T to change)\n",
			       target, (timeout_ms + 999) / 1000);
			told = true;
		}
		if (mono_ms() - start >= (uint64_t)timeout_ms) {
			fprintf(stderr,
				"keelctl: %s still has %d request(s) in flight and %d queued",
				target, r.cur, r.queue);
			if (r.has_sticky)
				fprintf(stderr, ", %d sticky user(s)%s", r.sticky,
					r.pending_ms ? " and cookie users not seen yet" : "");
			fprintf(stderr, " after %ld ms\n", timeout_ms);
			if (r.pending_ms < 0)
				fprintf(stderr, "keelctl: its cookie users are kept for ever "
						"(drain-idle 0): give the drain an idle time "
						"(--idle T) or a deadline (--deadline T)\n");
			else if (r.pending_ms > 0)
				fprintf(stderr,
					"keelctl: cookie users not seen since the drain "
					"began count for %lld s more (drain-idle): raise "
					"--timeout or lower the drain's idle time (--idle T)\n",
					(r.pending_ms + 999) / 1000);
			return 1;
		}
		/* what it waits for: at once, then every PRINT_EVERY_MS */
		if (!last_print || mono_ms() - last_print >= PRINT_EVERY_MS) {
			print_row(stdout, target, &r);
			fflush(stdout);
			last_print = mono_ms();
		}
		usleep(100 * 1000);
	}
}

int main(int argc, char **argv)
{
	char line[LINE_MAX_LEN + 2] = "", *ans;
	size_t alen, used = 0;
	int i = 1, rc;

	sock_path = getenv("KEEL_SOCKET");
	if (!sock_path || !*sock_path)
		sock_path = DEFAULT_SOCKET;
	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "-s") && i + 1 < argc) {
			sock_path = argv[i + 1];
			i += 2;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[i], "drain"))
		return drain(argc - i, argv + i);
	for (; i < argc; i++) {
		size_t l = strlen(argv[i]);

		if (strchr(argv[i], '\n') || used + l + 1 > LINE_MAX_LEN) {
			fprintf(stderr, "keelctl: command too long or holds a newline\n");
			return 2;
		}
		if (used)
			line[used++] = ' ';
		memcpy(line + used, argv[i], l);
		used += l;
		line[used] = 0;
	}
	rc = ask(line, &ans, &alen);
	if (rc)
		return rc;
	rc = print_answer(ans);
	free(ans);
	return rc;
}
