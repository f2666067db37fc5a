/* Kernel pipes for splice(2) (include/keel/pipe.h). */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include <keel/common.h>
#include <keel/global.h>
#include <keel/list.h>
#include <keel/loop.h>
#include <keel/pipe.h>

/* Empty pipes a thread keeps for the next transfer; beyond, they are closed. */
#define PIPE_CACHE_MAX 16

static atomic_int pipes_open;

int pipe_max(void)
{
	if (global.maxpipes > 0)
		return global.maxpipes;
	return MAX(global.maxconn / 4, 1);
}

int pipe_fds_wanted(bool splicing)
{
	int conns = global.maxconn ? global.maxconn : 100000;

	if (global.nosplice || !splicing)
		return 0;
	return 2 * (global.maxpipes > 0 ? global.maxpipes : MAX(conns / 4, 1));
}

struct kpipe *pipe_get(void)
{
	struct kpipe *p = tl->pipes;
	int fd[2];

	if (p) {
		tl->pipes = p->next;
		tl->npipes--;
		p->next = NULL;
		return p;
	}
	if (atomic_fetch_add_explicit(&pipes_open, 1, memory_order_relaxed) >= pipe_max())
		goto out_uncount;
	p = malloc(sizeof(*p));
	if (!p)
		goto out_uncount;
	if (pipe2(fd, O_NONBLOCK | O_CLOEXEC) == -1)
		goto out_free;
	p->rd = fd[0];
	p->wr = fd[1];
	p->len = 0;
	p->next = NULL;
	return p;

out_free:
	free(p);
out_uncount:
	atomic_fetch_sub_explicit(&pipes_open, 1, memory_order_relaxed);
	return NULL;
}

static void pipe_close(struct kpipe *p)
{
	close(p->rd);
	close(p->wr);
	free(p);
	atomic_fetch_sub_explicit(&pipes_open, 1, memory_order_relaxed);
}

void pipe_put(struct kpipe *p)
{
	if (!p)
		return;
	/* Bytes left behind belong to a transfer that was cut short: nobody may read them. */
	if (p->len || tl->npipes >= PIPE_CACHE_MAX) {
		pipe_close(p);
		return;
	}
	p->next = tl->pipes;
	tl->pipes = p;
	tl->npipes++;
}

void pipe_flush(struct loop *l)
{
	while (l->pipes) {
		struct kpipe *p = l->pipes;

		l->pipes = p->next;
		pipe_close(p);
	}
	l->npipes = 0;
}
