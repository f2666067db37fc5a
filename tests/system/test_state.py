"""Durable runtime state ("state-file" in global, docs/admin.md "Durable state"), with the real
keel: admin states and weights set at runtime (admin socket, agent) survive a restart after
SIGTERM and after SIGKILL; the rules when the file and the configuration disagree; a full disk
keeps keel running and the previous file intact."""
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import KEEL, Conn, admin_cmd, basic_config, free_port, gone, stats_rows, wait_for


def config(env, port, servers, extra_be=""):
    sock = os.path.join(env.dir, "admin.sock")
    state = os.path.join(env.dir, "keel.state")
    g = "    stats socket %s level admin\n    state-file %s" % (sock, state)
    return basic_config(port, servers, extra_fe="    stats uri /stats", extra_global=g,
                        extra_be=extra_be), sock, state




cli = admin_cmd


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def start(env, cfg, port, sock, name):
    keel = env.keel(cfg, [port], name=name)
    assert wait_for(lambda: os.path.exists(sock), 5)
    return keel


def test_state_survives_sigterm_and_sigkill(env):
    o1, o2 = env.origin("o1"), env.origin("o2")
    port = free_port()
    cfg, sock, state = config(env, port, [("s1", o1.addr, "weight 10"),
                                          ("s2", o2.addr, "weight 10")])
    keel = start(env, cfg, port, sock, "keel1")
    assert wait_for(lambda: "does not exist yet" in keel.output(), 5)
    assert cli(sock, "set server be/s1 state drain") == ""
    assert cli(sock, "set server be/s1 weight 5") == ""
    assert wait_for(lambda: "server be s1 addr=%s admin=drain weight=5 " % o1.addr in read(state))
    assert "cfg-admin=ready cfg-weight=10" in read(state)
    assert not os.path.exists(state + ".tmp")
    keel.stop(signal.SIGTERM)

    keel = start(env, cfg, port, sock, "keel2")
    rows = stats_rows(port)
    assert rows["s1"]["status"] == "DRAIN", rows["s1"]
    assert rows["s1"]["weight"] == "5"
    assert rows["s2"]["status"] == "UP" and rows["s2"]["weight"] == "10"
    assert wait_for(lambda: "Server be/s1 admin state ready -> drain (by state file)" in keel.output(), 5)
    # A change then kill -9: the file written after the change is what the next start reads.
    assert cli(sock, "set server be/s2 state maint") == ""
    assert wait_for(lambda: "server be s2 addr=%s admin=maint" % o2.addr in read(state))
    keel.stop(signal.SIGKILL)

    keel = start(env, cfg, port, sock, "keel3")
    rows = stats_rows(port)
    assert rows["s1"]["status"] == "DRAIN" and rows["s1"]["weight"] == "5"
    assert rows["s2"]["status"] == "MAINT", rows["s2"]
    assert keel.alive()


def test_state_from_the_agent(env):
    """The agent's admin words go through the same place (health.c) and are saved too."""
    line = {"v": b"drain\n"}
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)

    def agent():
        while True:
            try:
                s, _ = lsock.accept()
            except OSError:
                return
            try:
                s.sendall(line["v"])
            finally:
                s.close()

    threading.Thread(target=agent, daemon=True).start()
    o1, o2 = env.origin("o1"), env.origin("o2")
    port = free_port()
    opts = "agent-check agent-port %d agent-inter 100ms" % lsock.getsockname()[1]
    cfg, sock, state = config(env, port, [("s1", o1.addr, opts), ("s2", o2.addr, "")])
    keel = start(env, cfg, port, sock, "keel1")
    assert wait_for(lambda: "server be s1 addr=%s admin=drain" % o1.addr in read(state))
    keel.stop(signal.SIGKILL)
    lsock.close()  # the agent is gone: the saved state alone brings the drain back
    keel = start(env, cfg.replace(opts, ""), port, sock, "keel2")
    assert stats_rows(port)["s1"]["status"] == "DRAIN"


def test_state_disagreements_are_logged(env):
    o1, o2 = env.origin("o1"), env.origin("o2")
    port = free_port()
    cfg, sock, state = config(env, port, [("s1", o1.addr, "weight 20"),
                                          ("s2", o2.addr, "")])
    with open(state, "w") as f:
        f.write("keel-state 1\n"
                "server www webC admin=maint\n"
                "server be s1 addr=%s admin=drain weight=5 cfg-admin=ready cfg-weight=10\n"
                "server be s2 admin=sleepy\n"
                "server be s2 addr=127.0.0.1:1 admin=maint\n" % o1.addr)
    keel = start(env, cfg, port, sock, "keel1")
    # Messages go through the logger thread: wait for the last one before reading them all.
    assert wait_for(lambda: "address changed in the configuration" in keel.output(), 5)
    out = keel.output()
    assert "server www/webC in the state file is not in the configuration: ignored" in out
    assert "weight changed in the configuration since the save (10 -> 20)" in out
    assert "keel.state:4: malformed line skipped" in out
    assert "server be/s2: address changed in the configuration" in out
    rows = stats_rows(port)
    assert rows["s1"]["status"] == "DRAIN" and rows["s1"]["weight"] == "20"
    assert rows["s2"]["status"] == "UP"
    keel.stop(signal.SIGTERM)

    with open(state, "w") as f:
        f.write("keel-state 7\nserver be s1 admin=maint\n")
    keel = start(env, cfg, port, sock, "keel2")
    assert wait_for(lambda: "format version 7 is newer than this keel reads" in keel.output(), 5)
    assert stats_rows(port)["s1"]["status"] == "UP"
    assert read(state).startswith("keel-state 7")  # not overwritten without a change


def test_state_file_check_mode(env):
    cfg = basic_config(free_port(), ["127.0.0.1:1"],
                       extra_global="    state-file /nonexistent-keel-dir/keel.state")
    path = os.path.join(env.dir, "bad.cfg")
    with open(path, "w") as f:
        f.write(cfg)
    r = subprocess.run([KEEL, "-c", "-f", path], capture_output=True, text=True)
    assert r.returncode == 1
    assert "directory '/nonexistent-keel-dir' does not exist" in r.stderr + r.stdout
    ok = cfg.replace("/nonexistent-keel-dir", env.dir)
    with open(path, "w") as f:
        f.write(ok)
    r = subprocess.run([KEEL, "-c", "-f", path], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(os.path.join(env.dir, "keel.state"))


def test_state_full_disk(env):
    """On a full file system the write fails: one clear error, keel keeps running and serving,
    the previous file is intact, and the state is saved once space is back."""
    mnt = os.path.join(env.dir, "small")
    os.mkdir(mnt)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", mnt],
                                           capture_output=True).returncode != 0:
        pytest.fail("cannot mount a small tmpfs (this test needs root)")
    try:
        o1, o2 = env.origin("o1"), env.origin("o2")
        port = free_port()
        cfg, sock, _ = config(env, port, [("s1", o1.addr, ""), ("s2", o2.addr, "")])
        state = os.path.join(mnt, "keel.state")
        cfg = cfg.replace(os.path.join(env.dir, "keel.state"), state)
        keel = start(env, cfg, port, sock, "keel1")
        assert cli(sock, "set server be/s1 state drain") == ""
        assert wait_for(lambda: "admin=drain" in read(state))
        old = read(state)
        filler = os.path.join(mnt, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"x" * 512)
        except OSError:
            pass
        os.close(fd)
        assert cli(sock, "set server be/s1 state maint") == ""
        assert wait_for(lambda: "cannot save the state file" in keel.output())
        assert wait_for(lambda: "No space left on device" in keel.output(), 5)
        assert read(state) == old
        assert not os.path.exists(state + ".tmp")
        assert keel.alive() and stats_rows(port)["s1"]["status"] == "MAINT"
        assert keel.output().count("cannot save the state file") == 1
        os.unlink(filler)
        assert cli(sock, "set server be/s2 weight 3") == ""
        assert wait_for(lambda: "state file %s saved again" % state in keel.output())
        assert "server be s1 addr=%s admin=maint" % o1.addr in read(state)
        keel.stop(signal.SIGTERM)
    finally:
        subprocess.run(["umount", "-l", mnt])


def src_get(port, src):
    """One request from source address src; the origin's name (keel-origin's X-Origin)."""
    c = Conn(port, timeout=5, source=src)
    try:
        r = c.request("GET", "/", headers={"Connection": "close"})
        assert r.status == 200, r.status
        return r.header("x-origin")
    finally:
        c.close()


def table(sock):
    """show table be → {key: server_name}."""
    out = cli(sock, "show table be")
    return dict(re.match(r"key=(\S+) server_id=\d+ server_name=(\S+) exp=\d+$", l).groups()
                for l in out.splitlines()[1:] if l)


def test_runtime_servers_and_stick_tables_survive_kill9_and_reload(env):
    """add server, del server, set server addr and the stick table's entries are in the state
    file: a kill -9 then a start, and a reload, give them back; sticky users stay where they
    were."""
    o = {n: env.origin(n) for n in ("o1", "o2", "o3", "o4")}
    port = free_port()
    cfg, sock, state = config(env, port, [("s1", o["o1"].addr, ""), ("s2", o["o2"].addr, "")],
                              extra_be="    stick-table type ip size 100 expire 10m\n"
                                       "    stick on src")
    keel = start(env, cfg, port, sock, "keel1")
    o3host, o3port = o["o3"].addr.rsplit(":", 1)
    assert cli(sock, "add server be/s3 %s weight 5" % o["o3"].addr) == ""
    assert cli(sock, "set server be/s3 state ready") == ""
    assert cli(sock, "set server be/s2 state maint") == ""
    assert cli(sock, "del server be/s2") == ""
    o4host, o4port = o["o4"].addr.rsplit(":", 1)
    assert cli(sock, "set server be/s1 addr %s port %s" % (o4host, o4port)) == ""
    srcs = ["127.0.0.%d" % i for i in range(11, 19)]
    where = {s: src_get(port, s) for s in srcs}
    assert set(where.values()) == {"o3", "o4"}, where  # s2 is gone, s1 now reaches o4
    before = table(sock)
    assert set(before) == set(srcs), before
    # within a second the entries are in the file, next to the runtime servers
    assert wait_for(lambda: read(state).count("\nstick be ") == len(srcs), 5), read(state)
    text = read(state)
    assert "\ndeleted-server be s2 addr=%s\n" % o["o2"].addr in text
    assert "\nadded-server be s3 arg=%s arg=weight arg=5 admin=ready weight=5" % o["o3"].addr \
        in text
    assert "rt-addr=%s:%s" % (o4host, o4port) in text
    # a user who comes later, with no admin change to trigger a write: the tables' poll saves it
    srcs.append("127.0.0.19")
    where[srcs[-1]] = src_get(port, srcs[-1])
    before = table(sock)
    t0 = time.time()
    assert wait_for(lambda: read(state).count("\nstick be ") == len(srcs), 5), read(state)
    assert time.time() - t0 < 2.5
    keel.stop(signal.SIGKILL)

    keel = start(env, cfg, port, sock, "keel2")
    assert wait_for(lambda: "2 server(s) applied (1 added at runtime, 1 deleted at runtime), "
                            "%d stick table entries" % len(srcs) in keel.output(), 5), \
        keel.output()
    rows = stats_rows(port)
    assert "s2" not in rows and rows["s3"]["status"] == "UP" and rows["s3"]["weight"] == "5", rows
    assert table(sock) == before
    assert {s: src_get(port, s) for s in srcs} == where  # every user on the same server

    # a reload hands the same state over (new entries included), without the file's help
    where["127.0.0.30"] = src_get(port, "127.0.0.30")
    os.unlink(state)
    old = keel.p.pid
    keel.p.send_signal(signal.SIGUSR2)
    assert wait_for(lambda: "runtime state of the previous process restored" in keel.output(), 10)
    assert wait_for(lambda: gone(old), 10)
    assert "(1 added at runtime, 1 deleted at runtime), %d stick table entries" % (len(srcs) + 1) \
        in keel.output()
    assert {s: src_get(port, s) for s in where} == where
    assert wait_for(lambda: read(state).count("\nstick be ") == len(srcs) + 1, 5)


def test_state_file_stick_entries_on_sigterm(env):
    """A soft stop writes the bindings learnt less than a second before it."""
    o1, o2 = env.origin("o1"), env.origin("o2")
    port = free_port()
    cfg, sock, state = config(env, port, [("s1", o1.addr, ""), ("s2", o2.addr, "")],
                              extra_be="    stick-table type ip size 100 expire 10m\n"
                                       "    stick on src")
    keel = start(env, cfg, port, sock, "keel1")
    where = {s: src_get(port, s) for s in ("127.0.0.41", "127.0.0.42")}
    keel.stop(signal.SIGTERM)
    assert read(state).count("\nstick be ") == 2
    keel = start(env, cfg, port, sock, "keel2")
    assert {s: src_get(port, s) for s in where} == where
