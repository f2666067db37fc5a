"""2 GB uploads and downloads stream through keel with flat memory (bounded buffers and
back-pressure), and the demo (`keel --demo`) serves."""
import os
import socket
import subprocess
import threading
import time

from conftest import KEEL, Conn, basic_config, free_port, rss_kb, wait_port

GB2 = 2 * 1024 * 1024 * 1024


class RssWatch(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.max, self.stop = pid, 0, False

    def run(self):
        while not self.stop:
            self.max = max(self.max, rss_kb(self.pid))
            time.sleep(0.05)


def test_2gb_download_flat_memory(env):
    o = env.origin()
    port = free_port()
    k = env.keel(basic_config(port, [o.addr], logs=False), [port])
    base = rss_kb(k.p.pid)
    w = RssWatch(k.p.pid)
    w.start()
    c = Conn(port, timeout=60)
    c.send(b"GET /?size=%d HTTP/1.1\r\nHost: t\r\n\r\n" % GB2)
    head = b""
    while b"\r\n\r\n" not in head:
        head += c.sock.recv(65536)
    head, rest = head.split(b"\r\n\r\n", 1)
    assert b" 200 " in head.split(b"\r\n")[0]
    got = len(rest)
    buf = bytearray(1 << 20)
    while got < GB2:
        n = c.sock.recv_into(buf)
        assert n > 0
        got += n
    w.stop = True
    assert got == GB2
    assert w.max - base < 40 * 1024, (base, w.max)  # flat: well under 40 MB of growth


def test_2gb_upload_flat_memory(env):
    o = env.origin()
    port = free_port()
    k = env.keel(basic_config(port, [o.addr], logs=False), [port])
    base = rss_kb(k.p.pid)
    w = RssWatch(k.p.pid)
    w.start()
    c = Conn(port, timeout=60)
    c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % GB2)
    block = bytes((ord("a") + i % 26) for i in range(1 << 20))
    sent = 0
    while sent < GB2:
        c.sock.sendall(block)
        sent += len(block)
    r = c.read_response()
    w.stop = True
    assert r.status == 200 and b"body_len %d" % GB2 in r.body
    assert w.max - base < 40 * 1024, (base, w.max)


def test_demo_serves(tmp_path):
    port = free_port()
    env = dict(os.environ, KEEL_DEMO_ADDR="127.0.0.1:%d" % port)
    p = subprocess.Popen([KEEL, "--demo"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=env, text=True, start_new_session=True)
    try:
        wait_port(port, proc=p)
        seen = set()
        for _ in range(6):
            c = Conn(port)
            r = c.request("GET", "/")
            assert r.status == 200
            seen.add(r.header("x-origin"))
            c.close()
        assert len(seen) == 3
        c = Conn(port)
        assert c.request("GET", "/stats").status == 200
    finally:
        p.send_signal(2)
        out = p.communicate(timeout=10)[0]
    assert "http://127.0.0.1:%d/" % port in out
