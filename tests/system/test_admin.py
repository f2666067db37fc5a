"""The admin socket ("stats socket" in global) and keelctl: every command, the errors, the
levels, the protocol (one command per connection, ';', prompt, line length), JSON variants and
keelctl's exit codes and drain --wait."""
import json
import os
import socket
import stat
import subprocess
import threading
import time

from conftest import (KEEL, KEELCTL, Conn, admin_raw, basic_config, free_port, stats_rows,
                      wait_for)



def start(env, level=None, extra_be="", servers=None, mode=None):
    origins = [env.origin("a"), env.origin("b")]
    port = free_port()
    sock = os.path.join(env.dir, "admin.sock")
    line = "    stats socket %s" % sock
    if mode:
        line += " mode %s" % mode
    if level:
        line += " level %s" % level
    cfg = basic_config(port, servers or [("s1", origins[0].addr, ""), ("s2", origins[1].addr, "")],
                       extra_global=line + "\n    stats timeout 5s",
                       extra_fe="    stats uri /stats", extra_be=extra_be)
    k = env.keel(cfg, [port])
    wait_for(lambda: os.path.exists(sock), 5)
    return k, port, sock, origins




ask = admin_raw


def ctl(sock, *args, timeout=30):
    p = subprocess.run([KEELCTL, "-s", sock] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def state_rows(sock, backend=""):
    out = ask(sock, "show servers state %s\n" % backend)
    lines = out.splitlines()
    assert lines[0] == "1"
    cols = lines[1].lstrip("# ").split(" ")
    return {r.split(" ")[3]: dict(zip(cols, r.split(" "))) for r in lines[2:] if r}


def test_socket_file_mode_and_stale(env):
    sock = os.path.join(env.dir, "admin.sock")
    # a stale socket file (no process behind it) is replaced
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sock)
    s.close()
    k, port, sock, _ = start(env, mode="640")
    wait_for(lambda: "started" in k.output(), 5)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o640
    assert "Name: keel" in ask(sock, "show info\n")
    k.stop()
    assert not os.path.exists(sock)


def test_default_mode_and_in_use(env):
    k, port, sock, _ = start(env)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    # a second keel on the same socket path refuses to start
    port2 = free_port()
    k2 = env.keel(basic_config(port2, ["127.0.0.1:1"], extra_global="    stats socket %s" % sock),
                  name="keel2", wait=False)
    assert wait_for(lambda: not k2.alive(), 5)
    assert "in use by another running process" in k2.output()
    assert "Name: keel" in ask(sock, "show info\n")


def test_config_errors(env):
    for line, msg in [("stats socket", "expects a path"),
                      ("stats socket /tmp/x level root", "level expects"),
                      ("stats socket /tmp/x mode 999", "octal"),
                      ("stats socket 127.0.0.1:9999", "only unix socket"),
                      ("stats socket /tmp/x foo bar", "unknown option")]:
        cfg = os.path.join(env.dir, "bad.cfg")
        with open(cfg, "w") as f:
            f.write(basic_config(free_port(), ["127.0.0.1:1"], extra_global="    " + line))
        p = subprocess.run([KEEL, "-c", "-f", cfg], capture_output=True, text=True)
        assert p.returncode != 0, line
        assert msg in p.stdout + p.stderr, (line, p.stdout + p.stderr)


def test_show_commands(env):
    k, port, sock, _ = start(env)
    Conn(port).request("GET", "/")
    info = ask(sock, "show info\n")
    kv = dict(l.split(": ", 1) for l in info.splitlines() if ": " in l)
    assert kv["Name"] == "keel" and kv["Pid"] == str(k.p.pid) and kv["Nbthread"] == "2"
    assert int(kv["Uptime_sec"]) >= 0 and int(kv["Maxconn"]) > 0 and "CurrConns" in kv
    j = json.loads(ask(sock, "show info json\n"))
    assert j["Name"] == "keel" and j["Pid"] == k.p.pid
    # show stat: the stats page's CSV
    csv = ask(sock, "show stat\n")
    assert csv.startswith("# pxname,svname,")
    assert ",s1," in csv and ",s2," in csv and "BACKEND" in csv
    rows = json.loads(ask(sock, "show stat json\n"))
    assert {r["svname"] for r in rows if r["pxname"] == "be"} == {"s1", "s2", "BACKEND"}
    assert all(isinstance(r["stot"], int) for r in rows)
    st = state_rows(sock)
    assert set(st) == {"s1", "s2"}
    assert st["s1"]["be_name"] == "be" and st["s1"]["srv_addr"] == "127.0.0.1"
    assert st["s1"]["srv_op_state"] == "2" and st["s1"]["srv_admin_state"] == "0"
    assert st["s1"]["keel_state"] == "UP"
    assert state_rows(sock, "be").keys() == st.keys()
    sj = json.loads(ask(sock, "show servers state be json\n"))
    assert [s["srv_name"] for s in sj] == ["s1", "s2"]
    assert ask(sock, "show backend\n") == "# name\nbe\n"
    sess = ask(sock, "show sess\n")
    assert sess.startswith("CurrConns: ") and "frontend fe:" in sess and "backend be:" in sess
    assert "show servers state" in ask(sock, "help\n")


def test_set_server_state_weight(env):
    k, port, sock, _ = start(env)
    assert ask(sock, "set server be/s2 state drain\n") == ""
    assert state_rows(sock)["s2"]["srv_admin_state"] == "8"
    assert stats_rows(port)["s2"]["status"] == "DRAIN"
    assert ask(sock, "set server be/s2 state maint\n") == ""
    assert state_rows(sock)["s2"]["srv_admin_state"] == "1"
    # in maintenance: every request goes to s1
    for _ in range(6):
        assert Conn(port).request("GET", "/").header("x-origin") == "a"
    assert ask(sock, "enable server be/s2\n") == ""
    assert state_rows(sock)["s2"]["srv_admin_state"] == "0"
    assert ask(sock, "disable server be/s2\n") == ""
    assert state_rows(sock)["s2"]["keel_state"] == "MAINT"
    assert ask(sock, "set server be/s2 state ready\n") == ""
    assert ask(sock, "set server be/s1 weight 10\n") == ""
    assert state_rows(sock)["s1"]["srv_uweight"] == "10"
    assert ask(sock, "set server be/s1 weight 50%\n") == ""  # of the configured weight (1)
    assert state_rows(sock)["s1"]["srv_uweight"] == "0"
    assert ask(sock, "set weight be/s1 256\n") == ""
    assert state_rows(sock)["s1"]["srv_uweight"] == "256"
    assert wait_for(lambda: "admin state ready -> drain (by admin socket)" in k.output(), 5)
    assert wait_for(lambda: "weight 1 -> 10 (by admin socket)" in k.output(), 5)


def test_enable_disable_health(env):
    k, port, sock, _ = start(env, servers=[("s1", "127.0.0.1:%d" % free_port(), "check inter 200")])
    wait_for(lambda: state_rows(sock)["s1"]["keel_state"].startswith("DOWN"), 5)
    assert ask(sock, "disable health be/s1\n") == ""
    assert wait_for(lambda: state_rows(sock)["s1"]["keel_state"] == "UP", 5)
    assert wait_for(lambda: "health checks disabled (by admin socket)" in k.output(), 5)
    assert ask(sock, "enable health be/s1\n") == ""
    assert wait_for(lambda: state_rows(sock)["s1"]["keel_state"].startswith("DOWN"), 5)


def test_errors(env):
    k, port, sock, _ = start(env)
    cases = {
        "set server be/nope state drain": "error: no such server 'nope' in backend 'be'\n",
        "set server nobe/s1 state drain": "error: no such backend 'nobe'\n",
        "set server s1 state drain": "error: expects BACKEND/SERVER, not 's1'\n",
        "set server be/s1 state sleepy": "error: invalid state 'sleepy': expects ready, drain or maint\n",
        "set server be/s1 weight abc": "error: invalid weight 'abc': expects a number from 0 to 256, or N%\n",
        "set server be/s1 weight 257": "error: weight 257 out of range: expects 0 to 256\n",
        "set server be/s1 weight -1": "error: invalid weight '-1': expects a number from 0 to 256, or N%\n",
        "set server be/s1 addr 1.2.3.999": "error: invalid address '1.2.3.999': expects an IPv4 or IPv6 address\n",
        "set server be/s1 addr 1.2.3.4 port 70000": "error: invalid port '70000': expects 1 to 65535\n",
        "set server be/s1 color blue": "error: unknown 'set server' action 'color': expects state, weight or addr\n",
        "show servers state nobe": "error: no such backend 'nobe'\n",
        "show info extra": "error: 'show info' expects no argument but 'json'\n",
        "frobnicate": "error: unknown command 'frobnicate' (try 'help')\n",
        "show frobs": "error: unknown command 'show frobs' (try 'help')\n",
        "add server be/s1 127.0.0.1:1": "error: server 's1' already exists in 'be' (line 18)\n",
        "del server be/s1": "error: server 'be/s1' is not in maintenance: 'set server be/s1 state drain', wait for its requests to finish, then 'state maint'\n",
        "show table": "",  # no stick table: nothing to list (tests/system/test_stick.py)
        "clear table t": "error: no stick-table 't'\n",
    }
    for cmd, want in cases.items():
        assert ask(sock, cmd + "\n") == want, cmd
    # (add server, del server, set server addr: tests/system/test_dynamic.py)
    # nothing changed
    assert state_rows(sock)["s1"]["srv_admin_state"] == "0"
    assert state_rows(sock)["s1"]["srv_uweight"] == "1"


def test_levels(env):
    k, port, sock, _ = start(env, level="user")
    assert "Name: keel" in ask(sock, "show info\n")
    assert "(level user)" in ask(sock, "help\n")
    for cmd in ["set server be/s1 state drain", "enable server be/s1", "disable server be/s1",
                "set server be/s1 weight 3", "set weight be/s1 3", "disable health be/s1",
                "set server be/s1 addr 1.2.3.4", "add server be/x"]:
        assert ask(sock, cmd + "\n") == "error: Permission denied\n", cmd
    assert state_rows(sock)["s1"]["srv_admin_state"] == "0"
    rc, out, err = ctl(sock, "disable", "server", "be/s1")
    assert rc == 1 and "Permission denied" in err


def test_operator_level(env):
    k, port, sock, _ = start(env, level="operator")
    assert ask(sock, "set server be/s1 state drain\n") == ""
    assert ask(sock, "disable health be/s1\n") == "error: Permission denied\n"
    assert ask(sock, "set server be/s1 addr 1.2.3.4\n") == "error: Permission denied\n"


def test_protocol(env):
    k, port, sock, _ = start(env)
    # several commands on a line, an error among them
    out = ask(sock, "show backend; bogus ;show backend\n")
    assert out == "# name\nbe\nerror: unknown command 'bogus' (try 'help')\n# name\nbe\n"
    # one line per connection: the second line is not run
    assert ask(sock, "show backend\nshow info\n") == "# name\nbe\n"
    # CRLF and no final newline
    assert ask(sock, "show backend\r\n") == "# name\nbe\n"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendall(b"show backend")
    s.shutdown(socket.SHUT_WR)
    assert s.recv(100) == b"# name\nbe\n"
    s.close()
    # overlong line: one error line, then the connection closes
    assert ask(sock, "show info " + "x" * 5000 + "\n") == "error: line too long (at most 4095 bytes)\n"
    # control characters
    assert ask(sock, b"show\x01info\n").startswith("error: invalid character 0x01")
    # empty line: empty answer
    assert ask(sock, "\n") == ""
    # interactive mode
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sock)
    s.sendall(b"prompt\n")
    assert s.recv(100) == b"> "
    s.sendall(b"show backend\n")
    buf = b""
    while not buf.endswith(b"> "):
        buf += s.recv(100)
    assert buf == b"# name\nbe\n> "
    s.sendall(b"show backend\nshow backend\n")
    buf = b""
    while buf.count(b"> ") < 2:
        buf += s.recv(100)
    assert buf == b"# name\nbe\n> # name\nbe\n> "
    s.sendall(b"quit\n")
    assert s.recv(100) == b""
    s.close()
    # many clients at once
    outs = []
    ths = [threading.Thread(target=lambda: outs.append(ask(sock, "show backend\n")))
           for _ in range(20)]
    [t.start() for t in ths]
    [t.join() for t in ths]
    assert outs == ["# name\nbe\n"] * 20
    # an idle client is closed after "stats timeout"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock)
    t0 = time.time()
    assert s.recv(10) == b""
    assert 4 < time.time() - t0 < 8
    s.close()


def test_keelctl(env):
    k, port, sock, _ = start(env)
    rc, out, err = ctl(sock, "show", "info")
    assert rc == 0 and "Name: keel" in out and err == ""
    rc, out, err = ctl(sock, "show servers state be")
    assert rc == 0 and out.startswith("1\n")
    rc, out, err = ctl(sock, "set", "server", "be/zz", "state", "drain")
    assert rc == 1 and err == "error: no such server 'zz' in backend 'be'\n"
    rc, out, err = ctl(sock, "set", "server", "be/s1", "state", "drain")
    assert rc == 0 and out == "" and err == ""
    rc, out, err = ctl(os.path.join(env.dir, "nope.sock"), "show", "info")
    assert rc == 2 and "cannot connect" in err
    p = subprocess.run([KEELCTL, "show", "info"], capture_output=True, text=True,
                       env=dict(os.environ, KEEL_SOCKET=sock))
    assert p.returncode == 0 and "Name: keel" in p.stdout
    p = subprocess.run([KEELCTL], capture_output=True, text=True)
    assert p.returncode == 2 and "usage" in p.stderr
    rc, out, err = ctl(sock, "drain", "be/zz")
    assert rc == 1 and "no such server" in err
    rc, out, err = ctl(sock, "drain", "nobackend")
    assert rc == 2


def test_drain_wait(env):
    k, port, sock, (a, b) = start(env, extra_be="    per-try-timeout off")
    # a slow request held by s1 (origin a)
    res = {}

    def slow():
        c = Conn(port, timeout=20)
        res["r"] = c.request("GET", "/slow?delay=2500", headers={"Cookie": "x"})

    # roundrobin: send until one slow request lands on s1
    th = threading.Thread(target=slow)
    ask(sock, "set server be/s2 state maint\n")
    th.start()
    assert wait_for(lambda: state_rows(sock)["s1"]["keel_cur_sess"] == "1", 5)
    ask(sock, "set server be/s2 state ready\n")
    # timeout before the request ends
    t0 = time.time()
    rc, out, err = ctl(sock, "drain", "be/s1", "--wait", "--timeout", "500ms")
    assert rc == 1 and "still has 1 request(s) in flight" in err, (rc, out, err)
    assert 0.4 < time.time() - t0 < 2
    assert state_rows(sock)["s1"]["srv_admin_state"] == "8"
    # waits until it finishes
    rc, out, err = ctl(sock, "drain", "be/s1", "--wait", "--timeout", "10s")
    assert rc == 0 and "drained" in out, (rc, out, err)
    th.join()
    assert res["r"].status == 200
    # drained: new requests go to s2
    assert Conn(port).request("GET", "/").header("x-origin") == "b"
    # without --wait: returns at once
    rc, out, err = ctl(sock, "drain", "be/s2")
    assert rc == 0
