#!/usr/bin/python3
"""First benchmark: keel against HAProxy and nginx on this machine, same origins, same thread
count, alternating rounds. Prints medians and keel's ratios; --markdown appends a table.

    bench/keelbench.py [--rounds 3] [--duration 10] [--threads 1] [--markdown docs/benchmarks.md]

Scenarios: keep-alive tiny responses (wrk -c100), one request per connection, 1 MB responses,
idle keep-alive connections (resident memory per connection). Everything on 127.0.0.1."""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
KEEL = os.path.join(ROOT, "keel")
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("port %d did not open" % port)


def pids_of(root_pid):
    """The process and its descendants (nginx workers)."""
    out = [root_pid]
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/stat" % p) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid == root_pid:
                    out.append(int(p))
            except (OSError, IndexError, ValueError):
                pass
    return out


def cpu_ticks(pids):
    """(user, system) clock ticks of processes, all threads included."""
    u = s = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            u += int(fields[11])
            s += int(fields[12])
        except OSError:
            pass
    return u, s


def rss_kb(pids):
    t = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for l in f:
                    if l.startswith("VmRSS:"):
                        t += int(l.split()[1])
        except OSError:
            pass
    return t


def wrk(url, conns, dur, headers=()):
    cmd = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % dur, "--latency"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + [url], capture_output=True, text=True).stdout
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
           "reqs": int(re.search(r"(\d+) requests in", out).group(1))}
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["errors"] = (int(errs.group(1)) if errs else 0) + (sum(map(int, sock.groups())) if sock else 0)
    tr = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    mult = {"B": 1, "KB": 1024, "MB": 1 << 20, "GB": 1 << 30}
    res["bps"] = float(tr.group(1)) * mult.get(tr.group(2), 1) if tr else 0
    for p in ("50", "99"):
        m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s)" % p, out)
        if m:
            v = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
            res["p" + p] = v
    return res


class Target:
    def __init__(self, name, workdir, o1, o2, threads):
        self.name = name
        self.port = free_port()
        self.dir = workdir
        if name == "nginx":
            conf = os.path.join(workdir, "proxy-nginx.conf")
            with open(conf, "w") as f:
                f.write("""worker_processes %d; daemon off; pid %s/proxy.pid; error_log %s/proxy-err.log;
worker_rlimit_nofile 19000;
events { worker_connections 9000; }
http { access_log off;
  upstream be { server 127.0.0.1:%d; server 127.0.0.1:%d; keepalive 64; }
  server { listen 127.0.0.1:%d reuseport; location / { proxy_pass http://be;
     proxy_http_version 1.1; proxy_set_header Connection ""; } } }
""" % (threads, workdir, workdir, o1, o2, self.port))
            cmd = ["nginx", "-c", conf, "-e", os.path.join(workdir, "proxy-err.log")]
        else:
            conf = os.path.join(workdir, "proxy-%s.cfg" % name)
            with open(conf, "w") as f:
                f.write("""global
    nbthread %d
    maxconn 9000
defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind 127.0.0.1:%d
    default_backend be
backend be
    balance roundrobin
    server s1 127.0.0.1:%d
    server s2 127.0.0.1:%d
""" % (threads, self.port, o1, o2))
            cmd = [KEEL if name == "keel" else "haproxy", "-db", "-f", conf]
        self.p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True, preexec_fn=raise_nofile)
        wait_port(self.port)
        time.sleep(0.2)

    def pids(self):
        return pids_of(self.p.pid)

    def stop(self):
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait()


def raise_nofile():
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def origin(workdir, port):
    os.makedirs(os.path.join(workdir, "www"), exist_ok=True)
    with open(os.path.join(workdir, "www", "1m"), "wb") as f:
        f.write(os.urandom(1 << 20))
    conf = os.path.join(workdir, "origin-%d.conf" % port)
    with open(conf, "w") as f:
        f.write("""worker_processes 1; daemon off; pid %s/o%d.pid; error_log %s/o%d.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000;
  server { listen 127.0.0.1:%d; root %s/www;
    location = / { return 200 "hello from the origin\\n"; } } }
""" % (workdir, port, workdir, port, port, workdir))
    p = subprocess.Popen(["nginx", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    wait_port(port)
    return p


def measure(t, url, conns, dur, headers=()):
    pids = t.pids()
    u0, s0 = cpu_ticks(pids)
    r = wrk(url, conns, dur, headers)
    u1, s1 = cpu_ticks(pids)
    r["cpu_us"] = ((u1 - u0) + (s1 - s0)) * 1e6 / TICK / max(r["reqs"], 1)
    r["user_us"] = (u1 - u0) * 1e6 / TICK / max(r["reqs"], 1)
    return r


OLOAD = os.path.join(ROOT, "build", "bench", "oload")


def build_oload():
    os.makedirs(os.path.dirname(OLOAD), exist_ok=True)
    src = os.path.join(ROOT, "bench", "oload.c")
    if not os.path.exists(OLOAD) or os.path.getmtime(OLOAD) < os.path.getmtime(src):
        subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-o", OLOAD, src], check=True)


def open_loop(t, rate, dur):
    """Fixed-rate load from bench/oload.c: latency from each request's due time."""
    out = subprocess.run([OLOAD, "-u", "http://127.0.0.1:%d/" % t.port, "-r", str(rate), "-d", str(dur),
                          "-c", "512", "-t", "5000"], capture_output=True, text=True).stdout
    kv = dict(x.split("=") for x in out.split())
    return {k: float(v) for k, v in kv.items()}


def syscalls_per_request(t, dur=2):
    """strace -c over a short keep-alive run: syscalls of the proxy's worker threads per request
    (strace slows the proxy down; only the count matters). The main thread's signal waits and
    the logger's sleeps are not on the request path and are left out."""
    if not shutil.which("strace"):
        return None
    out = os.path.join(t.dir, "strace-%s.txt" % t.name)
    st = subprocess.Popen(["strace", "-c", "-f", "-o", out] + sum([["-p", str(p)] for p in t.pids()], []),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    r = wrk("http://127.0.0.1:%d/" % t.port, 100, dur)
    st.send_signal(signal.SIGINT)
    st.wait()
    total = 0
    with open(out) as f:
        for l in f:
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", l)
            if m and m.group(2) not in ("total", "rt_sigtimedwait", "clock_nanosleep", "nanosleep",
                                        "futex", "restart_syscall"):
                total += int(m.group(1))
    return total / max(r["reqs"], 1)


def idle_memory(t, n):
    """Resident bytes per idle keep-alive client connection (each did one request)."""
    pids = t.pids()
    time.sleep(0.3)
    before = rss_kb(pids)
    socks = []
    req = b"GET / HTTP/1.1\r\nHost: b\r\n\r\n"
    # One request at a time: what an idle connection costs, not what a burst leaves behind.
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", t.port))
        s.sendall(req)
        s.settimeout(10)
        got = b""
        while b"hello" not in got:
            got += s.recv(4096)
        socks.append(s)
    time.sleep(0.5)
    after = rss_kb(pids)
    for s in socks:
        s.close()
    return (after - before) * 1024 / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--idle", type=int, default=5000)
    ap.add_argument("--only", default="keel,haproxy,nginx")
    ap.add_argument("--markdown")
    ap.add_argument("--rate", type=int, default=15000, help="open-loop requests/s")
    a = ap.parse_args()
    raise_nofile()
    names = a.only.split(",")
    build_oload()
    if "keel" in names and not os.access(KEEL, os.X_OK):
        raise SystemExit("./keel is missing: run make first")
    work = tempfile.mkdtemp(prefix="keelbench-")
    os.chmod(work, 0o755)  # nginx workers run as nobody and must read the files
    o1, o2 = free_port(), free_port()
    origins = [origin(work, o1), origin(work, o2)]
    results = {n: {} for n in names}
    # "close" last: its TIME_WAIT sockets must not disturb the others.
    scenarios = [("keepalive", "/", 100, ()), ("1MB", "/1m", 10, ()),
                 ("close", "/", 50, ("Connection: close",))]
    try:
        for rnd in range(a.rounds):
            for n in names:
                t = Target(n, work, o1, o2, a.threads)
                try:
                    for sc, path, conns, hdrs in scenarios:
                        r = measure(t, "http://127.0.0.1:%d%s" % (t.port, path), conns, a.duration, hdrs)
                        results[n].setdefault(sc, []).append(r)
                        print("round %d %-8s %-9s %9.0f req/s  cpu %.1f us/req (user %.1f)  p50 %.2f ms  p99 %.2f ms  errors %d"
                              % (rnd + 1, n, sc, r["rps"], r["cpu_us"], r["user_us"], r.get("p50", -1), r.get("p99", -1), r["errors"]),
                              flush=True)
                        time.sleep(1)
                    ol = open_loop(t, a.rate, a.duration)
                    results[n].setdefault("openloop", []).append(ol)
                    print("round %d %-8s openloop  %d/s: failed %d  p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms"
                          % (rnd + 1, n, a.rate, ol["failed"], ol["p50_ms"], ol["p99_ms"], ol["p999_ms"], ol["max_ms"]),
                          flush=True)
                    if rnd == 0:
                        results[n]["idle"] = [idle_memory(t, a.idle)]
                        print("round %d %-8s idle      %.0f bytes/conn" % (rnd + 1, n, results[n]["idle"][0]), flush=True)
                        results[n]["sys"] = [syscalls_per_request(t)]
                        print("round %d %-8s syscalls  %s per request" % (rnd + 1, n, results[n]["sys"][0]), flush=True)
                finally:
                    t.stop()
    finally:
        for p in origins:
            os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)

    def med(n, sc, k):
        return statistics.median(r[k] for r in results[n][sc])

    lines = ["| scenario | metric | " + " | ".join(names) + " | keel/haproxy | keel/nginx |",
             "|---|---|" + "---|" * (len(names) + 2)]
    rows = [("keepalive", "req/s", "rps"), ("keepalive", "CPU us/req", "cpu_us"),
            ("keepalive", "user us/req", "user_us"), ("keepalive", "p50 ms", "p50"),
            ("keepalive", "p99 ms", "p99"), ("close", "req/s", "rps"), ("close", "CPU us/req", "cpu_us"),
            ("1MB", "MB/s", "bps"), ("1MB", "CPU us/MB", "cpu_us")]
    for sc, label, k in rows:
        vals = {n: med(n, sc, k) / (1 << 20 if k == "bps" else 1) for n in names}
        ratio = lambda o: ("%.2f" % (vals["keel"] / vals[o])) if "keel" in vals and o in vals and vals[o] else "-"
        lines.append("| %s | %s | %s | %s | %s |" % (sc, label, " | ".join("%.2f" % vals[n] for n in names),
                                                      ratio("haproxy"), ratio("nginx")))
    for label, k in (("p50 ms", "p50_ms"), ("p99 ms", "p99_ms"), ("p99.9 ms", "p999_ms"), ("failed", "failed")):
        vals = {n: statistics.median(r[k] for r in results[n]["openloop"]) for n in names}
        ratio = lambda o: ("%.2f" % (vals["keel"] / vals[o])) if "keel" in vals and o in vals and vals[o] else "-"
        lines.append("| open loop %d/s | %s | %s | %s | %s |" % (a.rate, label, " | ".join("%.2f" % vals[n] for n in names),
                                                              ratio("haproxy"), ratio("nginx")))
    sysv = {n: results[n]["sys"][0] for n in names}
    if all(v is not None for v in sysv.values()):
        lines.append("| keepalive | syscalls/req (strace -c) | %s | %s | %s |" % (
            " | ".join("%.2f" % sysv[n] for n in names),
            "%.2f" % (sysv["keel"] / sysv["haproxy"]) if "keel" in sysv and "haproxy" in sysv else "-",
            "%.2f" % (sysv["keel"] / sysv["nginx"]) if "keel" in sysv and "nginx" in sysv else "-"))
    vals = {n: results[n]["idle"][0] for n in names}
    def idle_ratio(o):
        return "%.2f" % (vals["keel"] / vals[o]) if "keel" in vals and vals.get(o, 0) > 0 else "-"
    lines.append("| idle %d conns | bytes/conn | %s | %s | %s |" % (
        a.idle, " | ".join("%.0f" % vals[n] for n in names), idle_ratio("haproxy"), idle_ratio("nginx")))
    table = "\n".join(lines)
    print(table)
    if a.markdown:
        with open(a.markdown, "a") as f:
            f.write("\n## %s, %s\n\nMachine: `%s`, %d CPUs. Command: `%s`. Medians of %d alternating rounds, "
                    "%d s each, %d worker thread(s) per proxy, two nginx origins.\n\n%s\n"
                    % (time.strftime("%Y-%m-%d %H:%M"), "%s" % subprocess.run([KEEL, "-v"], capture_output=True, text=True).stdout.strip(),
                       " ".join(os.uname()), os.cpu_count(), " ".join(["bench/keelbench.py"] + sys.argv[1:]),
                       a.rounds, a.duration, a.threads, table))


if __name__ == "__main__":
    main()
