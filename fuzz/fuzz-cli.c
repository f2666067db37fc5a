/* libFuzzer target: the admin socket's command line (src/admin/cli.c, cli_exec_line(), and the
 * commands of cli-cmd.c) at the admin level, over a small configuration with its health state,
 * so every command runs: parsing, ';', errors, and the state changes through health_set_*().
 * The first byte picks the level. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <keel/cfg.h>
#include <keel/cli.h>
#include <keel/common.h>
#include <keel/health.h>
#include <keel/modules.h>
#include <keel/proxy.h>
#include <keel/worker.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern int keel_nworkers;

static const char cfg[] = "global\n nbthread 1\n"
			  "frontend fe\n bind 127.0.0.1:1\n default_backend be\n"
			  "backend be\n server s1 127.0.0.1:1 check\n server s2 [::1]:2 weight 7\n"
			  "backend other\n server x 127.0.0.1:3 backup\n";

int LLVMFuzzerInitialize(int *argc, char **argv[])
{
	char *err = NULL;

	(void)argc, (void)argv;
	keel_modules_register();
	cfg_silent = true;
	if (cfg_load_string("fuzz-cli.cfg", cfg, sizeof(cfg) - 1) != OK)
		abort();
	keel_nworkers = 1;
	proxy_runtime_init();
	if (health_init(1, &err) != OK)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cli_ctx c = {0};
	struct sbuf o = {0};

	if (size < 1 || size > CLI_LINE_MAX + 16)
		return 0;
	c.level = (enum cli_level)(data[0] % 3);
	cli_exec_line(&c, (const char *)data + 1, size - 1, &o);
	/* Every answer line ends with a newline. */
	if (o.len && o.p[o.len - 1] != '\n')
		abort();
	free(o.p);
	return 0;
}
