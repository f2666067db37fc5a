"""Hitless reload (docs/admin.md, "Reload"): SIGUSR2 and `keelctl reload` start a new process
that takes over the listening sockets and the runtime state; a bad configuration leaves the old
process serving and is reported; the old process finishes its requests and tunnels, then exits.
"""
import os
import signal
import subprocess
import time

from conftest import KEELCTL, OLOAD, Conn, basic_config, free_port, gone, wait_for




def ctl(sock, *args):
    p = subprocess.run([KEELCTL, "-s", sock] + list(args), capture_output=True, text=True,
                       timeout=40)
    return p.returncode, p.stdout, p.stderr


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def config(env, port, origins, gen, extra_global="", extra_defaults=""):
    sock = os.path.join(env.dir, "admin.sock")
    pidfile = os.path.join(env.dir, "keel.pid")
    g = "    stats socket %s\n    pidfile %s" % (sock, pidfile)
    if extra_global:
        g += "\n" + extra_global
    return basic_config(port, [("s1", origins[0].addr, ""), ("s2", origins[1].addr, "")],
                        extra_global=g, extra_defaults=extra_defaults, logs=False,
                        extra_fe="    http-response set-header X-Gen %s" % gen), sock, pidfile


def start(env, gen="g0", **kw):
    origins = [env.origin("a"), env.origin("b")]
    port = free_port()
    cfg, sock, pidfile = config(env, port, origins, gen, **kw)
    k = env.keel(cfg, [port])
    wait_for(lambda: os.path.exists(sock) and read_pid(pidfile) == k.p.pid, 5)
    return k, port, sock, pidfile, origins


def rewrite(k, env, port, origins, gen, broken=False, **kw):
    cfg = config(env, port, origins, gen, **kw)[0]
    if broken:
        cfg += "frobnicate yes\n"
    with open(k.cfg_path, "w") as f:
        f.write(cfg)


def get_gen(port):
    c = Conn(port, timeout=5)
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    r = c.read_response()
    assert r.status == 200
    return r.header("x-gen")


def states(sock):
    rc, out, _ = ctl(sock, "show", "servers", "state", "be")
    assert rc == 0
    return {r.split(" ")[3]: r.split(" ")[6] for r in out.splitlines()[2:] if r}


# Three kinds of clients, none of which retries: one that reuses its most recent connection and
# sees at once when the server closes an idle one; one with a pool of connections used in turn,
# each idle longer than the soft stop's grace (1 s), that notices a close only when it sends on
# the connection again (most client libraries); one that opens a connection per request.
CLIENTS = {"recent": [], "pool": ["--fifo", "--grow", "--lazy", "-c", "250"],
           "close": ["-H", "Connection: close"]}


def start_loads(env, port, rates, duration):
    return {name: env.proc("oload-" + name, [OLOAD, "-u", "http://127.0.0.1:%d/" % port, "-r",
                                             str(rate), "-d", str(duration), "-t", "2000", "-s",
                                             "1000"] + CLIENTS[name])
            for name, rate in rates.items()}


def check_loads(loads, min_sent):
    """Every load ended with at least min_sent[name] requests sent, none failed or slow."""
    for name, load in loads.items():
        load.p.wait(30)
        line = [x for x in load.output().splitlines() if x.startswith("sent=")][-1]
        print(name, line)
        stats = dict(kv.split("=") for kv in line.split())
        assert int(stats["sent"]) >= min_sent[name], (name, line)
        assert stats["failed"] == "0" and stats["slow"] == "0", (name, line)


def test_ten_reloads_under_load(env, oload_built):
    """10 reloads (SIGUSR2 and keelctl, one with a broken configuration) under 400 requests/s
    from three kinds of clients that do not retry: no request fails, the runtime drain
    survives, the last configuration is served and every old process exits."""
    k, port, sock, pidfile, origins = start(env)
    assert ctl(sock, "set", "server", "be/s2", "state", "drain")[0] == 0
    assert states(sock)["s2"] == "8"
    loads = start_loads(env, port, {"recent": 200, "pool": 125, "close": 75}, 16)
    time.sleep(1.5)
    pids, gen, t0 = [k.p.pid], "g0", time.time()
    for i in range(1, 11):
        old = read_pid(pidfile)
        if i == 5:
            rewrite(k, env, port, origins, "bad", broken=True)
            rc, out, err = ctl(sock, "reload")
            assert rc == 1, (out, err)
            assert err.startswith("error: reload failed: ") and "frobnicate" in err, err
            assert err.count("\n") == 1
            assert read_pid(pidfile) == old and not gone(old)
            assert get_gen(port) == gen  # the old process still serves, unchanged
        else:
            gen = "g%d" % i
            rewrite(k, env, port, origins, gen)
            if i % 2:
                os.kill(old, signal.SIGUSR2)
                assert wait_for(lambda: read_pid(pidfile) not in (0, old), 10), "no new pid"
                # the pid file is written before the new process serves: wait until it does
                assert wait_for(lambda: get_gen(port) == gen, 10)
            else:
                rc, out, err = ctl(sock, "reload")
                assert rc == 0 and out.startswith("reload: new process %d serving" %
                                                  read_pid(pidfile)), (out, err)
            pids.append(read_pid(pidfile))
            assert get_gen(port) == gen
        time.sleep(max(0.0, t0 + i * 1.2 - time.time()))
    check_loads(loads, {"recent": 3000, "pool": 1900, "close": 1100})
    assert get_gen(port) == "g10"
    assert states(sock)["s2"] == "8"  # the drain set before the first reload
    assert "Pid: %d" % pids[-1] in ctl(sock, "show", "info")[1]
    assert wait_for(lambda: all(gone(p) for p in pids[:-1]), 10), "an old process did not exit"
    assert len(set(pids)) == 10
    out = k.output()
    assert "reload failed: " in out and "frobnicate" in out


def test_tunnel_and_inflight_survive_reload(env):
    """A request in flight and an Upgrade tunnel opened before a reload keep working; the old
    process exits once both are done. The connection of the request in flight stays open after
    its response, and its next request is served by the new process."""
    k, port, sock, pidfile, origins = start(env, extra_defaults="    timeout tunnel 20s")
    t = Conn(port)
    t.send(b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert t.read_response().status == 101
    slow = Conn(port)
    slow.send(b"GET /?delay=1000 HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.1)
    rewrite(k, env, port, origins, "g1", extra_defaults="    timeout tunnel 20s")
    rc, out, err = ctl(sock, "reload")
    assert rc == 0, err
    assert get_gen(port) == "g1"
    r = slow.read_response()
    assert r.status == 200 and r.header("x-gen") == "g0"
    assert r.header("connection", "").lower() != "close"
    slow.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    r = slow.read_response()
    assert r.status == 200 and r.header("x-gen") == "g1"

    def echo(msg):
        t.send(msg)
        got, t.buf = t.buf, b""
        t.sock.settimeout(5)
        while len(got) < len(msg):
            d = t.sock.recv(65536)
            assert d, "tunnel closed"
            got += d
        assert got == msg

    echo(b"after-reload")
    time.sleep(0.5)
    echo(b"x" * 20000)
    assert k.alive()  # the old process waits for the tunnel
    t.sock.close()
    k.p.wait(5)
    assert k.p.returncode == 0
    assert not gone(read_pid(pidfile)) and read_pid(pidfile) != k.p.pid


def test_idle_connections_move_to_the_new_process(env):
    """At a reload, keep-alive connections between two requests, and connections that sent
    nothing yet, are passed to the new process: the client's next request on each is answered
    by the new configuration, none is closed, and the old process exits at once instead of
    after the idle grace. A request whose head had started is answered by the old process, and
    its connection then goes over too."""
    k, port, sock, pidfile, origins = start(env)
    idle = [Conn(port) for _ in range(300)]
    for c in idle:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.header("x-gen") == "g0"
    fresh = [Conn(port) for _ in range(5)]
    partial = Conn(port)
    partial.send(b"GET / HTTP/1.1\r\nHost:")
    time.sleep(0.2)
    rewrite(k, env, port, origins, "g1")
    old = k.p.pid
    t = time.time()
    rc, out, err = ctl(sock, "reload")
    assert rc == 0, err
    partial.send(b" t\r\n\r\n")
    r = partial.read_response()
    assert r.status == 200 and r.header("x-gen") == "g0"
    assert r.header("connection", "").lower() != "close"
    k.p.wait(5)
    assert time.time() - t < 1.0, "the old process waited for its idle connections"
    for c in idle + fresh + [partial]:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.header("x-gen") == "g1"
    assert "306 idle connections passed to the new process" in k.output()
    assert read_pid(pidfile) != old


def test_hard_stop_after_bounds_the_old_process(env):
    """A tunnel that stays open is closed by the old process at hard-stop-after."""
    k, port, sock, pidfile, origins = start(env, extra_global="    hard-stop-after 1s",
                                            extra_defaults="    timeout tunnel 30s")
    t = Conn(port)
    t.send(b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    assert t.read_response().status == 101
    os.kill(k.p.pid, signal.SIGUSR2)
    assert wait_for(lambda: read_pid(pidfile) not in (0, k.p.pid), 10)
    t0 = time.time()
    k.p.wait(5)
    assert 0.5 < time.time() - t0 < 3
    t.sock.settimeout(2)
    assert t.sock.recv(100) == b""
    assert get_gen(port) == "g0"


def test_bad_config_signal_keeps_serving(env):
    """SIGUSR2 with a configuration that does not load: logged, the process goes on."""
    k, port, sock, pidfile, origins = start(env)
    rewrite(k, env, port, origins, "bad", broken=True)
    os.kill(k.p.pid, signal.SIGUSR2)
    assert wait_for(lambda: "reload failed" in k.output(), 10)
    assert k.alive() and read_pid(pidfile) == k.p.pid
    assert get_gen(port) == "g0"
    assert wait_for(lambda: "this process goes on serving" in k.output(), 5)


def test_systemd_notifications(env):
    """Type=notify: READY=1 with MAINPID, WATCHDOG=1 pings, RELOADING=1 then the new process's
    MAINPID and READY=1 (a datagram socket stands in for systemd's NOTIFY_SOCKET)."""
    import socket
    path = os.path.join(env.dir, "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.1)
    os.environ.update(NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
    try:
        k, port, sock, pidfile, origins = start(env)
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
    msgs = []

    def drain(seconds):
        end = time.time() + seconds
        while time.time() < end:
            try:
                msgs.append(s.recv(4096).decode())
            except socket.timeout:
                pass

    drain(0.8)
    assert msgs[0].startswith("MAINPID=%d\nREADY=1" % k.p.pid)
    assert msgs.count("WATCHDOG=1") >= 2
    n = len(msgs)
    assert ctl(sock, "reload")[0] == 0
    drain(0.5)
    later = [m for m in msgs[n:] if m != "WATCHDOG=1"]
    assert later[0].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert any(m.startswith("MAINPID=%d\nREADY=1" % read_pid(pidfile)) for m in later)
    s.close()


def proc_info(pid):
    """(uid, root directory, parent pid) of a process."""
    st = open("/proc/%d/status" % pid).read()
    uid = int([l for l in st.splitlines() if l.startswith("Uid:")][0].split()[1])
    ppid = int([l for l in st.splitlines() if l.startswith("PPid:")][0].split()[1])
    return uid, os.readlink("/proc/%d/root" % pid), ppid


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(x) for x in out.split()]


def test_reload_with_chroot_under_load(env, oload_built):
    """With chroot and user (HAProxy's usual global section), reloads work as without: a spawner
    left outside the jail starts each new process, which chroots and switches user itself; a
    broken configuration is reported; no request fails; no spawner is left behind."""
    assert os.geteuid() == 0, "this test needs root (chroot, user nobody)"
    jail = os.path.join(env.dir, "jail")
    k, port, sock, pidfile, origins = start(env, extra_global="    chroot %s\n    user nobody"
                                            % jail)
    assert get_gen(port) == "g0"  # serving: privileges dropped, jailed
    uid, root, _ = proc_info(k.p.pid)
    assert uid != 0 and root == jail
    spawners = children(k.p.pid)
    assert len(spawners) == 1 and proc_info(spawners[0])[:2] == (0, "/")
    loads = start_loads(env, port, {"pool": 200, "close": 100}, 7)
    time.sleep(1)
    pids, gen = [k.p.pid], "g0"
    for i in range(1, 5):
        old = read_pid(pidfile)
        if i == 2:
            rewrite(k, env, port, origins, "bad", broken=True,
                    extra_global="    chroot %s\n    user nobody" % jail)
            rc, out, err = ctl(sock, "reload")
            assert rc == 1 and "frobnicate" in err, (out, err)
            assert read_pid(pidfile) == old and get_gen(port) == gen
            continue
        gen = "g%d" % i
        rewrite(k, env, port, origins, gen, extra_global="    chroot %s\n    user nobody" % jail)
        if i % 2:
            os.kill(old, signal.SIGUSR2)
        else:
            rc, out, err = ctl(sock, "reload")
            assert rc == 0, (out, err)
        assert wait_for(lambda: read_pid(pidfile) not in (0, old), 10), k.output()
        assert wait_for(lambda: get_gen(port) == gen, 10)
        new = read_pid(pidfile)
        pids.append(new)
        uid, root, _ = proc_info(new)
        assert uid != 0 and root == jail  # the new process jailed itself
        time.sleep(0.8)
    check_loads(loads, {"pool": 1000, "close": 500})
    assert wait_for(lambda: all(gone(p) for p in pids[:-1]), 10), "an old process did not exit"
    # one spawner, the current process's: the old ones exited with their process
    assert wait_for(lambda: all(gone(s) for s in spawners), 5)
    cur = children(pids[-1])
    assert len(cur) == 1 and proc_info(cur[0])[:2] == (0, "/"), cur
