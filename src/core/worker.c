/* Worker threads' context (include/keel/worker.h). */
#include <stdlib.h>

#include <keel/common.h>
#include <keel/loop.h>
#include <keel/worker.h>

int keel_nworkers;
struct worker *keel_workers;
__thread struct worker *this_worker;
uint64_t keel_start_wall;

int workers_init(uint32_t bufsize, char **err)
{
	int i;

	keel_workers = xcalloc((size_t)keel_nworkers, sizeof(*keel_workers));
	for (i = 0; i < keel_nworkers; i++) {
		keel_workers[i].id = i;
		if (loop_init(&keel_workers[i].loop, i, bufsize, err) != OK)
			return ERR;
	}
	return OK;
}

void workers_destroy(void)
{
	int i;

	if (!keel_workers)
		return;
	for (i = 0; i < keel_nworkers; i++)
		loop_destroy(&keel_workers[i].loop);
	free(keel_workers);
	keel_workers = NULL;
}

void worker_bind(struct worker *w)
{
	this_worker = w;
	loop_bind(&w->loop);
}

void workers_signal(unsigned flags)
{
	int i;

	for (i = 0; keel_workers && i < keel_nworkers; i++)
		loop_signal(&keel_workers[i].loop, flags);
}
