/* The runtime a worker thread sets up (worker_main in src/process/process.c), for unit tests that
 * need servers, health state or a thread context: rt_setup() loads "global nbthread 1" plus
 * "backend be" with the given body, then proxy_runtime_init(), health_init() and, when asked, a
 * worker (this_worker, with its loop) and its proxy state (proxy_thread). rt_teardown() undoes
 * all of it. One runtime at a time. */
#ifndef KEEL_TEST_RT_H
#define KEEL_TEST_RT_H

#include <string.h>

#include <keel/backend.h>
#include <keel/cfg.h>
#include <keel/global.h>
#include <keel/health.h>
#include <keel/history.h>
#include <keel/loop.h>
#include <keel/proxy.h>
#include <keel/worker.h>

#include "cfgload.h"
#include "unit.h"

static struct worker rt_worker;
static bool rt_loop_ready;
static struct proxy_thread rt_thr;
static bool rt_thr_ready;

static void rt_teardown(void)
{
	if (rt_thr_ready)
		proxy_thread_destroy(&rt_thr);
	rt_thr_ready = false;
	health_deinit();
	history_deinit(); /* health_tick() feeds it (admin_register()): it holds the servers */
	proxy_thread = NULL;
	cfg_reset();
}

/* Returns backend "be", or NULL after a FAIL() naming what went wrong. */
static struct proxy *rt_setup(const char *body, bool thread)
{
	char text[4096];
	char *err = NULL;

	rt_teardown();
	snprintf(text, sizeof(text), "global\n nbthread 1\nbackend be\n%s\n", body);
	cfg_silent = true;
	if (cfg_load_string("rt.cfg", text, strlen(text)) != OK)
		return FAIL("configuration rejected:\n%s", text), NULL;
	keel_nworkers = 1;
	proxy_runtime_init();
	if (health_init(1, &err) != OK)
		return FAIL("health_init: %s", err), NULL;
	if (thread) {
		if (!rt_loop_ready) {
			if (loop_init(&rt_worker.loop, 0, global.bufsize, &err) != OK)
				return FAIL("loop_init: %s", err), NULL;
			rt_loop_ready = true;
		}
		worker_bind(&rt_worker);
		if (proxy_thread_init(&rt_thr, &err) != OK)
			return FAIL("proxy_thread_init: %s", err), NULL;
		rt_thr_ready = true;
	}
	return proxy_by_name("be", PR_CAP_BE);
}

#endif
