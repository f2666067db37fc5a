/* Unit tests for the admin socket's command parser and commands (src/admin/cli.c, cli-cmd.c): ';', words,
 * control characters, levels, errors, state changes through health_set_*(). */
#include <string.h>

#include <keel/cfg.h>
#include <keel/cli.h>
#include <keel/common.h>
#include <keel/health.h>
#include <keel/proxy.h>
#include <keel/worker.h>

#include "cfgload.h"
#include "unit.h"

extern int keel_nworkers;

static struct proxy *be;
static bool loaded;

static bool setup(void)
{
	static const char text[] =
	    "global\n nbthread 1\n stats socket /tmp/unused.sock level admin\n"
	    "backend be\n server s1 127.0.0.1:1 weight 10\n"
	    " server s2 127.0.0.1:2\n";
	char *err = NULL;

	if (loaded)
		return true;
	cfg_silent = true;
	if (cfg_load_string("cli.cfg", text, strlen(text)) != OK)
		return FAIL("configuration rejected");
	keel_nworkers = 1;
	proxy_runtime_init();
	keel_nworkers = 1;
	if (health_init(1, &err) != OK)
		return FAIL("health_init: %s", err);
	be = proxy_by_name("be", PR_CAP_BE);
	loaded = be != NULL;
	return loaded;
}

/* Runs line at level lvl; returns the answer (static), *failed the count of failed commands. */
static const char *run(enum cli_level lvl, const char *line, int *failed)
{
	static char buf[65536];
	struct cli_ctx c = {.level = lvl};
	struct sbuf o = {0};
	int f = cli_exec_line(&c, line, strlen(line), &o);

	if (failed)
		*failed = f;
	snprintf(buf, sizeof(buf), "%s", o.p ? o.p : "");
	free(o.p);
	return buf;
}

TEST(split_and_errors)
{
	int f;

	if (!setup())
		return;
	CHECK_STR(run(CLI_LVL_USER, "show backend", &f), "# name\nbe\n");
	CHECK_EQ_INT(f, 0);
	CHECK_STR(run(CLI_LVL_USER, "  show   backend ;; show backend;", &f),
		  "# name\nbe\n# name\nbe\n");
	CHECK_STR(run(CLI_LVL_USER, "show backend;nope", &f),
		  "# name\nbe\nerror: unknown command 'nope' (try 'help')\n");
	CHECK_EQ_INT(f, 1);
	CHECK_STR(run(CLI_LVL_USER, "", &f), "");
	CHECK_STR(run(CLI_LVL_USER, "show\x01", &f),
		  "error: invalid character 0x01 in the command line\n");
	CHECK_STR(run(CLI_LVL_USER,
		      "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17 w18 w19 w20 w21 w22 w23 w24 w25 w26 w27 w28 w29 w30 w31 w32 w33 w34 w35 w36 w37 w38 w39 w40 w41 w42 w43 w44 w45 w46 w47 w48", &f),
		  "error: too many words in one command (at most 48)\n");
	CHECK_STR(run(CLI_LVL_USER, "show servers state nobe", &f),
		  "error: no such backend 'nobe'\n");
}

TEST(levels_and_changes)
{
	struct server *s2;

	if (!setup())
		return;
	s2 = be->srv[1];
	CHECK_STR(run(CLI_LVL_USER, "set server be/s2 state drain", NULL),
		  "error: Permission denied\n");
	CHECK_EQ_INT(atomic_load(&s2->admin), SRV_ADMIN_READY);
	CHECK_STR(run(CLI_LVL_OPER, "set server be/s2 state drain", NULL), "");
	CHECK_EQ_INT(atomic_load(&s2->admin), SRV_ADMIN_DRAIN);
	CHECK_STR(run(CLI_LVL_OPER, "disable health be/s2", NULL), "error: Permission denied\n");
	CHECK_STR(run(CLI_LVL_ADMIN, "disable server be/s2; enable server be/s2", NULL), "");
	CHECK_EQ_INT(atomic_load(&s2->admin), SRV_ADMIN_READY);
	CHECK_STR(run(CLI_LVL_ADMIN, "set server be/s1 weight 50%", NULL), "");
	CHECK_EQ_INT(atomic_load(&be->srv[0]->eweight), 5);
	CHECK_STR(run(CLI_LVL_ADMIN, "set server be/s1 weight 3000%", NULL),
		  "error: weight 300 out of range: expects 0 to 256\n");
	CHECK_STR(run(CLI_LVL_ADMIN, "set server be/s1 weight 12x", NULL),
		  "error: invalid weight '12x': expects a number from 0 to 256, or N%\n");
	CHECK_STR(run(CLI_LVL_ADMIN, "set server be/s3 weight 1", NULL),
		  "error: no such server 's3' in backend 'be'\n");
	CHECK_STR(run(CLI_LVL_ADMIN, "set server be/s1 addr ::1 port 0", NULL),
		  "error: invalid port '0': expects 1 to 65535\n");
}

TEST(prompt_quit)
{
	struct cli_ctx c = {.level = CLI_LVL_USER};
	struct sbuf o = {0};

	if (!setup())
		return;
	cli_exec_line(&c, "prompt", 6, &o);
	CHECK(c.interactive);
	cli_exec_line(&c, "quit; show backend", 18, &o);
	CHECK(c.quit);
	CHECK(o.len == 0); /* nothing after quit */
	free(o.p);
}

UNIT_RUN()
