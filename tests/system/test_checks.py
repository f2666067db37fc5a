"""Active health checks and the agent, with the real keel: HTTP checks (status, string and regex
rules), connect-only and tcp-check rules, refused ports, misbehaving check targets (garbage,
reset, half-close, silence, a huge answer) and an agent. Scripted servers run on threads of the
test; every wait polls with a deadline."""
import os
import socket
import struct
import threading
import time

import pytest

from conftest import Conn, basic_config, free_port, origin_of, stats_rows, wait_for


def served_by(port, n=8):
    """The origins that answered n requests (each on a new connection)."""
    seen = []
    for _ in range(n):
        c = Conn(port)
        r = c.request("GET", "/")
        c.close()
        assert r.status == 200, r.status
        seen.append(origin_of(r))
    return set(seen)


def keel_with(env, servers, extra_be="", extra_defaults=""):
    port = free_port()
    keel = env.keel(basic_config(port, servers, extra_fe="    stats uri /stats",
                                 extra_be=extra_be, extra_defaults=extra_defaults), [port])
    return port, keel


def down_line(srv, reason):
    return "Server be/%s is DOWN, reason: %s" % (srv, reason)


def up_line(srv, reason=""):
    return "Server be/%s is UP, reason: %s" % (srv, reason)


class Scripted:
    """A TCP server on threads: each connection is handed to self.handler(sock); the bytes of
    every request read with read_request() are kept in self.requests."""

    def __init__(self, handler):
        self.handler = handler
        self.requests = []
        self.conns = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            self.conns += 1
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        s.settimeout(5)
        try:
            self.handler(self, s)
        except OSError:
            pass
        finally:
            s.close()

    def read_request(self, s):
        """Reads an HTTP request head and its Content-Length body."""
        data = b""
        while b"\r\n\r\n" not in data:
            d = s.recv(4096)
            if not d:
                break
            data += d
        head, _, body = data.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                while len(body) < int(value):
                    d = s.recv(4096)
                    if not d:
                        break
                    body += d
        self.requests.append(head + b"\r\n\r\n" + body)
        return data

    def close(self):
        self.closed = True
        self.sock.close()


@pytest.fixture
def scripted():
    made = []

    def make(handler):
        s = Scripted(handler)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def answer(raw):
    def handler(srv, s):
        srv.read_request(s)
        s.sendall(raw)
    return handler


# ---- HTTP checks ----

def test_http_check_500_goes_down_and_comes_back(env):
    o1, o2 = env.origin("o1"), env.origin("o2")
    port, keel = keel_with(env, [("o1", o1.addr, "check inter 200ms rise 2 fall 2"),
                                 ("o2", o2.addr, "check inter 200ms rise 2 fall 2")],
                           extra_be="    option httpchk GET /health")
    assert served_by(port) == {"o1", "o2"}
    o1.control("status=500")
    reason = "check failed: status 500 (expected 2xx/3xx)"
    assert wait_for(lambda: down_line("o1", reason) in keel.output()), keel.output()[-2000:]
    assert served_by(port, 10) == {"o2"}
    row = stats_rows(port)["o1"]
    assert row["status"].startswith("DOWN") and row["check_status"] == "L7STS"
    assert row["check_code"] == "500"
    # It was GETs to /health that decided.
    assert o1.stats()["methods"].get("GET", 0) >= 2
    o1.control("")
    assert wait_for(lambda: up_line("o1", "check passed: status 200") in keel.output())
    assert wait_for(lambda: served_by(port) == {"o1", "o2"}, 3)
    assert stats_rows(port)["o1"]["status"].startswith("UP")  # "UP 1/2": one more pass to full


def test_rise_is_waited_for_after_a_failure(env):
    o1, o2 = env.origin("o1"), env.origin("o2")
    port, keel = keel_with(env, [("o1", o1.addr, "check inter 300ms rise 3 fall 1"),
                                 ("o2", o2.addr, "")],
                           extra_be="    option httpchk")
    o1.control("status=503")
    assert wait_for(lambda: down_line("o1", "check failed: status 503") in keel.output())
    o1.control("")
    # Going up takes three passing checks, about 2 x 300 ms after the first one.
    t0 = time.time()
    assert wait_for(lambda: stats_rows(port)["o1"]["status"].startswith("DOWN 1/"), 3)
    assert wait_for(lambda: up_line("o1") in keel.output(), 5)
    assert time.time() - t0 >= 0.4
    assert "o1" in served_by(port)


def test_check_request_bytes(env, scripted):
    srv = scripted(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK"))
    port, keel = keel_with(env, [("s1", "127.0.0.1:%d" % srv.port, "check inter 200ms")],
                           extra_be="    option httpchk\n"
                                    "    http-check send meth POST uri /hc ver HTTP/1.1 "
                                    "hdr X-Probe yes body hello")
    assert wait_for(lambda: srv.requests, 5)
    req = srv.requests[0]
    head, body = req.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /hc HTTP/1.1"
    assert b"Host: 127.0.0.1:%d" % srv.port in lines
    assert b"X-Probe: yes" in lines
    assert b"User-Agent: keel-check" in lines
    assert b"Connection: close" in lines
    assert b"Content-Length: 5" in lines
    assert body == b"hello"


def test_old_httpchk_form_with_headers(env, scripted):
    srv = scripted(answer(b"HTTP/1.0 200 OK\r\n\r\n"))
    port, keel = keel_with(env, [("s1", "127.0.0.1:%d" % srv.port, "check inter 200ms")],
                           extra_be="    option httpchk GET /ping HTTP/1.1\\r\\nHost:\\ www.example")
    assert wait_for(lambda: srv.requests, 5)
    lines = srv.requests[0].split(b"\r\n")
    assert lines[0] == b"GET /ping HTTP/1.1"
    assert b"Host: www.example" in lines
    assert sum(1 for l in lines if l.lower().startswith(b"host:")) == 1


def test_expect_string_and_rstring(env):
    o1, o2 = env.origin("o1"), env.origin("o2")
    # keel-origin's text body starts with "origin NAME"
    port, keel = keel_with(env, [("o1", o1.addr, "check inter 200ms"),
                                 ("o2", o2.addr, "check inter 200ms")],
                           extra_be="    option httpchk GET /\n"
                                    "    http-check expect string \"origin o1\"")
    assert wait_for(lambda: down_line("o2", "check failed: body did not contain 'origin o1'")
                    in keel.output())
    assert served_by(port) == {"o1"}
    assert stats_rows(port)["o2"]["check_status"] == "L7BODY"
    env.procs[-1].stop()

    port, keel = keel_with(env, [("o1", o1.addr, "check inter 200ms"),
                                 ("o2", o2.addr, "check inter 200ms")],
                           extra_be="    option httpchk GET /\n"
                                    "    http-check expect rstring ^origin\\ o2\\n")
    assert wait_for(lambda: down_line("o1", "check failed: body did not match") in keel.output())
    assert served_by(port) == {"o2"}


def test_expect_status_list(env):
    o1, o2 = env.origin("o1"), env.origin("o2")
    o1.control("status=204")
    port, keel = keel_with(env, [("o1", o1.addr, "check inter 200ms"),
                                 ("o2", o2.addr, "check inter 200ms")],
                           extra_be="    option httpchk GET /\n"
                                    "    http-check expect status 204,300-399")
    # o2 answers 200: not in the list (the rule replaces the 2xx/3xx default)
    assert wait_for(lambda: down_line("o2", "check failed: status 200 (expected 204,300-399)")
                    in keel.output())
    time.sleep(0.5)  # a few more check rounds
    assert "is DOWN" not in keel.output().replace(down_line("o2", ""), "")
    assert stats_rows(port)["o1"]["status"] == "UP"
    assert stats_rows(port)["o1"]["check_code"] == "204"


# ---- connect-only and tcp-check ----

def test_refused_port_goes_down(env):
    o1, o2 = env.origin("o1"), env.origin("o2")
    dead = free_port()
    port, keel = keel_with(env, [("o1", o1.addr, "check inter 200ms"),
                                 ("o2", o2.addr, "check inter 200ms"),
                                 ("o3", "127.0.0.1:%d" % dead, "check inter 200ms")])
    assert wait_for(lambda: down_line("o3", "check failed: connection refused") in keel.output())
    assert stats_rows(port)["o3"]["check_status"] == "L4CON"
    # A connect-only check passes on a listening port.
    assert stats_rows(port)["o1"]["check_status"] == "L4OK"
    assert served_by(port) == {"o1", "o2"}
    o1.stop()
    assert wait_for(lambda: down_line("o1", "check failed: connection refused") in keel.output())
    assert served_by(port) == {"o2"}


def test_tcp_check_rules_on_check_port(env, scripted):
    state = {"reply": b"+PONG\r\n"}

    def redis(srv, s):
        data = b""
        while b"PING\r\n" not in data:
            d = s.recv(100)
            if not d:
                return
            data += d
        srv.requests.append(data)
        s.sendall(state["reply"])
        s.recv(100)  # until keel closes

    fake = scripted(redis)
    o1, o2 = env.origin("o1"), env.origin("o2")
    opts = "check inter 200ms rise 1 fall 1 port %d" % fake.port
    port, keel = keel_with(env, [("o1", o1.addr, opts), ("o2", o2.addr, "")],
                           extra_be="    option tcp-check\n"
                                    "    timeout check 500ms\n"
                                    "    tcp-check send PING\\r\\n\n"
                                    "    tcp-check expect string +PONG")
    assert wait_for(lambda: fake.requests, 5)
    assert fake.requests[0] == b"PING\r\n"
    assert stats_rows(port)["o1"]["status"] == "UP"
    state["reply"] = b"-ERR busy\r\n"
    assert wait_for(lambda: down_line(
        "o1", "check failed: step 2: expected '+PONG', received '-ERR busy..' "
        "(timeout after 500 ms)") in keel.output())
    assert served_by(port) == {"o2"}
    state["reply"] = b"+PONG\r\n"
    assert wait_for(lambda: up_line("o1", "check passed: tcp-check passed") in keel.output())


# ---- misbehaving check targets ----

def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_check_survives_peer_misbehaviour(env, scripted):
    mode = {"m": "ok"}

    def handler(srv, s):
        m = mode["m"]
        if m == "silent":
            srv.read_request(s)
            s.recv(100)  # until keel gives up
            return
        srv.read_request(s)
        if m == "ok":
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nok needle")
        elif m == "garbage":
            s.sendall(b"\x00\x01\x02 not http at all\r\n\r\n")
        elif m == "reset":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif m == "halfclose":
            s.shutdown(socket.SHUT_WR)
            s.recv(100)
        elif m == "huge":
            try:
                s.sendall(b"HTTP/1.1 200 OK\r\n\r\n" + b"a" * (4 << 20))
            except OSError:
                pass  # keel stops reading at its buffer's size

    srv = scripted(handler)
    port, keel = keel_with(env, [("s1", "127.0.0.1:%d" % srv.port,
                                  "check inter 100ms rise 1 fall 1")],
                           extra_be="    option httpchk GET /\n"
                                    "    http-check expect string needle\n"
                                    "    timeout check 300ms")
    cases = [
        ("garbage", "invalid response '... not http at all"),
        ("reset", "connection reset before a response"),
        ("halfclose", "connection closed before a response"),
        ("silent", "timeout after 300 ms waiting for the response"),
        ("huge", "body did not contain 'needle' (body truncated)"),
    ]
    assert wait_for(lambda: stats_rows(port)["s1"]["check_status"] == "L7OK")
    base = nfds(keel.p.pid)
    for m, reason in cases:
        ups = keel.output().count(up_line("s1"))
        mode["m"] = m
        line = down_line("s1", "check failed: " + reason)
        assert wait_for(lambda: line in keel.output()), (m, keel.output()[-1500:])
        mode["m"] = "ok"
        assert wait_for(lambda: keel.output().count(up_line("s1")) > ups), m
    assert keel.alive()
    # No descriptor leaked: at most the one check in flight.
    assert wait_for(lambda: nfds(keel.p.pid) <= base + 1, 3), (base, nfds(keel.p.pid))


# ---- agent ----

def test_agent_words(env, scripted):
    state = {"line": b"up\n"}

    def agent(srv, s):
        srv.requests.append(b"")
        s.sendall(state["line"])

    ag = scripted(agent)
    o1, o2 = env.origin("o1"), env.origin("o2")
    opts = "weight 100 agent-check agent-port %d agent-inter 100ms" % ag.port
    port, keel = keel_with(env, [("o1", o1.addr, opts), ("o2", o2.addr, "weight 100")])
    assert wait_for(lambda: ag.requests, 5)
    state["line"] = b"50%\n"
    assert wait_for(lambda: stats_rows(port)["o1"]["weight"] == "50"), stats_rows(port)["o1"]
    state["line"] = b"drain # going away\n"
    assert wait_for(lambda: stats_rows(port)["o1"]["status"] == "DRAIN")
    assert served_by(port, 6) == {"o2"}
    state["line"] = b"ready 100%\n"
    assert wait_for(lambda: stats_rows(port)["o1"]["status"] == "UP")
    state["line"] = b"down\n"
    assert wait_for(lambda: down_line("o1", "agent says: down") in keel.output())
    assert served_by(port, 6) == {"o2"}
    state["line"] = b"up\n"
    assert wait_for(lambda: up_line("o1", "agent says: up") in keel.output())
    assert wait_for(lambda: served_by(port) == {"o1", "o2"}, 3)


def test_agent_send_and_unreachable_agent(env, scripted):
    def agent(srv, s):
        srv.requests.append(s.recv(100))
        s.sendall(b"75%\n")

    ag = scripted(agent)
    o1, o2 = env.origin("o1"), env.origin("o2")
    dead = free_port()
    port, keel = keel_with(env, [
        ("o1", o1.addr, "weight 100 agent-check agent-port %d agent-inter 100ms "
                        "agent-send \"hello\\n\"" % ag.port),
        ("o2", o2.addr, "weight 100 agent-check agent-port %d agent-inter 100ms" % dead)])
    assert wait_for(lambda: ag.requests, 5)
    assert ag.requests[0] == b"hello\n"
    assert wait_for(lambda: stats_rows(port)["o1"]["weight"] == "75")
    # An agent that cannot be reached changes nothing (HAProxy's rule).
    time.sleep(0.5)
    assert stats_rows(port)["o2"]["status"] == "UP"
    assert stats_rows(port)["o2"]["weight"] == "100"
    assert served_by(port) == {"o1", "o2"}
