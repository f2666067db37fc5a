"""Connection exhaustion: more clients than maxconn that only hold their slots (idle keep-alive
connections, request heads sent a byte at a time) must not keep a normal client out. keel closes
idle keep-alive connections first, then the oldest incomplete heads (session_reclaim(),
docs/configuration.md "maxconn and queues"), never a connection with a request in progress.

The holders come from bench/idleconns (-H: slow heads; -k: more than the server takes), the
normal client is bench/oload at 100 requests/s."""
import os
import re
import signal
import socket
import time

from conftest import OLOAD, ROOT, Conn, basic_config, free_port, wait_for

IDLECONNS = os.path.join(ROOT, "build", "bench", "idleconns")
MAXCONN = 120
HOLDERS = 300  # 2.5 x maxconn


def start(env, extra_fe=""):
    """keel (2 threads, global maxconn MAXCONN, the metrics page) with one origin; timeouts long
    enough that no slot is freed by a timeout while a test runs."""
    o = env.origin()
    port = free_port()
    cfg = basic_config(port, [o.addr], extra_global="    maxconn %d" % MAXCONN,
                       extra_defaults="    timeout http-request 60s\n    timeout http-keep-alive 60s",
                       extra_fe="    stats prometheus-uri /metrics" + extra_fe)
    cfg = cfg.replace("timeout client 10s", "timeout client 60s").replace(
        "timeout server 10s", "timeout server 60s")
    k = env.keel(cfg, [port])
    return k, port


def holders(env, port, heads, n=HOLDERS):
    """n connections that hold slots (heads: slow request heads, a byte a second; else idle
    keep-alive ones, each after one request), more than keel takes; returns once they are set up
    (the ones keel does not take wait in its backlog)."""
    args = [IDLECONNS, "-u", "http://127.0.0.1:%d/" % port, "-n", str(n), "-k", "-s", "60",
            "-t", "3000"]
    args += ["-H", "-i", "1000", "-p", str(n)] if heads else ["-p", "20"]
    p = env.proc("idleconns-%s" % ("heads" if heads else "idle"), args)
    assert wait_for(lambda: "ready" in p.output(), timeout=15), p.output()
    time.sleep(0.5)
    return p


def normal_client(env, port, seconds=4):
    """bench/oload at 100 requests/s, each failed after 2 s: its summary as a dict."""
    p = env.proc("oload", [OLOAD, "-u", "http://127.0.0.1:%d/" % port, "-r", "100", "-d",
                           str(seconds), "-t", "2000", "-c", "16"])
    p.p.wait(timeout=seconds + 30)
    line = [l for l in p.output().splitlines() if l.startswith("sent=")]
    assert p.p.returncode == 0 and line, p.output()
    return dict(x.split("=", 1) for x in line[0].split())


def metric(port, name):
    r = Conn(port).request("GET", "/metrics")
    assert r.status == 200
    m = re.search(r'^%s\{frontend="fe"\} (\d+)$' % name, r.body.decode(), re.M)
    assert m, name
    return int(m.group(1))


def logged(k):
    """(idle, heads) summed over keel's "maxconn reached" lines."""
    got = re.findall(r"maxconn reached: closed (\d+) idle keep-alive / (\d+) slow request heads",
                     k.output())
    return sum(int(i) for i, _ in got), sum(int(h) for _, h in got)


def test_slow_heads_at_maxconn_do_not_keep_clients_out(env, oload_built):
    k, port = start(env)
    h = holders(env, port, heads=True)
    kv = normal_client(env, port)
    h.stop(signal.SIGKILL)  # keel's soft stop at the end would wait for these heads
    assert kv["sent"] == "400" and kv["failed"] == "0", kv
    # the heads were shed, counted and logged (a line a second at most per thread)
    shed = metric(port, "keel_frontend_maxconn_heads_closed_total")
    assert shed >= HOLDERS - MAXCONN, shed
    assert metric(port, "keel_frontend_maxconn_idle_closed_total") == 0
    assert wait_for(lambda: logged(k)[1] >= HOLDERS - MAXCONN, timeout=3), k.output()[-2000:]
    # a head that keel had read answers 408 in the request log, as at timeout http-request
    assert re.search(r' 408 .* cR-- ', k.output()), k.output()[-2000:]


def test_idle_keepalive_at_maxconn_do_not_keep_clients_out(env, oload_built):
    k, port = start(env)
    holders(env, port, heads=False)
    kv = normal_client(env, port)
    assert kv["sent"] == "400" and kv["failed"] == "0", kv
    closed = metric(port, "keel_frontend_maxconn_idle_closed_total")
    assert closed >= HOLDERS - MAXCONN, closed
    assert wait_for(lambda: logged(k)[0] >= HOLDERS - MAXCONN, timeout=3), k.output()[-2000:]


def test_frontend_maxconn_reclaims_its_own_connections(env, oload_built):
    """The frontend's maxconn (below the global one) reclaims the same way."""
    k, port = start(env, extra_fe="\n    maxconn 60")
    holders(env, port, heads=False, n=150)
    kv = normal_client(env, port, seconds=2)
    assert kv["sent"] == "200" and kv["failed"] == "0", kv
    assert metric(port, "keel_frontend_maxconn_idle_closed_total") >= 150 - 60


def test_requests_in_progress_are_never_cut(env, oload_built):
    """At maxconn, with slow heads and a normal client forcing reclaims: a request waiting for a
    slow origin, a large response to a client that does not read, and a request body on its way
    all complete."""
    k, port = start(env)
    slow = Conn(port, timeout=30)
    slow.send(b"GET /?delay=4000 HTTP/1.1\r\nHost: t\r\n\r\n")
    big = socket.socket()
    big.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
    big.connect(("127.0.0.1", port))
    big.sendall(b"GET /?size=8000000 HTTP/1.1\r\nHost: t\r\n\r\n")
    post = Conn(port, timeout=30)
    post.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 20\r\n\r\n0123456789")
    time.sleep(0.3)
    h = holders(env, port, heads=True)
    kv = normal_client(env, port, seconds=3)
    h.stop(signal.SIGKILL)
    assert kv["failed"] == "0", kv
    assert metric(port, "keel_frontend_maxconn_heads_closed_total") >= HOLDERS - MAXCONN
    post.send(b"abcdefghij")
    r = post.read_response()
    assert r.status == 200 and b"body_len 20\n" in r.body, r.body[:200]
    r = slow.read_response()
    assert r.status == 200
    c = Conn.__new__(Conn)
    c.sock, c.buf, c.timeout = big, b"", 30
    big.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # the rest, faster
    big.settimeout(30)
    r = c.read_response()
    assert r.status == 200 and len(r.body) == 8000000


def test_oldest_idle_goes_first_and_young_ones_stay(env):
    """At the frontend's maxconn: the connection idle the longest makes room; one idle for less
    than a second does not (the new one waits for the oldest to reach it). One worker thread:
    each worker chooses among its own connections."""
    o = env.origin()
    port = free_port()
    env.keel(basic_config(port, [o.addr], extra_fe="    maxconn 3").replace("nbthread 2", "nbthread 1"),
             [port])
    time.sleep(0.2)  # the probe connection of the start is gone
    conns = []
    for _ in range(3):
        conns.append(Conn(port))
        assert conns[-1].request("GET", "/").status == 200
        time.sleep(0.3)
    time.sleep(0.8)  # idle for 1.7, 1.4 and 1.1 s
    # conns[0], idle the longest, goes; the others stay
    d = Conn(port, timeout=5)
    assert d.request("GET", "/").status == 200
    assert conns[0].closed_by_peer(1)
    # all three idle for less than a second: the next one waits until the oldest has a second
    for c in (conns[1], conns[2], d):
        assert c.request("GET", "/").status == 200
    t = time.monotonic()
    e = Conn(port, timeout=5)
    assert e.request("GET", "/").status == 200
    waited = time.monotonic() - t
    assert 0.7 <= waited < 2.5, waited
    assert conns[1].closed_by_peer(1)
    assert conns[2].request("GET", "/").status == 200


def test_a_worker_makes_room_for_another(env):
    """Two workers, the frontend's maxconn 1: each new client lands on either worker (the kernel
    chooses), the connection it must replace (one that sent nothing for 200 ms: an incomplete
    head) on either; when it is the other worker's, that worker is asked to close it
    (session_reclaim_ask())."""
    o = env.origin()
    port = free_port()
    env.keel(basic_config(port, [o.addr], extra_fe="    maxconn 1"), [port])
    time.sleep(0.2)  # the probe connection of the start is gone
    prev = Conn(port, timeout=5)
    for _ in range(8):
        time.sleep(0.2)
        c = Conn(port, timeout=5)  # keel takes it once prev is closed
        assert prev.closed_by_peer(1.5)
        prev = c
    assert prev.request("GET", "/").status == 200
