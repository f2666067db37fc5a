"""Stick tables ("stick-table", "stick on|match|store-request|store-response"): a client kept on
its server by its address, a PHP-style session learnt from the server's Set-Cookie without a keel
cookie, a user moved off a server in maintenance or down (entry updated, move logged, counted and
announced), the size bound, and "show table" / "clear table" on the admin socket."""
import os
import re

from conftest import Conn, admin_cmd, basic_config, free_port, origin_of, stats_rows, wait_for


def get(port, path="/", cookie=None, source=None):
    c = Conn(port, source=source)
    r = c.request("GET", path, headers={"Cookie": cookie} if cookie else None)
    c.close()
    return r


def echoed(r):
    """The request headers keel-origin received (echoed after the first empty line of its body)."""
    return r.body.decode(errors="replace").split("\n\n", 1)[1]


def start(env, stick_lines, check=False):
    a, b = env.origin("a"), env.origin("b")
    port = free_port()
    sock = os.path.join(env.dir, "admin.sock")
    chk = " check inter 100ms fall 1 rise 1" if check else ""
    extra = "\n".join("    " + l for l in stick_lines)
    if check:
        extra += "\n    option httpchk GET /"
    cfg = basic_config(port, [("s1", a.addr, chk), ("s2", b.addr, chk)], extra_be=extra,
                       extra_fe="    stats uri /stats",
                       extra_global="    stats socket %s" % sock)
    k = env.keel(cfg, [port])
    wait_for(lambda: os.path.exists(sock), 5)
    return k, port, sock, a, b


def table(sock, name="be"):
    """show table NAME → (header line, {key: (server_name, exp_ms)})."""
    out = admin_cmd(sock, "show table " + name)
    lines = out.splitlines()
    entries = {}
    for l in lines[1:]:
        m = re.match(r"key=(\S+) server_id=(\d+) server_name=(\S+) exp=(\d+)$", l)
        assert m, out
        entries[m.group(1)] = (m.group(3), int(m.group(4)))
    return lines[0], entries


def test_stick_on_src_keeps_client_on_its_server(env):
    k, port, sock, a, b = start(env, ["stick-table type ip size 100 expire 30s", "stick on src"])
    seen = {}
    for src in ["127.0.0.1", "127.0.0.2", "127.0.0.3"]:
        names = {origin_of(get(port, source=src)) for _ in range(6)}
        assert len(names) == 1, (src, names)  # round robin alone would alternate
        seen[src] = names.pop()
    assert len(set(seen.values())) == 2  # the first requests were balanced
    head, entries = table(sock)
    assert head == "# table: be, type: ip, size:100, used:3", head
    for src, name in seen.items():
        assert entries[src][0] == {"a": "s1", "b": "s2"}[name]
        assert 25000 < entries[src][1] <= 30000
    rows = stats_rows(port)
    assert int(rows["s1"]["keel_sticky_users"]) + int(rows["s2"]["keel_sticky_users"]) == 3, rows


def test_php_session_learnt_from_set_cookie(env):
    k, port, sock, a, b = start(env, ["stick-table type string len 64 size 1k expire 30m",
                                      "stick match req.cook(PHPSESSID)",
                                      "stick store-response res.cook(PHPSESSID)"])
    r = get(port, "/?set-cookie=PHPSESSID%3Dsess42%3B%20path%3D%2F")
    first = origin_of(r)
    # the application's cookie goes through untouched, and keel adds none
    assert r.headers_named("set-cookie") == ["PHPSESSID=sess42; path=/"]
    for _ in range(8):
        r = get(port, cookie="x=1; PHPSESSID=sess42")
        assert origin_of(r) == first and r.header("set-cookie") is None
    # an unknown session is balanced (and not learnt: no Set-Cookie)
    assert {origin_of(get(port, cookie="PHPSESSID=nosuch")) for _ in range(4)} == {"a", "b"}
    head, entries = table(sock)
    assert "used:1" in head and entries["sess42"][0] == {"a": "s1", "b": "s2"}[first]


def test_maint_moves_user_and_updates_entry(env):
    k, port, sock, a, b = start(env, ["stick-table type string size 1k",
                                      "stick match req.cook(PHPSESSID)",
                                      "stick store-response res.cook(PHPSESSID)"])
    r = get(port, "/?set-cookie=PHPSESSID%3Dmoveme")
    first = origin_of(r)
    srv, other, oname = ("s1", "s2", "b") if first == "a" else ("s2", "s1", "a")
    assert admin_cmd(sock, "set server be/%s state maint" % srv) == ""
    c = Conn(port)
    c.send("GET / HTTP/1.1\r\nHost: t\r\nX-Keel-Moved-From: forged\r\n"
           "Cookie: PHPSESSID=moveme\r\n\r\n")
    r = c.read_response()
    c.close()
    assert origin_of(r) == oname
    assert "X-Keel-Moved-From: %s" % srv in echoed(r) and "forged" not in echoed(r), echoed(r)
    assert wait_for(lambda: "sticky user moved from be/%s to be/%s: server in MAINT" % (srv, other)
                    in k.output(), 3), k.output()
    assert stats_rows(port)[srv]["keel_sticky_moves"] == "1"
    # the entry followed the user: back to ready, the old server does not get it back
    assert table(sock)[1]["moveme"][0] == other
    assert admin_cmd(sock, "set server be/%s state ready" % srv) == ""
    for _ in range(4):
        r = get(port, cookie="PHPSESSID=moveme")
        assert origin_of(r) == oname and "X-Keel-Moved-From" not in echoed(r)
    assert stats_rows(port)[srv]["keel_sticky_moves"] == "1"


def test_down_server_moves_stick_on_user(env):
    k, port, sock, a, b = start(env, ["stick-table type ip size 10", "stick on src"], check=True)
    assert wait_for(lambda: all(r["status"].startswith("UP") for n, r in stats_rows(port).items()
                                if n.startswith("s")), 5)
    first = origin_of(get(port))
    down, other = (a, "s2") if first == "a" else (b, "s1")
    srv = "s1" if first == "a" else "s2"
    down.control("status=503")  # fails its checks (and every request) but still answers
    assert wait_for(lambda: stats_rows(port)[srv]["status"].startswith("DOWN"), 5)
    r = get(port)
    assert r.status == 200 and origin_of(r) != first
    assert "X-Keel-Moved-From: %s" % srv in echoed(r)
    assert wait_for(lambda: "sticky user moved from be/%s to be/%s: server DOWN" % (srv, other)
                    in k.output(), 3), k.output()
    assert table(sock)[1]["127.0.0.1"][0] == other


def test_size_bound_evicts_least_recently_used(env):
    k, port, sock, a, b = start(env, ["stick-table type string len 8 size 3",
                                      "stick on req.cook(u)"])
    for u in ["one", "two", "three", "four"]:
        get(port, cookie="u=" + u)
    get(port, cookie="u=two")  # touched: "three" is now the oldest
    get(port, cookie="u=fivefivefive")  # truncated to len 8
    head, entries = table(sock)
    assert "size:3, used:3" in head, head
    assert set(entries) == {"two", "four", "fivefive"}, entries


def test_show_and_clear_table(env):
    k, port, sock, a, b = start(env, ["stick-table type integer size 10 expire 1m",
                                      "stick on url_param(id) if { url_param(id) -m found }"])
    for i in range(1, 5):
        get(port, "/?id=%d" % i)
    get(port, "/?other=1")  # no key: nothing stored
    assert admin_cmd(sock, "show table") == "# table: be, type: integer, size:10, used:4\n"
    assert set(table(sock)[1]) == {"1", "2", "3", "4"}
    assert admin_cmd(sock, "clear table be key 2") == ""
    assert set(table(sock)[1]) == {"1", "3", "4"}
    assert admin_cmd(sock, "clear table be key x") == \
        "error: invalid key 'x' for this table's type\n"
    assert admin_cmd(sock, "clear table be") == ""
    assert table(sock) == ("# table: be, type: integer, size:10, used:0", {})
    assert admin_cmd(sock, "show table nosuch") == "error: no stick-table 'nosuch'\n"
    assert admin_cmd(sock, "clear table") == \
        "error: 'clear table' expects a table (backend) name [key KEY]\n"
