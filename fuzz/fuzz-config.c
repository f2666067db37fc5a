/* libFuzzer target: the configuration loader (src/cfg, ACLs, samples, log-format). */
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <keel/cfg.h>
#include <keel/modules.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Host names in addresses are resolved at load time: no DNS traffic from a fuzzer, and the same
 * answer for the same input. Numeric addresses never reach getaddrinfo. */
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		struct addrinfo **res)
{
	(void)node, (void)service, (void)hints, (void)res;
	return EAI_NONAME;
}

/* "setenv" in a global section would change the environment for the following inputs. */
int setenv(const char *name, const char *value, int overwrite)
{
	(void)name, (void)value, (void)overwrite;
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	keel_modules_register();
#ifdef FUZZ_CLEARENV
	/* No variable to expand: hides the known ${VAR} expansion overflow in cfg_tokenize so that
	 * a run can look for other bugs. */
	clearenv();
#else
	/* Known variables for ${...} expansion (see config.dict): a short and a long one. */
	unsetenv("KEEL_FUZZ_SHORT");
	unsetenv("KEEL_FUZZ_LONG");
	putenv("KEEL_FUZZ_SHORT=80");
	putenv("KEEL_FUZZ_LONG=/a/rather/long/value/used/to/check/expansion/bounds/0123456789");
#endif
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 16))
		return 0;
	cfg_silent = true;
	cfg_load_string("fuzz.cfg", (const char *)data, size);
	cfg_reset();
	return 0;
}
