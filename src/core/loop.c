/* The per-thread event loop. Sockets are registered once, edge-triggered for reading and writing,
 * so that steady-state traffic needs no epoll_ctl() at all: handlers remember what they could not
 * finish and resume when the next edge arrives. */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <keel/buf.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/loop.h>
#include <keel/pipe.h>
#include <keel/pool.h>
#include <keel/timer.h>

__thread struct loop *tl;

#define LOOP_MAX_EVENTS 256

static void loop_wake_cb(struct fdh *h, uint32_t events)
{
	struct loop *l = container_of(h, struct loop, wake);
	uint64_t v;
	unsigned flags;

	(void)events;
	while (read(h->fd, &v, sizeof(v)) > 0)
		;
	flags = atomic_exchange(&l->wake_flags, 0);
	if (flags && l->on_wake)
		l->on_wake(l, flags);
}

int loop_init(struct loop *l, int id, uint32_t bufsize, char **err)
{
	memset(l, 0, sizeof(*l));
	l->id = id;
	l->bufsize = bufsize;
	list_init(&l->tasklets);
	atomic_init(&l->wake_flags, 0);
	pool_init(&l->buf_pool, "buffer", bufsize, 1024);
	l->scratch = malloc(bufsize);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd == -1 || !l->scratch) {
		*err = strfmt("cannot create event loop: %s", strerror(errno));
		return ERR;
	}
	l->wake.cb = loop_wake_cb;
	l->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->wake.fd == -1) {
		*err = strfmt("cannot create eventfd: %s", strerror(errno));
		return ERR;
	}
	{
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->wake};

		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake.fd, &ev) == -1) {
			*err = strfmt("epoll_ctl: %s", strerror(errno));
			return ERR;
		}
	}
	return OK;
}

void loop_bind(struct loop *l)
{
	tl = l;
	clock_update();
}

int loop_add(struct fdh *h, int fd)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
		.data.ptr = h,
	};

	h->fd = fd;
	return epoll_ctl(tl->epfd, EPOLL_CTL_ADD, fd, &ev) == -1 ? ERR : OK;
}

void loop_forget(struct fdh *h)
{
	if (h->fd >= 0)
		epoll_ctl(tl->epfd, EPOLL_CTL_DEL, h->fd, NULL);
}

void loop_close(struct fdh *h)
{
	if (h->fd >= 0) {
		close(h->fd);
		h->fd = -1;
	}
}

void tasklet_init(struct tasklet *t, void (*cb)(struct tasklet *t))
{
	list_init(&t->list);
	t->cb = cb;
}

void tasklet_wake(struct tasklet *t)
{
	if (!list_linked(&t->list))
		list_add_tail(&tl->tasklets, &t->list);
}

void tasklet_cancel(struct tasklet *t)
{
	if (list_linked(&t->list))
		list_del(&t->list);
}

void loop_signal(struct loop *l, unsigned flags)
{
	uint64_t one = 1;

	atomic_fetch_or(&l->wake_flags, flags);
	/* A full eventfd counter still means "readable": the wake-up is never lost. */
	if (write(l->wake.fd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		return;
}

static void run_tasklets(struct loop *l)
{
	struct list batch;

	if (list_empty(&l->tasklets))
		return;
	/* Tasklets woken while this batch runs wait for the next iteration, so a tasklet that keeps
	 * waking itself cannot starve I/O. */
	batch.next = l->tasklets.next;
	batch.prev = l->tasklets.prev;
	batch.next->prev = &batch;
	batch.prev->next = &batch;
	list_init(&l->tasklets);
	while (!list_empty(&batch)) {
		struct tasklet *t = list_first(&batch, struct tasklet, list);

		list_del(&t->list);
		t->cb(t);
	}
}

void loop_defer_free(struct pool *p, void *obj)
{
	struct loop *l = tl;

	if (l->ndfree == l->dfreecap) {
		uint32_t cap = l->dfreecap ? l->dfreecap * 2 : 64;
		struct deferred_free *d = realloc(l->dfree, cap * sizeof(*d));

		if (!d) {
			/* Cannot defer: leaking one object beats a use-after-free. */
			return;
		}
		l->dfree = d;
		l->dfreecap = cap;
	}
	l->dfree[l->ndfree].pool = p;
	l->dfree[l->ndfree].obj = obj;
	l->ndfree++;
}

static void run_deferred_frees(struct loop *l)
{
	uint32_t i;

	for (i = 0; i < l->ndfree; i++)
		pool_free(l->dfree[i].pool, l->dfree[i].obj);
	l->ndfree = 0;
}

void loop_run(struct loop *l)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];

	loop_bind(l);
	while (!l->quit) {
		uint64_t next = timer_heap_next(&l->timers);
		int timeout = -1, n, i;

		if (!list_empty(&l->tasklets))
			timeout = 0;
		else if (next != UINT64_MAX)
			timeout = next <= now_us ? 0 : (int)MIN((next - now_us + 999) / 1000, 60000);
		n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, timeout);
		clock_update();
		l->iter++;
		l->io_phase = true;
		for (i = 0; i < n; i++) {
			struct fdh *h = evs[i].data.ptr;

			if (h->fd >= 0)
				h->cb(h, evs[i].events);
		}
		l->io_phase = false;
		timer_heap_run(&l->timers, now_us);
		run_tasklets(l);
		run_deferred_frees(l);
	}
	run_deferred_frees(l);
}

void loop_destroy(struct loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->wake.fd >= 0)
		close(l->wake.fd);
	timer_heap_free(&l->timers);
	free(l->dfree);
	pool_flush(&l->buf_pool);
	pool_flush(&l->sbuf_pool);
	pipe_flush(l);
	free(l->scratch);
}
