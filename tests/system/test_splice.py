"""Large bodies: splice(2) of Content-Length responses through a pipe (option splice-response,
nosplice, maxpipes) and stream buffers for copied bodies (tune.bufsize.stream): the bytes, the
logs, keep-alive reuse after the body, slow readers with bounded memory, aborts and timeouts on
either side, and the fallback to copying."""
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import KEEL, Conn, basic_config, free_port, rss_kb, wait_for

PATTERN = bytes(range(ord("a"), ord("z") + 1))  # keel-origin's generated bodies: a..z repeated
SPLICE = "    option splice-response"


def body(n, off=0):
    k = off % 26
    return ((PATTERN[k:] + PATTERN * (n // 26 + 2))[:n])


def pipes(pid):
    """Pipe descriptors of the process (each pipe for splice(2) has two)."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("pipe:")
        except FileNotFoundError:
            pass
    return n


def start(env, extra_defaults=SPLICE, extra_global="", logs=True, **kw):
    o = env.origin()
    port = free_port()
    cfg = basic_config(port, [o.addr], extra_defaults=extra_defaults, extra_global=extra_global,
                       logs=logs, **kw)
    k = env.keel(cfg.replace("nbthread 2", "nbthread 1"), [port])
    return port, o, k


def log_lines(k, n):
    """The first n request lines keel logged (the logger thread writes them a little later)."""
    def lines():
        found = [l for l in k.output().splitlines() if '"GET ' in l or '"HEAD ' in l or '"POST ' in l]
        return found if len(found) >= n else None
    found = wait_for(lines, timeout=5)
    assert found, k.output()[-2000:]
    return found


def logged_bytes(line):
    # httplog: ... TR/Tw/Tc/Tr/Ta STATUS BYTES - - TERM ...
    m = re.search(r" \d+/\d+/\d+/\d+/\d+ (\d{3}) (\d+) \S+ \S+ (\S{4}) ", line)
    assert m, line
    return int(m.group(1)), int(m.group(2)), m.group(3)


def head_len(r):
    return len(r.raw_head) + 4  # the lines joined by CRLF, then the empty line


def test_spliced_download_bytes_logs_and_server_reuse(env):
    port, o, k = start(env)
    p0 = pipes(k.p.pid)
    c = Conn(port, timeout=20)
    sizes = [3000000, 5000, 1048576, 20000]
    got = []
    for n in sizes:
        r = c.request("GET", "/?size=%d" % n)
        assert r.status == 200 and r.body == body(n), n
        got.append(r)
    # the connection to the server was reused after every body, spliced ones included: the
    # origin numbers the requests of each of its connections
    r = c.request("GET", "/")
    assert r.status == 200 and "conn_req %d\n" % (len(sizes) + 1) in r.body.decode(), r.body
    # a HEAD of a large body has no body, and the connection goes on
    r = c.request("HEAD", "/?size=3000000")
    assert r.status == 200 and r.header("content-length") == "3000000" and r.body == b""
    assert c.request("GET", "/?size=70000").body == body(70000)
    # the large bodies went through a pipe, which keel keeps for the next one
    assert pipes(k.p.pid) == p0 + 2
    for r, line, n in zip(got, log_lines(k, len(sizes)), sizes):
        status, nbytes, term = logged_bytes(line)
        assert (status, nbytes, term) == (200, head_len(r) + n, "----"), line


def test_chunked_and_close_delimited_bodies_are_copied(env):
    port, o, k = start(env)
    p0 = pipes(k.p.pid)
    c = Conn(port, timeout=20)
    r = c.request("GET", "/?size=3000000&chunked=1")
    assert r.status == 200 and r.body == body(3000000)
    assert c.request("GET", "/?size=100").body == body(100)
    assert pipes(k.p.pid) == p0  # only Content-Length bodies are spliced
    c = Conn(port, timeout=20)
    r = c.request("GET", "/?size=2000000&nolength=1")
    assert r.status == 200 and r.body == body(2000000)


@pytest.mark.parametrize("cfg", ["off", "nosplice", "maxpipes0"])
def test_no_splice_without_the_option_or_with_nosplice(env, cfg):
    if cfg == "off":
        port, o, k = start(env, extra_defaults="")
    elif cfg == "nosplice":
        port, o, k = start(env, extra_global="    nosplice")
    else:
        port, o, k = start(env, extra_global="    maxpipes 0\n    maxconn 4")  # maxconn / 4 = 1
    p0 = pipes(k.p.pid)
    c = Conn(port, timeout=20)
    r = c.request("GET", "/?size=3000000")
    assert r.status == 200 and r.body == body(3000000)
    assert pipes(k.p.pid) == (p0 + 2 if cfg == "maxpipes0" else p0)


def test_maxpipes_full_falls_back_to_copying(env):
    port, o, k = start(env, extra_global="    maxpipes 1")
    p0 = pipes(k.p.pid)
    n = 20000000
    socks = []
    for _ in range(3):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /?size=%d HTTP/1.1\r\nHost: t\r\n\r\n" % n)
        socks.append(s)
    time.sleep(0.5)  # all three in their bodies, none read: one holds the pipe
    assert pipes(k.p.pid) == p0 + 2
    for s in socks:
        s.settimeout(20)
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head, rest = data.split(b"\r\n\r\n", 1)
        assert b"Content-Length: %d" % n in head
        got, ok = len(rest), rest == body(len(rest))
        buf = bytearray(1 << 20)
        while got < n:
            m = s.recv_into(buf)
            assert m > 0
            ok = ok and bytes(buf[:m]) == body(m, got)
            got += m
        assert got == n and ok
        s.close()
    assert pipes(k.p.pid) == p0 + 2


def test_slow_reader_keeps_memory_bounded(env):
    port, o, k = start(env, logs=False)
    n = 128 * 1024 * 1024
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.connect(("127.0.0.1", port))
    base = rss_kb(k.p.pid)
    s.sendall(b"GET /?size=%d HTTP/1.1\r\nHost: t\r\n\r\n" % n)
    # a reader that takes a little now and then: back-pressure reaches the origin
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    got = len(data.split(b"\r\n\r\n", 1)[1])
    for _ in range(20):
        time.sleep(0.05)
        got += len(s.recv(4096))
    assert rss_kb(k.p.pid) - base < 4096  # no buffering beyond the pipe (kernel memory)
    buf = bytearray(1 << 20)
    s.settimeout(30)
    while got < n:
        m = s.recv_into(buf)
        assert m > 0
        got += m
    assert got == n
    # the connection was kept: the next response comes
    s.sendall(b"GET /?size=10 HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    while not data.endswith(b"abcdefghij"):
        data += s.recv(4096)
    s.close()


def test_client_abort_mid_body(env):
    port, o, k = start(env)
    p0 = pipes(k.p.pid)
    for i in range(5):
        s = socket.socket()
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /?size=200000000 HTTP/1.1\r\nHost: t\r\n\r\n")
        got = 0
        while got < 2000000:
            got += len(s.recv(65536))
        s.close()  # with unread bytes: a reset
        line = log_lines(k, i + 1)[i]
        status, nbytes, term = logged_bytes(line)
        assert status == 200 and term.startswith("CD") and got <= nbytes < 200000000, line
        # the server connection is closed (its response was cut)
        assert wait_for(lambda: o.stats()["active_conns"] == 1, timeout=5)  # /__stats' own
    # a pipe left with bytes of a dead transfer is closed, an empty one kept: none leaks
    assert pipes(k.p.pid) <= p0 + 2
    c = Conn(port, timeout=20)
    assert c.request("GET", "/?size=3000000").body == body(3000000)
    assert pipes(k.p.pid) == p0 + 2


def test_server_abort_mid_body(env):
    port, o, k = start(env)
    c = Conn(port, timeout=20)
    # the origin announces twice the bytes it sends, then closes
    c.send(b"GET /?size=3000000&partial=1 HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    try:
        while True:
            d = c.sock.recv(1 << 20)
            if not d:
                break
            data += d
    except ConnectionResetError:
        pass
    head, rest = data.split(b"\r\n\r\n", 1)
    assert b"Content-Length: 6000000" in head
    assert rest == body(3000000)  # all it got, then the close: the only signal left
    status, nbytes, term = logged_bytes(log_lines(k, 1)[0])
    assert term.startswith("SD") and nbytes == len(head) + 4 + 3000000
    c = Conn(port, timeout=20)
    assert c.request("GET", "/?size=3000000").body == body(3000000)


def test_client_timeout_with_bytes_in_the_pipe(env):
    port, o, k = start(env)
    with open(k.cfg_path) as f:
        cfg = f.read()
    k.stop()
    env.procs.remove(k)
    k = env.keel(cfg.replace("timeout client 10s", "timeout client 500ms"), [port])
    p0 = pipes(k.p.pid)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /?size=200000000 HTTP/1.1\r\nHost: t\r\n\r\n")
    t0 = time.time()
    time.sleep(0.3)
    assert pipes(k.p.pid) == p0 + 2  # spliced, stalled
    status, nbytes, term = logged_bytes(log_lines(k, 1)[0])
    assert term.startswith("cD") and time.time() - t0 < 5
    assert wait_for(lambda: pipes(k.p.pid) == p0, timeout=5)
    s.close()


@pytest.mark.parametrize("stream", ["0", "1m", None])
def test_stream_buffer_sizes(env, stream):
    port, o, k = start(env, extra_defaults="",
                      extra_global=("    tune.bufsize.stream %s" % stream) if stream else "")
    c = Conn(port, timeout=20)
    for n in (3000000, 17000, 1000):
        assert c.request("GET", "/?size=%d" % n).body == body(n)
        assert c.request("GET", "/?size=%d&chunked=1" % n).body == body(n)
    up = bytes((i * 7) & 0xFF for i in range(1000000))
    h = 2166136261
    for b in up:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    r = c.request("POST", "/up", body=up)
    assert r.status == 200 and b"body_len 1000000\n" in r.body and b"body_sum %08x\n" % h in r.body
    # pipelined after a large body: the next request is served from the same buffer
    c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n" + b"x" * 200000 +
           b"GET /?size=5 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert b"body_len 200000\n" in c.read_response().body
    assert c.read_response().body == b"abcde"


def test_stream_buffer_keeps_head_limits(env):
    # a head longer than bufsize - maxrewrite is refused even when it arrives in a stream buffer
    port, o, k = start(env, extra_defaults="")
    c = Conn(port, timeout=20)
    big = "x" * 20000
    c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n" + b"x" * 200000 +
           ("GET / HTTP/1.1\r\nHost: t\r\nX-Big: %s\r\n\r\n" % big).encode())
    assert b"body_len 200000\n" in c.read_response().body
    assert c.read_response().status == 431


@pytest.mark.parametrize("bad", ["tune.bufsize.stream 17m", "tune.bufsize.stream x", "maxpipes -1"])
def test_bad_values_rejected(env, bad):
    port = free_port()
    cfg = basic_config(port, ["127.0.0.1:1"], extra_global="    " + bad)
    path = os.path.join(env.dir, "bad.cfg")
    with open(path, "w") as f:
        f.write(cfg)
    r = subprocess.run([KEEL, "-c", "-f", path], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and bad.split()[0] in r.stdout + r.stderr


def test_head_rewrite_room_kept_when_the_body_fills_the_first_read(env):
    # the first read of a request or response may fill the buffer with body bytes: the head
    # still gets its tune.maxrewrite bytes to grow (X-Forwarded-For; Connection: close)
    port, o, k = start(env, extra_defaults="    option forwardfor")
    for i in range(10):
        c = Conn(port, timeout=10)
        r = c.request("POST", "/up", body=b"y" * 1000000)
        assert r.status == 200 and b"body_len 1000000\n" in r.body
        r = c.request("GET", "/?size=2000000&nolength=1")
        assert r.status == 200 and r.body == body(2000000)
        c.close()


@pytest.mark.parametrize("splice", [True, False])
def test_bytes_after_the_body_spoil_the_server_connection(env, splice):
    # an origin that writes more than its Content-Length: the extra bytes must not be taken for
    # the next response, so that connection is not reused
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    conns = []
    n = 300000
    extra = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nWRONG"

    def serve():
        while True:
            try:
                s, _ = ls.accept()
            except OSError:
                return
            conns.append(s)
            threading.Thread(target=answer, args=(s,), daemon=True).start()

    def answer(s):
        data = b""
        try:
            while True:
                while b"\r\n\r\n" not in data:
                    d = s.recv(65536)
                    if not d:
                        return
                    data += d
                data = data.split(b"\r\n\r\n", 1)[1]
                # all but the last bytes, then (once keel has drained the socket) the last bytes
                # and the extra ones in one segment: no event comes after the end of the body
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n + body(n)[:-10])
                time.sleep(0.2)
                s.sendall(body(n)[-10:] + extra)
        except OSError:
            return

    threading.Thread(target=serve, daemon=True).start()
    port = free_port()
    cfg = basic_config(port, ["127.0.0.1:%d" % ls.getsockname()[1]],
                       extra_defaults=SPLICE if splice else "")
    k = env.keel(cfg.replace("nbthread 2", "nbthread 1"), [port])
    p0 = pipes(k.p.pid)
    try:
        c = Conn(port, timeout=10)
        for i in range(3):
            r = c.request("GET", "/x")
            assert r.status == 200 and r.body == body(n), i
        assert len(conns) == 3  # a new server connection each time
        assert pipes(k.p.pid) == (p0 + 2 if splice else p0)
    finally:
        ls.close()
        for s in conns:
            s.close()
