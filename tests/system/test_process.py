"""Process behaviour: soft stop finishes in-flight requests, SIGINT stops at once, pid file,
daemon mode, hard-stop-after."""
import os
import signal
import subprocess
import threading
import time

from conftest import KEEL, Conn, basic_config, free_port, wait_port


def test_sigterm_finishes_inflight_then_exits(env):
    o = env.origin()
    port = free_port()
    k = env.keel(basic_config(port, [o.addr]), [port])
    c = Conn(port)
    c.send(b"GET /?delay=800 HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.2)
    k.kill(signal.SIGTERM)
    r = c.read_response()
    assert r.status == 200
    assert r.header("connection", "").lower() == "close"
    k.p.wait(5)
    assert k.p.returncode == 0
    # no longer accepting
    import socket
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_sigint_stops_at_once(env):
    o = env.origin()
    port = free_port()
    k = env.keel(basic_config(port, [o.addr]), [port])
    c = Conn(port)
    c.send(b"GET /?delay=5000 HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.2)
    t0 = time.time()
    k.kill(signal.SIGINT)
    k.p.wait(5)
    assert time.time() - t0 < 2
    assert c.closed_by_peer(2)


def test_hard_stop_after_bounds_soft_stop(env):
    o = env.origin()
    port = free_port()
    k = env.keel(basic_config(port, [o.addr], extra_global="    hard-stop-after 500ms"), [port])
    c = Conn(port)
    c.send(b"GET /?hang=1 HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.2)
    t0 = time.time()
    k.kill(signal.SIGTERM)
    k.p.wait(5)
    assert 0.4 < time.time() - t0 < 3


def test_idle_keepalive_closed_on_soft_stop(env):
    o = env.origin()
    port = free_port()
    k = env.keel(basic_config(port, [o.addr]), [port])
    c = Conn(port)
    assert c.request("GET", "/").status == 200
    k.kill(signal.SIGTERM)
    assert c.closed_by_peer(3)
    k.p.wait(5)


def test_daemon_and_pidfile(env, tmp_path):
    o = env.origin()
    port = free_port()
    pidfile = tmp_path / "k.pid"
    cfg = tmp_path / "k.cfg"
    cfg.write_text(basic_config(port, [o.addr], logs=False).replace(
        "global\n", "global\n    daemon\n    pidfile %s\n" % pidfile, 1))
    r = subprocess.run([KEEL, "-f", str(cfg)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    wait_port(port)
    pid = int(pidfile.read_text())
    try:
        assert Conn(port).request("GET", "/").status == 200
        assert os.getsid(pid) == pid  # detached into its own session
    finally:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)


def test_foreground_overrides_daemon(env):
    o = env.origin()
    port = free_port()
    cfg = basic_config(port, [o.addr]).replace("global\n", "global\n    daemon\n", 1)
    k = env.keel(cfg, [port])
    assert k.alive()
    assert Conn(port).request("GET", "/").status == 200
