"""Cookie persistence ("cookie NAME insert|rewrite|prefix ..."): every mode against keel-origin,
the sticky user moved off a down or maintenance server (re-set cookie, log line, counter,
X-Keel-Moved-From), drain keeping its sticky users, and "option persist"."""
import os
import re

from conftest import (Conn, admin_cmd, basic_config, free_port, origin_of, php_origin, stats_rows,
                      wait_for)


def get(port, path="/", cookie=None, method="GET", body=None):
    c = Conn(port)
    r = c.request(method, path, headers={"Cookie": cookie} if cookie else None, body=body)
    c.close()
    return r


def start(env, cookie_line, extra_be="", check=False, extra_global=""):
    a, b = env.origin("a"), env.origin("b")
    port = free_port()
    chk = " check inter 100ms fall 1 rise 1" if check else ""
    cfg = basic_config(port, [("s1", a.addr, "cookie a" + chk), ("s2", b.addr, "cookie b" + chk)],
                       extra_be="    " + cookie_line + ("\n" + extra_be if extra_be else ""),
                       extra_fe="    stats uri /stats\n    stats prometheus-uri /metrics", extra_global=extra_global)
    k = env.keel(cfg, [port])
    return k, port, a, b


def echoed(r):
    """The request headers keel-origin received (echoed after the first empty line of its body)."""
    return r.body.decode(errors="replace").split("\n\n", 1)[1]


def test_insert_indirect_nocache(env):
    k, port, a, b = start(env, "cookie SRV insert indirect nocache httponly attr SameSite=Lax")
    r = get(port)
    name = origin_of(r)
    sc = r.header("set-cookie")
    assert sc == "SRV=%s; path=/; HttpOnly; SameSite=Lax" % name, sc
    assert r.header("cache-control") == "private"
    for _ in range(10):
        r = get(port, cookie="x=1; SRV=%s; y=2" % name)
        assert origin_of(r) == name
        assert r.header("set-cookie") is None  # indirect: the client already has the right one
        hdrs = echoed(r)
        assert "SRV=" not in hdrs and "x=1; y=2" in hdrs, hdrs  # removed towards the server
    # a cookie naming no server: balanced and re-set
    r = get(port, cookie="SRV=nosuch")
    assert r.header("set-cookie").startswith("SRV=" + origin_of(r) + ";")
    # the server's own Set-Cookie of that name is replaced by keel's
    r = get(port, path="/?set-cookie=SRV%3Dmine", cookie="SRV=a")
    assert origin_of(r) == "a" and r.headers_named("set-cookie") == []


def test_insert_without_indirect_forwards_and_preserve(env):
    k, port, a, b = start(env, "cookie SRV insert")
    r = get(port, cookie="SRV=b")
    assert origin_of(r) == "b" and "SRV=b" in echoed(r)
    # without indirect, HAProxy only inserts when the client had no valid cookie
    assert r.header("set-cookie") is None
    r = get(port, cookie="SRV=a", path="/?set-cookie=SRV%3Dapp")
    assert r.headers_named("set-cookie") == []

    k2, port2, a2, b2 = start(env, "cookie SRV insert preserve")
    r = get(port2, path="/?set-cookie=SRV%3Dapp")
    assert r.headers_named("set-cookie") == ["SRV=app"]


def test_postonly(env):
    k, port, a, b = start(env, "cookie SRV insert postonly")
    assert get(port).header("set-cookie") is None
    r = get(port, method="POST", body="x")
    assert r.header("set-cookie").startswith("SRV=" + origin_of(r))


def test_rewrite(env):
    k, port, a, b = start(env, "cookie SRV rewrite")
    r = get(port, path="/?set-cookie=SRV%3Dsession42%3B%20Path%3D%2F")
    assert r.header("set-cookie") == "SRV=%s; Path=/" % origin_of(r)
    for _ in range(5):
        assert origin_of(get(port, cookie="SRV=b")) == "b"
    assert get(port).header("set-cookie") is None  # keel inserts nothing in rewrite mode


def test_prefix(env):
    k, port, a, b = start(env, "cookie JSESSIONID prefix")
    r = get(port, path="/?set-cookie=JSESSIONID%3Dabc%3B%20HttpOnly")
    assert r.header("set-cookie") == "JSESSIONID=%s~abc; HttpOnly" % origin_of(r)
    for _ in range(5):
        r = get(port, cookie="JSESSIONID=b~abc; other=1")
        assert origin_of(r) == "b"
        assert "JSESSIONID=abc; other=1" in echoed(r), echoed(r)


def test_down_server_moves_user(env):
    k, port, a, b = start(env, "cookie SRV insert indirect nocache", extra_be="    option httpchk GET /",
                          check=True)
    wait_for(lambda: stats_rows(port)["s1"]["status"].startswith("UP") and
             stats_rows(port)["s2"]["status"].startswith("UP"), 5)
    assert origin_of(get(port, cookie="SRV=a")) == "a"
    a.control("status=503")  # a fails its checks (and every request) but still answers
    assert wait_for(lambda: stats_rows(port)["s1"]["status"].startswith("DOWN"), 5), stats_rows(port)
    r = get(port, cookie="SRV=a; X-Keel-Moved-From=forged", )
    assert r.status == 200 and origin_of(r) == "b"
    assert r.header("set-cookie").startswith("SRV=b;")
    assert "X-Keel-Moved-From: s1" in echoed(r), echoed(r)
    assert wait_for(lambda: "sticky user moved from be/s1 to be/s2: server DOWN" in k.output(), 3), k.output()
    assert stats_rows(port)["s1"]["keel_sticky_moves"] == "1"
    # a forged header from a client is dropped
    r = get(port, cookie="SRV=b")
    assert "X-Keel-Moved-From" not in echoed(r)
    c = Conn(port)
    c.send("GET / HTTP/1.1\r\nHost: t\r\nX-Keel-Moved-From: evil\r\nCookie: SRV=b\r\n\r\n")
    r = c.read_response()
    c.close()
    assert "evil" not in echoed(r)
    metrics = get(port, "/metrics").body.decode()
    assert re.search(r'keel_server_sticky_moves_total\{[^}]*server="s1"[^}]*\} 1', metrics), metrics


def test_persist_keeps_user_on_down_server(env):
    k, port, a, b = start(env, "cookie SRV insert indirect",
                          extra_be="    option httpchk GET /\n    option persist", check=True)
    wait_for(lambda: stats_rows(port)["s1"]["status"].startswith("UP"), 5)
    a.control("status=503")
    assert wait_for(lambda: stats_rows(port)["s1"]["status"].startswith("DOWN"), 5)
    r = get(port, cookie="SRV=a")
    assert r.status == 503 and origin_of(r) == "a"  # it went to the down server, as asked
    assert stats_rows(port)["s1"]["keel_sticky_moves"] == "0"


def test_drain_keeps_sticky_users_maint_moves_them(env):
    sock = os.path.join(env.dir, "admin.sock")
    k, port, a, b = start(env, "cookie SRV insert indirect",
                          extra_global="    stats socket %s" % sock)
    wait_for(lambda: os.path.exists(sock), 5)

    def ask(cmd):
        return admin_cmd(sock, cmd)

    assert ask("set server be/s1 state drain") == ""
    for _ in range(5):
        r = get(port, cookie="SRV=a")
        assert origin_of(r) == "a" and r.header("set-cookie") is None
    for _ in range(4):
        r = get(port)  # new users never land on the draining server
        assert origin_of(r) == "b" and r.header("set-cookie").startswith("SRV=b;")
    assert ask("set server be/s1 state maint") == ""
    r = get(port, cookie="SRV=a")
    assert origin_of(r) == "b" and r.header("set-cookie").startswith("SRV=b;")
    assert "X-Keel-Moved-From: s1" in echoed(r)
    assert wait_for(lambda: "sticky user moved from be/s1 to be/s2: server in MAINT" in k.output(), 3)


def test_pinned_request_not_moved_on_retry_without_redispatch(env):
    # A high error-limit keeps passive detection from ejecting s1 (an unusable server moves its
    # sticky users, redispatch or not): the request is retried on its own server only.
    k, port, a, b = start(env, "cookie SRV insert indirect",
                          extra_be="    retries 2\n    default-server error-limit 50")
    a.stop()
    r = get(port, cookie="SRV=a")
    assert r.status == 503
    rows = stats_rows(port)
    assert int(rows["s1"]["econ"]) >= 3 and rows["s2"]["stot"] == "0", rows
    k2, port2, a2, b2 = start(env, "cookie SRV insert indirect",
                              extra_be="    retries 2\n    option redispatch")
    a2.stop()
    r = get(port2, cookie="SRV=a")
    assert r.status == 200 and origin_of(r) == "b" and r.header("set-cookie").startswith("SRV=b;")
    assert wait_for(lambda: "sticky user moved from be/s1 to be/s2" in k2.output(), 3)


def test_php_file_sessions_stick_and_move(env):
    """Two real PHP origins with file sessions behind "cookie SRV insert indirect nocache": one
    client keeps its session for 200 requests; when its server dies it moves (its counter restarts:
    file sessions are per server), keel logs and counts the move and the app sees
    X-Keel-Moved-From."""
    import http.cookiejar
    import urllib.request
    pa, pb = php_origin(env, "webA"), php_origin(env, "webB")
    port = free_port()
    cfg = basic_config(port, [("webA", "127.0.0.1:%d" % pa.port, "cookie A check inter 100ms fall 1 rise 1"),
                              ("webB", "127.0.0.1:%d" % pb.port, "cookie B check inter 100ms fall 1 rise 1")],
                       extra_be="    cookie SRV insert indirect nocache\n    option redispatch",
                       extra_fe="    stats uri /stats")
    k = env.keel(cfg, [port])
    wait_for(lambda: all(r["status"].startswith("UP") for r in stats_rows(port).values()), 5)
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def hit():
        with opener.open("http://127.0.0.1:%d/" % port, timeout=10) as r:
            return dict(line.split("=", 1) for line in r.read().decode().split("\n") if "=" in line)

    first = hit()
    srv = first["server"]
    for i in range(2, 201):
        got = hit()
        assert got["server"] == srv and got["n"] == str(i), (i, got)
    assert {c.name for c in jar} == {"SRV", "PHPSESSID"}
    (pa if srv == "webA" else pb).stop()
    other = "webB" if srv == "webA" else "webA"
    # Once the checks saw it die (a request before that is redispatched by "option redispatch":
    # moved and logged too, but its head was already sent, so it carries no X-Keel-Moved-From).
    assert wait_for(lambda: stats_rows(port)[srv]["status"].startswith("DOWN"), 5)
    got = hit()
    assert got["server"] == other and got["n"] == "1", got  # a new file session over there
    assert got["moved_from"] == srv
    got = hit()
    assert got["server"] == other and got["n"] == "2" and got["moved_from"] == "", got
    assert wait_for(lambda: "sticky user moved from be/%s to be/%s" % (srv, other) in k.output(), 3)
    assert stats_rows(port)[srv]["keel_sticky_moves"] == "1"
