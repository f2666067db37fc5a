/* keel: command line, then hand over to the process layer. */
#include <stdio.h>
#include <string.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/demo.h>
#include <keel/modules.h>
#include <keel/process.h>
#include <keel/reload.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: keel -f CONFIG [-c] [-d|-db] [-D] [-p PIDFILE] [-q]\n"
		"       keel --demo      run the built-in demo (keel and three origins on 127.0.0.1)\n"
		"       keel -v          print the version\n"
		"  -f FILE   configuration file (HAProxy syntax)\n"
		"  -c        check the configuration and exit (0: valid, 1: invalid)\n"
		"  -d, -db   stay in the foreground (overrides 'daemon')\n"
		"  -D        run in the background\n"
		"  -p FILE   write the pid to FILE (overrides 'pidfile')\n"
		"  -q        quiet: only errors on the terminal\n");
}

int main(int argc, char **argv)
{
	struct keel_opts o = {0};
	const char *file = NULL;
	bool check = false;
	int i;

	keel_reload_init(argv); /* a reload's new process: takes what the old one passed */
	keel_modules_register();
	o.argv = argv;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-f") && i + 1 < argc) {
			if (file) {
				fprintf(stderr, "[ALERT] only one -f is supported\n");
				return 1;
			}
			file = argv[++i];
		} else if (!strcmp(a, "-c")) {
			check = true;
		} else if (!strcmp(a, "-d") || !strcmp(a, "-db")) {
			o.foreground = true;
		} else if (!strcmp(a, "-D")) {
			o.force_daemon = true;
		} else if (!strcmp(a, "-p") && i + 1 < argc) {
			o.pidfile = argv[++i];
		} else if (!strcmp(a, "-q")) {
			o.quiet = true;
		} else if (!strcmp(a, "-v") || !strcmp(a, "-vv") || !strcmp(a, "--version")) {
			printf("keel version %s\n", KEEL_VERSION);
			return 0;
		} else if (!strcmp(a, "--demo")) {
			return demo_main();
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "[ALERT] unknown or incomplete option '%s'\n", a);
			usage(stderr);
			return 1;
		}
	}
	if (!file) {
		fprintf(stderr, "[ALERT] no configuration file: use -f FILE (or --demo)\n");
		usage(stderr);
		return 1;
	}
	if (cfg_load_file(file) != OK) {
		keel_reload_failed(cfg_first_alert()); /* the old process reports it, and goes on */
		return 1;
	}
	if (check) {
		if (!o.quiet)
			printf("Configuration file is valid\n");
		return 0;
	}
	return keel_run(&o);
}
