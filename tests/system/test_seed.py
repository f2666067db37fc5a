"""The seed configuration (examples/seed-haproxy.cfg, from a real deployment) runs unmodified:
keel daemonizes, writes its pid file, proxies round-robin to the two origins on 9001/9002 with
X-Forwarded-For, and serves the stats page behind the configured credentials."""
import base64
import os
import signal
import subprocess
import time
import urllib.request

from conftest import KEEL, ROOT, Conn, wait_port

SEED = os.path.join(ROOT, "examples", "seed-haproxy.cfg")
PIDFILE = "/tmp/keel-example.pid"


def get(path, auth=None):
    req = urllib.request.Request("http://127.0.0.1:8080" + path)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_seed_config_unmodified(env):
    for port in (8080, 9001, 9002):
        import socket
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, "port %d is busy: the seed test needs it" % port
    # The origins answer the seed's check URI, as the servers it was written for do.
    chk = 'location = /@api/host/test { return 200 "ok"; }'
    a = env.nginx(9001, extra_locations=chk)
    b = env.nginx(9002, extra_locations=chk)
    if os.path.exists(PIDFILE):
        os.unlink(PIDFILE)
    r = subprocess.run([KEEL, "-f", SEED], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr  # the parent exits once the daemon is started
    try:
        wait_port(8080)
        deadline = time.time() + 5
        while not os.path.exists(PIDFILE) and time.time() < deadline:
            time.sleep(0.05)
        pid = int(open(PIDFILE).read())
        os.kill(pid, 0)
        names = [get("/name")[1].strip() for _ in range(6)]
        assert names == ["nginx-9001", "nginx-9002"] * 3 or names == ["nginx-9002", "nginx-9001"] * 3, names
        status, xff = get("/xff")
        assert status == 200 and xff.strip() == "127.0.0.1"
        assert get("/haproxy-status")[0] == 401
        assert get("/haproxy-status", "username:wrong")[0] == 401
        status, page = get("/haproxy-status", "username:password")
        assert status == 200 and "webA" in page and "webB" in page
        if os.geteuid() == 0:
            # chroot + user nobody took effect
            st = open("/proc/%d/status" % pid).read()
            uid_line = [l for l in st.splitlines() if l.startswith("Uid:")][0]
            assert uid_line.split()[1] != "0"
            assert os.readlink("/proc/%d/root" % pid) == "/var/lib/keel-example"
    finally:
        if os.path.exists(PIDFILE):
            pid = int(open(PIDFILE).read())
            try:
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(pid, 0)
                    time.sleep(0.05)
            except ProcessLookupError:
                pass
