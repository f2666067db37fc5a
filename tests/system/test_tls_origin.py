"""TLS to servers (origination): keel in front of nginx serving HTTPS only, with certificates
from a test CA made here. nginx reports what it saw of each TLS connection (the name asked for,
whether the session was resumed) in headers and in its access log."""
import os
import shutil
import subprocess
import time
import urllib.request

from conftest import basic_config, free_port, wait_for, wait_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def run(*args):
    subprocess.run(args, check=True, capture_output=True)


def make_pki(d):
    """A CA, a server certificate for origin.test (signed by it) and a self-signed one; returns
    the paths."""
    ca, cak = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", cak, "-out", ca, "-days", "2", "-subj", "/CN=keel test CA")
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:origin.test,DNS:*.vhost.test\n")
    key, csr, crt = (os.path.join(d, n) for n in ("srv.key", "srv.csr", "srv.crt"))
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", csr, "-subj", "/CN=origin.test")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cak, "-CAcreateserial",
        "-out", crt, "-days", "2", "-extfile", ext)
    sk, sc = os.path.join(d, "self.key"), os.path.join(d, "self.crt")
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", sk, "-out", sc, "-days", "2", "-subj", "/CN=origin.test",
        "-addext", "subjectAltName=DNS:origin.test")
    return {"ca": ca, "key": key, "crt": crt, "self_key": sk, "self_crt": sc}


def https_nginx(env, pki, self_signed=False, keepalive=True):
    """nginx answering HTTPS only; / tells the SNI and the session reuse it saw."""
    port = free_port()
    d = env.dir
    crt, key = (pki["self_crt"], pki["self_key"]) if self_signed else (pki["crt"], pki["key"])
    conf = os.path.join(d, "nginx-tls-%d.conf" % port)
    with open(conf, "w") as f:
        f.write("""daemon off; worker_processes 1; pid %(d)s/nginx-tls-%(p)d.pid;
error_log %(d)s/nginx-tls-%(p)d-error.log;
events { worker_connections 256; }
http {
  log_format tls '$ssl_server_name $ssl_session_reused $ssl_protocol';
  access_log %(d)s/nginx-tls-%(p)d-access.log tls;
  client_body_temp_path %(d)s/nb; proxy_temp_path %(d)s/np; fastcgi_temp_path %(d)s/nf;
  uwsgi_temp_path %(d)s/nu; scgi_temp_path %(d)s/ns;
  ssl_session_cache shared:S:1m;
  %(ka)s
  server {
    listen 127.0.0.1:%(p2)d;
    location / { return 200 "got $content_length\\n"; }
  }
  server {
    listen 127.0.0.1:%(p)d ssl;
    ssl_certificate %(crt)s; ssl_certificate_key %(key)s;
    location / { return 200 "sni=$ssl_server_name reused=$ssl_session_reused\\n"; }
    location /big { root %(d)s; }
    location = /upload { client_max_body_size 10m; proxy_pass http://127.0.0.1:%(p2)d/; }
  }
}
""" % {"d": d, "p": port, "p2": free_port(), "crt": crt, "key": key,
       "ka": "" if keepalive else "keepalive_timeout 0;"})
    p = env.proc("nginx-tls-%d" % port, [NGINX, "-c", conf, "-e",
                                          os.path.join(d, "nginx-tls-%d-error.log" % port)])
    wait_port(port, proc=p.p)
    p.port = port
    p.access = os.path.join(d, "nginx-tls-%d-access.log" % port)
    return p


def test_large_bodies_both_ways_over_tls_to_the_server(env):
    """A 1 MB response and a 300 kB request body cross TLS records (16 kB each) and fill the
    sockets: nothing stalls."""
    pki = make_pki(env.dir)
    ngx = https_nginx(env, pki)
    os.makedirs(os.path.join(env.dir, "big"), exist_ok=True)
    blob = os.urandom(1 << 20)
    with open(os.path.join(env.dir, "big", "f.bin"), "wb") as f:
        f.write(blob)
    # nginx's workers run as another user: let them read the file
    for p in (env.dir, os.path.join(env.dir, "big")):
        os.chmod(p, 0o755)
    os.chmod(os.path.join(env.dir, "big", "f.bin"), 0o644)
    port = free_port()
    env.keel(basic_config(port, [("s1", "127.0.0.1:%d" % ngx.port,
                                  "ssl ca-file %s sni str(origin.test)" % pki["ca"])]), ports=[port])
    with urllib.request.urlopen("http://127.0.0.1:%d/big/f.bin" % port, timeout=10) as r:
        assert r.read() == blob
    body = os.urandom(300 * 1024)
    req = urllib.request.Request("http://127.0.0.1:%d/upload" % port, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.read().decode().strip() == "got %d" % len(body)


def get(port, path="/", host=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if host:
        req.add_header("Host", host)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_requests_reach_an_https_server_with_verified_certificate_and_sni(env):
    pki = make_pki(env.dir)
    ngx = https_nginx(env, pki)
    port = free_port()
    env.keel(basic_config(port, [("s1", "127.0.0.1:%d" % ngx.port,
                                  "ssl verify required ca-file %s sni str(origin.test)" % pki["ca"])]),
             ports=[port])
    st, body = get(port)
    assert st == 200, body
    assert "sni=origin.test" in body


def test_sessions_are_resumed_on_new_connections(env):
    """nginx closes every connection (keepalive_timeout 0): each request is a new TLS
    connection; after the first, keel offers the session it got and nginx resumes it."""
    pki = make_pki(env.dir)
    ngx = https_nginx(env, pki, keepalive=False)
    port = free_port()
    env.keel(basic_config(port, [("s1", "127.0.0.1:%d" % ngx.port,
                                  "ssl ca-file %s sni str(origin.test)" % pki["ca"])],
                          extra_global="    nbthread 1"), ports=[port])
    bodies = [get(port)[1] for _ in range(6)]
    assert all(b.startswith("sni=origin.test") for b in bodies), bodies
    lines = wait_for(lambda: (open(ngx.access).read().split("\n")[:6]
                              if open(ngx.access).read().count("\n") >= 6 else None), timeout=5)
    assert lines, "nginx logged fewer than 6 requests"
    reused = [l.split()[1] for l in lines]
    assert reused[0] == ".", reused          # the first is a full handshake
    assert reused[1:].count("r") >= 4, reused  # later ones resume


def test_no_ssl_reuse_makes_full_handshakes(env):
    pki = make_pki(env.dir)
    ngx = https_nginx(env, pki, keepalive=False)
    port = free_port()
    env.keel(basic_config(port, [("s1", "127.0.0.1:%d" % ngx.port,
                                  "ssl ca-file %s sni str(origin.test) no-ssl-reuse" % pki["ca"])]),
             ports=[port])
    for _ in range(4):
        assert get(port)[0] == 200
    lines = wait_for(lambda: (open(ngx.access).read().split("\n")[:4]
                              if open(ngx.access).read().count("\n") >= 4 else None), timeout=5)
    assert [l.split()[1] for l in lines] == ["."] * 4, lines


def test_sni_from_the_host_header_and_reuse_per_name(env):
    pki = make_pki(env.dir)
    ngx = https_nginx(env, pki)
    port = free_port()
    env.keel(basic_config(port, [("s1", "127.0.0.1:%d" % ngx.port,
                                  "ssl ca-file %s sni req.hdr(host)" % pki["ca"])]), ports=[port])
    # the certificate covers *.vhost.test: each name is verified and asked for as such,
    # and a pooled connection opened for one name is never used for the other
    for _ in range(3):
        for name in ("a.vhost.test", "b.vhost.test:8443"):
            st, body = get(port, host=name)
            assert st == 200, body
            assert "sni=%s" % name.split(":")[0] in body, (name, body)


def test_a_certificate_that_does_not_verify_is_refused(env):
    """A self-signed certificate (not from the CA), and a name the certificate does not carry:
    no request reaches the server; the check says why."""
    pki = make_pki(env.dir)
    bad = https_nginx(env, pki, self_signed=True)
    good = https_nginx(env, pki)
    port, admin = free_port(), os.path.join(env.dir, "admin.sock")
    env.keel(basic_config(port, [
        ("self", "127.0.0.1:%d" % bad.port, "ssl ca-file %s sni str(origin.test) check inter 200" % pki["ca"]),
        ("wrongname", "127.0.0.1:%d" % good.port,
         "ssl ca-file %s sni str(other.test) check-sni other.test check inter 200" % pki["ca"]),
        ("ok", "127.0.0.1:%d" % good.port, "ssl ca-file %s sni str(origin.test) check inter 200" % pki["ca"])],
        extra_global="    stats socket %s level admin" % admin,
        extra_be="    option httpchk GET /"), ports=[port])
    from conftest import admin_cmd

    def states():
        out = admin_cmd(admin, "show servers state be")
        return out if ("self" in out and "L6RSP" in out) else None
    out = wait_for(lambda: admin_cmd(admin, "show stat"), timeout=3)
    assert out
    # every request goes to the one server whose certificate verifies
    for _ in range(6):
        st, body = get(port)
        assert st == 200 and "sni=origin.test" in body, body
    stat = admin_cmd(admin, "show stat")
    rows = {l.split(",")[1]: l for l in stat.splitlines() if l.startswith("be,")}
    assert "DOWN" in rows["self"] and "L6RSP" in rows["self"], rows["self"]
    assert "DOWN" in rows["wrongname"] and "L6RSP" in rows["wrongname"], rows["wrongname"]
    assert "UP" in rows["ok"], rows["ok"]


def test_verify_none_accepts_any_certificate(env):
    pki = make_pki(env.dir)
    bad = https_nginx(env, pki, self_signed=True)
    port = free_port()
    env.keel(basic_config(port, [("s1", "127.0.0.1:%d" % bad.port, "ssl verify none")]), ports=[port])
    st, body = get(port)
    assert st == 200 and body.startswith("sni= "), body  # no name asked for without 'sni'


def test_check_ssl_against_a_plain_port_fails_and_plain_checks_pass(env):
    """check-ssl on a server whose port speaks plain HTTP: the check fails (L6RSP); without it,
    the same server is up."""
    pki = make_pki(env.dir)
    ngx = env.nginx()
    port, admin = free_port(), os.path.join(env.dir, "admin.sock")
    env.keel(basic_config(port, [
        ("tls", "127.0.0.1:%d" % ngx.port, "check check-ssl verify none inter 200"),
        ("plain", "127.0.0.1:%d" % ngx.port, "check inter 200")],
        extra_global="    stats socket %s level admin" % admin,
        extra_be="    option httpchk GET /name"), ports=[port])
    from conftest import admin_cmd
    time.sleep(1.0)
    stat = admin_cmd(admin, "show stat")
    rows = {l.split(",")[1]: l for l in stat.splitlines() if l.startswith("be,")}
    assert "DOWN" in rows["tls"] and "L6" in rows["tls"], rows["tls"]
    assert "UP" in rows["plain"], rows["plain"]


def test_configuration_errors_name_the_problem(env):
    from conftest import KEEL
    cases = [
        ("ssl", "no 'ca-file' is given"),
        ("ssl ca-file /nonexistent/ca.pem", "/nonexistent/ca.pem"),
        ("ssl verify maybe", "'verify' expects none or required"),
        ("ssl verify none sni nosuchfetch(x)", "sni"),
        ("ssl verify none crt /nonexistent/client.pem", "/nonexistent/client.pem"),
    ]
    for opts, want in cases:
        cfg = os.path.join(env.dir, "bad.cfg")
        with open(cfg, "w") as f:
            f.write(basic_config(free_port(), [("s1", "127.0.0.1:9", opts)]))
        r = subprocess.run([KEEL, "-c", "-f", cfg], capture_output=True, text=True)
        assert r.returncode != 0, opts
        assert want in r.stderr, (opts, r.stderr)
    # ssl-server-verify none makes 'ssl' alone valid
    with open(cfg, "w") as f:
        f.write(basic_config(free_port(), [("s1", "127.0.0.1:9", "ssl")],
                             extra_global="    ssl-server-verify none"))
    r = subprocess.run([KEEL, "-c", "-f", cfg], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
