"""Timeouts, retries, redispatch and error responses: keel never waits forever, never sends a
POST's body twice, and answers with a clear status when it cannot help."""
import socket
import time

from conftest import Conn, basic_config, free_port, origin_of


def dead_port():
    return free_port()  # nothing listens there: connections are refused


def test_redispatch_on_refused_server(env):
    o = env.origin("alive")
    port = free_port()
    env.keel(basic_config(port, ["127.0.0.1:%d" % dead_port(), o.addr],
                          extra_be="    retries 2\n    option redispatch"), [port])
    for _ in range(6):
        c = Conn(port)
        r = c.request("GET", "/")
        assert r.status == 200 and origin_of(r) == "alive"
        c.close()


def test_all_refused_gives_503(env):
    port = free_port()
    env.keel(basic_config(port, ["127.0.0.1:%d" % dead_port()], extra_be="    retries 1"), [port])
    c = Conn(port)
    r = c.request("GET", "/")
    assert r.status == 503
    assert b"<html>" in r.body


def test_post_never_sent_twice_on_reset(env):
    """Without the hold of the body (no option http-expect-continue), a POST that reached a
    server is never sent to another one: the reset gives a 502."""
    o1 = env.origin("o1")
    o2 = env.origin("o2")
    port = free_port()
    env.keel(basic_config(port, [o1.addr, o2.addr], extra_be="    retries 3\n    option redispatch\n"
                          "    no option http-expect-continue"), [port])
    for i in range(4):
        c = Conn(port)
        r = c.request("POST", "/?reset=1", body="data")
        assert r.status == 502
        c.close()
    total = o1.stats()["methods"].get("POST", 0) + o2.stats()["methods"].get("POST", 0)
    assert total == 4  # each POST reached exactly one server once


def test_post_reset_before_its_100_goes_elsewhere(env):
    """With the hold (the default), a server that resets a POST without answering 100 never got
    its body: the POST goes to the other server, which runs it once. (One that answered 100
    before its reset may have had the body: that one gets a 502, as above.)"""
    bad = env.origin("bad")
    good = env.origin("good")
    bad.control("reset=1&no100=1")
    port = free_port()
    env.keel(basic_config(port, [bad.addr, good.addr], extra_be="    retries 3"), [port])
    for i in range(4):
        c = Conn(port)
        r = c.request("POST", "/", body="data%d" % i)
        assert r.status == 200 and origin_of(r) == "good"
        c.close()
    assert good.stats()["methods"].get("POST", 0) == 4


def test_get_retried_on_reset_elsewhere(env):
    bad = env.origin("bad")
    good = env.origin("good")
    bad.control("reset=1")
    port = free_port()
    env.keel(basic_config(port, [bad.addr, good.addr], extra_be="    retries 2\n    option redispatch"), [port])
    for _ in range(4):
        c = Conn(port)
        r = c.request("GET", "/")
        assert r.status == 200 and origin_of(r) == "good"
        c.close()


def test_server_timeout_gives_504(env):
    o = env.origin()
    port = free_port()
    cfg = basic_config(port, [o.addr]).replace("timeout server 10s", "timeout server 400ms")
    env.keel(cfg, [port])
    c = Conn(port)
    t0 = time.time()
    r = c.request("GET", "/?hang=1")
    assert r.status == 504
    assert 0.3 < time.time() - t0 < 3


def test_http_request_timeout_408(env):
    o = env.origin()
    port = free_port()
    env.keel(basic_config(port, [o.addr], extra_defaults="    timeout http-request 300ms"), [port])
    c = Conn(port)
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n")  # never finishes the head
    t0 = time.time()
    r = c.read_response()
    assert r.status == 408
    assert time.time() - t0 < 3


def test_idle_keepalive_closed_after_timeout(env):
    o = env.origin()
    port = free_port()
    env.keel(basic_config(port, [o.addr], extra_defaults="    timeout http-keep-alive 300ms"), [port])
    c = Conn(port)
    assert c.request("GET", "/").status == 200
    assert c.closed_by_peer(timeout=3)


def test_garbage_response_gives_502(env):
    o = env.origin()
    port = free_port()
    env.keel(basic_config(port, [o.addr]), [port])
    c = Conn(port)
    assert c.request("GET", "/?garbage=1").status == 502


def test_truncated_response_closes_client(env):
    o = env.origin()
    port = free_port()
    env.keel(basic_config(port, [o.addr]), [port])
    c = Conn(port)
    c.send(b"GET /?partial=1&size=1000 HTTP/1.1\r\nHost: t\r\n\r\n")
    c.sock.settimeout(5)
    data = b""
    while True:
        d = c.sock.recv(65536)
        if not d:
            break
        data += d
    assert data.startswith(b"HTTP/1.1 200")


def test_errorfile_replaces_page(env, tmp_path):
    page = tmp_path / "503.http"
    page.write_bytes(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: 12\r\nConnection: close\r\n\r\nsite is busy")
    port = free_port()
    env.keel(basic_config(port, ["127.0.0.1:%d" % dead_port()],
                          extra_be="    retries 0\n    errorfile 503 %s" % page), [port])
    c = Conn(port)
    r = c.request("GET", "/")
    assert r.status == 503 and r.body == b"site is busy"


def test_frontend_maxconn_holds_extra_connections(env):
    """At the frontend's maxconn, with every connection carrying a request, a new one waits in
    the kernel's backlog; it is served once a slot frees (here: a connection whose response is
    done waits idle, and makes room for it; docs/configuration.md, "When connections run out")."""
    o = env.origin()
    port = free_port()
    env.keel(basic_config(port, [o.addr], extra_fe="    maxconn 2"), [port])
    a, b = Conn(port), Conn(port)
    a.send(b"GET /?delay=1000 HTTP/1.1\r\nHost: t\r\n\r\n")
    b.send(b"GET /?delay=1000 HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.2)
    c = Conn(port, timeout=1)  # accepted by the kernel, not by keel
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    c.sock.settimeout(0.5)
    try:
        got = c.sock.recv(100)
    except socket.timeout:
        got = None
    assert got is None
    assert a.read_response().status == 200
    assert b.read_response().status == 200
    c.sock.settimeout(5)
    assert c.read_response().status == 200
    # the slot was one of the two idle keep-alive connections
    assert a.closed_by_peer(1) or b.closed_by_peer(1)


def test_client_timeout_closes_slow_reader(env):
    o = env.origin()
    port = free_port()
    cfg = basic_config(port, [o.addr]).replace("timeout client 10s", "timeout client 500ms")
    env.keel(cfg, [port])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
    sock.connect(("127.0.0.1", port))
    c = Conn.__new__(Conn)
    c.sock, c.buf = sock, b""
    c.send(b"GET /?size=200000000 HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(2)  # do not read: keel's writes stall, the client timeout fires
    got = 0
    c.sock.settimeout(5)
    while True:
        try:
            d = c.sock.recv(1 << 20)
        except ConnectionResetError:
            break
        if not d:
            break
        got += len(d)
    assert got < 200000000


def test_tunnel_timeout(env):
    o = env.origin()
    port = free_port()
    env.keel(basic_config(port, [o.addr], extra_defaults="    timeout tunnel 400ms"), [port])
    c = Conn(port)
    c.send(b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
    assert c.read_response().status == 101
    t0 = time.time()
    assert c.closed_by_peer(timeout=5)
    assert time.time() - t0 < 3
