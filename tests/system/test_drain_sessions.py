"""Drain that knows about sessions (docs/admin.md, "Drain and sticky users"): a server in drain
keeps the sticky users who keep coming, through its persistence cookie or a stick table, and
moves those idle for drain-idle (logged, counted, X-Keel-Moved-From, the cookie re-set or the
stick entry re-pointed); drain-deadline moves everyone; the admin socket, the stats CSV/JSON and
the metrics count the sticky users a draining server still holds; `keelctl drain --wait` returns
once the last one went idle and says what it waits for; bad values of the keywords are
configuration errors."""
import json
import os
import re
import subprocess
import threading
import time

from conftest import (KEEL, KEELCTL, Conn, admin_cmd, basic_config, free_port, origin_of,
                      stats_rows, wait_for)


IDLE = 2.0  # drain-idle of the servers below, in s


def get(port, path="/", cookie=None):
    c = Conn(port)
    r = c.request("GET", path, headers={"Cookie": cookie} if cookie else None)
    c.close()
    return r


def echoed(r):
    """The request headers keel-origin received (echoed after the first empty line of its body)."""
    return r.body.decode(errors="replace").split("\n\n", 1)[1]


def start(env, be_lines, srv_opts="drain-idle 2s"):
    a, b = env.origin("a"), env.origin("b")
    port = free_port()
    sock = os.path.join(env.dir, "admin.sock")
    cfg = basic_config(port, [("s1", a.addr, "cookie a " + srv_opts),
                              ("s2", b.addr, "cookie b " + srv_opts)],
                       extra_be="\n".join("    " + l for l in be_lines),
                       extra_fe="    stats uri /stats\n    stats prometheus-uri /metrics",
                       extra_global="    stats socket %s" % sock)
    k = env.keel(cfg, [port])
    assert wait_for(lambda: os.path.exists(sock), 5)
    return k, port, sock


def state(sock, name="s1"):
    """The row of a server in `show servers state be`, keyed by the header's column names."""
    lines = admin_cmd(sock, "show servers state be").splitlines()
    cols = lines[1].lstrip("# ").split(" ")
    rows = [dict(zip(cols, l.split(" "))) for l in lines[2:] if l]
    return [r for r in rows if r["srv_name"] == name][0]


def ctl(sock, *args, timeout=30):
    p = subprocess.run([KEELCTL, "-s", sock] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def keep_coming(port, cookie, until, period=0.25, times=None):
    """Requests of one user every period until the monotonic time until, keeping the SRV cookie
    keel sets as a browser does; returns [(origin, Set-Cookie, moved header seen)]. times: a list
    that gets the time each request was sent."""
    seen = []
    while time.monotonic() < until:
        if times is not None:
            times.append(time.monotonic())
        r = get(port, cookie=cookie)
        assert r.status == 200
        sc = r.header("set-cookie")
        seen.append((origin_of(r), sc, "X-Keel-Moved-From" in echoed(r)))
        if sc and sc.startswith("SRV="):
            cookie = re.sub(r"SRV=[^;]*", sc.split(";")[0], cookie)
        time.sleep(period)
    return seen


def test_cookie_users_stay_while_they_come_idle_ones_move(env):
    k, port, sock = start(env, ["cookie SRV insert indirect"])
    active, idle = "SRV=a; sess=u1", "SRV=a; sess=u2"
    assert admin_cmd(sock, "set server be/s1 state drain") == ""
    t0 = time.monotonic()
    assert wait_for(lambda: "sticky users: drain-idle 2s, no drain-deadline" in k.output(), 3)
    # both come back right after the drain began: kept (not seen yet, within drain-idle)
    for c in (active, idle):
        r = get(port, cookie=c)
        assert origin_of(r) == "a" and r.header("set-cookie") is None
    row = state(sock)
    assert row["keel_sticky_users"] == "2" and 0 < int(row["keel_sticky_pending_ms"]) <= 2000, row
    # the active user keeps coming for longer than drain-idle; the other one pauses
    seen = keep_coming(port, active, t0 + IDLE + 1.0)
    assert seen and all(s == ("a", None, False) for s in seen), seen
    row = state(sock)
    assert row["keel_sticky_users"] == "1" and row["keel_sticky_pending_ms"] == "0", row
    # the idle user comes back: moved like a user of a server in maintenance
    r = get(port, cookie=idle)
    assert origin_of(r) == "b" and r.header("set-cookie").startswith("SRV=b;")
    assert "X-Keel-Moved-From: s1" in echoed(r), echoed(r)
    assert wait_for(lambda: "sticky user moved from be/s1 to be/s2: server in DRAIN, user idle "
                    "for drain-idle (2000 ms) or more" in k.output(), 3), k.output()
    # a user who never came back during the drain is gone as well, and counted
    r = get(port, cookie="SRV=a; sess=u3")
    assert origin_of(r) == "b" and "X-Keel-Moved-From: s1" in echoed(r)
    rows = stats_rows(port)
    assert rows["s1"]["keel_sticky_moves"] == "2", rows["s1"]
    assert rows["s1"]["keel_sticky_users"] == "1" and rows["s1"]["keel_sticky_pending_ms"] == "0"
    # still the active user's server; new users go elsewhere
    assert origin_of(get(port, cookie=active)) == "a"
    assert origin_of(get(port)) == "b"
    # the other views say the same
    sj = [s for s in json.loads(admin_cmd(sock, "show servers state be json"))
          if s["srv_name"] == "s1"][0]
    assert sj["keel_sticky_users"] == 1 and sj["keel_sticky_pending_ms"] == 0, sj
    j = json.loads(get(port, "/stats;json").body)
    s1 = [s for b in j["backends"] for s in b["servers"] if s["name"] == "s1"][0]
    assert s1["sticky_users"] == 1 and s1["sticky_users_pending_ms"] == 0, s1
    metrics = get(port, "/metrics").body.decode()
    assert re.search(r'keel_server_sticky_users\{backend="be",server="s1"\} 1\n', metrics)
    assert re.search(r'keel_server_sticky_moves_total\{backend="be",server="s1"\} 2\n', metrics)
    html = get(port, "/stats").body.decode()
    assert ">1 sticky user</small>" in html, html[:200]


def test_stick_users_stay_while_they_come_idle_ones_move(env):
    k, port, sock = start(env, ["stick-table type string len 32 size 1k expire 30m",
                                "stick match req.cook(PHPSESSID)",
                                "stick store-response res.cook(PHPSESSID)"])
    # both sessions learnt on s1 (s2 out while they log in)
    assert admin_cmd(sock, "set server be/s2 state maint") == ""
    for s in ("k1", "k2"):
        assert origin_of(get(port, "/?set-cookie=PHPSESSID%3D" + s)) == "a"
    assert admin_cmd(sock, "set server be/s2 state ready") == ""
    assert state(sock)["keel_sticky_users"] == "2"  # not draining: the entries naming it
    assert admin_cmd(sock, "set server be/s1 state drain") == ""
    t0 = time.monotonic()
    # no cookie persistence in this backend: no unknown users, the entries say it all
    row = state(sock)
    assert row["keel_sticky_users"] == "2" and row["keel_sticky_pending_ms"] == "0", row
    seen = keep_coming(port, "PHPSESSID=k1", t0 + IDLE + 1.0)
    assert all(s[0] == "a" and not s[2] for s in seen), seen
    assert state(sock)["keel_sticky_users"] == "1"
    r = get(port, cookie="PHPSESSID=k2")
    assert origin_of(r) == "b" and "X-Keel-Moved-From: s1" in echoed(r), echoed(r)
    assert wait_for(lambda: "sticky user moved from be/s1 to be/s2: server in DRAIN, user idle "
                    "for drain-idle (2000 ms) or more" in k.output(), 3), k.output()
    # the entry followed the user
    entries = admin_cmd(sock, "show table be")
    assert re.search(r"key=k2 server_id=2 server_name=s2 ", entries), entries
    assert re.search(r"key=k1 server_id=1 server_name=s1 ", entries), entries
    r = get(port, cookie="PHPSESSID=k2")
    assert origin_of(r) == "b" and "X-Keel-Moved-From" not in echoed(r)
    assert stats_rows(port)["s1"]["keel_sticky_moves"] == "1"
    assert origin_of(get(port, cookie="PHPSESSID=k1")) == "a"


def test_keelctl_drain_wait_returns_after_the_last_sticky_user(env):
    k, port, sock = start(env, ["cookie SRV insert indirect",
                                "stick-table type string len 32 size 1k",
                                "stick match req.cook(PHPSESSID)",
                                "stick store-response res.cook(PHPSESSID)"])
    assert admin_cmd(sock, "set server be/s2 state maint") == ""
    assert origin_of(get(port, "/?set-cookie=PHPSESSID%3Dk1")) == "a"
    assert admin_cmd(sock, "set server be/s2 state ready") == ""
    # a short timeout first: it says what is left and why it may take longer
    t0 = time.monotonic()
    rc, out, err = ctl(sock, "drain", "be/s1", "--wait", "--timeout", "300ms")
    assert rc == 1, (rc, out, err)
    assert "be/s1: 0 request(s) in flight (0 queued), 1 sticky user(s), cookie users not seen " \
           "since the drain began count for 2 s more" in out, out
    assert "keelctl: be/s1 still has 0 request(s) in flight and 0 queued, 1 sticky user(s) and " \
           "cookie users not seen yet after 300 ms" in err, err
    assert "raise --timeout or lower the drain's idle time" in err, err
    last = {}

    def user(name, cookie, until):
        times = []
        last[name + "_seen"] = keep_coming(port, cookie, until, period=0.2, times=times)
        last[name] = times[-1]  # its last request left then: keel saw it a little later

    ths = [threading.Thread(target=user, args=("cookie", "SRV=a; sess=c1", t0 + 1.5)),
           threading.Thread(target=user, args=("stick", "PHPSESSID=k1", t0 + 3.0))]
    [t.start() for t in ths]
    p = subprocess.Popen([KEELCTL, "-s", sock, "drain", "be/s1", "--wait", "--timeout", "20s"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=30)
    done = time.monotonic()
    [t.join() for t in ths]
    print(out)  # shown with -s: what keelctl said while it waited
    assert p.returncode == 0, (out, err)
    assert all(s[0] == "a" for s in last["cookie_seen"] + last["stick_seen"]), last
    # not before the last sticky user had been idle for drain-idle
    assert done >= last["stick"] + IDLE - 0.05, (done - t0, last["stick"] - t0, out)
    assert done < last["stick"] + IDLE + 2.0, (done - t0, last["stick"] - t0, out)
    lines = out.splitlines()
    assert lines[-1] == "be/s1 drained: no request in flight, no sticky user left", out
    # it said what it waited for, every 2 s
    progress = [l for l in lines if l.startswith("be/s1: ")]
    assert len(progress) >= 2, out
    assert re.match(r"be/s1: \d+ request\(s\) in flight \(0 queued\), [12] sticky user\(s\)",
                    progress[-1]), out
    assert state(sock)["keel_sticky_users"] == "0"


def test_keelctl_drain_wait_default_outlasts_drain_idle(env):
    """Without --timeout, `keelctl drain --wait` waits one minute past the time keel gives the
    cookie users not seen yet (drain-idle 5m here), not one minute in all; with --timeout it
    says that limit."""
    k, port, sock = start(env, ["cookie SRV insert indirect"], srv_opts="drain-idle 5m")
    assert origin_of(get(port, cookie="SRV=a; sess=u1")) == "a"
    p = subprocess.Popen([KEELCTL, "-s", sock, "drain", "be/s1", "--wait"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = p.stdout.readline()
        assert first == "waiting for be/s1 to drain, at most 360 s (--timeout T to change)\n", first
        assert p.poll() is None  # still waiting
    finally:
        p.kill()
        p.communicate(timeout=10)
    rc, out, err = ctl(sock, "drain", "be/s1", "--wait", "--timeout", "1500ms")
    assert rc == 1, (rc, out, err)
    assert out.splitlines()[0] == "waiting for be/s1 to drain, at most 2 s (--timeout T to change)", out
    assert "after 1500 ms" in err, err


def test_drain_deadline_moves_everyone(env):
    k, port, sock = start(env, ["cookie SRV insert indirect"],
                          srv_opts="drain-idle 1m drain-deadline 2s")
    assert admin_cmd(sock, "set server be/s1 state drain") == ""
    t0 = time.monotonic()
    seen = keep_coming(port, "SRV=a; sess=u1", t0 + 3.0)
    before = [s for s in seen if s[0] == "a"]
    after = [s for s in seen if s[0] == "b"]
    assert before and len(after) >= 2 and seen[len(before):] == after, seen
    # moved once (the cookie was re-set to b), then it stays on b
    assert after[0][1].startswith("SRV=b;") and after[0][2], after
    assert all(s == ("b", None, False) for s in after[1:]), after
    assert wait_for(lambda: "sticky user moved from be/s1 to be/s2: server in DRAIN for "
                    "drain-deadline (2000 ms)" in k.output(), 3), k.output()
    assert wait_for(lambda: "Server be/s1 drain-deadline (2s) passed: its sticky users move at "
                    "their next request" in k.output(), 3), k.output()
    row = state(sock)
    assert row["keel_sticky_users"] == "0" and row["keel_sticky_pending_ms"] == "0", row
    rc, out, err = ctl(sock, "drain", "be/s1", "--wait", "--timeout", "2s")
    assert rc == 0 and "drained: no request in flight, no sticky user left" in out, (out, err)


def test_admin_socket_drain_limits(env):
    k, port, sock = start(env, ["cookie SRV insert indirect"])
    assert admin_cmd(sock, "set server be/s1 state drain idle 1s deadline 30s") == ""
    assert wait_for(lambda: "Server be/s1 admin state ready -> drain (by admin socket); sticky "
                    "users: drain-idle 1s, drain-deadline 30s" in k.output(), 3), k.output()
    assert 0 < int(state(sock)["keel_sticky_pending_ms"]) <= 1000
    # new limits for the running drain (keelctl passes them on); its start is kept
    rc, out, err = ctl(sock, "drain", "be/s1", "--idle", "0")
    assert rc == 0 and out == "" and err == "", (rc, out, err)
    assert wait_for(lambda: "Server be/s1 drain limits changed: drain-idle 0 (sticky users "
                    "kept), drain-deadline 30s (by admin socket)" in k.output(), 3), k.output()
    assert 25000 < int(state(sock)["keel_sticky_pending_ms"]) <= 30000
    assert admin_cmd(sock, "set server be/s1 state drain deadline off") == ""
    assert state(sock)["keel_sticky_pending_ms"] == "-1"
    rc, out, err = ctl(sock, "drain", "be/s1", "--wait", "--timeout", "200ms")
    assert rc == 1 and "cookie users are kept for ever" in out + err, (out, err)
    for cmd, msg in [("set server be/s1 state drain idle abc",
                      "error: invalid idle 'abc': expects a number with an optional unit"),
                     ("set server be/s1 state drain idle", "error: 'idle' expects a time"),
                     ("set server be/s1 state drain forever 1s",
                      "error: unexpected 'forever' after 'drain'")]:
        assert admin_cmd(sock, cmd).startswith(msg), cmd
    assert admin_cmd(sock, "set server be/s1 state ready") == ""
    assert state(sock)["keel_sticky_pending_ms"] == "0"
    assert "drain [idle T] [deadline T]" in admin_cmd(sock, "help")


def test_bad_values_are_config_errors(env):
    for opts, msg in [("drain-idle abc", "server 's1': invalid 'drain-idle' value 'abc': expects "
                                         "a number with an optional unit"),
                      ("drain-idle", "server 's1': 'drain-idle' expects a time such as 30s or "
                                     "10m (0 or off: sticky users are kept for ever)"),
                      ("drain-deadline 5x", "invalid 'drain-deadline' value '5x': unknown time "
                                            "unit"),
                      ("drain-deadline 100d", "invalid 'drain-deadline' value '100d': value "
                                              "out of range"),
                      ("drain-idl 5s", "unknown server option 'drain-idl'; did you mean "
                                       "'drain-idle'?")]:
        cfg = os.path.join(env.dir, "bad.cfg")
        with open(cfg, "w") as f:
            f.write(basic_config(free_port(), [("s1", "127.0.0.1:1", opts)]))
        p = subprocess.run([KEEL, "-c", "-f", cfg], capture_output=True, text=True)
        assert p.returncode != 0, opts
        assert msg in p.stdout + p.stderr, (opts, p.stdout + p.stderr)
    cfg = os.path.join(env.dir, "good.cfg")
    with open(cfg, "w") as f:
        f.write(basic_config(free_port(), [("s1", "127.0.0.1:1", "drain-idle 0 drain-deadline off"),
                                           ("s2", "127.0.0.1:2", "")],
                             extra_be="    default-server drain-idle 30s drain-deadline 1h"))
    p = subprocess.run([KEEL, "-c", "-f", cfg], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
