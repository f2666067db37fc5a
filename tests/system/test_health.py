"""Passive detection, per-try timeouts, probes, fail-open and latency awareness, with the real keel
in front of keel-origin processes. Faults are injected through the origin's /__control and by
stopping origins; every check polls with a deadline instead of sleeping a fixed time."""
import threading
import time

from conftest import Conn, basic_config, free_port, origin_of, stats_rows, wait_for


def start(env, n, extra_be="", server_opts="", extra_defaults=""):
    origins = [env.origin("o%d" % (i + 1)) for i in range(n)]
    port = free_port()
    servers = [("o%d" % (i + 1), o.addr, server_opts) for i, o in enumerate(origins)]
    keel = env.keel(basic_config(port, servers, extra_fe="    stats uri /stats",
                                 extra_be=extra_be, extra_defaults=extra_defaults), [port])
    return port, origins, keel


def get(port, path="/", timeout=10.0):
    c = Conn(port, timeout=timeout)
    t0 = time.time()
    r = c.request("GET", path)
    c.close()
    return r, time.time() - t0


def warm_up(port, n=60):
    c = Conn(port)
    for _ in range(n):
        assert c.request("GET", "/").status == 200
    c.close()


def test_hanging_server_is_retried_then_ejected(env):
    port, (o1, o2), keel = start(env, 2)
    warm_up(port)
    time.sleep(1.2)  # two health ticks: the per-try deadline now follows measured latency
    o1.control("hang=1")
    slowest = 0.0
    for _ in range(30):
        r, dt = get(port)
        assert r.status == 200
        assert origin_of(r) == "o2"
        slowest = max(slowest, dt)
    # Retried after the per-try deadline (250 ms floor for fast servers), never near 1 s.
    assert slowest < 0.9, slowest
    rows = stats_rows(port)
    assert rows["o1"]["status"] == "EJECTED", rows["o1"]
    assert "response timeout" in rows["o1"]["keel_reason"], rows["o1"]
    assert rows["o2"]["status"] == "UP"
    assert wait_for(lambda: "Server be/o1 is EJECTED" in keel.output(), 5)
    # The retry budget was not exceeded by 3 retries: nothing waited for timeout server.
    assert int(rows["o1"]["wretr"]) >= 3


def test_post_is_never_sent_twice(env):
    port, (o1, o2), keel = start(env, 2, extra_defaults="    timeout server 1500ms")
    warm_up(port)
    time.sleep(1.2)
    o1.control("hang=1")
    results = []
    for i in range(4):
        c = Conn(port, timeout=10)
        t0 = time.time()
        r = c.request("POST", "/post%d" % i, body=b"x=%d" % i,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
        results.append((r.status, time.time() - t0, origin_of(r)))
        c.close()
    # Round robin sent two of them to the hanging server: they wait for timeout server (504),
    # they are not retried on o2.
    statuses = sorted(s for s, _, _ in results)
    assert statuses.count(504) == 2, results
    assert statuses.count(200) == 2, results
    assert o2.stats()["methods"].get("POST", 0) == 2
    o1.control("")
    assert o1.stats()["methods"].get("POST", 0) == 2


def test_refused_server_is_ejected_and_probed_back(env):
    port, (o1, o2), keel = start(env, 2, server_opts="eject-time 300ms fastinter 200ms")
    warm_up(port, 10)
    o1_port = o1.port
    o1.stop()
    for _ in range(20):
        r, _ = get(port)
        assert r.status == 200 and origin_of(r) == "o2"
    assert wait_for(lambda: stats_rows(port)["o1"]["status"] == "EJECTED", 3)
    o1b = env.origin("o1", port=o1_port)
    assert wait_for(lambda: stats_rows(port)["o1"]["status"] == "UP", 5), stats_rows(port)["o1"]
    assert wait_for(lambda: "probe passed" in keel.output(), 5)
    seen = {origin_of(get(port)[0]) for _ in range(6)}
    assert seen == {"o1", "o2"}
    assert o1b.alive()


def test_fail_open_when_every_check_fails(env):
    port, origins, keel = start(env, 2, server_opts="check inter 200ms",
                                extra_be="    option httpchk GET /health\n"
                                         "    http-check expect status 299")
    assert wait_for(lambda: all(stats_rows(port)[n]["status"].startswith("DOWN") for n in ("o1", "o2")))
    r, _ = get(port)
    assert r.status == 200
    assert wait_for(lambda: "failing open" in keel.output(), 5)


def test_maintenance_page_when_every_check_fails(env):
    port, origins, keel = start(env, 2, server_opts="check inter 200ms",
                                extra_be="    option httpchk GET /health\n"
                                         "    http-check expect status 299\n"
                                         "    all-servers-down maintenance")
    assert wait_for(lambda: all(stats_rows(port)[n]["status"].startswith("DOWN") for n in ("o1", "o2")))
    r, _ = get(port)
    assert r.status == 503


def test_slow_server_loses_weight(env):
    port, (o1, o2, o3), keel = start(env, 3, extra_be="    per-try-timeout off")
    o1.control("delay=400")
    stop = time.time() + 8

    def worker():
        c = Conn(port, timeout=10)
        while time.time() < stop:
            assert c.request("GET", "/").status == 200
        c.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    ok = wait_for(lambda: stats_rows(port)["o1"]["status"] in ("UP (slow)", "EJECTED"), 8)
    for t in threads:
        t.join()
    assert ok, stats_rows(port)["o1"]
    assert wait_for(lambda: "is slow: p90" in keel.output(), 5)
    assert stats_rows(port)["o2"]["status"] == "UP"
