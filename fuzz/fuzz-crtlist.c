/* libFuzzer target: a crt-list line (src/ssl/ssl-cert.c, ssl_crtlist_split()). Input: one line.
 * Checks that the path and every filter point inside the line and that the count stays within
 * its bound. */
#include <stdlib.h>
#include <string.h>

#include <keel/ssl.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *filters[8];
	char *line, *path, *err = NULL;
	int n, i;

	if (size > 8192)
		return 0;
	line = malloc(size + 1);
	if (!line)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	if (ssl_crtlist_split(line, &path, filters, 8, &n, &err) == 0) {
		if (n < 0 || n > 8)
			abort();
		if (path && (path < line || path > line + size))
			abort();
		for (i = 0; i < n; i++)
			if (filters[i] < line || filters[i] > line + size || !*filters[i])
				abort();
	} else {
		if (!err)
			abort();
		free(err);
	}
	free(line);
	return 0;
}
