/* Durable runtime state: the state file ("state-file PATH" in global). This file holds its
 * lifecycle (the path checked at load, the directory opened before chroot, the restore at start or
 * from the previous process at reload, the stop) and the writer thread; state-read.c reads and
 * applies an image, state-write.c makes one and writes it. Format and rules: docs/admin.md.
 *
 * Threads: health.c calls state_note_change() after a change, on any thread, perhaps under the
 * server's health mutex: it only sets a flag under st.lock (never held across I/O) and signals
 * the writer thread. The writer waits STATE_SETTLE_MS so that a burst becomes one write, takes a
 * snapshot (each server's health mutex, briefly) and writes PATH.tmp, fsync, rename, fsync of the
 * directory (state-write.c). A failure (ENOSPC, EACCES, EIO...) is logged once per failing
 * streak, the previous file stays, the state stays in memory, and the write is retried every
 * STATE_RETRY_S seconds and at the next change.
 *
 * Stick tables change with the traffic, not through health.c: the stores raise a flag per table
 * (stktable.changed, or .touched when only an expiry moved), which the writer polls every
 * STATE_STICK_MS; a change is saved within that delay, a refreshed expiry within
 * STATE_TOUCH_MS. Writes are at least 10 times their own duration apart, so that a huge table
 * cannot keep the disk busy. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/global.h>
#include <keel/log.h>
#include <keel/proxy.h>
#include <keel/state.h>
#include <keel/stick.h>

#define STATE_SETTLE_MS 20  /* a burst of changes within this delay becomes one write */
#define STATE_STICK_MS 1000 /* stick tables: a new or moved entry is saved within this delay */
#define STATE_TOUCH_MS 30000 /* and an entry whose expiry was refreshed within this one */

static struct {
	int dirfd;	      /* the state file's directory, opened before chroot; -1: off */
	const char *base;     /* the file name inside it */
	atomic_bool on;	      /* the writer runs: changes are noted */
	pthread_mutex_t lock; /* protects the fields below; never held across I/O */
	pthread_cond_t cond;
	bool dirty, stop, failing;
	bool detached;	      /* a new process took over (reload): the file is its to write */
	bool sticks;	      /* some backend has a stick table: the writer polls it */
	uint64_t last_ms;     /* monotonic end of the last write */
	uint64_t gap_ms;      /* the least time between two stick-driven writes */
	pthread_t thread;
	bool started;
} st = {.dirfd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- start-up, the writer thread ---- */

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

int state_check_path(const char *path, char **err)
{
	char *dir;
	struct stat sb;
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
		*err = strfmt("state-file '%s': not a file name", path);
		return ERR;
	}
	dir = dir_of(path);
	if (stat(dir, &sb) == -1 || (!S_ISDIR(sb.st_mode) && (errno = ENOTDIR))) {
		*err = strfmt("state-file '%s': directory '%s' %s", path, dir,
			      errno == ENOENT ? "does not exist" : "is not a usable directory");
		free(dir);
		return ERR;
	}
	free(dir);
	return OK;
}

int state_open(char **err)
{
	char *dir;
	const char *slash;

	if (!global.state_file)
		return OK;
	dir = dir_of(global.state_file);
	st.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st.dirfd == -1) {
		*err = strfmt("state-file '%s': cannot open directory '%s': %s", global.state_file,
			      dir, strerror(errno));
		free(dir);
		return ERR;
	}
	free(dir);
	slash = strrchr(global.state_file, '/');
	st.base = slash ? slash + 1 : global.state_file;
	return OK;
}

void state_restore(struct state_report *rep)
{
	struct stat sb;
	char *buf;
	ssize_t got = 0;
	int fd;

	*rep = (struct state_report){0};
	if (st.dirfd == -1)
		return;
	fd = openat(st.dirfd, st.base, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		if (errno == ENOENT)
			keel_log(
			    LOG_LVL_NOTICE,
			    "state file %s does not exist yet: starting from the configuration",
			    global.state_file);
		else
			keel_log(
			    LOG_LVL_ERR,
			    "cannot read the state file %s: %s; starting from the configuration",
			    global.state_file, strerror(errno));
		return;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) || sb.st_size > STATE_MAX_FILE) {
		keel_log(LOG_LVL_ERR,
			 "state file %s: not a regular file or larger than %u bytes: ignored, "
			 "starting from the configuration",
			 global.state_file, STATE_MAX_FILE);
		rep->refused = 1;
		close(fd);
		return;
	}
	buf = malloc((size_t)sb.st_size + 1);
	while (buf && got < sb.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)(sb.st_size - got));

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += r;
	}
	close(fd);
	if (!buf) {
		keel_log(LOG_LVL_ERR, "state file %s: out of memory: ignored", global.state_file);
		return;
	}
	state_apply_buf(global.state_file, buf, (size_t)got, rep);
	free(buf);
	if (!rep->refused)
		keel_log(LOG_LVL_NOTICE,
			 "state file %s restored: %d server(s) applied (%d added at runtime, %d "
			 "deleted at runtime), %d stick table entries, %d not in the "
			 "configuration, %d kept from the configuration, %d malformed line(s)",
			 global.state_file, rep->applied, rep->added, rep->deleted, rep->sticks,
			 rep->unknown, rep->conflicts, rep->malformed);
}

int state_handover_fd(char **err)
{
	size_t len = 0;
	int e;
	char *img = state_dump(&len);
	int fd = memfd_create("keel-state", MFD_CLOEXEC);

	if (!img || fd == -1) {
		*err = strfmt("cannot pass the runtime state on: %s",
			      img ? strerror(errno) : "out of memory");
		goto out;
	}
	e = state_write_all(write, fd, img, len);
	if (e) {
		*err = strfmt("cannot pass the runtime state on: %s", strerror(e));
		close(fd);
		fd = -1;
	}
out:
	free(img);
	return fd;
}

void state_restore_fd(int fd, struct state_report *rep)
{
	struct stat sb;
	char *buf = NULL;
	ssize_t got = 0;

	*rep = (struct state_report){0};
	if (fstat(fd, &sb) == -1 || sb.st_size > STATE_MAX_FILE ||
	    !(buf = malloc((size_t)sb.st_size + 1))) {
		keel_log(LOG_LVL_ERR, "cannot read the previous process's state: starting from the "
				      "configuration");
		return;
	}
	while (got < sb.st_size) {
		ssize_t r = pread(fd, buf + got, (size_t)(sb.st_size - got), got);

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += r;
	}
	state_apply_buf("(previous process)", buf, (size_t)got, rep);
	free(buf);
	keel_log(LOG_LVL_NOTICE,
		 "runtime state of the previous process restored: %d server(s) applied (%d added at "
		 "runtime, %d deleted at runtime), %d stick table entries, %d not in the "
		 "configuration, %d kept from the configuration",
		 rep->applied, rep->added, rep->deleted, rep->sticks, rep->unknown, rep->conflicts);
	/* Whatever the old process had not saved yet: the file catches up now. */
	if (st.dirfd != -1) {
		pthread_mutex_lock(&st.lock);
		st.dirty = true;
		pthread_mutex_unlock(&st.lock);
	}
}

void state_detach(void)
{
	if (!st.started)
		return;
	atomic_store(&st.on, false);
	pthread_mutex_lock(&st.lock);
	st.detached = st.stop = true;
	pthread_cond_signal(&st.cond);
	pthread_mutex_unlock(&st.lock);
	pthread_join(st.thread, NULL);
	pthread_cond_destroy(&st.cond);
	st.started = false;
}

/* One write of the current state. Logs the first failure of a streak and the recovery. */
static int write_once(void)
{
	char *err = NULL, *img;
	size_t len = 0;
	int rc;

	img = state_dump(&len);
	if (!img)
		err = strfmt("out of memory");
	rc = img ? state_write_file(st.dirfd, st.base, img, len, &err) : ERR;
	free(img);
	if (rc != OK && !st.failing)
		keel_log(LOG_LVL_ERR,
			 "cannot save the state file %s: %s; the previous file is kept and the "
			 "state stays in memory (retrying every %d s and at each change)",
			 global.state_file, err, STATE_RETRY_S);
	else if (rc == OK && st.failing)
		keel_log(LOG_LVL_NOTICE, "state file %s saved again", global.state_file);
	free(err);
	return rc;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Whether the stick tables are due for a write (see the top comment); stopping: whether they
 * changed at all since the last one. */
static bool sticks_due(bool stopping)
{
	uint64_t since = stopping ? UINT64_MAX : mono_ms() - st.last_ms;
	struct list *l;

	if (since < st.gap_ms)
		return false;
	list_for_each(l, &keel_proxies)
	{
		struct stktable *t = list_entry(l, struct proxy, list)->stk.table;

		if (!t || !t->shards)
			continue;
		if (atomic_load(&t->changed) || (atomic_load(&t->touched) && since >= STATE_TOUCH_MS))
			return true;
	}
	return false;
}

/* Waits (under st.lock) until there is something to write or the writer must stop: a change,
 * the retry delay after a failure, the stick tables' poll. */
static void writer_wait(void)
{
	while (!st.dirty && !st.stop) {
		struct timespec ts;
		uint64_t ms = st.failing ? STATE_RETRY_S * 1000 : STATE_STICK_MS;

		if (!st.failing && !st.sticks) {
			pthread_cond_wait(&st.cond, &st.lock);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(ms / 1000);
		ts.tv_nsec += (long)(ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&st.cond, &st.lock, &ts) == ETIMEDOUT)
			st.dirty = st.failing || sticks_due(false);
	}
}

static void *writer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&st.lock);
	for (;;) {
		writer_wait();
		if (st.detached)
			break;
		if (st.stop && (st.failing || sticks_due(true)))
			st.dirty = true; /* one last try of the unsaved state, the latest bindings */
		if (!st.dirty)
			break; /* stopping with nothing to save */
		if (!st.stop) {
			struct timespec settle = {0, STATE_SETTLE_MS * 1000000L};

			pthread_mutex_unlock(&st.lock);
			nanosleep(&settle, NULL);
			pthread_mutex_lock(&st.lock);
		}
		st.dirty = false;
		pthread_mutex_unlock(&st.lock);
		/* st.failing is only written by this thread (under the lock, for the waits above):
		 * write_once() reads it without the lock. */
		{
			uint64_t t0 = mono_ms();
			bool failed = write_once() != OK;

			pthread_mutex_lock(&st.lock);
			st.failing = failed;
			st.last_ms = mono_ms();
			st.gap_ms = MAX((uint64_t)STATE_STICK_MS, 10 * (st.last_ms - t0));
		}
		if (st.stop && !st.dirty)
			break;
	}
	pthread_mutex_unlock(&st.lock);
	return NULL;
}

int state_start(char **err)
{
	struct list *l;
	pthread_condattr_t ca;
	int e;

	if (st.dirfd == -1)
		return OK;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&st.cond, &ca);
	pthread_condattr_destroy(&ca);
	/* The restore itself is not a change to save, except what a previous process passed on
	 * (state_restore_fd()) and may not have saved. */
	st.stop = st.failing = false;
	st.sticks = false;
	list_for_each(l, &keel_proxies)
	{
		struct stktable *t = list_entry(l, struct proxy, list)->stk.table;

		st.sticks |= t && t->shards;
	}
	if (!st.dirty)
		state_sticks_taken(); /* what the restore stored is in the file already */
	st.last_ms = mono_ms();
	st.gap_ms = STATE_STICK_MS;
	e = pthread_create(&st.thread, NULL, writer_main, NULL);
	if (e) {
		*err = strfmt("cannot start the state file writer: %s", strerror(e));
		pthread_cond_destroy(&st.cond);
		return ERR;
	}
	st.started = true;
	atomic_store(&st.on, true);
	return OK;
}

void state_stop(void)
{
	if (st.started) {
		atomic_store(&st.on, false);
		pthread_mutex_lock(&st.lock);
		st.stop = true;
		pthread_cond_signal(&st.cond);
		pthread_mutex_unlock(&st.lock);
		pthread_join(st.thread, NULL);
		pthread_cond_destroy(&st.cond);
		st.started = false;
	}
	if (st.dirfd != -1)
		close(st.dirfd);
	st.dirfd = -1;
}

void state_note_change(struct server *srv)
{
	(void)srv; /* the whole state is rewritten: small, and always consistent */
	if (!atomic_load_explicit(&st.on, memory_order_acquire))
		return;
	pthread_mutex_lock(&st.lock);
	st.dirty = true;
	pthread_cond_signal(&st.cond);
	pthread_mutex_unlock(&st.lock);
}
