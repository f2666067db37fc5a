"""Fixtures for keel's system tests: the real keel binary, the project's origin server and nginx,
all started by the tests on ephemeral loopback ports. Logs of failed tests are kept under
tests/system/logs/."""
import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
KEEL = os.path.abspath(os.environ.get("KEEL", os.path.join(ROOT, "keel")))  # keel runs in its test folder
ORIGIN = os.environ.get("KEEL_ORIGIN", os.path.join(ROOT, "build", "default", "keel-origin"))
KEELCTL = os.environ.get("KEELCTL", os.path.join(os.path.dirname(KEEL), "keelctl"))
if not os.path.exists(KEELCTL):
    KEELCTL = os.path.join(ROOT, "build", "default", "keelctl")
BENCH = os.path.join(ROOT, "bench")
OLOAD = os.path.join(ROOT, "build", "bench", "oload")  # the open-loop client, bench/oload.c
LOGDIR = os.path.join(HERE, "logs")


def free_port():
    """An unused TCP port on 127.0.0.1 (bound then released: the tests start right after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before listening" % proc.returncode)
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("port %d not open after %.1fs" % (port, timeout))


def gone(pid):
    """The process exited (a zombie counts: its parent, an earlier keel, may be gone too)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


class Proc:
    """A child process whose output goes to a log file."""

    def __init__(self, name, args, workdir, env=None):
        self.name = name
        self.log_path = os.path.join(workdir, name + ".log")
        self.log = open(self.log_path, "w+")
        self.p = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir,
                                  env=env, start_new_session=True)

    def output(self):
        self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.p.poll() is None

    def kill(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.alive():
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        # children (nginx workers, origins of the demo) die with their group
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return self.p.returncode


class Origin(Proc):
    """keel's own controllable origin (tools/origin): /__stats, ?status=, ?delay=, ?size=..."""

    def __init__(self, workdir, name="origin", port=None):
        self.port = port or free_port()
        super().__init__("origin-" + name + "-%d" % self.port,
                         [ORIGIN, "-l", "127.0.0.1:%d" % self.port, "-n", name, "-q"], workdir)
        self.origin_name = name
        wait_port(self.port, proc=self.p)

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def stats(self):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        c.request("GET", "/__stats")
        r = c.getresponse()
        data = json.loads(r.read())
        c.close()
        return data

    def control(self, query=""):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        c.request("GET", "/__control" + (("?" + query) if query else ""))
        c.getresponse().read()
        c.close()


class Keel(Proc):
    """The real keel binary in the foreground with a generated configuration."""

    def __init__(self, workdir, config, ports=(), name="keel", args=(), wait=True):
        self.cfg_path = os.path.join(workdir, name + ".cfg")
        with open(self.cfg_path, "w") as f:
            f.write(config)
        super().__init__(name, [KEEL, "-db", "-f", self.cfg_path] + list(args), workdir)
        if wait:
            for p in ports:
                wait_port(p, proc=self.p)


class Env:
    """Per-test workspace: starts processes, stops them all at the end, keeps logs on failure."""

    def __init__(self, request):
        self.request = request
        self.dir = tempfile.mkdtemp(prefix="keel-test-")
        self.procs = []

    def origin(self, name="origin", port=None):
        o = Origin(self.dir, name, port)
        self.procs.append(o)
        return o

    def keel(self, config, ports=(), **kw):
        k = Keel(self.dir, config, ports, **kw)
        self.procs.append(k)
        return k

    def proc(self, name, args, wait_for_port=None):
        p = Proc(name, args, self.dir)
        self.procs.append(p)
        if wait_for_port:
            wait_port(wait_for_port, proc=p.p)
        return p

    def nginx(self, port=None, extra_locations="", extra_http=""):
        """nginx from Debian as an origin: / answers a small text, /big/ serves files.
        extra_locations go into its server block, extra_http into its http block."""
        port = port or free_port()
        root = os.path.join(self.dir, "www-%d" % port)
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write("hello from nginx %d\n" % port)
        conf = os.path.join(self.dir, "nginx-%d.conf" % port)
        with open(conf, "w") as f:
            f.write("""daemon off; worker_processes 1; pid %(d)s/nginx-%(p)d.pid;
error_log %(d)s/nginx-%(p)d-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %(d)s/nb-%(p)d; proxy_temp_path %(d)s/np-%(p)d;
  fastcgi_temp_path %(d)s/nf-%(p)d; uwsgi_temp_path %(d)s/nu-%(p)d; scgi_temp_path %(d)s/ns-%(p)d;
  %(http)s
  server {
    listen 127.0.0.1:%(p)d;
    root %(root)s;
    location = /name { return 200 "nginx-%(p)d\\n"; }
    location = /xff { return 200 "$http_x_forwarded_for\\n"; }
    %(extra)s
  }
}
""" % {"d": self.dir, "p": port, "root": root, "extra": extra_locations, "http": extra_http})
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        p = Proc("nginx-%d" % port, [nginx, "-c", conf, "-e", os.path.join(self.dir, "nginx-%d-error.log" % port)], self.dir)
        self.procs.append(p)
        wait_port(port, proc=p.p)
        p.port = port
        p.root = root
        return p

    def close(self, failed):
        for p in reversed(self.procs):
            try:
                p.stop(signal.SIGKILL if not isinstance(p, Keel) else signal.SIGTERM, timeout=5)
            except Exception:
                pass
        if failed:
            dest = os.path.join(LOGDIR, self.request.node.name.replace("/", "_"))
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(self.dir, dest, ignore=shutil.ignore_patterns("*.pid", "*.sock"))
            for p in self.procs:
                print("----- %s -----\n%s" % (p.name, p.output()[-4000:]))
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "keel: BUG at")



@pytest.fixture(scope="session")
def oload_built():
    """Builds bench/ (oload) once per run."""
    r = subprocess.run(["make", "-s", "-C", BENCH], capture_output=True, text=True)
    assert r.returncode == 0, "make -C bench failed:\n" + r.stdout + r.stderr

@pytest.fixture
def env(request):
    e = Env(request)
    yield e
    failed = getattr(request.node, "rep_call", None)
    failed = failed is None or failed.failed
    # keel must stop cleanly: a sanitizer report or a BUG_ON fails the test
    for p in e.procs:
        if isinstance(p, Keel):
            p.stop(signal.SIGTERM, timeout=10)
    reports = [(p.name, m) for p in e.procs if isinstance(p, Keel) for m in SANITIZER_MARKS
               if m in p.output()]
    e.close(failed or bool(reports))
    if reports:
        pytest.fail("sanitizer or BUG_ON report in %s" % reports)


# ---- raw HTTP helpers (the standard library's clients hide what the tests must see) ----

def recv_until_closed(sock, timeout=5.0):
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            d = sock.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        chunks.append(d)
    return b"".join(chunks)


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value)
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return default

    def headers_named(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]


class Conn:
    """A client connection that reads responses exactly (Content-Length, chunked, close)."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, source=None):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.buf = b""
        self.timeout = timeout

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def read_response(self, head_request=False):
        while True:
            raw = []
            status_line = self._line().decode("latin-1")
            raw.append(status_line)
            parts = status_line.split(" ", 2)
            status = int(parts[1])
            reason = parts[2] if len(parts) > 2 else ""
            headers = []
            while True:
                line = self._line().decode("latin-1")
                if not line:
                    break
                raw.append(line)
                n, v = line.split(":", 1)
                headers.append((n.strip(), v.strip()))
            r = Response(status, reason, headers, b"", "\r\n".join(raw))
            if 100 <= status < 200 and status != 101:
                if getattr(self, "keep_interim", False):
                    return r
                continue
            break
        if head_request or status in (204, 304) or status == 101:
            return r
        te = r.header("transfer-encoding")
        cl = r.header("content-length")
        if te and "chunked" in te.lower():
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._exact(size)
                self._line()
            r.body = body
        elif cl is not None:
            r.body = self._exact(int(cl))
        else:
            try:
                while True:
                    self._fill()
            except (EOFError, ConnectionResetError):
                pass
            r.body, self.buf = self.buf, b""
        return r

    def request(self, method="GET", path="/", headers=None, body=None, version="HTTP/1.1",
                host="test"):
        hs = {"Host": host} if host is not None else {}
        hs.update(headers or {})
        if body is not None and "Content-Length" not in hs and "Transfer-Encoding" not in hs:
            hs["Content-Length"] = str(len(body))
        req = "%s %s %s\r\n" % (method, path, version)
        req += "".join("%s: %s\r\n" % kv for kv in hs.items()) + "\r\n"
        self.send(req.encode() + (body if isinstance(body, bytes) else (body or "").encode()))
        return self.read_response(head_request=(method == "HEAD"))

    def closed_by_peer(self, timeout=3.0):
        """True when the peer closed the connection (EOF or reset) within timeout."""
        self.sock.settimeout(timeout)
        try:
            d = self.sock.recv(1)
            return d == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def origin_of(resp):
    """The name of the origin that served a response of keel-origin."""
    return resp.header("x-origin")


def basic_config(port, servers, extra_fe="", extra_be="", extra_global="", extra_defaults="",
                 balance="roundrobin", logs=True):
    lines = ["global", "    nbthread 2"]
    if extra_global:
        lines.append(extra_global)
    lines += ["defaults", "    mode http", "    timeout connect 2s", "    timeout client 10s",
              "    timeout server 10s"]
    if logs:
        lines += ["    option httplog", "    log stdout format raw local0"]
    if extra_defaults:
        lines.append(extra_defaults)
    lines += ["frontend fe", "    bind 127.0.0.1:%d" % port, "    default_backend be"]
    if extra_fe:
        lines.append(extra_fe)
    lines += ["backend be", "    balance %s" % balance]
    if extra_be:
        lines.append(extra_be)
    for i, s in enumerate(servers):
        if isinstance(s, tuple):
            lines.append("    server %s %s %s" % s)
        else:
            lines.append("    server s%d %s" % (i + 1, s))
    return "\n".join(lines) + "\n"


def wait_for(pred, timeout=10.0, step=0.05):
    """Polls pred until it returns something true or the timeout passes; returns its last value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


PHP_SESSION_APP = r"""<?php
// A tiny session app: counts this user's requests in its session (?sleep=MS holds it that long);
// /health answers without one.
if (($_SERVER['REQUEST_URI'] ?? '') === '/health') { echo "ok\n"; return; }
session_name('PHPSESSID');
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
if (isset($_GET['sleep'])) usleep((int)$_GET['sleep'] * 1000);
header('Content-Type: text/plain');
echo "n=" . $_SESSION['n'] . "\n";
echo "server=" . getenv('APP_NAME') . "\n";
echo "moved_from=" . ($_SERVER['HTTP_X_KEEL_MOVED_FROM'] ?? '') . "\n";
"""


def php_origin(env, name, ini=None, port=None):
    """A real `php -S 127.0.0.1:PORT` (no php.ini: -n) running PHP_SESSION_APP with APP_NAME=name.
    ini: extra -d settings, a dict or (name, value) pairs (to repeat `extension`); without a
    session.save_handler the sessions are files in a directory of this origin. port: restart an
    origin on the port of a dead one. Fails (not skips) when php-cli is missing, as the other tests
    do for their Debian tools."""
    php = shutil.which("php")
    if not php:
        pytest.fail("php-cli is not installed: run tools/deps.sh test (as root) first")
    root = os.path.join(env.dir, "php-" + name)
    sess = os.path.join(root, "sessions")
    os.makedirs(sess, exist_ok=True)
    with open(os.path.join(root, "router.php"), "w") as f:
        f.write(PHP_SESSION_APP)
    port = port or free_port()
    settings = [("session.save_path", sess), ("session.use_strict_mode", "0"),
                ("variables_order", "EGPCS"), ("display_errors", "0"), ("log_errors", "1")]
    settings += list(ini.items() if isinstance(ini, dict) else ini or ())
    args = ["env", "APP_NAME=" + name, php, "-n"]
    # PHP's errors go to this origin's log (php -S writes them there), not into the responses;
    # a later -d of the same name wins
    for k, v in settings:
        args += ["-d", "%s=%s" % (k, v)]
    # a restarted origin gets its own log: the dead one's stays for the failure report
    p = env.proc("php-%s-%d" % (name, len(env.procs)),
                 args + ["-S", "127.0.0.1:%d" % port, "-t", root, os.path.join(root, "router.php")],
                 wait_for_port=port)
    p.port = port
    return p


def stats_rows(port, backend="be"):
    """The server rows of a backend in keel's stats CSV (the frontend needs 'stats uri /stats'),
    keyed by server name."""
    c = Conn(port)
    r = c.request("GET", "/stats;csv")
    c.close()
    assert r.status == 200, r.status
    rows = list(csv.reader(io.StringIO(r.body.decode().lstrip("# "))))
    return {row[1]: dict(zip(rows[0], row)) for row in rows[1:] if row and row[0] == backend}


def admin_raw(sock_path, data, timeout=5.0):
    """Sends raw bytes (or a str) to keel's admin socket; returns all it answers until it closes."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    s.sendall(data.encode() if isinstance(data, str) else data)
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    return out.decode()


def admin_cmd(sock_path, line, timeout=10.0):
    """One command line on keel's admin socket; returns the answer ("" for a silent success)."""
    return admin_raw(sock_path, line + "\n", timeout)


def rss_kb(pid):
    """Resident memory of process pid in kB (VmRSS), 0 if the line is missing."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
