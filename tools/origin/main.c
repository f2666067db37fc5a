/* keel-origin: a small controllable HTTP/1.1 origin for tests, benchmarks and the demo.
 * Usage: keel-origin -l ADDR:PORT [-l ADDR:PORT ...] [-n NAME] [-q] [-p FILE]
 * -p FILE appends the X-Req-Id of every POST received to FILE (see src/demo/origin.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keel/origin.h>

int main(int argc, char **argv)
{
	struct origin_opts o = {.name = "origin"};
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-l") && i + 1 < argc) {
			char *err = NULL;
			int fd;

			if (o.nlisten == 8) {
				fprintf(stderr, "keel-origin: at most 8 listeners\n");
				return 1;
			}
			fd = origin_listen(argv[++i], &err);
			if (fd < 0) {
				fprintf(stderr, "keel-origin: %s\n", err);
				free(err);
				return 1;
			}
			o.listen_fds[o.nlisten++] = fd;
			printf("listening on %s\n", argv[i]);
		} else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
			o.name = argv[++i];
		} else if (!strcmp(argv[i], "-p") && i + 1 < argc) {
			o.id_log = argv[++i];
		} else if (!strcmp(argv[i], "-q")) {
			o.quiet = 1;
		} else {
			fprintf(stderr,
				"usage: keel-origin -l ADDR:PORT [-l ...] [-n NAME] [-q] [-p FILE]\n");
			return 1;
		}
	}
	if (!o.nlisten) {
		fprintf(stderr, "keel-origin: no -l ADDR:PORT given\n");
		return 1;
	}
	fflush(stdout);
	return origin_run(&o);
}
