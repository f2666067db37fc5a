"""Request logs (httplog, log-format, JSON, syslog over UDP) and the stats page."""
import base64
import json
import socket
import time

from conftest import Conn, basic_config, free_port


def wait_lines(proc, n, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        lines = [l for l in proc.output().splitlines() if not l.startswith("[")]
        if len(lines) >= n:
            return lines
        time.sleep(0.05)
    return [l for l in proc.output().splitlines() if not l.startswith("[")]


def test_httplog_line(env):
    o = env.origin("webA")
    port = free_port()
    k = env.keel(basic_config(port, [("webA", o.addr, "")]), [port])
    c = Conn(port)
    c.request("GET", "/some/path?x=1")
    lines = wait_lines(k, 1)
    assert len(lines) == 1, lines
    l = lines[0]
    assert l.startswith("127.0.0.1:")
    assert " fe be/webA " in l
    assert " 200 " in l
    assert '"GET /some/path?x=1 HTTP/1.1"' in l
    # timers Tq/Tw/Tc/Tr/Ta
    timers = l.split(" be/webA ")[1].split(" ")[0].split("/")
    assert len(timers) == 5 and all(t.lstrip("-").isdigit() for t in timers)


def test_log_format_fields(env):
    o = env.origin()
    port = free_port()
    k = env.keel("""defaults
    mode http
    log stdout format raw local0
    log-format "%%ci %%cp %%f %%b %%s %%ST %%B %%Ta %%r %%hr"
frontend fe
    bind 127.0.0.1:%d
    capture request header Host len 20
    default_backend be
backend be
    server s1 %s
""" % (port, o.addr), [port])
    Conn(port).request("GET", "/lf", host="h.example")
    l = wait_lines(k, 1)[0].split(" ")
    assert l[0] == "127.0.0.1" and l[1].isdigit() and l[2] == "fe" and l[3] == "be" and l[4] == "s1"
    assert l[5] == "200" and int(l[6]) > 0 and l[8] == "GET" and l[9] == "/lf"
    assert l[-1] == "{h.example}"


def test_json_log(env):
    o = env.origin()
    port = free_port()
    k = env.keel(basic_config(port, [o.addr], extra_defaults="    option logjson"), [port])
    Conn(port).request("GET", "/j\"son")
    rec = json.loads(wait_lines(k, 1)[0])
    assert rec["status"] == 200 and rec["backend"] == "be" and "/j" in rec["request"]


def test_dontlognull(env):
    o = env.origin()
    port = free_port()
    k = env.keel(basic_config(port, [o.addr], extra_defaults="    option dontlognull"), [port])
    s = socket.create_connection(("127.0.0.1", port))
    s.close()
    Conn(port).request("GET", "/x")
    time.sleep(0.3)
    assert len(wait_lines(k, 1)) == 1


def test_syslog_udp(env):
    o = env.origin()
    port = free_port()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(5)
    cfg = basic_config(port, [o.addr], logs=False).replace(
        "defaults\n", "defaults\n    option httplog\n    log 127.0.0.1:%d local2 info\n" % udp.getsockname()[1], 1)
    env.keel(cfg, [port])
    Conn(port).request("GET", "/sys")
    data = udp.recv(4096).decode()
    assert data.startswith("<150>")  # local2 (18) * 8 + info (6)
    assert "GET /sys HTTP/1.1" in data


def test_one_syslog_line_per_server_state_change(env):
    """A server that fails its check, then recovers, produces exactly one DOWN and one UP line on
    the global syslog target, each with its reason (the checks keep running meanwhile)."""
    o1, o2 = env.origin("o1"), env.origin("o2")
    port = free_port()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.2)
    cfg = basic_config(port, [("s1", o1.addr, "check inter 100ms fall 2 rise 2"),
                              ("s2", o2.addr, "check inter 100ms")],
                       extra_global="    log 127.0.0.1:%d local0" % udp.getsockname()[1],
                       extra_be="    option httpchk GET /health", logs=False)
    env.keel(cfg, [port])
    got = []

    def drain(seconds):
        end = time.time() + seconds
        while time.time() < end:
            try:
                got.append(udp.recv(4096).decode(errors="replace"))
            except socket.timeout:
                pass

    drain(0.5)
    o1.control("status=500")
    drain(1.5)  # 15 checks at 100 ms: one state change, whatever the number of failures
    o1.control("")
    drain(1.5)
    down = [l for l in got if "Server be/s1 is DOWN" in l]
    up = [l for l in got if "Server be/s1 is UP" in l]
    assert len(down) == 1, got
    assert "reason: check failed: status 500" in down[0], down
    assert len(up) == 1, got
    assert "reason: check passed" in up[0], up
    assert not [l for l in got if "be/s2 is" in l], got


def test_stats_page_auth_and_csv(env):
    o = env.origin()
    port = free_port()
    cfg = basic_config(port, [o.addr], extra_fe="    stats uri /st\n    stats auth admin:s3cret\n    stats auth ops:other")
    env.keel(cfg, [port])
    c = Conn(port)
    r = c.request("GET", "/st")
    assert r.status == 401 and "Basic" in r.header("www-authenticate")
    for creds, want in (("admin:s3cret", 200), ("ops:other", 200), ("admin:s3cre", 401),
                        ("admin:s3cret2", 401), ("nobody:s3cret", 401)):
        c = Conn(port)
        r = c.request("GET", "/st", headers={"Authorization": "Basic " + base64.b64encode(creds.encode()).decode()})
        assert r.status == want, creds
    c = Conn(port)
    auth = {"Authorization": "Basic " + base64.b64encode(b"admin:s3cret").decode()}
    c.request("GET", "/")
    r = c.request("GET", "/st", headers=auth)
    assert b"s1" in r.body and b"UP" in r.body
    r = c.request("GET", "/st;csv", headers=auth)
    lines = r.body.decode().splitlines()
    assert lines[0].startswith("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout")
    row = [l.split(",") for l in lines if l.startswith("be,s1,")][0]
    assert row[17] == "UP"


def test_syslog_unix_socket_and_file(env, tmp_path):
    o = env.origin()
    port = free_port()
    path = str(tmp_path / "log.sock")
    logfile = tmp_path / "keel.log"
    u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    u.bind(path)
    u.settimeout(5)
    cfg = basic_config(port, [o.addr], logs=False).replace(
        "defaults\n", "defaults\n    option httplog\n    log %s local0\n    log file@%s local0\n" % (path, logfile), 1)
    env.keel(cfg, [port])
    Conn(port).request("GET", "/unix")
    data = u.recv(4096).decode()
    assert data.startswith("<134>") and "GET /unix HTTP/1.1" in data
    deadline = time.time() + 5
    while time.time() < deadline and "GET /unix" not in (logfile.read_text() if logfile.exists() else ""):
        time.sleep(0.05)
    assert "GET /unix HTTP/1.1" in logfile.read_text()


def test_log_escapes_control_characters(env):
    o = env.origin()
    port = free_port()
    k = env.keel(basic_config(port, [o.addr]), [port])
    c = Conn(port)
    c.send(b"GET /a\"b#c\xff HTTP/1.1\r\nHost: t\r\n\r\n")
    c.read_response()
    line = wait_lines(k, 1)[0]
    assert "/a#22b#23c#FF" in line, line
