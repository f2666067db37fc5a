/* Unit tests for src/core/timer.c: the binary min-heap behind every timeout. */
#include <string.h>

#include <keel/common.h>
#include <keel/timer.h>

#include "unit.h"

/* Fired timers in order, and how many times each fired. */
#define MAXT 4096
static struct timer tm[MAXT];
static int fired_order[MAXT * 4];
static int nfired;
static int fire_count[MAXT];

static void on_fire(struct timer *t)
{
	int id = (int)(t - tm);

	if (nfired < (int)ARRAY_SIZE(fired_order))
		fired_order[nfired++] = id;
	fire_count[id]++;
}

static void reset(void)
{
	int i;

	for (i = 0; i < MAXT; i++)
		timer_init(&tm[i], on_fire);
	nfired = 0;
	memset(fire_count, 0, sizeof(fire_count));
}

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Every slot knows its position, and no child is earlier than its parent. */
static bool heap_valid(const struct timer_heap *th)
{
	uint32_t i;

	if (th->n > th->cap)
		return FAIL("n %u > cap %u", th->n, th->cap);
	for (i = 0; i < th->n; i++) {
		if (th->h[i]->idx != i + 1)
			return FAIL("slot %u holds a timer with idx %u", i, th->h[i]->idx);
		if (i && th->h[(i - 1) / 2]->expire > th->h[i]->expire)
			return FAIL("slot %u (%llu) is earlier than its parent (%llu)", i,
				    (unsigned long long)th->h[i]->expire,
				    (unsigned long long)th->h[(i - 1) / 2]->expire);
	}
	return true;
}

/* The fired sequence is in deadline order (as the deadlines were when they fired). */
static bool fired_in_order(const uint64_t *deadline)
{
	int i;

	for (i = 1; i < nfired; i++)
		if (deadline[fired_order[i - 1]] > deadline[fired_order[i]])
			return FAIL("timer %d (%llu) fired before timer %d (%llu)",
				    fired_order[i - 1],
				    (unsigned long long)deadline[fired_order[i - 1]],
				    fired_order[i], (unsigned long long)deadline[fired_order[i]]);
	return true;
}

TEST(empty_heap)
{
	struct timer_heap th = {0};

	reset();
	CHECK_EQ_U64(timer_heap_next(&th), UINT64_MAX);
	CHECK_EQ_INT(timer_heap_run(&th, UINT64_MAX), 0);
	CHECK(!timer_armed(&tm[0]));
	timer_heap_disarm(&th, &tm[0]); /* disarming an unarmed timer is a no-op */
	CHECK_EQ_INT(th.n, 0);
	timer_heap_free(&th);
}

TEST(random_deadlines_fire_in_order)
{
	struct timer_heap th = {0};
	static uint64_t dl[MAXT];
	uint64_t now, min = UINT64_MAX;
	int i, n = 3000;
	unsigned total = 0;

	reset();
	for (i = 0; i < n; i++) {
		dl[i] = 1 + rnd() % 100000;
		if (dl[i] < min)
			min = dl[i];
		CHECK_EQ_INT(timer_heap_arm(&th, &tm[i], dl[i]), OK);
		CHECK(timer_armed(&tm[i]));
	}
	CHECK_EQ_INT(th.n, n);
	CHECK(heap_valid(&th));
	CHECK_EQ_U64(timer_heap_next(&th), min);
	/* Nothing is due before the earliest deadline. */
	CHECK_EQ_INT(timer_heap_run(&th, min - 1), 0);
	/* Advance time in uneven steps: only due timers fire, in order. */
	for (now = 0; now <= 100000; now += 1 + rnd() % 997) {
		unsigned f = timer_heap_run(&th, now);

		total += f;
		if (th.n && !CHECK(timer_heap_next(&th) > now))
			break;
	}
	total += timer_heap_run(&th, 100000);
	CHECK_EQ_INT(total, n);
	CHECK_EQ_INT(nfired, n);
	CHECK_EQ_INT(th.n, 0);
	CHECK(fired_in_order(dl));
	for (i = 0; i < n; i++) {
		CHECK_EQ_INT(fire_count[i], 1);
		CHECK(!timer_armed(&tm[i]));
	}
	timer_heap_free(&th);
}

TEST(equal_deadlines_all_fire)
{
	struct timer_heap th = {0};
	int i;

	reset();
	for (i = 0; i < 50; i++)
		timer_heap_arm(&th, &tm[i], 42);
	CHECK(heap_valid(&th));
	CHECK_EQ_INT(timer_heap_run(&th, 41), 0);
	CHECK_EQ_INT(timer_heap_run(&th, 42), 50);
	CHECK_EQ_INT(th.n, 0);
	timer_heap_free(&th);
}

TEST(disarm_from_the_middle)
{
	struct timer_heap th = {0};
	static uint64_t dl[MAXT];
	int i, n = 1000, left = 0;

	reset();
	for (i = 0; i < n; i++) {
		dl[i] = rnd() % 5000;
		timer_heap_arm(&th, &tm[i], dl[i]);
	}
	/* Remove every third timer, wherever it sits in the heap. */
	for (i = 0; i < n; i += 3) {
		timer_heap_disarm(&th, &tm[i]);
		CHECK(!timer_armed(&tm[i]));
		if (!heap_valid(&th))
			break;
	}
	/* Disarming twice is harmless. */
	timer_heap_disarm(&th, &tm[0]);
	for (i = 0; i < n; i++)
		left += i % 3 != 0;
	CHECK_EQ_INT(th.n, left);
	CHECK_EQ_INT(timer_heap_run(&th, UINT64_MAX - 1), left);
	CHECK(fired_in_order(dl));
	for (i = 0; i < n; i++)
		CHECK_EQ_INT(fire_count[i], i % 3 != 0);
	timer_heap_free(&th);
}

TEST(disarm_specific_positions)
{
	struct timer_heap th = {0};
	int i;

	reset();
	/* The root, the last slot, and an inner node whose replacement must move up. */
	for (i = 0; i < 15; i++)
		timer_heap_arm(&th, &tm[i], (uint64_t)(i + 1) * 10);
	timer_heap_disarm(&th, th.h[0]);
	CHECK(heap_valid(&th));
	CHECK_EQ_U64(timer_heap_next(&th), 20);
	timer_heap_disarm(&th, th.h[th.n - 1]);
	CHECK(heap_valid(&th));
	timer_heap_arm(&th, &tm[20], 1000);
	timer_heap_arm(&th, &tm[21], 5); /* goes to the root */
	timer_heap_disarm(&th, th.h[th.n / 2]);
	CHECK(heap_valid(&th));
	CHECK_EQ_U64(timer_heap_next(&th), 5);
	CHECK_EQ_INT(th.n, 14);
	timer_heap_free(&th);
}

TEST(rearm_earlier_and_later)
{
	struct timer_heap th = {0};
	static uint64_t dl[MAXT];
	int i, n = 500;

	reset();
	for (i = 0; i < n; i++) {
		dl[i] = 1000 + (uint64_t)i * 10;
		timer_heap_arm(&th, &tm[i], dl[i]);
	}
	/* Move some earlier, some later, some to the same time; the heap keeps one entry each. */
	for (i = 0; i < n; i += 7) {
		dl[i] = rnd() % 20000;
		CHECK_EQ_INT(timer_heap_arm(&th, &tm[i], dl[i]), OK);
		CHECK_EQ_U64(tm[i].expire, dl[i]);
	}
	timer_heap_arm(&th, &tm[1], dl[1]);
	CHECK_EQ_INT(th.n, n);
	CHECK(heap_valid(&th));
	/* The last one becomes the first. */
	dl[n - 1] = 0;
	timer_heap_arm(&th, &tm[n - 1], 0);
	CHECK_EQ_U64(timer_heap_next(&th), 0);
	CHECK(th.h[0] == &tm[n - 1]);
	/* The first one becomes the last. */
	dl[0] = 1000000;
	timer_heap_arm(&th, &tm[0], dl[0]);
	CHECK(heap_valid(&th));
	CHECK_EQ_INT(timer_heap_run(&th, 999999), n - 1);
	CHECK_EQ_INT(fire_count[0], 0);
	CHECK_EQ_INT(timer_heap_run(&th, 1000000), 1);
	CHECK(fired_in_order(dl));
	timer_heap_free(&th);
}

/* ---- callbacks that change the heap ---- */

static struct timer_heap *cur_heap;
static int periodic_runs;

static void periodic(struct timer *t)
{
	periodic_runs++;
	if (periodic_runs < 5)
		timer_heap_arm(cur_heap, t, t->expire + 10);
}

TEST(callback_rearms_itself)
{
	struct timer_heap th = {0};
	struct timer p;

	reset();
	cur_heap = &th;
	periodic_runs = 0;
	timer_init(&p, periodic);
	timer_heap_arm(&th, &p, 10);
	timer_heap_arm(&th, &tm[0], 25);
	/* At 15: fires at 10, re-arms itself for 20 (not yet due). */
	CHECK_EQ_INT(timer_heap_run(&th, 15), 1);
	CHECK_EQ_INT(periodic_runs, 1);
	CHECK(timer_armed(&p));
	CHECK_EQ_U64(timer_heap_next(&th), 20);
	/* At 35: 20, 25 (the other timer), 30; the periodic timer is armed for 40. */
	CHECK_EQ_INT(timer_heap_run(&th, 35), 3);
	CHECK_EQ_INT(periodic_runs, 3);
	CHECK_EQ_INT(fire_count[0], 1);
	CHECK_EQ_U64(p.expire, 40);
	/* Far in the future: a re-arm that is already due fires within the same run. */
	CHECK_EQ_INT(timer_heap_run(&th, 1000), 2);
	CHECK_EQ_INT(periodic_runs, 5);
	CHECK(!timer_armed(&p));
	CHECK_EQ_INT(th.n, 0);
	timer_heap_free(&th);
}

static void disarms_next(struct timer *t)
{
	int id = (int)(t - tm);

	fire_count[id]++;
	timer_heap_disarm(cur_heap, &tm[id + 1]);
	timer_heap_arm(cur_heap, &tm[id + 2], 1); /* due now: fires in this run */
}

TEST(callback_disarms_and_arms_others)
{
	struct timer_heap th = {0};

	reset();
	cur_heap = &th;
	timer_init(&tm[0], disarms_next);
	timer_heap_arm(&th, &tm[0], 5);
	timer_heap_arm(&th, &tm[1], 6);	 /* due, but disarmed by tm[0]'s callback */
	timer_heap_arm(&th, &tm[2], 50); /* moved to 1 by the callback */
	timer_heap_arm(&th, &tm[3], 7);
	CHECK_EQ_INT(timer_heap_run(&th, 10), 3);
	CHECK_EQ_INT(fire_count[0], 1);
	CHECK_EQ_INT(fire_count[1], 0);
	CHECK_EQ_INT(fire_count[2], 1);
	CHECK_EQ_INT(fire_count[3], 1);
	CHECK_EQ_INT(th.n, 0);
	timer_heap_free(&th);
}

TEST(heap_grows_beyond_256)
{
	struct timer_heap th = {0};
	static uint64_t dl[MAXT];
	int i, n = MAXT;

	reset();
	for (i = 0; i < n; i++) {
		dl[i] =
		    (uint64_t)(n - i) * 3 + rnd() % 3; /* mostly decreasing: every arm sifts up */
		if (!CHECK_EQ_INT(timer_heap_arm(&th, &tm[i], dl[i]), OK))
			return;
		if (i == 255)
			CHECK_EQ_INT(th.cap, 256);
	}
	CHECK(th.cap >= (uint32_t)n);
	CHECK_EQ_INT(th.n, n);
	CHECK(heap_valid(&th));
	/* Entries that lived through the reallocations are still reachable. */
	for (i = 0; i < n; i += 97)
		CHECK(th.h[tm[i].idx - 1] == &tm[i]);
	CHECK_EQ_INT(timer_heap_run(&th, UINT64_MAX - 1), n);
	CHECK(fired_in_order(dl));
	timer_heap_free(&th);
	CHECK(th.h == NULL);
	CHECK_EQ_INT(th.n, 0);
	CHECK_EQ_INT(th.cap, 0);
	/* A freed heap is usable again. */
	reset();
	CHECK_EQ_INT(timer_heap_arm(&th, &tm[0], 1), OK);
	CHECK_EQ_INT(timer_heap_run(&th, 1), 1);
	timer_heap_free(&th);
}

TEST(interleaved_operations_keep_invariant)
{
	struct timer_heap th = {0};
	int step;

	reset();
	for (step = 0; step < 20000; step++) {
		int id = (int)(rnd() % 600);
		unsigned op = (unsigned)(rnd() % 4);

		if (op < 2)
			timer_heap_arm(&th, &tm[id], rnd() % 1000000);
		else if (op == 2)
			timer_heap_disarm(&th, &tm[id]);
		else
			timer_heap_run(&th, (uint64_t)step * 50);
		if (step % 500 == 0 && !heap_valid(&th))
			break;
	}
	CHECK(heap_valid(&th));
	timer_heap_free(&th);
}

UNIT_RUN()
