/* Unit tests for src/admin/state*.c: the state file's round trip, malformed lines, servers that
 * are not in the configuration, configuration changes since the save, the format version, the
 * atomic write and its failures (injected ENOSPC: the previous file is kept). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/health.h>
#include <keel/server.h>
#include <keel/state.h>
#include <keel/stick.h>

#include "rt.h"
#include "unit.h"

static struct proxy *be;

static void teardown(void)
{
	rt_teardown();
	be = NULL;
}

/* Loads "backend be" with body and the health state (no worker thread is needed). */
static bool setup(const char *body)
{
	be = rt_setup(body, false);
	return be != NULL;
}

#define SERVERS " server s1 127.0.0.1:8001 weight 10\n server s2 127.0.0.1:8002\n"

static int admin(int i)
{
	return atomic_load(&be->srv[i]->admin);
}

static void apply(const char *text, struct state_report *rep)
{
	state_apply_buf("test.state", text, strlen(text), rep);
}

TEST(round_trip)
{
	struct state_report rep;
	size_t len;
	char *img;

	if (!setup(SERVERS))
		return;
	health_set_admin(be->srv[0], SRV_ADMIN_DRAIN, "test");
	health_set_weight(be->srv[0], 5, "test");
	health_set_admin(be->srv[1], SRV_ADMIN_MAINT, "test");
	health_set_checks(be->srv[1], false, "test");
	img = state_dump(&len);
	if (!CHECK(img))
		return;
	CHECK_EQ_INT(strlen(img), len);
	CHECK(strstr(img, "\nkeel-state 1\n") != NULL);
	CHECK(strstr(img, "server be s1 addr=127.0.0.1:8001 admin=drain weight=5 checks=on "
			  "cfg-admin=ready cfg-weight=10\n") != NULL);
	CHECK(strstr(img, "server be s2 addr=127.0.0.1:8002 admin=maint weight=1 checks=off") !=
	      NULL);
	/* a fresh process: the configuration's values, then the file */
	if (!setup(SERVERS))
		goto out;
	CHECK_EQ_INT(admin(0), SRV_ADMIN_READY);
	apply(img, &rep);
	CHECK_EQ_INT(rep.applied, 2);
	CHECK_EQ_INT(rep.malformed + rep.unknown + rep.conflicts + rep.refused, 0);
	CHECK_EQ_INT(admin(0), SRV_ADMIN_DRAIN);
	CHECK_EQ_INT(be->srv[0]->hl->uweight, 5);
	CHECK_EQ_INT(admin(1), SRV_ADMIN_MAINT);
	CHECK(be->srv[1]->hl->checks_off);
	CHECK(strstr(be->srv[0]->hl->why, "by state file") != NULL);
	/* and the dump of the restored state is the same image */
	{
		size_t len2;
		char *img2 = state_dump(&len2);

		CHECK(img2 && !strcmp(img, img2));
		free(img2);
	}
out:
	free(img);
}

TEST(malformed_lines_are_skipped_with_their_number)
{
	struct state_report rep;

	if (!setup(SERVERS))
		return;
	apply("# comment\n\nkeel-state 1\n"
	      "server be\n"			     /* 4: too short */
	      "server be s1 admin=sleeping\n"	     /* 5: bad admin */
	      "server be s1 weight=999\n"	     /* 6: bad weight */
	      "server be s1 weight\n"		     /* 7: no '=' */
	      "server be s%zz admin=drain\n"	     /* 8: bad escape */
	      "server be s1 checks=maybe\n"	     /* 9 */
	      "server be s2 admin=drain weight=3\n", /* 10: fine */
	      &rep);
	CHECK_EQ_INT(rep.malformed, 6);
	CHECK_EQ_INT(rep.applied, 1);
	CHECK_EQ_INT(admin(0), SRV_ADMIN_READY);
	CHECK_EQ_INT(be->srv[0]->hl->uweight, 10);
	CHECK_EQ_INT(admin(1), SRV_ADMIN_DRAIN);
	CHECK_EQ_INT(be->srv[1]->hl->uweight, 3);
}

TEST(garbage_never_crashes)
{
	struct state_report rep;
	char junk[STATE_MAX_LINE * 2 + 64];
	int i;

	if (!setup(SERVERS))
		return;
	memset(junk, 'x', sizeof(junk));
	memcpy(junk, "keel-state 1\nserver be s1 ", 26);
	state_apply_buf("junk", junk, sizeof(junk), &rep); /* an overlong line */
	CHECK_EQ_INT(rep.malformed, 1);
	junk[40] = 0;
	state_apply_buf("nul", junk, sizeof(junk), &rep); /* a NUL byte */
	CHECK_EQ_INT(rep.malformed, 1);
	for (i = 0; i < 40; i++)
		junk[i] = (char)(i * 37);
	state_apply_buf("bin", junk, 40, &rep);
	CHECK(rep.refused);
	state_apply_buf("empty", "", 0, &rep);
	CHECK_EQ_INT(rep.applied + rep.refused, 0);
	apply("keel-state 1\nserver a b c d e f g h i j k l m n o p q r s t u v w x y z 1 2 3 4 5 "
	      "6 7 8\n",
	      &rep);
	CHECK_EQ_INT(rep.malformed, 1);
}

TEST(unknown_servers_are_ignored)
{
	struct state_report rep;

	if (!setup(SERVERS))
		return;
	apply("keel-state 1\nserver be webC admin=maint\nserver www s1 admin=maint\n"
	      "server be s1 admin=drain\n",
	      &rep);
	CHECK_EQ_INT(rep.unknown, 2);
	CHECK_EQ_INT(rep.applied, 1);
	CHECK_EQ_INT(admin(0), SRV_ADMIN_DRAIN);
}

TEST(configuration_changes_win)
{
	struct state_report rep;

	/* s1's weight went from 10 to 20 in the configuration, s2 was put in maintenance there */
	if (!setup(" server s1 127.0.0.1:8001 weight 20\n server s2 127.0.0.1:8002 disabled\n"
		   " server s3 127.0.0.1:9999\n"))
		return;
	apply(
	    "keel-state 1\n"
	    "server be s1 addr=127.0.0.1:8001 admin=drain weight=5 cfg-admin=ready cfg-weight=10\n"
	    "server be s2 addr=127.0.0.1:8002 admin=ready weight=1 cfg-admin=ready cfg-weight=1\n"
	    "server be s3 addr=127.0.0.1:8003 admin=maint weight=1 cfg-admin=ready cfg-weight=1\n",
	    &rep);
	CHECK_EQ_INT(admin(0), SRV_ADMIN_DRAIN);   /* admin unchanged in the config: restored */
	CHECK_EQ_INT(be->srv[0]->hl->uweight, 20); /* the config's new weight wins */
	CHECK_EQ_INT(admin(1), SRV_ADMIN_MAINT);   /* the config's "disabled" wins */
	CHECK_EQ_INT(admin(2), SRV_ADMIN_READY);   /* another address: another machine */
	CHECK_EQ_INT(rep.conflicts, 3);
}

TEST(versions)
{
	struct state_report rep;

	if (!setup(SERVERS))
		return;
	apply("keel-state 2\nserver be s1 admin=drain\n", &rep);
	CHECK(rep.refused);
	CHECK_EQ_INT(admin(0), SRV_ADMIN_READY);
	apply("server be s1 admin=drain\n", &rep); /* no header: not a state file */
	CHECK(rep.refused);
	CHECK_EQ_INT(admin(0), SRV_ADMIN_READY);
	apply("keel-state x\n", &rep);
	CHECK(rep.refused);
	/* newer minor additions: unknown records and fields are skipped, the rest applies */
	apply("keel-state 1\nstick-table be key=1.2.3.4 server=s1\n"
	      "server be s1 admin=drain color=blue\n",
	      &rep);
	CHECK(!rep.refused);
	CHECK_EQ_INT(rep.skipped, 2);
	CHECK_EQ_INT(admin(0), SRV_ADMIN_DRAIN);
}

TEST(names_are_escaped)
{
	struct state_report rep;
	size_t len;
	char *img;

	if (!setup(SERVERS))
		return;
	/* Names are restricted by the configuration; the format does not rely on it. */
	be->srv[1]->name = "a b=c%#";
	health_set_admin(be->srv[1], SRV_ADMIN_DRAIN, "test");
	img = state_dump(&len);
	if (!CHECK(img))
		return;
	CHECK(strstr(img, "server be a%20b%3Dc%25%23 addr=") != NULL);
	health_set_admin(be->srv[1], SRV_ADMIN_READY, "test");
	apply(img, &rep);
	CHECK_EQ_INT(rep.malformed, 0);
	CHECK_EQ_INT(admin(1), SRV_ADMIN_DRAIN);
	free(img);
}

/* ---- the atomic write ---- */

static char dir[64];
static int dfd = -1;

static bool mkdir_tmp(void)
{
	strcpy(dir, "/tmp/keel-state-XXXXXX");
	if (!mkdtemp(dir))
		return FAIL("mkdtemp: %s", strerror(errno));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	return dfd >= 0;
}

static void rm_tmp(void)
{
	unlinkat(dfd, "st", 0);
	unlinkat(dfd, "st.tmp", 0);
	close(dfd);
	rmdir(dir);
}

static char *slurp(const char *name)
{
	static char buf[4096];
	int fd = openat(dfd, name, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n < 0 ? 0 : n] = 0;
	return buf;
}

static int fail_after; /* bytes accepted before ENOSPC */

static ssize_t full_disk(int fd, const void *b, size_t n)
{
	if (fail_after <= 0) {
		errno = ENOSPC;
		return -1;
	}
	n = MIN(n, (size_t)fail_after);
	fail_after -= (int)n;
	return write(fd, b, n);
}

TEST(write_is_atomic_and_failures_keep_the_old_file)
{
	char *err = NULL;

	if (!mkdir_tmp())
		return;
	CHECK_EQ_INT(state_write_file(dfd, "st", "keel-state 1\nold\n", 18, &err), OK);
	CHECK_STR(slurp("st"), "keel-state 1\nold\n");
	CHECK(slurp("st.tmp") == NULL);
	state_write_fn = full_disk;
	fail_after = 5; /* a short write, then the disk is full */
	CHECK_EQ_INT(state_write_file(dfd, "st", "keel-state 1\nnew\n", 18, &err), ERR);
	CHECK(err && strstr(err, "No space left on device"));
	free(err);
	err = NULL;
	CHECK_STR(slurp("st"), "keel-state 1\nold\n");
	CHECK(slurp("st.tmp") == NULL);
	state_write_fn = write;
	CHECK_EQ_INT(state_write_file(dfd, "st", "keel-state 1\nnew\n", 18, &err), OK);
	CHECK_STR(slurp("st"), "keel-state 1\nnew\n");
	/* a directory that cannot be written (not as root: root ignores the mode) */
	CHECK_EQ_INT(state_write_file(-1, "st", "x", 1, &err), ERR);
	CHECK(err != NULL);
	free(err);
	rm_tmp();
}

/* The dump of the current state, for a test (NULL after a FAIL). */
static char *dump(void)
{
	size_t len;
	char *img = state_dump(&len);

	if (!img)
		FAIL("state_dump failed");
	return img;
}

static struct server *srv_named(const char *name)
{
	int i;

	for (i = 0; i < server_count(be); i++)
		if (!server_deleted(be->srv[i]) && !strcmp(be->srv[i]->name, name))
			return be->srv[i];
	return NULL;
}

#define DYN_SERVERS SERVERS " server s3 127.0.0.1:8003\n"

TEST(runtime_servers_round_trip)
{
	char *args[] = {"be/web4", "127.0.0.5:8080", "weight", "7", "cookie", "w 4"};
	struct state_report rep;
	char err[512], *img = NULL, *img2 = NULL;
	struct server *s;

	if (!setup(DYN_SERVERS))
		return;
	CHECK_EQ_INT(server_add(6, args, "test", err, sizeof(err)), OK);
	s = srv_named("web4");
	if (!CHECK(s))
		return;
	health_set_admin(s, SRV_ADMIN_DRAIN, "test");
	CHECK_EQ_INT(server_set_addr(s, "127.0.0.6", 0, "test", err, sizeof(err)), OK);
	CHECK_EQ_INT(server_set_addr(be->srv[0], "::1", 9001, "test", err, sizeof(err)), OK);
	health_set_admin(be->srv[1], SRV_ADMIN_MAINT, "test");
	CHECK_EQ_INT(server_del(be->srv[1], "test", err, sizeof(err)), OK);
	img = dump();
	if (!img)
		return;
	CHECK(strstr(img, "\ndeleted-server be s2 addr=127.0.0.1:8002\n") != NULL);
	CHECK(strstr(img, "\nadded-server be web4 arg=127.0.0.5:8080 arg=weight arg=7 arg=cookie "
			  "arg=w%204 admin=drain weight=7 checks=on rt-addr=127.0.0.6:8080\n") !=
	      NULL);
	CHECK(strstr(img, "server be s1 addr=127.0.0.1:8001 admin=ready weight=10 checks=on "
			  "rt-addr=[::1]:9001 ") != NULL);
	/* a fresh process: the configuration, then the file */
	if (!setup(DYN_SERVERS))
		goto out;
	apply(img, &rep);
	CHECK_EQ_INT(rep.added, 1);
	CHECK_EQ_INT(rep.deleted, 1);
	CHECK_EQ_INT(rep.malformed + rep.unknown + rep.conflicts + rep.refused, 0);
	CHECK(server_deleted(be->srv[1]));
	s = srv_named("web4");
	if (CHECK(s)) {
		char a[96];

		CHECK(s->dynamic);
		CHECK_EQ_INT(atomic_load(&s->admin), SRV_ADMIN_DRAIN);
		CHECK_EQ_INT(s->weight, 7);
		CHECK_STR(s->cookie, "w 4");
		server_addr_str(s, a, sizeof(a));
		CHECK_STR(a, "127.0.0.6:8080");
		server_addr_str(be->srv[0], a, sizeof(a));
		CHECK_STR(a, "[::1]:9001");
	}
	/* the same image again is a no-op, and the dump is unchanged */
	apply(img, &rep);
	CHECK_EQ_INT(rep.malformed + rep.unknown + rep.conflicts + rep.added + rep.deleted, 0);
	img2 = dump();
	CHECK(img2 && !strcmp(img, img2));
out:
	free(img);
	free(img2);
}

TEST(runtime_server_conflicts)
{
	struct state_report rep;

	/* webC now in the configuration; s2's address changed since it was deleted */
	if (!setup(SERVERS " server webC 127.0.0.1:8009\n"))
		return;
	apply("keel-state 1\n"
	      "added-server be webC arg=127.0.0.3:80\n"
	      "deleted-server be s2 addr=127.0.0.2:1\n"
	      "added-server be bad arg=not-an-address\n"
	      "added-server be noaddr weight=3\n"
	      "server be s1 addr=127.0.0.1:8001 rt-addr=bogus\n",
	      &rep);
	CHECK_EQ_INT(rep.conflicts, 4);
	CHECK_EQ_INT(rep.malformed, 1);
	CHECK_EQ_INT(rep.added + rep.deleted, 0);
	CHECK(!server_deleted(be->srv[1]));
	CHECK(!srv_named("bad"));
	CHECK(!be->srv[2]->dynamic);
}

TEST(stick_entries_round_trip)
{
	const char *body = SERVERS " stick-table type ip size 100 expire 10m\n stick on src\n";
	struct stktable *t;
	struct state_report rep;
	uint8_t key[16];
	uint16_t klen;
	char *img = NULL, *img2 = NULL;
	uint64_t now_mono;
	struct timespec ts;

	if (!setup(body))
		return;
	t = be->stk.table;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now_mono = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	CHECK(stick_key_text(t, "10.1.2.3", key, &klen));
	CHECK_EQ_INT(stick_store(t, key, klen, 1, now_mono), OK);
	CHECK(stick_key_text(t, "2001:db8::1", key, &klen));
	CHECK_EQ_INT(stick_store(t, key, klen, 0, now_mono), OK);
	CHECK(atomic_load(&t->changed));
	img = dump();
	if (!img)
		return;
	CHECK(!atomic_load(&t->changed)); /* the dump took it */
	CHECK(strstr(img, "\nstick be type=ip key=00000000000000000000ffff0a010203 server=s2 "
			  "exp=") != NULL);
	/* a fresh process gets both entries, on the same servers */
	if (!setup(body))
		goto out;
	t = be->stk.table;
	apply(img, &rep);
	CHECK_EQ_INT(rep.sticks, 2);
	CHECK_EQ_INT(rep.stick_dropped + rep.malformed, 0);
	CHECK(stick_key_text(t, "10.1.2.3", key, &klen));
	CHECK_EQ_INT(stick_lookup(t, key, klen, now_mono), 1);
	img2 = dump();
	CHECK(img2 && strstr(img2, "key=20010db8000000000000000000000001 server=s1") != NULL);
	/* expired entries, a removed server, another key type and a table gone are dropped */
	apply("keel-state 1\nstick be type=ip key=00000000000000000000ffff0a010204 server=s1 "
		 "exp=1000\nstick be type=ip key=00000000000000000000ffff0a010205 server=s9 exp=0\n"
		 "stick be type=integer key=0100000000000000 server=s1 exp=0\n"
		 "stick www type=ip key=00000000000000000000ffff0a010206 server=s1 exp=0\n"
		 "stick be type=ip key=0a0102 server=s1 exp=0\n"
		 "stick be type=ip key=xyz server=s1 exp=0\n", &rep);
	CHECK_EQ_INT(rep.sticks, 0);
	CHECK_EQ_INT(rep.stick_dropped, 5);
	CHECK_EQ_INT(rep.malformed, 1);
out:
	free(img);
	free(img2);
}

TEST(check_path)
{
	char *err = NULL;

	CHECK_EQ_INT(state_check_path("/tmp/keel.state", &err), OK);
	CHECK_EQ_INT(state_check_path("keel.state", &err), OK);
	CHECK_EQ_INT(state_check_path("/nonexistent-dir/keel.state", &err), ERR);
	CHECK(err && strstr(err, "does not exist"));
	free(err);
	err = NULL;
	CHECK_EQ_INT(state_check_path("/tmp/", &err), ERR);
	free(err);
	teardown();
}

UNIT_RUN()
