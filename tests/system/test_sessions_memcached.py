"""PHP sessions in memcached behind keel, no stickiness (docs/recipes/php-sessions.md, recipe 2):
a real Debian memcached and two real `php -S` origins with php-memcached's session handler, keel
balancing round-robin with no cookie. One client's counter is shared by both origins and survives
the SIGKILL of either, with no failed request; a negative control with file sessions loses it, and
so does the death of memcached itself (keel cannot help). Also: the session lock left by an origin
killed mid-request, and two memcached nodes with replicas surviving the death of one."""
import http.cookiejar
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import basic_config, free_port, php_origin, stats_rows, wait_for

# `php -n` reads no php.ini: load Debian's php-memcached by hand, igbinary and msgpack first (its
# memcached.so uses them; /etc/php/*/mods-available/ gives them priority 20, memcached 25).
EXTENSIONS = [("extension", "igbinary"), ("extension", "msgpack"), ("extension", "memcached")]


def memcached(env):
    """A real memcached on 127.0.0.1:PORT (TCP only, 16 MB); its Proc, with .port."""
    mc = shutil.which("memcached") or "/usr/bin/memcached"
    if not os.path.exists(mc):
        pytest.fail("memcached is not installed: run tools/deps.sh test (as root) first")
    port = free_port()
    args = [mc, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "16", "-c", "256"]
    if os.getuid() == 0:
        args += ["-u", "nobody"]  # memcached refuses to run as root
    p = env.proc("memcached-%d" % port, args, wait_for_port=port)
    p.port = port
    return p


def recipe_ini(*mcs, extra=()):
    """The php.ini settings of the recipe, as -d pairs, for these memcached Procs."""
    php = shutil.which("php")
    if not php:
        pytest.fail("php-cli is not installed: run tools/deps.sh test (as root) first")
    args = [php, "-n"] + ["-d%s=%s" % kv for kv in EXTENSIONS] + ["-m"]
    mods = subprocess.run(args, capture_output=True, text=True)
    if "memcached" not in mods.stdout.split():
        pytest.fail("php-memcached is not installed (%s: %s): run tools/deps.sh test (as root) first"
                    % (" ".join(args), (mods.stderr or mods.stdout).strip()[-300:]))
    return EXTENSIONS + [
        ("session.save_handler", "memcached"),
        ("session.save_path", ",".join("127.0.0.1:%d" % mc.port for mc in mcs)),
        # the defaults, spelled out as in the recipe: a session is locked while a request uses it,
        # so two requests of one user on two servers do not overwrite each other's changes
        ("memcached.sess_locking", "On"),
        ("memcached.sess_binary_protocol", "On"),
    ] + list(extra)


class Client:
    """One browser: a cookie jar and a new connection per request."""

    def __init__(self, port):
        self.url = "http://127.0.0.1:%d/" % port
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def hit(self, url=None):
        """(status, {'n': .., 'server': ..}) of a GET of url (default: keel's /); status 0 when no
        HTTP answer came."""
        try:
            with self.opener.open(url or self.url, timeout=10) as r:
                body = r.read().decode()
                return r.status, dict(line.split("=", 1) for line in body.split("\n") if "=" in line)
        except urllib.error.HTTPError as e:
            return e.code, {}
        except OSError as e:
            return 0, {"error": str(e)}

    def count(self, first, requests):
        """`requests` requests that must all succeed with the counter going on from `first`;
        returns the origin of each."""
        servers = []
        for n in range(first, first + requests):
            status, got = self.hit()
            assert status == 200 and got.get("n") == str(n), (n, status, got, servers)
            servers.append(got["server"])
        return servers

    def count_until(self, first, server, timeout=5.0):
        """Requests as in count() until `server` answers one; returns the next counter value."""
        n = [first]

        def step():
            status, got = self.hit()
            assert status == 200 and got.get("n") == str(n[0]), (n[0], status, got)
            n[0] += 1
            return got["server"] == server

        assert wait_for(step, timeout, step=0.02), "%s never came back (counter at %d)" % (server, n[0])
        return n[0]


def start(env, ini):
    """Two PHP origins with the same -d settings behind keel: round-robin, no cookie, no active
    check. A dead origin is met by live traffic: its refused connects are retried on the other
    origin (GET is idempotent) and eject it after 3; it comes back when a probe of
    `option httpchk GET /health` passes, every fastinter after `eject-time`."""
    pa, pb = php_origin(env, "webA", ini), php_origin(env, "webB", ini)
    port = free_port()
    opts = "eject-time 500ms fastinter 100ms"
    cfg = basic_config(port, [("webA", "127.0.0.1:%d" % pa.port, opts), ("webB", "127.0.0.1:%d" % pb.port, opts)],
                       extra_be="    option httpchk GET /health", extra_fe="    stats uri /stats")
    k = env.keel(cfg, [port])
    return k, port, pa, pb


def alternates(servers):
    """Round-robin without stickiness: both origins serve, each at least a quarter."""
    return all(servers.count(s) >= len(servers) // 4 for s in ("webA", "webB"))


def test_memcached_sessions_survive_either_server(env):
    mc = memcached(env)
    ini = recipe_ini(mc)
    k, port, pa, pb = start(env, ini)
    c = Client(port)
    servers = c.count(1, 40)
    assert alternates(servers), servers  # shared sessions, not stickiness

    # SIGKILL webA: not one request fails, the counter goes on (webB reads the same session)
    pa.kill(signal.SIGKILL)
    pa.p.wait(5)
    servers = c.count(41, 20)
    assert set(servers) == {"webB"}, servers
    row = stats_rows(port)["webA"]
    assert int(row["econ"]) >= 1, row  # keel did meet the dead origin; its retries hid it
    assert wait_for(lambda: "Server be/webA is EJECTED" in k.output(), 3), k.output()[-2000:]

    # webA back on its port: keel's probe returns it to the balancing, then SIGKILL webB
    pa = php_origin(env, "webA", ini, port=pa.port)
    n = c.count_until(61, "webA")
    assert alternates(c.count(n, 20)), "webA should be back in the balancing"
    n += 20
    pb.kill(signal.SIGKILL)
    pb.p.wait(5)
    servers = c.count(n, 20)
    assert set(servers) == {"webA"}, servers
    assert int(stats_rows(port)["webB"]["econ"]) >= 1
    n += 20

    # memcached itself is the single point of failure, the same on every origin: a user with a
    # session gets 200 and an empty session (PHP logs a warning), a new user a 500 (no session ID
    # can be created). keel sees a working origin, or a failure everywhere: nothing to fail over to.
    mc.kill(signal.SIGKILL)
    mc.p.wait(5)
    status, got = c.hit()
    assert status == 200 and got.get("n") == "1", (n, status, got)
    assert wait_for(lambda: "Failed to read session data: memcached" in pa.output(), 3), pa.output()[-2000:]
    status, got = Client(port).hit()
    assert status == 500, (status, got)
    # a restarted memcached is empty: sessions start again from 1, and are shared again
    mc2 = env.proc("memcached-%d-restarted" % mc.port, mc.p.args, wait_for_port=mc.port)
    assert mc2.alive()
    c.count(1, 4)


def test_file_sessions_without_stickiness_lose_the_counter(env):
    """Negative control, same keel set-up: file sessions, each origin its own directory. Both
    origins serve and the counter is not 1..10 (each origin counts its half): the checks above can
    fail."""
    k, port, pa, pb = start(env, [])
    c = Client(port)
    got = [c.hit() for _ in range(10)]
    assert all(status == 200 for status, _ in got), got
    assert alternates([g["server"] for _, g in got]), got
    counters = [int(g["n"]) for _, g in got]
    assert counters != list(range(1, 11)) and max(counters) < 10, counters


def test_origin_killed_mid_request_leaves_the_session_locked(env):
    """sess_locking's price: an origin killed while a request holds the user's session lock leaves
    the lock in memcached. The other origin waits for it (lock_wait_min x lock_retries: 0.75 s by
    default), then serves that user an empty session (200, not saved over the real one) until
    memcached.sess_lock_expire; after that the session is back, minus the killed request's
    change. keel has nothing to see: every answer is a 200."""
    mc = memcached(env)
    ini = recipe_ini(mc, extra=[("memcached.sess_lock_expire", "2")])
    k, port, pa, pb = start(env, ini)
    c = Client(port)
    c.count(1, 2)
    # the slow request goes to webA directly (through keel, killing its origin would have keel
    # retry this GET on webB, which would meet the same lock)
    accepted = pa.output().count("Accepted")
    slow = threading.Thread(target=c.hit, args=("http://127.0.0.1:%d/?sleep=5000" % pa.port,))
    slow.start()
    assert wait_for(lambda: pa.output().count("Accepted") > accepted, 3)
    time.sleep(0.2)  # session_start() has taken the lock
    pa.kill(signal.SIGKILL)
    pa.p.wait(5)
    slow.join(10)
    t = time.time()
    status, got = c.hit()
    assert status == 200 and got.get("n") == "1" and got.get("server") == "webB", got  # locked out
    assert time.time() - t >= 0.5  # after the lock retries
    assert "Unable to clear session lock record" in pb.output()

    # back once the lock expired: 3 is the killed request's increment, never saved
    def back():
        status, got = c.hit()
        assert status == 200, (status, got)
        return got.get("n") == "3"
    assert wait_for(back, 6), pb.output()[-2000:]
    c.count(4, 4)


def test_two_memcached_with_replicas_survive_one_memcached(env):
    """The recipe's production form: two memcached, each session written to both
    (sess_number_of_replicas 1) and a dead one left out after one failure. Eight users (their
    sessions spread over both nodes by consistent hashing) keep counting when the first memcached
    dies."""
    mc1, mc2 = memcached(env), memcached(env)
    ini = recipe_ini(mc1, mc2, extra=[("memcached.sess_number_of_replicas", "1"),
                                      ("memcached.sess_consistent_hash", "On"),
                                      ("memcached.sess_remove_failed_servers", "On"),
                                      ("memcached.sess_server_failure_limit", "1")])
    k, port, pa, pb = start(env, ini)
    users = [Client(port) for _ in range(8)]
    for u in users:
        u.count(1, 3)
    mc1.kill(signal.SIGKILL)
    mc1.p.wait(5)
    for u in users:
        u.count(4, 3)
