#!/usr/bin/python3
"""Takes docs/dashboard.png (and docs/dashboard-phone.png): the stats dashboard of a demo with three
keel-origins behind keel, traffic whose latency drifts up for a while, one server drained from the
page's Drain button, one taken down by its check (the origin answers 500 through /__control).

Usage: make && tools/dashboard-shot.py [--seconds 75] [--out docs/dashboard.png]
Needs Debian's chromium (tools/deps.sh test). About 80 s: the history needs a few 5 s samples."""
import argparse
import base64
import os
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))

import cdp  # noqa: E402
from conftest import Conn, Keel, Origin, free_port  # noqa: E402

AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:exam-week").decode()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=75)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "dashboard.png"))
    ap.add_argument("--phone", default=os.path.join(ROOT, "docs", "dashboard-phone.png"))
    a = ap.parse_args()
    work = os.path.join("/tmp", "keel-dashboard-shot-%d" % os.getpid())
    os.makedirs(work, exist_ok=True)
    procs = []
    stop = threading.Event()
    try:
        origins = [Origin(work, n) for n in ("web1", "web2", "web3")]
        procs += origins
        port = free_port()
        cfg = """global
    nbthread 2
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend www
    bind 127.0.0.1:%d
    stats uri /stats
    stats auth admin:exam-week
    stats refresh 5s
    stats admin if LOCALHOST
    default_backend exams
backend exams
    option httpchk GET /health
    default-server check inter 1s fall 2 rise 2 slowstart 60s
    server web1 %s
    server web2 %s
    server web3 %s
""" % ((port,) + tuple(o.addr for o in origins))
        k = Keel(work, cfg, [port])
        procs.append(k)
        t0 = time.time()

        def traffic(n):
            i = 0
            while not stop.is_set():
                # latency drifts up between 30% and 60% of the run, then recovers
                f = (time.time() - t0) / a.seconds
                delay = int(40 * max(0.0, 1 - abs(f - 0.45) / 0.15)) + (i % 7)
                try:
                    c = Conn(port, timeout=5)
                    for _ in range(10):
                        path = "/exam/%d?delay=%d" % (i, delay)
                        if i % 97 == 0:
                            path = "/exam/%d?status=503" % i
                        c.request("GET", path)
                        i += 1
                    c.close()
                except Exception:
                    time.sleep(0.05)
                time.sleep(0.01 * n)

        threads = [threading.Thread(target=traffic, args=(n,), daemon=True) for n in range(4)]
        for t in threads:
            t.start()
        with cdp.Browser(1280, 900) as b:
            b.set_headers(AUTH)
            b.navigate("http://127.0.0.1:%d/stats" % port)
            time.sleep(a.seconds * 0.6)
            # web3 fails its checks (two in a row at 1 s): DOWN with the reason on the page
            origins[2].control("status=500")
            time.sleep(a.seconds * 0.15)
            # the operator drains web2 from the page
            b.clear_events()
            b.eval("document.querySelector('input[name=s][value=web2]').form"
                   ".querySelector('button[value=drain]').click()")
            b.wait_event("Page.loadEventFired")
            time.sleep(max(0.0, a.seconds - (time.time() - t0)))
            b.navigate("http://127.0.0.1:%d/stats" % port)
            time.sleep(0.5)
            b.screenshot(a.out)
            print("wrote", a.out)
            if a.phone:
                b.viewport(390, 844, mobile=True)
                time.sleep(0.5)
                b.screenshot(a.phone)
                print("wrote", a.phone)
    finally:
        stop.set()
        for p in reversed(procs):
            p.stop()


if __name__ == "__main__":
    main()
