/* Unit tests for the reclaim part of src/proxy/session.c: the lists the mux keeps sessions in
 * (session_set_rc()) and the order session_reclaim() closes them in (idle keep-alive
 * connections first, the longest idle first, then the oldest incomplete heads, none idle for less
 * than 1 s or with a head younger than 100 ms), per frontend or over all of them, and what it does when the mux refuses. The sessions are bare structs and
 * the mux a fake that records what it was asked to close: no socket is involved. */
#include <string.h>

#include <keel/backend.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/mux-t.h>
#include <keel/proxy.h>
#include <keel/session.h>
#include <keel/worker.h>

#include "rt.h"
#include "unit.h"

#define NSESS 8

static struct session sess[NSESS];
static int closed[NSESS * 2], nclosed;
static bool refuse[NSESS];

/* The fake mux's reclaim: records sess, and "closes" it as session_free() would unlink it, unless
 * told to refuse it. */
static bool fake_reclaim(struct session *s)
{
	if (refuse[s - sess])
		return false;
	closed[nclosed++] = (int)(s - sess);
	list_del(&s->rc_list);
	s->rc = RC_BUSY;
	return true;
}

static const struct mux_ops fake_mux = {.name = "fake", .reclaim = fake_reclaim};

static struct proxy *fe1, *fe2;

/* Session i belongs to frontend fe (as session_init() sets it up). */
static void set_fe(int i, struct proxy *fe)
{
	sess[i].fe = fe;
	sess[i].rcl = &proxy_thread->rc[fe->id];
}

/* A runtime with a thread and two frontends; the sessions bare, each of frontend fe1 unless
 * moved. */
static bool setup(void)
{
	int i;

	if (!rt_setup("server s 127.0.0.1:1\nfrontend f1\n bind 127.0.0.1:1\n default_backend be\n"
		      "frontend f2\n bind 127.0.0.1:2\n default_backend be",
		      true))
		return false;
	fe1 = proxy_by_name("f1", PR_CAP_FE);
	fe2 = proxy_by_name("f2", PR_CAP_FE);
	if (!CHECK(fe1 && fe2))
		return false;
	memset(sess, 0, sizeof(sess));
	memset(refuse, 0, sizeof(refuse));
	nclosed = 0;
	for (i = 0; i < NSESS; i++) {
		sess[i].mux = &fake_mux;
		list_init(&sess[i].rc_list);
		set_fe(i, fe1);
	}
	return true;
}

#define MS 1000ull

/* Puts session i in class rc at time t (ms). */
static void at(int i, enum sess_rc rc, uint64_t t)
{
	now_us = t * MS;
	session_set_rc(&sess[i], rc);
}

/* session_reclaim() a minute later: every session is old enough to be closed. */
static int reclaim(struct proxy *fe, int n)
{
	now_us = 60000 * MS;
	return session_reclaim(fe, n);
}

TEST(reclaim_idle_oldest_first_then_heads)
{
	if (!setup())
		return;
	at(0, RC_HEAD, 100); /* oldest of all, but a head */
	at(1, RC_IDLE, 200);
	at(2, RC_IDLE, 300);
	at(3, RC_HEAD, 400);
	at(4, RC_BUSY, 500); /* never */
	at(5, RC_IDLE, 600);
	/* 1 becomes busy (a request came), then idle again: now the youngest idle */
	at(1, RC_HEAD, 700);
	at(1, RC_BUSY, 710);
	at(1, RC_IDLE, 800);
	CHECK_EQ_INT(reclaim(NULL, 2), 2);
	CHECK_EQ_INT(nclosed, 2);
	CHECK_EQ_INT(closed[0], 2);
	CHECK_EQ_INT(closed[1], 5);
	CHECK_EQ_INT(reclaim(NULL, 10), 3);
	CHECK_EQ_INT(nclosed, 5);
	CHECK_EQ_INT(closed[2], 1); /* the last idle one */
	CHECK_EQ_INT(closed[3], 0); /* then the heads, oldest first */
	CHECK_EQ_INT(closed[4], 3);
	/* only busy sessions are left */
	CHECK_EQ_INT(reclaim(NULL, 1), 0);
	CHECK_EQ_U64(fe1->ctr[0].reclaim_idle, 3);
	CHECK_EQ_U64(fe1->ctr[0].reclaim_heads, 2);
	CHECK_EQ_U64(proxy_thread->rc_idle, 3);
	CHECK_EQ_U64(proxy_thread->rc_heads, 2);
	rt_teardown();
}

TEST(reclaim_same_class_keeps_its_place)
{
	if (!setup())
		return;
	at(0, RC_HEAD, 100); /* accepted at 100, its head starts at 900: still counts from 100 */
	at(1, RC_HEAD, 500);
	at(0, RC_HEAD, 900);
	CHECK_EQ_U64(sess[0].t_rc, 100 * MS);
	CHECK_EQ_INT(reclaim(NULL, 1), 1);
	CHECK_EQ_INT(closed[0], 0);
	rt_teardown();
}

TEST(reclaim_per_frontend_or_all)
{
	if (!setup())
		return;
	set_fe(0, fe2);
	set_fe(1, fe2);
	at(0, RC_IDLE, 100); /* fe2 */
	at(2, RC_IDLE, 200); /* fe1 */
	at(1, RC_HEAD, 300); /* fe2 */
	at(3, RC_IDLE, 400); /* fe1 */
	/* fe1's own maxconn: only its sessions, fe2's older ones stay */
	CHECK_EQ_INT(reclaim(fe1, 1), 1);
	CHECK_EQ_INT(closed[0], 2);
	/* the global maxconn: the oldest idle of any frontend, then any head */
	CHECK_EQ_INT(reclaim(NULL, 3), 3);
	CHECK_EQ_INT(closed[1], 0);
	CHECK_EQ_INT(closed[2], 3);
	CHECK_EQ_INT(closed[3], 1);
	CHECK_EQ_U64(fe2->ctr[0].reclaim_idle, 1);
	CHECK_EQ_U64(fe2->ctr[0].reclaim_heads, 1);
	CHECK_EQ_U64(fe1->ctr[0].reclaim_idle, 2);
	/* fe2 has nothing left */
	CHECK_EQ_INT(reclaim(fe2, 1), 0);
	rt_teardown();
}

TEST(reclaim_refused_leaves_the_list)
{
	if (!setup())
		return;
	at(0, RC_IDLE, 100);
	at(1, RC_IDLE, 200);
	refuse[0] = true; /* its next request arrived, unread */
	CHECK_EQ_INT(reclaim(NULL, 1), 1);
	CHECK_EQ_INT(closed[0], 1);
	CHECK_EQ_INT(sess[0].rc, RC_BUSY); /* out of the lists until its mux says again */
	CHECK(!list_linked(&sess[0].rc_list));
	/* only refusals: AGAIN (look again once the bytes are read) */
	at(0, RC_IDLE, 300);
	CHECK_EQ_INT(reclaim(NULL, 1), AGAIN);
	CHECK_EQ_INT(reclaim(NULL, 1), 0);
	/* refused ones are passed over until one can be closed */
	refuse[0] = false;
	for (int i = 0; i < NSESS; i++) {
		refuse[i] = i < NSESS - 1;
		at(i, RC_HEAD, 400 + (uint64_t)i);
	}
	CHECK_EQ_INT(reclaim(NULL, 1), 1);
	CHECK_EQ_INT(closed[nclosed - 1], NSESS - 1);
	rt_teardown();
}

TEST(reclaim_spares_the_young)
{
	if (!setup())
		return;
	at(0, RC_IDLE, 1000);
	at(1, RC_HEAD, 1010);
	at(2, RC_IDLE, 1050);
	at(3, RC_HEAD, 1060);
	/* idle for 1 s at least, heads started 100 ms ago at least: at 1120 ms only 1 (a head for
	 * 110 ms), the idle ones (120 and 70 ms) and 3 (60 ms) stay */
	now_us = 1120 * MS;
	CHECK_EQ_INT(session_reclaim(NULL, 4), 1);
	CHECK_EQ_INT(closed[0], 1);
	CHECK_EQ_INT(session_reclaim(NULL, 4), 0);
	/* 3 is old enough at 1160 ms; 0 at 2000 ms, before any head */
	now_us = 1160 * MS;
	CHECK_EQ_INT(session_reclaim(NULL, 4), 1);
	CHECK_EQ_INT(closed[1], 3);
	at(4, RC_HEAD, 1500);
	now_us = 2000 * MS;
	CHECK_EQ_INT(session_reclaim(NULL, 1), 1);
	CHECK_EQ_INT(closed[2], 0);
	CHECK_EQ_INT(session_reclaim(NULL, 1), 1);
	CHECK_EQ_INT(closed[3], 4);
	rt_teardown();
}

UNIT_RUN()
