"""Durable runtime state ("state-file" in global, docs/admin.md "Durable state"), with the real
keel: admin states and weights set at runtime (admin socket, agent) survive a restart after
SIGTERM and after SIGKILL; the rules when the file and the configuration disagree; a full disk
keeps keel running and the previous file intact."""
import os
import signal
import socket
import subprocess
import threading

import pytest

from conftest import KEEL, basic_config, free_port, stats_rows, wait_for, admin_cmd


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
