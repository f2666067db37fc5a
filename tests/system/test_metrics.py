"""Machine-readable statistics: the stats page's ";json" variant, the Prometheus metrics page
("stats prometheus-uri" and "http-request use-service prometheus-exporter"), and a real
Prometheus (Debian's package) scraping keel and answering a query about it."""
import base64
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from conftest import Conn, basic_config, free_port, wait_for, wait_port

# name{labels} value (the text format 0.0.4 as keel writes it: no timestamps)
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? '
                    r'(-?[0-9.e+-]+|\+Inf|NaN)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{family: {"type": t, "help": h, "samples": [(name, {labels}, value)]}}; asserts the
    syntax of every line and that each sample belongs to a family declared before it."""
    fams = {}
    cur = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, help_ = line[7:].split(" ", 1)
            fams.setdefault(name, {"samples": []})["help"] = help_
            cur = name
        elif line.startswith("# TYPE "):
            name, typ = line[7:].split(" ", 1)
            assert name == cur, "TYPE %s after HELP %s" % (name, cur)
            assert typ in ("counter", "gauge", "histogram"), line
            fams[name]["type"] = typ
        else:
            m = SAMPLE.match(line)
            assert m, "bad sample line: %r" % line
            name = m.group(1)
            base = re.sub(r"_(bucket|sum|count)$", "", name) if fams.get(cur, {}).get("type") == "histogram" else name
            assert base == cur, "sample %s outside its family %s" % (name, cur)
            labels = dict(LABEL.findall(m.group(2) or ""))
            fams[cur]["samples"].append((name, labels, float(m.group(3))))
    return fams


def value(fams, family, name=None, **labels):
    for n, l, v in fams[family]["samples"]:
        if (name or family) == n and all(l.get(k) == v2 for k, v2 in labels.items()):
            return v
    raise KeyError("%s%s" % (name or family, labels))


def get(port, path, headers=None, method="GET"):
    c = Conn(port)
    r = c.request(method, path, headers=headers)
    c.close()
    return r


def run_requests(port, n, path="/"):
    c = Conn(port)
    for _ in range(n):
        assert c.request("GET", path).status == 200
    c.close()


def test_stats_json(env):
    o1, o2 = env.origin("a"), env.origin("b")
    port = free_port()
    env.keel(basic_config(port, [("web1", o1.addr, "check inter 200ms"), ("web2", o2.addr, "")],
                          extra_fe="    stats uri /stats"), [port])
    run_requests(port, 6)
    r = get(port, "/stats;json")
    assert r.status == 200
    assert r.header("content-type") == "application/json"
    doc = json.loads(r.body)
    assert doc["process"]["name"] == "keel" and doc["process"]["threads"] == 2
    assert [f["name"] for f in doc["frontends"]] == ["fe"]
    assert doc["frontends"][0]["counters"]["requests"] >= 6
    be = [b for b in doc["backends"] if b["name"] == "be"][0]
    assert be["counters"]["requests"] == 6
    assert be["usable_servers"] == 2
    srv = {s["name"]: s for s in be["servers"]}
    assert set(srv) == {"web1", "web2"}
    assert srv["web1"]["counters"]["requests"] + srv["web2"]["counters"]["requests"] == 6
    assert srv["web1"]["counters"]["responses"]["2xx"] == srv["web1"]["counters"]["requests"]
    for s in srv.values():
        assert s["state_word"] == "up" and s["state"].startswith("UP")
        assert isinstance(s["reason"], str) and s["weight"] == 1
        assert set(s["ttfb_ms"]) == {"p50", "p90", "p99"}
        assert s["consecutive_errors"] == 0 and s["ejections"] == 0
    # web1 has a check: its result shows once the first one ran
    doc = wait_for(lambda: (lambda d: d if d["backends"][0]["servers"][0]["check"] else None)(
        json.loads(get(port, "/stats;json").body)), timeout=5)
    chk = doc["backends"][0]["servers"][0]["check"]
    assert chk["ok"] is True and chk["code"] == "L4OK" and isinstance(chk["reason"], str)
    assert doc["backends"][0]["servers"][1]["check"] is None
    # HEAD: the headers only
    r = get(port, "/stats;json", method="HEAD")
    assert r.status == 200 and int(r.header("content-length")) > 0 and r.body == b""


def test_stats_json_reasons_escaped(env):
    """A check reason quoting what a server sent (quotes, backslashes, control bytes, non-UTF-8
    bytes) still gives valid JSON."""
    o = env.origin()
    port = free_port()
    # the check expects a string the body does not hold: the reason quotes the expectation
    env.keel(basic_config(port, [("web1", o.addr, "check inter 200ms")],
                          extra_fe="    stats uri /stats",
                          extra_be='    option httpchk GET /\n'
                                   '    http-check expect string "q\\"b\\\\s\\x01\\xff"'), [port])
    def down():
        d = json.loads(get(port, "/stats;json").body)
        s = d["backends"][0]["servers"][0]
        return d if s["check"] and not s["check"]["ok"] else None
    doc = wait_for(down, timeout=5)
    assert doc, "the check never failed"
    r = get(port, "/stats;json")
    r.body.decode("utf-8")  # valid UTF-8 whatever the reason held
    json.loads(r.body)


def test_prometheus_uri(env):
    o1, o2 = env.origin("a"), env.origin("b")
    port = free_port()
    env.keel(basic_config(port, [("web1", o1.addr, "check inter 200ms"), ("web2", o2.addr, "")],
                          extra_fe="    stats prometheus-uri /metrics"), [port])
    run_requests(port, 8, "/?delay=5")
    # the first check result must be in before the check families have samples
    wait_for(lambda: "keel_server_check_up{" in get(port, "/metrics").body.decode(), timeout=5)
    r = get(port, "/metrics?ignored=1")
    assert r.status == 200
    assert r.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    fams = parse_metrics(r.body.decode())
    for f in ("keel_process_start_time_seconds", "keel_build_info",
              "keel_frontend_current_connections", "keel_frontend_requests_total",
              "keel_frontend_responses_total", "keel_backend_requests_total",
              "keel_backend_up_servers", "keel_server_requests_total",
              "keel_server_responses_total", "keel_server_up", "keel_server_state",
              "keel_server_weight", "keel_server_current_sessions", "keel_server_queue",
              "keel_server_connection_errors_total", "keel_server_response_errors_total",
              "keel_server_retries_total", "keel_server_ejections_total",
              "keel_server_check_duration_seconds", "keel_server_check_up",
              "keel_server_bytes_in_total", "keel_server_bytes_out_total",
              "keel_server_ttfb_seconds"):
        assert f in fams and fams[f].get("help") and fams[f].get("type"), f
    assert abs(value(fams, "keel_process_start_time_seconds") - time.time()) < 120
    assert value(fams, "keel_build_info", version=fams["keel_build_info"]["samples"][0][1]["version"]) == 1
    assert value(fams, "keel_backend_requests_total", backend="be") == 8
    assert value(fams, "keel_backend_up_servers", backend="be") == 2
    n1 = value(fams, "keel_server_requests_total", backend="be", server="web1")
    n2 = value(fams, "keel_server_requests_total", backend="be", server="web2")
    assert n1 + n2 == 8 and n1 > 0 and n2 > 0
    assert value(fams, "keel_server_responses_total", backend="be", server="web1", code="2xx") == n1
    assert value(fams, "keel_server_responses_total", backend="be", server="web1", code="5xx") == 0
    assert value(fams, "keel_frontend_responses_total", frontend="fe", code="2xx") >= 8
    assert value(fams, "keel_server_up", backend="be", server="web1") == 1
    states = {l["state"]: v for n, l, v in fams["keel_server_state"]["samples"] if l["server"] == "web1"}
    assert states == {"up": 1, "down": 0, "ejected": 0, "drain": 0, "maint": 0}
    assert value(fams, "keel_server_check_up", backend="be", server="web1") == 1
    assert not [s for s in fams["keel_server_check_up"]["samples"] if s[1]["server"] == "web2"]
    # the histogram: cumulative buckets ending with +Inf == _count == responses, a plausible sum
    buckets = [(l["le"], v) for n, l, v in fams["keel_server_ttfb_seconds"]["samples"]
               if n.endswith("_bucket") and l["server"] == "web1"]
    assert buckets[-1][0] == "+Inf"
    les = [float(le) for le, _ in buckets]
    assert les == sorted(les)
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), counts
    count = value(fams, "keel_server_ttfb_seconds", "keel_server_ttfb_seconds_count", server="web1")
    assert counts[-1] == count == n1
    # every request waited 5 ms at the origin: none under 1 ms, all under 1 s
    assert value(fams, "keel_server_ttfb_seconds", "keel_server_ttfb_seconds_bucket",
                 server="web1", le="0.001") == 0
    assert value(fams, "keel_server_ttfb_seconds", "keel_server_ttfb_seconds_bucket",
                 server="web1", le="1") == n1
    s = value(fams, "keel_server_ttfb_seconds", "keel_server_ttfb_seconds_sum", server="web1")
    assert 0.004 * n1 < s < 0.5 * n1
    # HEAD
    r = get(port, "/metrics", method="HEAD")
    assert r.status == 200 and r.body == b""
    # promtool's own linter, when the package is there
    promtool = shutil.which("promtool")
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=get(port, "/metrics").body,
                           capture_output=True, timeout=30)
        assert p.returncode == 0, p.stdout + p.stderr
        assert p.stdout.strip() == b"" and p.stderr.strip() == b"", p.stdout + p.stderr


def test_prometheus_states_down_and_maint(env):
    o = env.origin()
    dead = free_port()
    port = free_port()
    env.keel(basic_config(port, [("web1", o.addr, ""), ("dead", "127.0.0.1:%d" % dead, "check inter 200ms"),
                                 ("off", o.addr, "disabled")],
                          extra_fe="    stats prometheus-uri /metrics"), [port])

    def fams_when_down():
        f = parse_metrics(get(port, "/metrics").body.decode())
        return f if value(f, "keel_server_up", server="dead") == 0 else None
    fams = wait_for(fams_when_down, timeout=5)
    assert fams
    assert value(fams, "keel_server_state", server="dead", state="down") == 1
    assert value(fams, "keel_server_check_up", server="dead") == 0
    assert value(fams, "keel_server_state", server="off", state="maint") == 1
    assert value(fams, "keel_server_up", server="off") == 0
    assert value(fams, "keel_backend_up_servers", backend="be") == 1


def test_use_service_prometheus_exporter(env):
    o = env.origin()
    port = free_port()
    env.keel("""defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:%d
    http-request use-service prometheus-exporter if { path /prom }
    default_backend be
backend be
    server s1 %s
""" % (port, o.addr), [port])
    run_requests(port, 3, "/app")
    r = get(port, "/prom")
    assert r.status == 200 and r.header("content-type").startswith("text/plain; version=0.0.4")
    fams = parse_metrics(r.body.decode())
    assert value(fams, "keel_server_requests_total", backend="be", server="s1") == 3
    # other paths still go to the server
    r = get(port, "/prom2")
    assert r.status == 200 and r.header("x-origin") == "origin"


def test_use_service_in_backend_and_unknown_service(env):
    o = env.origin()
    port = free_port()
    k = env.keel("""defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:%d
    use_backend metrics if { path_beg /m }
    default_backend be
backend metrics
    http-request use-service prometheus-exporter
backend be
    http-request use-service lua.hello if { path /lua }
    server s1 %s
""" % (port, o.addr), [port])
    assert "use-service" in k.output() and "not implemented" in k.output()
    r = get(port, "/metrics")
    assert r.status == 200 and b"keel_build_info" in r.body
    assert get(port, "/lua").status == 200  # the unknown service's rule is ignored


def test_prometheus_uri_uses_stats_auth(env):
    o = env.origin()
    port = free_port()
    env.keel(basic_config(port, [o.addr], extra_fe="    stats uri /stats\n    stats auth admin:s3cret\n"
                          "    stats prometheus-uri /metrics\n    stats hide-version"), [port])
    assert get(port, "/metrics").status == 401
    auth = {"Authorization": "Basic " + base64.b64encode(b"admin:s3cret").decode()}
    r = get(port, "/metrics", headers=auth)
    assert r.status == 200
    fams = parse_metrics(r.body.decode())
    assert value(fams, "keel_build_info", version="") == 1


def test_prometheus_uri_config_errors(env):
    from conftest import KEEL
    cfg = os.path.join(env.dir, "bad.cfg")
    with open(cfg, "w") as f:
        f.write("frontend fe\n    bind 127.0.0.1:%d\n    stats prometheus-uri metrics\n" % free_port())
    p = subprocess.run([KEEL, "-c", "-f", cfg], capture_output=True, timeout=10)
    assert p.returncode != 0 and b"prometheus-uri" in p.stderr + p.stdout


def prometheus_bin():
    for b in (shutil.which("prometheus"), "/usr/bin/prometheus"):
        if b and os.access(b, os.X_OK):
            return b
    return None


def prom_query(pport, query):
    url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (pport, urllib.parse.quote(query))
    with urllib.request.urlopen(url, timeout=5) as r:
        d = json.loads(r.read())
    assert d["status"] == "success", d
    return d["data"]["result"]


def test_real_prometheus_scrapes_keel(env):
    """Debian's Prometheus scrapes keel every second; its HTTP API then returns keel's counter
    with the number of requests made (tools/deps.sh installs the package for the tests)."""
    prom = prometheus_bin()
    if not prom:
        pytest.fail("prometheus is not installed: run tools/deps.sh test (as root) first")
    o = env.origin()
    port = free_port()
    env.keel(basic_config(port, [("web1", o.addr, "")], logs=False,
                          extra_fe="    stats prometheus-uri /metrics"), [port])
    pport = free_port()
    conf = os.path.join(env.dir, "prometheus.yml")
    with open(conf, "w") as f:
        f.write("""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: keel
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:%d']
""" % port)
    env.proc("prometheus", [prom, "--config.file=" + conf,
                            "--storage.tsdb.path=" + os.path.join(env.dir, "tsdb"),
                            "--web.listen-address=127.0.0.1:%d" % pport, "--log.level=warn"],
             wait_for_port=None)
    wait_port(pport, timeout=30, proc=env.procs[-1].p)
    run_requests(port, 17, "/x")

    def scraped():
        try:
            res = prom_query(pport, 'keel_server_requests_total{backend="be",server="web1"}')
        except OSError:
            return None
        return res if res and float(res[0]["value"][1]) == 17 else None
    res = wait_for(scraped, timeout=30, step=0.5)
    assert res, "Prometheus never saw 17 requests: %r" % prom_query(pport, "keel_server_requests_total")
    assert res[0]["metric"]["job"] == "keel" and res[0]["metric"]["instance"] == "127.0.0.1:%d" % port
    up = prom_query(pport, 'up{job="keel"}')
    assert up and up[0]["value"][1] == "1"
    # the histogram is usable by PromQL as it is
    q = prom_query(pport, 'histogram_quantile(0.5, keel_server_ttfb_seconds_bucket{server="web1"})')
    assert q and 0 < float(q[0]["value"][1]) <= 1
