/* libFuzzer target: the state file reader (src/admin/state-read.c, state_apply_buf()). The input is a
 * whole state file, applied to a small configuration; then the state is dumped and read back,
 * which must apply cleanly (the writer's output is always valid input). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/health.h>
#include <keel/log.h>
#include <keel/modules.h>
#include <keel/proxy.h>
#include <keel/state.h>
#include <keel/worker.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char cfg[] = "global\n nbthread 1\n"
			  "backend be\n"
			  " server s1 127.0.0.1:8001 weight 10\n"
			  " server s2 127.0.0.1:8002 disabled\n"
			  " server s3 127.0.0.1:8003 check\n"
			  " stick-table type string len 16 size 64 expire 10m\n"
			  " stick on req.cook(SID)\n"
			  "backend www\n"
			  " server webA 10.0.0.1:80\n";

int LLVMFuzzerInitialize(int *argc, char **argv[])
{
	char *err = NULL;

	(void)argc, (void)argv;
	keel_modules_register();
	cfg_silent = true;
	log_set_stderr(0);
	if (cfg_load_string("fuzz-state.cfg", cfg, sizeof(cfg) - 1) != OK)
		abort();
	keel_nworkers = 1;
	proxy_runtime_init();
	if (health_init(1, &err) != OK)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state_report rep;
	char *buf, *img;
	size_t len;

	if (size > (1u << 16))
		return 0;
	/* An exact-size copy: reads past the end are caught by ASan. */
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	state_apply_buf("fuzz", buf, size, &rep);
	free(buf);
	img = state_dump(&len);
	if (!img)
		return 0;
	state_apply_buf("dump", img, len, &rep);
	if (rep.refused || rep.malformed || rep.unknown || rep.conflicts || rep.skipped)
		abort();
	free(img);
	return 0;
}
