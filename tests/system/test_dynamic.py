"""Dynamic servers on the admin socket: add server, del server, set server addr
(src/proxy/server.c, docs/internals/dynamic-servers.md)."""
import os
import threading
import time

from conftest import OLOAD, Conn, admin_cmd, basic_config, free_port, origin_of, wait_for





ask = admin_cmd


def start(env, servers=None, extra_global="", balance="roundrobin", extra_be=""):
    a, b = env.origin("a"), env.origin("b")
    port = free_port()
    sock = os.path.join(env.dir, "admin.sock")
    cfg = basic_config(port, servers or [("s1", a.addr, "")],
                       extra_global="    stats socket %s\n%s" % (sock, extra_global),
                       balance=balance, extra_be=extra_be)
    k = env.keel(cfg, [port])
    wait_for(lambda: os.path.exists(sock), 5)
    return k, port, sock, a, b


def served(port, n=20):
    seen = {}
    for _ in range(n):
        c = Conn(port)
        r = c.request("GET", "/", headers={"Connection": "close"})
        c.close()
        assert r.status == 200
        seen[origin_of(r)] = seen.get(origin_of(r), 0) + 1
    return seen


def state_names(sock):
    return [l.split()[3] for l in ask(sock, "show servers state be").splitlines()[2:] if l]


def test_add_enable_receives_traffic(env):
    k, port, sock, a, b = start(env)
    assert ask(sock, "add server be/s2 %s check inter 500ms weight 1 cookie s2" % b.addr) == ""
    # Dynamic servers start in maintenance, as in HAProxy.
    assert served(port, 10) == {"a": 10}
    assert "s2" in state_names(sock)
    line = [l for l in ask(sock, "show servers state be").splitlines() if " s2 " in l][0]
    assert line.split()[6] == "1"  # srv_admin_state: maintenance
    assert ask(sock, "enable server be/s2") == ""
    seen = served(port, 20)
    assert seen.get("b", 0) >= 5 and seen.get("a", 0) >= 5, seen
    # Its checks run (the origin counts them as requests too) and it shows on the stats.
    assert wait_for(lambda: "UP" in [l for l in ask(sock, "show servers state be").splitlines()
                                     if " s2 " in l][0])
    assert "be,s2," in ask(sock, "show stat")


def test_add_errors(env):
    k, port, sock, a, b = start(env)
    cases = {
        "add server be/s9 127.0.0.1:99999": "error: server 's9': ",
        "add server be/s9 %s wieght 3" % b.addr: "error: unknown server option 'wieght'; did you mean 'weight'?",
        "add server be/s9 %s weight 999" % b.addr: "error: server 's9': 'weight' expects a number from 0 to 256",
        "add server be/s1 %s" % b.addr: "error: server 's1' already exists in 'be'",
        "add server nobe/s9 %s" % b.addr: "error: no such backend 'nobe'",
        "add server be/s9": "error: 'add server' expects BACKEND/SERVER ADDRESS[:PORT] [options]",
        "add server be %s" % b.addr: "error: expects BACKEND/SERVER, not 'be'",
        "del server be/nope": "error: no such server 'nope' in backend 'be'",
        "del server be/s1": "error: server 'be/s1' is not in maintenance",
    }
    for cmd, want in cases.items():
        out = ask(sock, cmd)
        assert out.startswith(want) and out.count("\n") == 1, (cmd, out)
    assert state_names(sock) == ["s1"]
    assert served(port, 4) == {"a": 4}


def test_capacity(env):
    k, port, sock, a, b = start(env, extra_global="    tune.spare-servers 2")
    assert ask(sock, "add server be/x1 %s" % b.addr) == ""
    assert ask(sock, "add server be/x2 %s" % b.addr) == ""
    out = ask(sock, "add server be/x3 %s" % b.addr)
    assert out.startswith("error: backend 'be' has no room for another server") and \
        "tune.spare-servers" in out and out.count("\n") == 1, out
    # A deleted slot is not reused.
    assert ask(sock, "del server be/x2") == ""
    assert ask(sock, "add server be/x3 %s" % b.addr).startswith("error: backend 'be' has no room")
    assert state_names(sock) == ["s1", "x1"]


def test_del_refused_in_flight_then_accepted(env):
    k, port, sock, a, b = start(env)
    assert ask(sock, "add server be/s2 %s" % b.addr) == ""
    assert ask(sock, "enable server be/s2") == ""
    assert ask(sock, "set server be/s1 state maint") == ""  # everything goes to s2
    res = {}

    def slow():
        c = Conn(port, timeout=15)
        res["r"] = c.request("GET", "/?delay=4000", headers={"Connection": "close"})
        c.close()

    t = threading.Thread(target=slow)
    t.start()
    assert wait_for(lambda: " s2 " in ask(sock, "show servers state be") and
                    [l for l in ask(sock, "show servers state be").splitlines()
                     if " s2 " in l][0].split()[13] == "1", 5)
    assert ask(sock, "set server be/s2 state drain") == ""
    assert ask(sock, "set server be/s2 state maint") == ""
    out = ask(sock, "del server be/s2")
    assert out.startswith("error: server 'be/s2' still has 1 request(s) in flight"), out
    t.join(20)
    assert res["r"].status == 200 and origin_of(res["r"]) == "b"
    # The client may read the last byte just before keel's thread releases the slot.
    assert wait_for(lambda: ask(sock, "del server be/s2") == "", 3)
    assert state_names(sock) == ["s1"]
    assert "be,s2," not in ask(sock, "show stat")
    assert ask(sock, "enable server be/s2") == "error: no such server 's2' in backend 'be'\n"
    # The name can be used again.
    assert ask(sock, "add server be/s2 %s" % a.addr) == ""


def test_set_addr_moves_traffic_and_drops_idle(env):
    k, port, sock, a, b = start(env)
    c = Conn(port)
    r = c.request("GET", "/")
    assert r.status == 200 and origin_of(r) == "a"
    # keel now holds an idle keep-alive connection to a.
    host, bport = b.addr.split(":")
    assert ask(sock, "set server be/s1 addr %s port %s" % (host, bport)) == ""
    line = [l for l in ask(sock, "show servers state be").splitlines() if " s1 " in l][0]
    assert line.split()[10] == bport
    for _ in range(5):
        r = c.request("GET", "/")
        assert r.status == 200 and origin_of(r) == "b", origin_of(r)
    c.close()
    assert served(port, 5) == {"b": 5}
    # Port kept when only the address changes.
    assert ask(sock, "set server be/s1 addr 127.0.0.1") == ""
    assert served(port, 3) == {"b": 3}
    assert ask(sock, "set server be/s1 addr 1.2.3.999").startswith("error: invalid address")


def test_consistent_hash_add(env):
    k, port, sock, a, b = start(env, balance="uri", extra_be="    hash-type consistent")
    assert ask(sock, "add server be/s2 %s" % b.addr) == ""
    assert ask(sock, "enable server be/s2") == ""
    seen = set()
    for i in range(40):
        c = Conn(port)
        r = c.request("GET", "/k%d" % i, headers={"Connection": "close"})
        c.close()
        assert r.status == 200
        seen.add(origin_of(r))
    assert seen == {"a", "b"}



def test_add_del_under_load(env, oload_built):
    k, port, sock, a, b = start(env)
    p = env.proc("oload", [OLOAD, "-u", "http://127.0.0.1:%d/" % port, "-r", "300", "-d", "6",
                           "-t", "4000"])
    time.sleep(1)
    for i in range(3):
        name = "d%d" % i
        assert ask(sock, "add server be/%s %s check inter 300ms" % (name, b.addr)) == ""
        assert ask(sock, "enable server be/%s" % name) == ""
        time.sleep(0.6)
        assert ask(sock, "set server be/%s state drain" % name) == ""
        time.sleep(0.2)
        assert ask(sock, "set server be/%s state maint" % name) == ""
        assert wait_for(lambda: ask(sock, "del server be/%s" % name) == "", 5)
    p.p.wait(timeout=30)
    line = [l for l in p.output().splitlines() if l.startswith("sent=")]
    assert p.p.returncode == 0 and line, p.output()
    kv = dict(x.split("=", 1) for x in line[0].split())
    assert int(kv["sent"]) >= 1700 and kv["failed"] == "0", line[0]
    assert k.alive()
