/* A listening socket of one worker (src/proxy/listener.c). */
#ifndef KEEL_LISTENER_T_H
#define KEEL_LISTENER_T_H

#include <stdbool.h>

#include <keel/list.h>
#include <keel/loop-t.h>

struct proxy;
struct bind_conf;

struct listener {
	struct fdh h;
	struct proxy *fe;
	struct bind_conf *bind;
	struct list list;   /* in the thread's listener list */
	bool paused;        /* maxconn reached: not accepting */
};

#endif
