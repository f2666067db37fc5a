/* libFuzzer target: HTTP/1 response heads and bodies (src/http/http.c). */
#include "fuzz-http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_http(HTTP_RESPONSE, data, size);
}
