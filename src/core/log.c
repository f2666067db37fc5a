/* The logger thread and its rings. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <keel/common.h>
#include <keel/global.h>
#include <keel/log.h>

#define RING_SIZE (256u * 1024u) /* per worker; a power of two */
#define MSG_MAX 4096

struct entry {
	uint32_t len;     /* message bytes following the header */
	uint8_t level;
	uint8_t global_too;               /* the global targets get it too */
	const struct log_targets *own;    /* a frontend's own targets, or NULL */
};

struct ring {
	char *data;
	_Atomic uint64_t head; /* consumer position */
	_Atomic uint64_t tail; /* producer position */
	pthread_mutex_t lock;  /* only for the shared ring used outside workers */
};

static struct ring *rings;
static int nrings_total;
static pthread_t logger;
static atomic_bool running;
static atomic_bool stop_req;
static _Atomic uint64_t dropped;
static int to_stderr = 1;
static char hostname[64];

void log_set_stderr(int on)
{
	to_stderr = on;
}

uint64_t log_dropped(void)
{
	return atomic_load(&dropped);
}

static int open_target(struct log_target *t, char **err)
{
	switch (t->kind) {
	case LOG_T_UDP:
		t->fd = socket(t->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		break;
	case LOG_T_UNIX:
		t->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		/* /dev/log may not exist (containers): connect lazily, keep the socket. */
		if (t->fd >= 0)
			(void)connect(t->fd, (struct sockaddr *)&t->addr, t->addrlen);
		break;
	case LOG_T_FILE:
		t->fd = open(t->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (t->fd < 0) {
			*err = strfmt("cannot open log file '%s': %s", t->path, strerror(errno));
			return ERR;
		}
		break;
	case LOG_T_FD:
		break;
	}
	if (t->fd < 0) {
		*err = strfmt("cannot create log socket: %s", strerror(errno));
		return ERR;
	}
	return OK;
}

int log_open_targets(struct log_targets *lt, char **err)
{
	int i;

	if (!hostname[0])
		gethostname(hostname, sizeof(hostname) - 1);
	for (i = 0; i < lt->n; i++)
		if (lt->t[i].fd < 0 && open_target(&lt->t[i], err))
			return ERR;
	return OK;
}

static void send_one(struct log_target *t, int level, const char *msg, size_t len)
{
	char buf[MSG_MAX + 256];
	size_t n = 0;

	if (level > t->level || t->fd < 0)
		return;
	if (t->format == LOG_FMT_RFC3164) {
		time_t now = time(NULL);
		struct tm tm;

		localtime_r(&now, &tm);
		n = (size_t)snprintf(buf, 64, "<%d>", t->facility * 8 + level);
		n += strftime(buf + n, 32, "%b %e %H:%M:%S ", &tm);
		n += (size_t)snprintf(buf + n, 128, "%s[%d]: ", global.log_tag ? global.log_tag : "keel",
				      (int)getpid());
	} else if (t->format == LOG_FMT_SHORT) {
		n = (size_t)snprintf(buf, 16, "<%d>", t->facility * 8 + level);
	}
	len = MIN(len, sizeof(buf) - n - 1);
	memcpy(buf + n, msg, len);
	n += len;
	switch (t->kind) {
	case LOG_T_UDP:
		(void)sendto(t->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&t->addr,
			     t->addrlen);
		break;
	case LOG_T_UNIX:
		if (send(t->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno == ENOTCONN &&
		    connect(t->fd, (struct sockaddr *)&t->addr, t->addrlen) == 0)
			(void)send(t->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		break;
	case LOG_T_FD:
	case LOG_T_FILE:
		buf[n++] = '\n';
		/* The logger thread may block here; workers never do. */
		(void)!write(t->fd, buf, n);
		break;
	}
}

static void deliver(const struct entry *e, const char *msg)
{
	int i;

	if (e->global_too)
		for (i = 0; i < global.logs.n; i++)
			send_one(&global.logs.t[i], e->level, msg, e->len);
	if (e->own)
		for (i = 0; i < e->own->n; i++)
			send_one(&e->own->t[i], e->level, msg, e->len);
}

static uint32_t entry_size(uint32_t len)
{
	return (uint32_t)((sizeof(struct entry) + len + 7) & ~7u);
}

/* Copies len bytes into the ring at position pos, wrapping around. */
static void ring_copy_in(struct ring *r, uint64_t pos, const void *src, size_t len)
{
	size_t off = pos & (RING_SIZE - 1), first = MIN(len, RING_SIZE - off);

	memcpy(r->data + off, src, first);
	memcpy(r->data, (const char *)src + first, len - first);
}

static void ring_copy_out(struct ring *r, uint64_t pos, void *dst, size_t len)
{
	size_t off = pos & (RING_SIZE - 1), first = MIN(len, RING_SIZE - off);

	memcpy(dst, r->data + off, first);
	memcpy((char *)dst + first, r->data, len - first);
}

static void ring_push(struct ring *r, const struct entry *e, const char *msg)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint32_t sz = entry_size(e->len);

	if (tail + sz - head > RING_SIZE) {
		atomic_fetch_add(&dropped, 1);
		return;
	}
	ring_copy_in(r, tail, e, sizeof(*e));
	ring_copy_in(r, tail + sizeof(*e), msg, e->len);
	atomic_store_explicit(&r->tail, tail + sz, memory_order_release);
}

static int drain(void)
{
	char msg[MSG_MAX];
	int i, n = 0;

	for (i = 0; i < nrings_total; i++) {
		struct ring *r = &rings[i];
		uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
		uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

		while (head < tail) {
			struct entry e;

			ring_copy_out(r, head, &e, sizeof(e));
			ring_copy_out(r, head + sizeof(e), msg, e.len);
			deliver(&e, msg);
			head += entry_size(e.len);
			n++;
		}
		atomic_store_explicit(&r->head, head, memory_order_release);
	}
	return n;
}

static void *logger_main(void *arg)
{
	long idle_ms = 1;

	(void)arg;
	/* Polls the rings: 1 ms after activity, backing off to 50 ms when there is none, so an
	 * idle daemon does not wake up hundreds of times a second. */
	while (!atomic_load(&stop_req)) {
		struct timespec ts;

		if (drain()) {
			idle_ms = 1;
			continue;
		}
		ts.tv_sec = 0;
		ts.tv_nsec = idle_ms * 1000 * 1000;
		nanosleep(&ts, NULL);
		if (idle_ms < 50)
			idle_ms *= 2;
	}
	drain();
	return NULL;
}

int log_start(int nworkers, char **err)
{
	int i, rc;

	nrings_total = nworkers + 1; /* the last ring is shared by non-worker threads */
	rings = xcalloc((size_t)nrings_total, sizeof(*rings));
	for (i = 0; i < nrings_total; i++) {
		rings[i].data = xmalloc(RING_SIZE);
		pthread_mutex_init(&rings[i].lock, NULL);
	}
	atomic_store(&stop_req, false);
	rc = pthread_create(&logger, NULL, logger_main, NULL);
	if (rc) {
		*err = strfmt("cannot start the logger thread: %s", strerror(rc));
		return ERR;
	}
	atomic_store(&running, true);
	return OK;
}

void log_stop(void)
{
	int i;

	if (!atomic_load(&running))
		return;
	atomic_store(&stop_req, true);
	pthread_join(logger, NULL);
	atomic_store(&running, false);
	for (i = 0; i < nrings_total; i++) {
		free(rings[i].data);
		pthread_mutex_destroy(&rings[i].lock);
	}
	free(rings);
	rings = NULL;
}

void log_request(int ring, const struct log_targets *own, bool global_too, int level,
		 const char *line, size_t len)
{
	struct entry e = {.len = (uint32_t)MIN(len, MSG_MAX), .level = (uint8_t)level, .own = own,
			  .global_too = global_too};

	if (!own->n && !(global_too && global.logs.n))
		return;
	if (!atomic_load(&running) || ring < 0 || ring >= nrings_total - 1) {
		deliver(&e, line);
		return;
	}
	ring_push(&rings[ring], &e, line);
}

void keel_log(int level, const char *fmt, ...)
{
	char msg[MSG_MAX];
	struct entry e = {.level = (uint8_t)level, .global_too = 1};
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	e.len = (uint32_t)MIN((size_t)n, sizeof(msg) - 1);
	if (to_stderr && (!global.quiet || level <= LOG_LVL_ERR)) {
		static const char *const tags[] = {"EMERG", "ALERT", "CRIT", "ERROR",
						   "WARNING", "NOTICE", "INFO", "DEBUG"};

		fprintf(stderr, "[%s] %.*s\n", tags[level & 7], (int)e.len, msg);
	}
	if (!global.logs.n)
		return;
	if (!atomic_load(&running)) {
		deliver(&e, msg);
		return;
	}
	pthread_mutex_lock(&rings[nrings_total - 1].lock);
	ring_push(&rings[nrings_total - 1], &e, msg);
	pthread_mutex_unlock(&rings[nrings_total - 1].lock);
}
