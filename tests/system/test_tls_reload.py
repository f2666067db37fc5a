"""Reloads under HTTPS load: TLS connections cannot move to the new process (their keys are in
the old one's memory), so the old process keeps its idle TLS connections until their next
request, answered with "Connection: close", or their keep-alive timeout. A client that keeps its
connections alive and never retries sees no failure."""
import os
import signal
import socket
import ssl
import subprocess
import threading
import time

from conftest import basic_config, free_port, gone, wait_for


def make_cert(d):
    key, crt = os.path.join(d, "k.pem"), os.path.join(d, "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=www.example.org"], check=True, capture_output=True)
    path = os.path.join(d, "www.pem")
    with open(path, "w") as f:
        f.write(open(crt).read() + open(key).read())
    return path


def read_response(f):
    """(status, close) of one HTTP/1.1 response read from the file object f; raises on a cut."""
    line = f.readline()
    if not line:
        raise ConnectionError("closed before the status line")
    status = int(line.split()[1])
    length, close = 0, False
    while True:
        h = f.readline()
        if not h:
            raise ConnectionError("closed in the head")
        if h in (b"\r\n", b"\n"):
            break
        name, _, value = h.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        if name.strip().lower() == "connection" and "close" in value.lower():
            close = True
    if length and len(f.read(length)) != length:
        raise ConnectionError("closed in the body")
    return status, close


class Client(threading.Thread):
    """One keep-alive HTTPS connection, requests at a fixed rate, never retried. A new
    connection is opened only when the last response said "Connection: close" (what any HTTP
    client does)."""

    def __init__(self, port, rate, duration):
        super().__init__(daemon=True)
        self.port, self.gap, self.end = port, 1.0 / rate, time.time() + duration
        self.sent = self.failed = 0
        self.errors = []
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE

    def connect(self):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s = self.ctx.wrap_socket(raw, server_hostname="www.example.org")
        return s, s.makefile("rb")

    def run(self):
        s = f = None
        due = time.time()
        while due < self.end:
            time.sleep(max(0.0, due - time.time()))
            due += self.gap
            self.sent += 1
            try:
                if s is None:
                    s, f = self.connect()
                s.sendall(b"GET / HTTP/1.1\r\nHost: www.example.org\r\n\r\n")
                status, close = read_response(f)
                if status != 200:
                    raise ConnectionError("status %d" % status)
            except (OSError, ValueError, IndexError) as e:
                self.failed += 1
                self.errors.append(repr(e))
                close = True
            if close and s is not None:
                s.close()
                s = f = None
        if s is not None:
            s.close()


def test_reloads_under_https_load_fail_no_request(env):
    d = env.dir
    crt = make_cert(d)
    o1, o2 = env.origin("a"), env.origin("b")
    port = free_port()
    pidfile = os.path.join(d, "keel.pid")
    cfg = basic_config(port, [("s1", o1.addr, ""), ("s2", o2.addr, "")],
                       extra_global="    pidfile %s" % pidfile, logs=False,
                       extra_defaults="    timeout http-keep-alive 3s")
    cfg = cfg.replace("bind 127.0.0.1:%d" % port, "bind 127.0.0.1:%d ssl crt %s" % (port, crt))
    k = env.keel(cfg, [port])
    assert wait_for(lambda: os.path.exists(pidfile), 5)
    # 300 requests/s over 12 busy connections, and 24 connections that send a request every
    # 1.2 s (idle long enough that a stopping process would have closed them, the race a
    # non-retrying client loses), for 9 s, with 3 reloads
    clients = [Client(port, 25, 9) for _ in range(12)] + [Client(port, 1 / 1.2, 9) for _ in range(24)]
    for c in clients:
        c.start()
    pids = [k.p.pid]
    for _ in range(3):
        time.sleep(2)
        old = int(open(pidfile).read())
        os.kill(old, signal.SIGUSR2)
        assert wait_for(lambda: int(open(pidfile).read() or 0) not in (0, old), 10)
        pids.append(int(open(pidfile).read()))
    for c in clients:
        c.join(30)
    sent = sum(c.sent for c in clients)
    failed = sum(c.failed for c in clients)
    assert sent >= 1500, sent  # ~2800 due; a loaded machine makes the client fall behind
    assert failed == 0, [e for c in clients for e in c.errors][:10]
    # the old processes end once their idle connections' keep-alive timeout passed
    assert wait_for(lambda: all(gone(p) for p in pids[:-1]), 15), "an old process did not exit"
