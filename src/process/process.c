/* Start-up and shutdown. Order matters: bind while still privileged, detach, write the pid file,
 * drop privileges (chroot, group, user), then start the logger and the workers; signals are
 * handled by the main thread, which does nothing else. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <keel/acl.h>
#include <keel/acme.h>
#include <keel/backend.h>
#include <keel/cfg.h>
#include <keel/check.h>
#include <keel/cli.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/errors.h>
#include <keel/global.h>
#include <keel/connpass.h>
#include <keel/health.h>
#include <keel/history.h>
#include <keel/lb.h>
#include <keel/listener.h>
#include <keel/log.h>
#include <keel/loop.h>
#include <keel/pipe.h>
#include <keel/process.h>
#include <keel/proxy.h>
#include <keel/reload.h>
#include <keel/session.h>
#include <keel/spawner.h>
#include <keel/ssl.h>
#include <keel/state.h>
#include <keel/worker.h>

/* How often certificate files are compared with what was loaded (ssl_watch()). */
#define SSL_WATCH_US 1000000

static atomic_int running_workers;
static atomic_int stopped_accepting; /* workers that closed their listeners */

static void on_wake(struct loop *l, unsigned flags)
{
	(void)l;
	if (flags & LOOP_WAKE_HALT) {
		if (!this_worker->stopping)
			atomic_fetch_add(&stopped_accepting, 1);
		this_worker->stopping = true;
		listeners_stop();
		backend_close_idle();
		session_stop_all(true);
		return;
	}
	if ((flags & LOOP_WAKE_STOP) && !this_worker->stopping) {
		this_worker->stopping = true;
		listeners_stop();
		atomic_fetch_add(&stopped_accepting, 1);
		backend_close_idle();
		session_stop_all(false);
	}
	if (flags & LOOP_WAKE_QUEUE)
		backend_process_queues();
	if (flags & LOOP_WAKE_RECLAIM)
		session_reclaim_asked();
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct proxy_thread t;
	char *err = NULL;

	worker_bind(w);
	if (proxy_thread_init(&t, &err) != OK || listeners_start(&err) != OK ||
	    connpass_thread_start(&err) != OK) {
		keel_log(LOG_LVL_ALERT, "worker %d: %s", w->id, err);
		free(err);
		exit(1);
	}
	w->loop.on_wake = on_wake;
	health_thread_start();
	if (check_thread_start(&err) != OK) {
		keel_log(LOG_LVL_ALERT, "worker %d: %s", w->id, err);
		free(err);
		exit(1);
	}
	loop_run(&w->loop);
	check_thread_stop();
	health_thread_stop();
	backend_close_idle();
	proxy_thread_destroy(&t);
	acl_thread_cleanup();
	atomic_fetch_sub(&running_workers, 1);
	return NULL;
}

/* The global log targets and every proxy's, opened while still privileged. */
static int open_logs(char **err)
{
	struct list *l;

	if (log_open_targets(&global.logs, err) != OK)
		return ERR;
	list_for_each(l, &keel_proxies)
		if (log_open_targets(&list_entry(l, struct proxy, list)->logs, err) != OK)
			return ERR;
	return OK;
}

static int raise_nofile(void)
{
	struct rlimit rl;
	rlim_t want;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return ERR;
	/* Each connection may need two descriptors (client and server) plus some spare. */
	want = global.ulimit_n ? (rlim_t)global.ulimit_n
			       : (rlim_t)(global.maxconn ? global.maxconn : 100000) * 2 + 256 +
				     (rlim_t)pipe_fds_wanted(proxy_any_splice()); /* splice(2): two per pipe */
	if (rl.rlim_cur < want) {
		struct rlimit n = {want, rl.rlim_max > want ? rl.rlim_max : want};

		if (setrlimit(RLIMIT_NOFILE, &n)) {
			n.rlim_cur = n.rlim_max = rl.rlim_max;
			if (global.ulimit_n)
				keel_log(LOG_LVL_WARNING, "cannot raise the file descriptor limit to %d (ulimit-n): %s; using %llu",
					 global.ulimit_n, strerror(errno), (unsigned long long)rl.rlim_max);
			setrlimit(RLIMIT_NOFILE, &n);
		}
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	if (!global.maxconn) {
		long m = ((long)rl.rlim_cur - 256) / 2;

		global.maxconn = (int)(m < 100 ? 100 : m > 100000 ? 100000 : m);
	} else if ((rlim_t)global.maxconn * 2 + 64 > rl.rlim_cur) {
		keel_log(LOG_LVL_WARNING, "maxconn %d needs about %d file descriptors but the limit is %llu; connections beyond it will be refused",
			 global.maxconn, global.maxconn * 2 + 64, (unsigned long long)rl.rlim_cur);
	}
	return OK;
}

static int write_pidfile(const char *path, pid_t pid, char **err)
{
	char tmp[32];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int n;

	if (fd < 0) {
		*err = strfmt("cannot write pid file '%s': %s", path, strerror(errno));
		return ERR;
	}
	n = snprintf(tmp, sizeof(tmp), "%d\n", (int)pid);
	if (write(fd, tmp, (size_t)n) != n) {
		*err = strfmt("cannot write pid file '%s': %s", path, strerror(errno));
		close(fd);
		return ERR;
	}
	close(fd);
	return OK;
}

static int drop_privileges(char **err)
{
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;

	if (geteuid() != 0) {
		/* A reload's new process runs as the user the first one switched to. */
		if (!keel_reloaded() &&
		    (global.chroot || global.user || global.group || global.uid >= 0 || global.gid >= 0))
			keel_log(LOG_LVL_WARNING, "not started as root: 'chroot', 'user' and 'group' are ignored");
		return OK;
	}
	if (global.group) {
		struct group *g = getgrnam(global.group);

		if (!g) {
			*err = strfmt("unknown group '%s'", global.group);
			return ERR;
		}
		gid = g->gr_gid;
	} else if (global.gid >= 0) {
		gid = (gid_t)global.gid;
	}
	if (global.user) {
		struct passwd *pw = getpwnam(global.user);

		if (!pw) {
			*err = strfmt("unknown user '%s'", global.user);
			return ERR;
		}
		uid = pw->pw_uid;
		if (gid == (gid_t)-1)
			gid = pw->pw_gid;
	} else if (global.uid >= 0) {
		uid = (uid_t)global.uid;
	}
	if (global.chroot) {
		struct stat st;

		/* An empty jail is all keel needs: create it rather than refuse to start. */
		if (stat(global.chroot, &st) && errno == ENOENT) {
			if (mkdir(global.chroot, 0755)) {
				*err = strfmt("cannot create chroot directory '%s': %s", global.chroot,
					      strerror(errno));
				return ERR;
			}
			keel_log(LOG_LVL_NOTICE, "created the empty chroot directory '%s'", global.chroot);
		}
		if (chroot(global.chroot) || chdir("/")) {
			*err = strfmt("cannot chroot to '%s': %s", global.chroot, strerror(errno));
			return ERR;
		}
	}
	if (gid != (gid_t)-1 && (setgroups(0, NULL) || setgid(gid))) {
		*err = strfmt("cannot switch to group %d: %s", (int)gid, strerror(errno));
		return ERR;
	}
	if (uid != (uid_t)-1 && setuid(uid)) {
		*err = strfmt("cannot switch to user %d: %s", (int)uid, strerror(errno));
		return ERR;
	}
	return OK;
}

/* Detaches from the terminal. The parent writes the pid file and exits. */
static int daemonize(const char *pidfile, char **err)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0) {
		*err = strfmt("fork: %s", strerror(errno));
		return ERR;
	}
	if (pid > 0) {
		if (pidfile && write_pidfile(pidfile, pid, err)) {
			fprintf(stderr, "[ALERT] %s\n", *err);
			kill(pid, SIGTERM);
			_exit(1);
		}
		_exit(0);
	}
	setsid();
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	log_set_stderr(0);
	return OK;
}

/* A new process serves (reload): it now owns the admin socket (our thread stops answering on
 * it, the file stays) and the state file (our writer stops without a last save). */
static void reload_handover(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	cli_stop(true);
	state_detach();
}

void keel_stop_accepting(void)
{
	int i;

	workers_signal(LOOP_WAKE_STOP);
	/* Bounded: a worker stuck in a long iteration must not block a reload's answer. */
	for (i = 0; i < 2000 && atomic_load(&stopped_accepting) < keel_nworkers; i++)
		nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
}

int keel_run(const struct keel_opts *o)
{
	const char *pidfile = o->pidfile ? o->pidfile : global.pidfile;
	bool daemon_mode = (global.daemon || o->force_daemon) && !o->foreground;
	sigset_t set;
	char *err = NULL;
	int i, rc = 0;
	uint64_t stop_deadline = 0, next_watch = 0;

	keel_start_wall = (uint64_t)time(NULL);
	if (o->quiet)
		global.quiet = true;
	signal(SIGPIPE, SIG_IGN);
	if (raise_nofile() != OK)
		keel_log(LOG_LVL_WARNING, "cannot read the file descriptor limit");
	keel_nworkers = global.nbthread;
	proxy_runtime_init();
	if (listeners_bind(global.nbthread, keel_reload_take_listeners, &err) != OK ||
	    open_logs(&err) != OK)
		goto fail;
	/* The admin socket too is created while privileged (docs/admin.md). */
	if (cli_bind(keel_reload_take_cli, &err) != OK)
		goto fail;
	keel_reload_close_unused();
	/* TLS ticket keys: the previous process's after a reload, so that its clients resume. */
	if (ssl_tickets_start(keel_reload_take_tickets(), &err) != OK)
		goto fail;
	/* A reload's new process is already detached: it only writes the pid file. */
	if (daemon_mode && !keel_reloaded()) {
		if (daemonize(pidfile, &err) != OK)
			goto fail;
	} else if (pidfile && write_pidfile(pidfile, getpid(), &err) != OK) {
		if (!keel_reloaded())
			goto fail;
		/* A reload runs as the user the first process switched to: not a reason to fail. */
		keel_log(LOG_LVL_WARNING, "%s (reload: the file still names the previous process)", err);
		free(err);
		err = NULL;
	}
	/* The state file's directory is opened outside the chroot (docs/admin.md); so are the
	 * certificates' folders, watched for replaced files. */
	if (state_open(&err) != OK || ssl_watch_prepare(&err) != OK)
		goto fail;
	/* Jailed, keel could not exec itself for a reload: a spawner stays outside (spawner.c). */
	if (global.chroot && geteuid() == 0 && spawner_start(&err) != OK)
		goto fail;
	if (drop_privileges(&err) != OK)
		goto fail;

	/* Workers inherit a mask with every signal blocked: only this thread takes them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (log_start(global.nbthread, &err) != OK)
		goto fail;
	if (health_init(global.nbthread, &err) != OK)
		goto fail;
	if (keel_reload_state_fd() >= 0)
		state_restore_fd(keel_reload_state_fd(), &(struct state_report){0});
	else
		state_restore(&(struct state_report){0});
	if (state_start(&err) != OK)
		goto fail;
	if (workers_init(global.bufsize, &err) != OK)
		goto fail;
	/* After a reload, the previous process's idle connections come on this socket. */
	connpass_set_in(keel_reload_take_conns(), global.nbthread);
	atomic_store(&running_workers, global.nbthread);
	for (i = 0; i < global.nbthread; i++) {
		int e = pthread_create(&keel_workers[i].loop.thread, NULL, worker_main, &keel_workers[i]);

		if (e) {
			err = strfmt("cannot start worker thread: %s", strerror(e));
			goto fail;
		}
	}
	cli_set_reload(keel_reload);
	if (cli_start(&err) != OK)
		goto fail;
	/* After the change of user: the files the ACME client writes belong to that user. */
	if (acme_start(&err) != OK)
		goto fail;
	keel_log(LOG_LVL_NOTICE, "keel %s started: pid %d, %d worker threads, maxconn %d%s",
		 KEEL_VERSION, (int)getpid(), global.nbthread, global.maxconn,
		 keel_reloaded() ? " (reload)" : "");
	keel_reload_ready();

	while (atomic_load(&running_workers) > 0) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		siginfo_t si;
		int sig = sigtimedwait(&set, &si, &ts);

		clock_update();
		keel_notify_tick(now_us);
		ssl_tickets_tick();
		if (now_us >= next_watch) {
			ssl_watch();
			next_watch = now_us + SSL_WATCH_US;
		}
		if (stop_deadline && now_us >= stop_deadline) {
			keel_log(LOG_LVL_WARNING, "hard-stop-after reached: closing the remaining connections");
			workers_signal(LOOP_WAKE_HALT);
			stop_deadline = 0;
		}
		if (sig < 0)
			continue;
		switch (sig) {
		case SIGTERM:
		case SIGUSR1:
			atomic_store(&keel_stopping, true);
			acme_stop(); /* after a reload, the new process's client takes over */
			if (atomic_load(&keel_handed_over))
				reload_handover();
			if (!stop_deadline) {
				keel_notify_stopping();
				keel_log(LOG_LVL_NOTICE, "soft stop: no new connections, finishing in-flight requests (at most %u ms)",
					 global.hard_stop_after);
				stop_deadline = now_us + (uint64_t)global.hard_stop_after * 1000 + 1;
				workers_signal(LOOP_WAKE_STOP);
			}
			break;
		case SIGINT:
		case SIGQUIT:
			atomic_store(&keel_stopping, true);
			acme_stop();
			keel_notify_stopping();
			keel_log(LOG_LVL_NOTICE, "immediate stop");
			workers_signal(LOOP_WAKE_HALT);
			break;
		case SIGUSR2:
		case SIGHUP: {
			/* keel_reload() logs the outcome; on success it sends us SIGTERM. */
			int pid;

			if (keel_reload(&pid, &err) != OK) {
				free(err);
				err = NULL;
			}
			break;
		}
		default:
			break;
		}
	}
	for (i = 0; i < global.nbthread; i++)
		pthread_join(keel_workers[i].loop.thread, NULL);
	acme_stop();
	cli_stop(atomic_load(&keel_handed_over));
	if (connpass_count())
		keel_log(LOG_LVL_NOTICE, "reload: %llu idle connections passed to the new process",
			 (unsigned long long)connpass_count());
	state_stop(); /* saves a pending change */
	keel_log(LOG_LVL_NOTICE, "keel stopped");
	if (pidfile && !daemon_mode && !atomic_load(&keel_handed_over))
		unlink(pidfile); /* after a reload it names the new process */
	log_stop();
	workers_destroy();
	health_deinit();
	history_deinit();
	ssl_tickets_stop();
	return rc;

fail:
	acme_stop();
	cli_stop(atomic_load(&keel_handed_over));
	keel_log(LOG_LVL_ALERT, "%s", err ? err : "start-up failed");
	keel_reload_failed(err);
	free(err);
	ssl_tickets_stop();
	return 1;
}
