"""Corners where a request could fail or a response go astray: hostile or broken origins (bytes
after a response), slow clients, strictness of what keel forwards."""
import socket
import threading
import time

import pytest

from conftest import Conn, basic_config, free_port, stats_rows, wait_for

STRAY = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Stray: 1\r\n\r\nSTRAY"


class StrayOrigin:
    """An origin that answers each request with its path as the body, then misbehaves:
    after: a whole extra response in the same write;
    late:  the extra response 30 ms after the answer, while the connection may be idle;
    long:  2 more body bytes than Content-Length said, in a second write right after;
    head:  a body after its answer to a HEAD (Content-Length counts it, as for a GET)."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            self.conns += 1
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                method, path = head.split(b" ")[:2]
                body = path
                ok = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
                if method == b"HEAD":
                    # A HEAD's answer has no body; this origin sends one anyway.
                    s.sendall(ok + (body if self.mode == "head" else b""))
                elif self.mode == "after":
                    s.sendall(ok + body + STRAY)
                elif self.mode == "late":
                    s.sendall(ok + body)
                    time.sleep(0.03)
                    s.sendall(STRAY)
                elif self.mode == "long":
                    s.sendall(ok + body)
                    s.sendall(b"XX")
                else:
                    s.sendall(ok + body)
        except OSError:
            return
        finally:
            s.close()

    def close(self):
        self.sock.close()


def take_turns(port, mode, rounds, pause):
    """rounds of two keep-alive clients taking turns (pause s after each request); asserts that
    each gets exactly its own answer."""
    clients = [Conn(port), Conn(port)]
    for i in range(rounds):
        for n, c in enumerate(clients):
            path = "/%s/%d/%d" % (mode, n, i)
            if mode == "head":
                r = c.request("HEAD", path)
                assert r.status == 200, (i, n)
                assert r.body == b"", (i, n)
            r = c.request("GET", path)
            assert r.status == 200, (i, n, r.status)
            assert r.body == path.encode(), (i, n, r.body)
            assert r.header("x-stray") is None, (i, n)
            time.sleep(pause)
    for c in clients:
        c.close()


@pytest.mark.parametrize("mode,pause", [("after", 0), ("head", 0), ("long", 0.02),
                                        ("late", 0.05)])
def test_bytes_after_a_response_reach_no_other_client(env, mode, pause):
    """100 rounds of two keep-alive clients taking turns on a backend of one server that sends
    bytes after its responses, before keel could send it another request (pause): every client
    gets exactly its own answer, never the stray bytes; keel logs the protocol error."""
    o = StrayOrigin(mode)
    port = free_port()
    k = env.keel(basic_config(port, ["127.0.0.1:%d" % o.port],
                              extra_global="    nbthread 1"), [port])
    take_turns(port, mode, 100, pause)
    assert wait_for(lambda: "sent bytes after the end of a response" in k.output())
    o.close()


def test_server_that_sent_stray_bytes_gets_no_reuse(env):
    """Late stray bytes that come after keel sent the next request look like its answer to any
    proxy: once a server was caught sending stray bytes (first round, with a pause), keel stops
    reusing its connections, so 100 rounds without a pause never take a stray answer."""
    o = StrayOrigin("late")
    port = free_port()
    env.keel(basic_config(port, ["127.0.0.1:%d" % o.port], extra_global="    nbthread 1"),
             [port])
    take_turns(port, "late", 1, 0.05)
    conns = o.conns
    take_turns(port, "late", 100, 0)
    assert o.conns >= conns + 200  # one connection per request now


def test_well_behaved_server_keeps_its_connection(env):
    """The control: the same origin without stray bytes serves 200 requests on one connection
    (the checks above do not cost a clean server its keep-alive)."""
    o = StrayOrigin("clean")
    port = free_port()
    k = env.keel(basic_config(port, ["127.0.0.1:%d" % o.port],
                              extra_global="    nbthread 1"), [port])
    c = Conn(port)
    for i in range(200):
        r = c.request("GET", "/clean/%d" % i)
        assert r.body == ("/clean/%d" % i).encode()
    assert o.conns == 1
    assert "sent bytes after the end of a response" not in k.output()
    o.close()


BAD_TARGETS = ["/p#frag", "http://host/#frag", "http://a@host/", "http://[::1/", "http://h:99999/",
               "http://a,b/", "http:///x", "https://host/", "http://h:0/", "http://[zz]/"]


@pytest.mark.parametrize("target", BAD_TARGETS)
def test_invalid_request_targets_get_400(env, target):
    """Targets keel does not forward: a fragment, userinfo, an invalid or empty host or port, the
    https scheme on a plain connection. The origin never sees them."""
    o = env.origin()
    port = free_port()
    env.keel(basic_config(port, [o.addr]), [port])
    c = Conn(port)
    c.send(("GET %s HTTP/1.1\r\nHost: host\r\n\r\n" % target).encode())
    assert c.read_response().status == 400
    assert o.stats().get("requests", 0) == 0


def test_valid_absolute_target_is_forwarded_in_origin_form(env):
    o = env.origin()
    port = free_port()
    env.keel(basic_config(port, [o.addr]), [port])
    r = Conn(port).request("GET", "http://example.org:8080/a?b=1", headers={"Host": "other"})
    assert r.status == 200
    assert b"path /a" in r.body


class LoneCROrigin(StrayOrigin):
    """Answers with a lone CR before its status line."""

    def _serve(self, s):
        try:
            while b"\r\n\r\n" not in s.recv(65536):
                pass
            s.sendall(b"\rHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            time.sleep(0.5)
        except OSError:
            pass
        finally:
            s.close()


def test_response_not_starting_with_its_status_line_is_502(env):
    o = LoneCROrigin("clean")
    port = free_port()
    env.keel(basic_config(port, ["127.0.0.1:%d" % o.port]), [port])
    r = Conn(port).request("GET", "/")
    assert r.status == 502
    o.close()


def test_slow_uploads_do_not_make_their_server_slow(env):
    """40 clients pinned to server a (persistence cookie) upload POST bodies at a byte per 0.1 s
    while other clients use both servers normally, for 30 s: a's time to first byte counts from
    the last byte it received, so it is never flagged slow nor ejected, and no sticky user
    moves."""
    o1, o2 = env.origin("a"), env.origin("b")
    port = free_port()
    k = env.keel(basic_config(port, [("a", o1.addr, "cookie a"), ("b", o2.addr, "cookie b")],
                              extra_fe="    stats uri /stats",
                              extra_be="    cookie SRV insert indirect nocache"), [port])
    stop = time.time() + 30
    errors, moved, posts = [], [], [0]

    def uploader():
        c = Conn(port, timeout=20)
        while time.time() < stop - 3:
            body = b"x" * 20
            c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nCookie: SRV=a\r\nContent-Length: 20\r\n\r\n")
            for i in range(len(body)):
                c.send(body[i:i + 1])
                time.sleep(0.1)
            r = c.read_response()
            if r.status != 200 or r.header("x-origin") != "a":
                errors.append((r.status, r.header("x-origin")))
            if r.header("x-keel-moved-from"):
                moved.append(r.header("x-keel-moved-from"))
            posts[0] += 1
        c.close()

    def normal():
        c = Conn(port, timeout=10)
        while time.time() < stop:
            r = c.request("GET", "/")
            if r.status != 200:
                errors.append(r.status)
            time.sleep(0.02)
        c.close()

    threads = [threading.Thread(target=uploader) for _ in range(40)]
    threads += [threading.Thread(target=normal) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert posts[0] >= 40 * 8
    assert errors == []
    assert moved == []
    out = k.output()
    assert "is slow" not in out and "ejected" not in out.lower(), out[-2000:]
    assert stats_rows(port)["a"]["status"] == "UP"
