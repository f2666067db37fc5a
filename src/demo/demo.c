/* keel --demo: a newcomer's first run. Three origin servers (the same code as the test origin)
 * run as child processes on ephemeral loopback ports; keel balances across them. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/demo.h>
#include <keel/origin.h>
#include <keel/process.h>

#define NORIGINS 3

static int listen_ephemeral(uint16_t *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 1024) ||
	    getsockname(fd, (struct sockaddr *)&a, &al)) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

int demo_main(void)
{
	static const char *const names[NORIGINS] = {"origin1", "origin2", "origin3"};
	const char *addr = getenv("KEEL_DEMO_ADDR") ? getenv("KEEL_DEMO_ADDR") : "127.0.0.1:8080";
	pid_t pids[NORIGINS];
	uint16_t ports[NORIGINS];
	char *cfg;
	struct keel_opts o = {.foreground = true};
	int i, rc;

	for (i = 0; i < NORIGINS; i++) {
		int fd = listen_ephemeral(&ports[i]);

		if (fd < 0) {
			fprintf(stderr, "[ALERT] demo: cannot open an origin socket: %s\n", strerror(errno));
			return 1;
		}
		pids[i] = fork();
		if (pids[i] == 0) {
			struct origin_opts oo = {.name = names[i], .nlisten = 1};

			prctl(PR_SET_PDEATHSIG, SIGTERM);
			oo.listen_fds[0] = fd;
			_exit(origin_run(&oo) ? 1 : 0);
		}
		close(fd);
	}
	cfg = strfmt("global\n"
		     "    maxconn 4096\n"
		     "defaults\n"
		     "    mode http\n"
		     "    timeout connect 5s\n"
		     "    timeout client 30s\n"
		     "    timeout server 30s\n"
		     "    option httplog\n"
		     "    log stdout format raw local0\n"
		     "listen demo\n"
		     "    bind %s\n"
		     "    balance roundrobin\n"
		     "    option forwardfor\n"
		     "    stats uri /stats\n"
		     "    server %s 127.0.0.1:%u\n"
		     "    server %s 127.0.0.1:%u\n"
		     "    server %s 127.0.0.1:%u\n",
		     addr, names[0], ports[0], names[1], ports[1], names[2], ports[2]);
	if (cfg_load_string("(demo)", cfg, strlen(cfg)) != OK) {
		free(cfg);
		return 1;
	}
	free(cfg);
	printf("keel demo: three origins on 127.0.0.1:%u, :%u and :%u\n"
	       "  site:        http://%s/\n"
	       "  stats page:  http://%s/stats\n"
	       "  try:         curl -s http://%s/ | head -3   (repeat: the origin changes)\n"
	       "Ctrl-C stops the demo.\n",
	       ports[0], ports[1], ports[2], addr, addr, addr);
	fflush(stdout);
	rc = keel_run(&o);
	for (i = 0; i < NORIGINS; i++) {
		kill(pids[i], SIGTERM);
		waitpid(pids[i], NULL, 0);
	}
	return rc;
}
