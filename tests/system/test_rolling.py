"""A rolling restart of every origin under an open-loop load (docs/admin.md, "keelctl"): for each
server in turn `keelctl drain B/S --wait`, `set server B/S state maint`, the origin stopped and a
new process started on the same port (an upgrade), `set server B/S state ready`, wait until keel
sees it UP. GETs and POSTs (each with a unique X-Req-Id that the origins log) run all along.

- test_rolling_restart: no request fails, no POST reaches the origins twice, none is lost, keel
  itself met no refused connection and no response cut short (nothing to retry), and every new
  origin process receives traffic.
- test_restart_without_drain: the same origin restart without drain and maint (killed while it
  serves, then started again), to show what the drain buys. keel retries an idempotent request
  whose connection failed or was closed without an answer, and never sends a POST twice: the GETs
  all succeed, a POST in progress on the killed origin gets a 502 (not a timeout, not a second
  copy), and the count of those is printed.
The origins answer in 20 ms, so requests are in progress at each step (the drain has something to
wait for, the kill something to cut)."""
import csv
import io
import json
import os
import signal
import subprocess
import time

from conftest import (KEELCTL, OLOAD, ORIGIN, Proc, admin_cmd, basic_config, free_port, wait_for,
                      wait_port)


RATE, POST_RATE, DEADLINE_MS, DELAY_MS = 300, 30, 4000, 20
POST_ID_BASE = 1000000000  # GETs carry ids 0.., POSTs 10^9.. (as bench/faults)



class IdOrigin(Proc):
    """keel-origin answering in DELAY_MS, logging the X-Req-Id of every POST it receives to a file
    that its successors on the same port append to."""

    def __init__(self, env, name, port=None):
        self.port = port or free_port()
        self.origin_name = name
        self.id_log = os.path.join(env.dir, name + ".ids")
        super().__init__("origin-%s-%d" % (name, time.monotonic_ns()),
                         [ORIGIN, "-l", "127.0.0.1:%d" % self.port, "-n", name, "-q",
                          "-p", self.id_log], env.dir)
        env.procs.append(self)
        wait_port(self.port, proc=self.p)
        self.get("/__control?delay=%d" % DELAY_MS)

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def get(self, path):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        assert r.status == 200, (path, r.status)
        return body

    def stats(self):
        return json.loads(self.get("/__stats"))


def ctl(sock, *args):
    p = subprocess.run([KEELCTL, "-s", sock] + list(args), capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout, p.stderr


def servers(sock):
    """{server: (srv_op_state, srv_admin_state, keel_state)} from `show servers state be`:
    ("2", "0", "UP") is up and ready, ("0", "1", "MAINT") down and in maintenance."""
    out = admin_cmd(sock, "show servers state be")
    rows = [r.split() for r in out.splitlines()[2:] if r.strip()]
    return {r[3]: (r[5], r[6], r[11]) for r in rows}


def up(sock, name):
    return servers(sock).get(name) == ("2", "0", "UP")


def server_errors(sock):
    """{server: {econ, eresp, wretr, wredis}} from `show stat` (HAProxy's CSV columns)."""
    rows = list(csv.reader(io.StringIO(admin_cmd(sock, "show stat").lstrip("# "))))
    out = {}
    for r in rows[1:]:
        d = dict(zip(rows[0], r))
        if d.get("pxname") == "be" and d["svname"] not in ("FRONTEND", "BACKEND"):
            out[d["svname"]] = {k: int(d[k] or 0) for k in ("econ", "eresp", "wretr", "wredis")}
    return out


def start(env):
    origins = [IdOrigin(env, "o%d" % i) for i in (1, 2, 3)]
    port = free_port()
    sock = os.path.join(env.dir, "admin.sock")
    cfg = basic_config(port, [("s%d" % i, o.addr, "check inter 500ms fall 2 rise 2")
                              for i, o in enumerate(origins, 1)],
                       extra_global="    stats socket %s" % sock, logs=False)
    k = env.keel(cfg, [port])
    assert wait_for(lambda: os.path.exists(sock), 5)
    assert wait_for(lambda: all(up(sock, "s%d" % i) for i in (1, 2, 3)), 5), servers(sock)
    for o in origins:
        o.get("/__reset")
    return k, port, sock, origins


def start_load(env, port, duration):
    """GETs at RATE and POSTs at POST_RATE, both due from the same instant t0 (returned)."""
    t0 = time.monotonic() + 0.3
    common = ["-u", "http://127.0.0.1:%d/" % port, "-d", "%g" % duration, "-t", str(DEADLINE_MS),
              "--start-at", "%.6f" % t0, "--id-header", "X-Req-Id"]
    loads = {}
    for name, args in (("get", ["-r", str(RATE), "-c", "1000", "--id-base", "0"]),
                       ("post", ["-r", str(POST_RATE), "-c", "200", "-m", "POST", "-b", "64",
                                 "--id-base", str(POST_ID_BASE)])):
        path = os.path.join(env.dir, name + ".csv")
        loads[name] = (env.proc("oload-" + name, [OLOAD] + common + args + ["--csv", path]), path)
    return t0, loads


def finish_load(loads, duration):
    """{stream: (kv of oload's line, [(sched_ms, latency_ms, status, error)])}."""
    res = {}
    for name, (p, path) in loads.items():
        p.p.wait(timeout=duration + DEADLINE_MS / 1000 + 20)
        line = [l for l in p.output().splitlines() if l.startswith("sent=")]
        assert p.p.returncode == 0 and line, "oload %s: %s" % (name, p.output())
        kv = dict(x.split("=", 1) for x in line[0].split())
        with open(path) as f:
            rows = [l.rstrip("\n").split(",") for l in f.readlines()[1:]]
        res[name] = (kv, rows)
        print("%s: %s" % (name, line[0]))
    return res


def post_ids(origins):
    """How many times the origins (every process, from their id logs) received each POST id."""
    got = {}
    for o in origins:
        with open(o.id_log) as f:
            for l in f:
                if l.strip():
                    got[l.strip()] = got.get(l.strip(), 0) + 1
    return got


def test_rolling_restart(env, oload_built):
    k, port, sock, origins = start(env)
    duration = 13.0
    t0, loads = start_load(env, port, duration)
    time.sleep(max(0.0, t0 + 1.0 - time.monotonic()))
    steps = []
    for i in range(3):
        name = "s%d" % (i + 1)
        srv = "be/" + name
        t = time.monotonic()
        rc, out, err = ctl(sock, "drain", srv, "--wait", "--timeout", "10")
        assert rc == 0 and "drained: no request in flight" in out, (rc, out, err)
        assert servers(sock)[name] == ("2", "8", "DRAIN")
        assert ctl(sock, "set", "server", srv, "state", "maint")[0] == 0
        assert servers(sock)[name] == ("2", "1", "MAINT")
        # the upgrade takes long enough for the checks (running in maintenance too) to see the
        # server DOWN; it is set ready while still DOWN and takes traffic once its checks pass
        old = origins[i]
        old.stop(signal.SIGTERM)  # keel-origin exits at once
        assert wait_for(lambda: servers(sock)[name] == ("0", "1", "MAINT"), 5), servers(sock)
        origins[i] = IdOrigin(env, old.origin_name, old.port)
        assert ctl(sock, "set", "server", srv, "state", "ready")[0] == 0
        assert servers(sock)[name][:2] == ("0", "0")  # ready, still DOWN: no traffic yet
        assert wait_for(lambda: up(sock, name), 10), servers(sock)
        steps.append("%s %.2f-%.2f s" % (srv, t - t0, time.monotonic() - t0))
        time.sleep(0.5)  # the new process takes traffic before the next server goes
    print("restarts (into the load):", ", ".join(steps))
    # every step within the load, with at least a second of load after the last one
    assert time.monotonic() < t0 + duration - 1.0, steps
    res = finish_load(loads, duration)
    k_out = k.output()
    for stream, (kv, rows) in res.items():
        assert int(kv["sent"]) == len(rows) > 0
        assert kv["failed"] == "0", (stream, kv, [r for r in rows if r[3] != "none"][:10],
                                     k_out[-2000:])
    # no POST twice, none lost (every POST answered with success reached an origin)
    got = post_ids(origins)
    posts = res["post"][1]
    ids = [str(POST_ID_BASE + n) for n in range(len(posts))]
    assert [i for i in ids if got.get(i, 0) > 1] == []
    assert [i for i in ids if not got.get(i)] == []
    # keel never met a refused connection or a response cut short: nothing was retried
    errs = server_errors(sock)
    assert all(v == 0 for e in errs.values() for v in e.values()), errs
    # each new origin process received GETs and POSTs after its restart
    for o in origins:
        m = o.stats()["methods"]
        print("%s after its restart: %s" % (o.origin_name, m))
        assert m["GET"] >= 50 and m["POST"] >= 3, (o.origin_name, m)
    assert k.alive()


def test_restart_without_drain(env, oload_built):
    k, port, sock, origins = start(env)
    duration = 9.5
    t0, loads = start_load(env, port, duration)
    time.sleep(max(0.0, t0 + 1.5 - time.monotonic()))
    assert up(sock, "s1")
    t = time.monotonic()
    origins[0].stop(signal.SIGKILL)  # killed while it serves: no drain, no maint
    assert wait_for(lambda: not up(sock, "s1"), 5)
    origins[0] = IdOrigin(env, "o1", origins[0].port)
    # the refused connections eject it (passive detection) for 5 s before a probe brings it back
    assert wait_for(lambda: up(sock, "s1"), 8), servers(sock)
    print("s1 killed at %.2f s, UP again at %.2f s" % (t - t0, time.monotonic() - t0))
    assert time.monotonic() < t0 + duration - 1.0
    res = finish_load(loads, duration)
    gkv, grows = res["get"]
    # GETs: in progress on the killed origin (closed without an answer) or refused: retried
    assert gkv["failed"] == "0", (gkv, [r for r in grows if r[3] != "none"][:10])
    pkv, prows = res["post"]
    failed = [r for r in prows if r[3] != "none"]
    # a POST cut by the kill gets a 502 at once: no timeout, no reset, no second copy
    assert all(r[2] == "502" for r in failed), failed
    got = post_ids(origins)
    ids = [str(POST_ID_BASE + n) for n in range(len(prows))]
    assert [i for i in ids if got.get(i, 0) > 1] == []
    assert [i for i, r in zip(ids, prows) if r[3] == "none" and not got.get(i)] == []
    print("without drain: %d GETs, 0 failed; %d POSTs, %d answered 502 (%d of them reached the "
          "killed origin)" % (len(grows), len(prows), len(failed),
                              sum(1 for i, r in zip(ids, prows) if r[3] != "none" and got.get(i))))
    m = origins[0].stats()["methods"]
    assert m["GET"] >= 50, m
    # what keel saw: requests cut by the kill (eresp) or refused (econ) on s1, retried elsewhere
    errs = server_errors(sock)
    print("keel's counters:", errs)
    assert errs["s1"]["eresp"] + errs["s1"]["econ"] >= 1, errs
