"""POSTs sent to a server that has just frozen (docs/configuration.md, "Requests with a body").

keel sends a request with a body with "Expect: 100-continue" and sends the body only once the
server answered 100: a server that froze (SIGSTOP of every process of the origin, as when a
machine swaps or runs out of memory) before it read the head never gets the body, so it cannot
run the request, and keel moves it to the other server instead of answering 504 after waiting.
Real origins: nginx with PHP-FPM running a PHP script that logs each POST it runs (what sites
run), and nginx alone, whose access log says which POSTs it received whole. The load: POSTs at
25/s with a unique X-Req-Id for 8 s (oload, no retries); one origin frozen from 1 s to 5 s. Every
POST must be answered 2xx, and run (or be received whole) exactly once across the origins."""
import glob
import os
import shutil
import signal
import socket
import threading
import time

import pytest

from conftest import OLOAD, Conn, basic_config, free_port, wait_for

RATE, DURATION, BODY = 25, 8, 2000
FREEZE_AT, FREEZE_FOR = 1.0, 4.0

PHP_APP = r"""<?php
$body = file_get_contents("php://input");
$id = $_SERVER["HTTP_X_REQ_ID"] ?? "-";
if (strlen($body) != (int)($_SERVER["CONTENT_LENGTH"] ?? -1)) {
    http_response_code(400);
    exit("short body\n");
}
file_put_contents(getenv("IDS_FILE"), "$id\n", FILE_APPEND | LOCK_EX);
echo "ran $id\n";
"""


def php_fpm():
    found = sorted(glob.glob("/usr/sbin/php-fpm*"))
    if not found:
        pytest.fail("php-fpm is not installed: run tools/deps.sh test (as root) first")
    return found[-1]


class PhpOrigin:
    """nginx passing /post to its own PHP-FPM pool, which runs PHP_APP."""

    def __init__(self, env, name):
        self.ids = os.path.join(env.dir, name + ".ids")
        open(self.ids, "w").close()
        app = os.path.join(env.dir, name + "-app.php")
        with open(app, "w") as f:
            f.write(PHP_APP)
        fpm_port = free_port()
        conf = os.path.join(env.dir, name + "-fpm.conf")
        with open(conf, "w") as f:
            f.write("[global]\nerror_log = %s/%s-fpm.err\ndaemonize = no\n"
                    "[www]\nlisten = 127.0.0.1:%d\npm = static\npm.max_children = 4\n"
                    "clear_env = no\nenv[IDS_FILE] = %s\n" % (env.dir, name, fpm_port, self.ids))
        self.fpm = env.proc(name + "-fpm", [php_fpm(), "-n", "-R", "-F", "-y", conf],
                            wait_for_port=fpm_port)
        self.nginx = env.nginx(extra_locations="""
    location = /post {
      fastcgi_pass 127.0.0.1:%d;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME %s;
    }""" % (fpm_port, app))
        self.port = self.nginx.port

    def groups(self):
        return [self.nginx.p.pid, self.fpm.p.pid]

    def ran(self):
        with open(self.ids) as f:
            return [l.strip() for l in f if l.strip()]


class NginxOrigin:
    """nginx alone: /post reads the whole body (it proxies the request to a second server block
    of the same nginx, which answers 200) and logs the X-Req-Id of each POST it received whole
    and answered."""

    def __init__(self, env, name):
        self.ids = os.path.join(env.dir, name + ".access")
        inner = free_port()
        self.nginx = env.nginx(
            extra_http="""log_format ids '$http_x_req_id $status $request_length';
  server { listen 127.0.0.1:%d; access_log off; location / { return 200 "ok\\n"; } }""" % inner,
            extra_locations="""
    location = /post {
      client_body_buffer_size 64k;
      access_log %s ids;
      proxy_pass http://127.0.0.1:%d;
    }""" % (self.ids, inner))
        self.port = self.nginx.port

    def groups(self):
        return [self.nginx.p.pid]

    def ran(self):
        if not os.path.exists(self.ids):
            return []
        with open(self.ids) as f:
            rows = [l.split() for l in f if l.strip()]
        return [r[0] for r in rows if r[1] == "200" and int(r[2]) >= BODY]


def freeze(origin, sig):
    for g in origin.groups():
        os.killpg(g, sig)


def run(env, origin_cls, pinned=False):
    """The load through keel over two origins of origin_cls, the first frozen meanwhile; pinned:
    every POST carries the persistence cookie of the first."""
    origins = [origin_cls(env, "o1"), origin_cls(env, "o2")]
    port = free_port()
    cfg = """global
    nbthread 2
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
backend be
    balance roundrobin
%s    server o1 127.0.0.1:%d cookie o1
    server o2 127.0.0.1:%d cookie o2
frontend fe
    bind 127.0.0.1:%d
    default_backend be
""" % ("    cookie SRV insert indirect nocache\n" if pinned else "", origins[0].port,
       origins[1].port, port)
    k = env.keel(cfg, [port])
    csv = os.path.join(env.dir, "post.csv")
    t0 = time.monotonic() + 0.3
    args = [OLOAD, "-u", "http://127.0.0.1:%d/post" % port, "-r", str(RATE), "-d", str(DURATION),
            "-t", "6000", "-s", "6000", "-m", "POST", "-b", str(BODY), "--id-header", "X-Req-Id",
            "--start-at", "%.6f" % t0, "--csv", csv]
    if pinned:
        args += ["-H", "Cookie: SRV=o1"]
    load = env.proc("oload", args)
    time.sleep(max(0.0, t0 + FREEZE_AT - time.monotonic()))
    freeze(origins[0], signal.SIGSTOP)
    time.sleep(max(0.0, t0 + FREEZE_AT + FREEZE_FOR - time.monotonic()))
    freeze(origins[0], signal.SIGCONT)
    load.p.wait(DURATION + 20)
    line = [x for x in load.output().splitlines() if x.startswith("sent=")][-1]
    stats = dict(kv.split("=") for kv in line.split())
    print(line)
    # The thawed origin finishes what it still had (nothing of ours should run), then count.
    time.sleep(1.0)
    ran = origins[0].ran() + origins[1].ran()
    dups = sorted({i for i in ran if ran.count(i) > 1})
    assert not dups, "POSTs run twice: %s" % dups
    assert int(stats["sent"]) == RATE * DURATION
    assert stats["failed"] == "0", line
    assert len(ran) == RATE * DURATION, "answered but not run once each: %d runs" % len(ran)
    assert origins[0].ran(), "the frozen origin ran nothing: the test did not exercise it"
    # The POSTs due while the origin was frozen (a margin for the signal's timing) did not wait
    # for its thaw: the other one ran them, in well under the freeze. One sent just before the
    # freeze may wait for the thaw: its server had the body, it may have run it.
    with open(csv) as f:
        rows = [r.split(",") for r in f.read().splitlines()[1:]]
    during = [i for i in range(len(rows))
              if FREEZE_AT + 0.1 < i / RATE < FREEZE_AT + FREEZE_FOR - 0.1]
    slow = [(i, rows[i][1]) for i in during if float(rows[i][1]) > 2000]
    assert not slow, "POSTs that waited for the frozen origin: %s" % slow
    late = {str(i) for i in during} & set(origins[0].ran())
    assert not late, "POSTs run by the frozen origin after its thaw: %s" % sorted(late)
    return k


def test_php_origin_frozen(env):
    """nginx + PHP-FPM origins, round robin: the POSTs that reached the frozen one are run by
    the other one, each once."""
    run(env, PhpOrigin)


def test_nginx_origin_frozen(env):
    """nginx origins, round robin: the same."""
    run(env, NginxOrigin)


def test_pinned_posts_move_when_their_server_is_taken_out(env):
    """Every POST carries the persistence cookie of the server that freezes: they wait for it
    until keel takes it out, then go to the other one (a held body makes even a pinned POST
    movable), instead of a 504."""
    k = run(env, PhpOrigin, pinned=True)
    assert "taken out" not in k.output() or k.alive()


def post(port, body, headers=None, interim=False):
    """One POST on a fresh connection; the responses as read (interim ones too when asked)."""
    c = Conn(port)
    c.keep_interim = interim
    hs = {"Host": "t", "Content-Length": str(len(body))}
    hs.update(headers or {})
    c.send(("POST /p HTTP/1.1\r\n" + "".join("%s: %s\r\n" % kv for kv in hs.items()) +
            "\r\n").encode() + body)
    return c


def test_clients_see_no_100_they_did_not_ask_for(env):
    """keel's own Expect is answered by the server's 100, which keel keeps: the client gets the
    final response only; a client that sent Expect itself gets the 100 relayed, then sends its
    body."""
    o = env.origin("a")
    port = free_port()
    env.keel(basic_config(port, [o.addr]), [port])
    c = post(port, b"x" * 5000, interim=True)
    r = c.read_response()
    assert r.status == 200 and b"body_len 5000" in r.body
    c = Conn(port)
    c.keep_interim = True
    c.send(b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    assert c.read_response().status == 100
    c.send(b"abc")
    r = c.read_response()
    assert r.status == 200 and b"body_len 3" in r.body


PHP_BUILTIN_APP = r"""<?php
$body = file_get_contents("php://input");
file_put_contents(getenv("IDS_FILE"), ($_SERVER["HTTP_X_REQ_ID"] ?? "-") . " " . strlen($body) . "\n",
                  FILE_APPEND | LOCK_EX);
echo "got " . strlen($body) . "\n";
"""


def test_server_that_ignores_expect_is_learnt(env):
    """PHP's built-in server never answers 100: the first POST waits for it once (1 s: no other
    traffic shows it alive), then goes; keel says so in its log, and the next POSTs go at once,
    without the header. Each ran once, with its whole body."""
    php = shutil.which("php")
    if not php:
        pytest.fail("php-cli is not installed: run tools/deps.sh test (as root) first")
    root = os.path.join(env.dir, "php")
    os.makedirs(root)
    with open(os.path.join(root, "index.php"), "w") as f:
        f.write(PHP_BUILTIN_APP)
    ids = os.path.join(env.dir, "php.ids")
    oport = free_port()
    env.proc("php", ["env", "IDS_FILE=" + ids, php, "-n", "-S", "127.0.0.1:%d" % oport, "-t", root,
                     os.path.join(root, "index.php")], wait_for_port=oport)
    port = free_port()
    k = env.keel(basic_config(port, ["127.0.0.1:%d" % oport]), [port])
    took = []
    for i in range(4):
        t = time.monotonic()
        r = post(port, b"y" * 3000, {"X-Req-Id": str(i)}).read_response()
        took.append(time.monotonic() - t)
        assert r.status == 200 and r.body == b"got 3000\n", r.body
    assert 0.8 < took[0] < 2.0, took
    assert max(took[1:]) < 0.3, took
    assert wait_for(lambda: "does not answer Expect: 100-continue" in k.output(), 5)
    with open(ids) as f:
        assert f.read().splitlines() == ["%d 3000" % i for i in range(4)]


class Origin417:
    """Answers 417 to any request with an Expect header (and closes), 200 with the length of the
    body it read otherwise; records the heads it got. early: answers 401 to every request as soon
    as its head arrives, without a 100, then records what else comes on the connection."""

    def __init__(self, early=False):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.heads = []
        self.early = early
        self.after = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.one, args=(s,), daemon=True).start()

    def one(self, s):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                self.heads.append(head.decode("latin-1"))
                lower = head.lower()
                if self.early:
                    s.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
                    s.settimeout(1.0)
                    try:
                        while True:
                            d = s.recv(65536)
                            if not d:
                                break
                            buf += d
                    except OSError:
                        pass
                    self.after.append(buf)
                    return
                if b"\r\nexpect:" in lower:
                    s.sendall(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n"
                              b"Connection: close\r\n\r\n")
                    return
                n = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
                while len(buf) < n:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                buf = buf[n:]
                msg = b"got %d\n" % n
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(msg), msg))
        except OSError:
            return
        finally:
            s.close()


def test_417_gets_the_request_again_without_expect(env):
    """A server that refuses Expect with 417 never read the body: it gets the request again
    without the header, the client its answer; the next POST goes without the header at once."""
    o = Origin417()
    port = free_port()
    k = env.keel(basic_config(port, ["127.0.0.1:%d" % o.port]), [port])
    for _ in range(2):
        r = post(port, b"z" * 1234).read_response()
        assert r.status == 200 and r.body == b"got 1234\n"
    assert ["expect:" in h.lower() for h in o.heads] == [True, False, False], o.heads
    assert "does not answer Expect: 100-continue" in k.output()


def test_answer_before_100_gets_no_body(env):
    """A server that answers (401) as soon as it has the head, without a 100, never gets the
    body: the client gets the 401, and the server connection closes after it."""
    o = Origin417(early=True)
    port = free_port()
    env.keel(basic_config(port, ["127.0.0.1:%d" % o.port]), [port])
    c = post(port, b"q" * 20000)
    r = c.read_response()
    assert r.status == 401
    assert wait_for(lambda: o.after, 5)
    assert o.after == [b""], "body bytes reached the server: %d" % len(o.after[0])
