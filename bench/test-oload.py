#!/usr/bin/python3
"""End-to-end tests of oload and idleconns against a scripted HTTP/1.1 origin on 127.0.0.1.

    bench/test-oload.py [--oload build/bench/oload] [--idleconns build/bench/idleconns]

The origin answers by path (see Origin.answer). Each test runs the tool briefly and checks its
summary line. Ends with "N passed, N failed"; exit status 1 when a test failed."""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


class Origin:
    """A threaded origin. One thread per connection, keep-alive, requests read one at a time."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.bodies = []  # sizes of request bodies received
        self.ids = []  # (monotonic time, method, X-Req-Id) of requests to /id
        self.stopped = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def close(self):
        self.stopped = True
        self.sock.close()

    def serve(self, c):
        buf = b""
        c.settimeout(30)
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ")
                hdrs = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
                n = int(hdrs.get("content-length", "0"))
                while len(buf) < n:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                body, buf = buf[:n], buf[n:]
                if not self.answer(c, method, target, body, hdrs):
                    return
        except OSError:
            return
        finally:
            c.close()

    def answer(self, c, method, target, body, hdrs):
        """Writes the response; returns False when the connection is to be closed."""
        path, _, query = target.partition("?")
        if path == "/cl":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        elif path == "/chunked":
            # Sent in pieces that split the chunk framing in awkward places.
            for piece in (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r", b"\nhel",
                          b"lo\r\n10;x=y\r\n0123456789abcdef\r\n0\r\nX-Trailer: 1\r\n", b"\r\n"):
                c.sendall(piece)
                time.sleep(0.001)
        elif path == "/eofbody":
            c.sendall(b"HTTP/1.1 200 OK\r\n\r\nthe body ends when the connection does")
            return False
        elif path == "/close":
            c.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
            return False
        elif path in ("/500", "/404"):
            c.sendall(b"HTTP/1.1 %s X\r\nContent-Length: 2\r\n\r\nno" % path[1:].encode())
        elif path == "/redirect":
            c.sendall(b"HTTP/1.1 302 Found\r\nLocation: /cl\r\nContent-Length: 0\r\n\r\n")
        elif path == "/bad":
            c.sendall(b"HTTP/1.1 200 OK\nContent-Length: 0\n\n")
        elif path == "/slow":
            time.sleep(int(query or "1000") / 1000)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
        elif path == "/reset":
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            return False
        elif path == "/midclose":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..")
            return False
        elif path == "/big":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3000000\r\n\r\n" + b"x" * 3000000)
        elif path == "/post":
            self.bodies.append(len(body))
            ok = body == (b"0123456789abcdef" * (len(body) // 16 + 1))[:len(body)]
            c.sendall(b"HTTP/1.1 %s\r\nContent-Length: 0\r\n\r\n" % (b"200 OK" if ok else b"400 Bad"))
        elif path == "/id":
            self.ids.append((time.monotonic(), method, hdrs.get("x-req-id"), len(body)))
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        elif path == "/echo":
            # Echoes X-Req-Id, except ids that are 0 mod 5 (echoed as id + 1: another request's
            # answer) and 1 mod 5 (not echoed: say a stray response).
            i = int(hdrs.get("x-req-id", "0"))
            echo = b"" if i % 5 == 1 else b"X-Req-Id: %d\r\n" % (i + 1 if i % 5 == 0 else i)
            c.sendall(b"HTTP/1.1 200 OK\r\n%sContent-Length: 2\r\n\r\nok" % echo)
        elif path == "/head":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" +
                      (b"" if method == "HEAD" else b"y" * 1000))
        elif path == "/idleclose":
            # Answers, then closes the connection if no request came within 50 ms.
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            c.settimeout(0.05)
            try:
                d = c.recv(65536, socket.MSG_PEEK)
            except socket.timeout:
                return False
            c.settimeout(30)
            return bool(d)
        else:
            c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        return True


passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + name)
    else:
        failed += 1
        print("FAIL %s %s" % (name, detail))


def oload(args, timeout=30):
    p = subprocess.run([OLOAD] + args, capture_output=True, text=True, timeout=timeout)
    kv = dict(x.split("=", 1) for x in p.stdout.split())
    r = {k: float(v) for k, v in kv.items()}
    r["rc"] = p.returncode
    r["stderr"] = p.stderr
    return r


def expect(name, r, **want):
    bad = {k: (r.get(k), v) for k, v in want.items() if r.get(k) != v}
    check(name, not bad, "got/want %s; stderr: %s" % (bad, r.get("stderr", "").strip()[:300]))


def main():
    global OLOAD
    ap = argparse.ArgumentParser()
    ap.add_argument("--oload", default=os.path.join(ROOT, "build", "bench", "oload"))
    ap.add_argument("--idleconns", default=os.path.join(ROOT, "build", "bench", "idleconns"))
    a = ap.parse_args()
    OLOAD = a.oload
    o = Origin()
    url = "http://127.0.0.1:%d" % o.port
    try:
        r = oload(["-u", url + "/cl", "-r", "1000", "-d", "2"])
        expect("keep-alive content-length: exact count", r, sent=2000, ok=2000, failed=0, rc=0)
        check("keep-alive content-length: few connections", r.get("conns", 99) < 20, r)
        r = oload(["-u", url + "/chunked", "-r", "200", "-d", "1"])
        expect("chunked split across writes, trailers", r, sent=200, ok=200, failed=0)
        r = oload(["-u", url + "/eofbody", "-r", "100", "-d", "1"])
        expect("body delimited by close", r, sent=100, ok=100, failed=0, conns=100)
        r = oload(["-u", url + "/close", "-r", "100", "-d", "1"])
        expect("Connection: close", r, sent=100, ok=100, failed=0, conns=100)
        r = oload(["-u", url + "/cl", "-r", "100", "-d", "1", "-H", "Connection: close"])
        expect("request Connection: close opens a connection per request", r, ok=100, conns=100)
        r = oload(["-u", url + "/500", "-r", "100", "-d", "1"])
        expect("500 counts as failed", r, sent=100, ok=0, failed=100, status_5xx=100, slow=100)
        r = oload(["-u", url + "/404", "-r", "100", "-d", "1"])
        expect("404 counts as failed", r, failed=100, status_4xx=100, status_5xx=0)
        r = oload(["-u", url + "/redirect", "-r", "100", "-d", "1"])
        expect("302 counts as ok", r, ok=100, failed=0)
        r = oload(["-u", url + "/bad", "-r", "50", "-d", "1"])
        expect("malformed (bare LF)", r, failed=50, err_malformed=50)
        r = oload(["-u", url + "/reset", "-r", "50", "-d", "1"])
        expect("reset", r, failed=50, err_reset=50)
        r = oload(["-u", url + "/midclose", "-r", "50", "-d", "1"])
        expect("closed mid-body", r, failed=50, err_eof=50)
        r = oload(["-u", url + "/slow?1000", "-r", "20", "-d", "1", "-t", "300"])
        expect("timeout", r, sent=20, failed=20, err_timeout=20)
        check("timeout latency is the timeout", 300 <= r.get("p50_ms", 0) < 400, r)
        r = oload(["-u", url + "/slow?200", "-r", "20", "-d", "1", "-c", "2", "-t", "5000"])
        expect("waiting for a connection counts in the latency", r, ok=20, conns=2)
        check("waiting for a connection counts in the latency (max)", r.get("max_ms", 0) > 900, r)
        r = oload(["-u", url + "/slow?200", "-r", "50", "-d", "1", "-c", "2", "-t", "500"])
        expect("requests waiting for a connection time out", r, sent=50)
        check("requests waiting for a connection time out (count)",
              r.get("err_timeout", 0) > 30 and r.get("ok", 0) >= 4, r)
        r = oload(["-u", "http://127.0.0.1:1/", "-r", "50", "-d", "1"])
        expect("closed port", r, sent=50, failed=50, err_connect=50)
        r = oload(["-u", url + "/big", "-r", "20", "-d", "1"])
        expect("3 MB responses", r, ok=20, failed=0)
        n0 = len(o.bodies)
        r = oload(["-u", url + "/post", "-r", "50", "-d", "1", "-m", "POST", "-b", "200000"])
        expect("POST with a 200 KB body", r, ok=50, failed=0)
        check("POST bodies arrived whole", o.bodies[n0:] == [200000] * 50, o.bodies[n0:n0 + 5])
        r = oload(["-u", url + "/head", "-r", "50", "-d", "1", "-m", "HEAD"])
        expect("HEAD ignores Content-Length", r, ok=50, failed=0)
        r = oload(["-u", url + "/idleclose", "-r", "10", "-d", "1"])
        expect("idle connections closed by the server are not used", r, ok=10, failed=0)
        check("idle connections closed by the server are counted", r.get("closed_idle", 0) >= 8, r)
        with tempfile.NamedTemporaryFile("r", suffix=".csv") as f:
            r = oload(["-u", url + "/cl", "-r", "100", "-d", "1", "--csv", f.name])
            lines = f.read().splitlines()
            check("csv: header and one line per request",
                  lines[0] == "sched_ms,latency_ms,status,error" and len(lines) == 101, lines[:3])
            check("csv: schedule", [l.split(",")[0] for l in lines[1:4]] == ["0.000", "10.000", "20.000"],
                  lines[1:4])
            check("csv: status and error", all(l.endswith(",200,none") for l in lines[1:]), lines[1:3])
        start = time.monotonic() + 1.0
        r = oload(["-u", url + "/id", "-r", "100", "-d", "0.5", "-m", "POST", "-b", "10", "--id-header",
                   "X-Req-Id", "--id-base", "1000", "--start-at", "%.6f" % start])
        expect("--id-header, --start-at: all sent", r, sent=50, ok=50, failed=0, rc=0)
        check("--id-header: one id per request, from --id-base",
              sorted(int(i[2]) for i in o.ids) == list(range(1000, 1050)) and
              all(i[1] == "POST" and i[3] == 10 for i in o.ids), o.ids[:3])
        check("--start-at: nothing before the start", o.ids and min(i[0] for i in o.ids) >= start,
              (start, o.ids[:1]))
        with tempfile.NamedTemporaryFile("r", suffix=".csv") as f:
            r = oload(["-u", url + "/echo", "-r", "100", "-d", "1", "--id-header", "X-Req-Id", "--check-id",
                       "--csv", f.name])
            expect("--check-id: answers without the request's id are mismatches", r, sent=100, ok=60,
                   failed=40, err_mismatch=40, status_5xx=0)
            errs = [l.split(",")[3] for l in f.read().splitlines()[1:]]
            check("--check-id: csv error mismatch for ids 0 and 1 mod 5",
                  errs == ["mismatch" if i % 5 < 2 else "none" for i in range(100)], errs[:6])
        r = oload(["-u", url + "/echo", "-r", "100", "-d", "1", "--id-header", "X-Req-Id"])
        expect("without --check-id the same answers are ok", r, ok=100, failed=0, err_mismatch=0)
        r = oload(["-u", url + "/500", "-r", "50", "-d", "1", "--id-header", "X-Req-Id", "--check-id"])
        expect("--check-id: an error status stays a status failure", r, failed=50, status_5xx=50,
               err_mismatch=0)
        p = subprocess.run([OLOAD, "-u", url + "/echo", "-r", "1", "-d", "1", "--check-id"],
                           capture_output=True, text=True)
        check("--check-id without --id-header refused", p.returncode == 1 and "id-header" in p.stderr,
              p.stderr)
        p = subprocess.run([OLOAD, "-u", url + "/id", "-r", "1", "-d", "1", "--start-at",
                            "%.3f" % (time.monotonic() + 100)], capture_output=True, text=True)
        check("--start-at more than 60 s ahead refused", p.returncode == 1 and "start-at" in p.stderr, p.stderr)
        p = subprocess.run([OLOAD, "-u", "http://10.1.2.3:80/", "-r", "1", "-d", "1"], capture_output=True,
                           text=True)
        check("non-loopback target refused", p.returncode == 1 and "loopback" in p.stderr, p.stderr)
        # SIGINT: stops issuing, finishes the requests in flight, reports.
        p = subprocess.Popen([OLOAD, "-u", url + "/cl", "-r", "100", "-d", "30"], stdout=subprocess.PIPE,
                             text=True)
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        out = p.communicate(timeout=10)[0]
        m = re.search(r"sent=(\d+) ok=(\d+) failed=(\d+)", out)
        check("SIGINT reports what was sent", m and 30 < int(m.group(1)) < 100 and m.group(1) == m.group(2)
              and "interrupted=1" in out, out)

        # idleconns
        p = subprocess.Popen([a.idleconns, "-u", url + "/cl", "-n", "200", "-s", "20"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        check("idleconns: ready", line == "ready 200\n", line)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10)
        check("idleconns: held, none closed", out == "held 200 closed 0\n" and p.returncode == 0, (out, err))
        p = subprocess.run([a.idleconns, "-u", url + "/close", "-n", "5", "-s", "1"], capture_output=True,
                           text=True, timeout=20)
        check("idleconns: refuses a server that closes", p.returncode == 1 and p.stdout == "", p.stderr)
        p = subprocess.run([a.idleconns, "-u", url + "/idleclose", "-n", "20", "-s", "1"], capture_output=True,
                           text=True, timeout=20)
        check("idleconns: counts connections the server closed",
              p.returncode == 3 and p.stdout == "ready 20\nheld 0 closed 20\n", (p.stdout, p.stderr))
        p = subprocess.run([a.idleconns, "-u", url + "/close", "-n", "5", "-s", "1", "-k"], capture_output=True,
                           text=True, timeout=20)
        check("idleconns -k: a server that closes is counted",
              p.returncode == 0 and p.stdout == "ready 0\nheld 0 closed 5\n", (p.stdout, p.stderr))
        p = subprocess.run([a.idleconns, "-u", url + "/idleclose", "-n", "5", "-p", "5", "-s", "1", "-k", "-r",
                            "20"], capture_output=True, text=True, timeout=20)
        m = re.match(r"ready 5\nheld (\d+) closed (\d+) reopened (\d+)\n$", p.stdout)
        check("idleconns -k -r: closed connections come back, at the rate",
              p.returncode == 0 and m and 10 <= int(m.group(3)) <= 25 and int(m.group(2)) >= int(m.group(3)),
              (p.stdout, p.stderr))

        # idleconns -H: heads that never end, a byte every interval; -k: connections left in a
        # backlog stay open
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(16)
        lport = ls.getsockname()[1]
        p = subprocess.Popen([a.idleconns, "-u", "http://127.0.0.1:%d/h" % lport, "-n", "3", "-p", "3", "-H",
                              "-i", "100", "-s", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ls.settimeout(5)
        held = [ls.accept()[0] for _ in range(3)]
        time.sleep(0.45)
        held[0].settimeout(1)
        got = held[0].recv(65536)
        out, err = p.communicate(timeout=10)
        check("idleconns -H: the head starts, then a byte every interval, never ends",
              got.startswith(b"GET /h HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Slow: " % lport)
              and 3 <= got.count(b"a") <= 6 and b"\r\n\r\n" not in got, got)
        check("idleconns -H: ready, held", out == "ready 3\nheld 3 closed 0\n" and p.returncode == 0, (out, err))
        for c in held:
            c.close()
        p = subprocess.run([a.idleconns, "-u", "http://127.0.0.1:%d/" % lport, "-n", "3", "-p", "3", "-k", "-t",
                            "300", "-s", "1"], capture_output=True, text=True, timeout=20)
        check("idleconns -k: set-up ends at -t, unanswered connections stay open",
              p.returncode == 0 and p.stdout == "ready 0\nheld 3 closed 0\n", (p.stdout, p.stderr))
        ls.close()
    finally:
        o.close()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
