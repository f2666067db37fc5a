/* libFuzzer target: the answer evaluators of the check runner (src/check/check-http.c,
 * check-tcp.c, check-agent.c): HTTP check and probe answers, tcp-check expect rules and agent
 * lines. The first byte picks the evaluator and whether the peer closed; the rest is what the
 * peer sent. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <keel/cfg.h>
#include <keel/check.h>
#include <keel/common.h>
#include <keel/modules.h>
#include <keel/proxy.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Two backends: one with every kind of HTTP rule, one with tcp-check rules. */
static const char cfg[] = "backend http\n"
			  " option httpchk GET /health\n"
			  " http-check expect status 200-399,418\n"
			  " http-check expect ! rstatus ^5\n"
			  " http-check expect string OK\n"
			  " http-check expect ! rstring (?i)error|fail\n"
			  " server s 127.0.0.1:1 check\n"
			  "backend tcp\n"
			  " option tcp-check\n"
			  " tcp-check expect string +PONG\n"
			  " tcp-check expect ! binary 00ff\n"
			  " tcp-check expect rstring ^[a-z]+[0-9]*$\n"
			  " server s 127.0.0.1:1 check\n";
static struct proxy *http_be, *tcp_be;

int LLVMFuzzerInitialize(int *argc, char **argv[])
{
	(void)argc, (void)argv;
	keel_modules_register();
	cfg_silent = true;
	if (cfg_load_string("fuzz-check.cfg", cfg, sizeof(cfg) - 1) != OK)
		abort();
	http_be = proxy_by_name("http", PR_CAP_BE);
	tcp_be = proxy_by_name("tcp", PR_CAP_BE);
	if (!http_be || !tcp_be)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chk_result r;
	struct agent_result ar;
	char *buf;
	int sel, fin, i;

	if (size < 1 || size > (1u << 16))
		return 0;
	sel = data[0] % 4;
	fin = (data[0] >> 2) % 3; /* CHK_FIN_NO, _EOF, _FULL */
	size--;
	/* An exact-size copy: reads past the peer's bytes are caught by ASan. */
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size);
	memset(&r, 0, sizeof(r));
	switch (sel) {
	case 0:
	case 1:
		if (chk_http_eval(http_be, sel == 1, buf, size, fin, &r) == AGAIN && fin)
			abort(); /* a final answer is always decided */
		if (memchr(r.reason, '\0', sizeof(r.reason)) == NULL)
			abort();
		break;
	case 2:
		for (i = 0; i < tcp_be->chk.nsteps; i++)
			if (chk_tcp_expect(&tcp_be->chk.steps[i], i + 1, buf, size, fin, &r) ==
				AGAIN &&
			    fin)
				abort();
		break;
	default:
		chk_agent_parse(buf, size, &ar);
		if (memchr(ar.reason, '\0', sizeof(ar.reason)) == NULL)
			abort();
		break;
	}
	free(buf);
	return 0;
}
