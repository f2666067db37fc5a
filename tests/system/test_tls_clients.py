"""Real TLS clients against a TLS bind with keel's defaults: sslscan (no weak protocol, cipher
or key exchange offered, no renegotiation) and Chromium loading the stats dashboard over HTTPS."""
import os
import re
import shutil
import subprocess

import pytest

import cdp
from conftest import basic_config, free_port


def make_certs(d):
    """An ECDSA and an RSA certificate for localhost (both served by one bind)."""
    out = []
    for kind, opts in (("ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                       ("rsa", ["-newkey", "rsa:2048"])):
        key, crt = os.path.join(d, kind + ".key"), os.path.join(d, kind + ".crt")
        subprocess.run(["openssl", "req", "-x509"] + opts + ["-nodes", "-keyout", key, "-out", crt,
                        "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost"], check=True, capture_output=True)
        pem = os.path.join(d, kind + ".pem")
        with open(pem, "w") as f:
            f.write(open(crt).read() + open(key).read())
        out.append(pem)
    return out


def tls_config(port, crts, servers, extra_fe=""):
    cfg = basic_config(port, servers, extra_fe=extra_fe)
    return cfg.replace("bind 127.0.0.1:%d" % port,
                       "bind 127.0.0.1:%d ssl %s" % (port, " ".join("crt " + c for c in crts)))


def test_sslscan_finds_nothing_weak_on_a_default_bind(env):
    sslscan = shutil.which("sslscan")
    if not sslscan:
        pytest.fail("sslscan is not installed: run tools/deps.sh test (as root) first")
    port = free_port()
    env.keel(tls_config(port, make_certs(env.dir), [("s1", env.origin("o").addr, "")]), [port])
    out = subprocess.run([sslscan, "--no-colour", "127.0.0.1:%d" % port], capture_output=True,
                         text=True, timeout=120).stdout
    for proto in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"):
        assert re.search(r"^%s\s+disabled" % re.escape(proto), out, re.M), out
    for proto in ("TLSv1.2", "TLSv1.3"):
        assert re.search(r"^%s\s+enabled" % re.escape(proto), out, re.M), out
    assert "Session renegotiation not supported" in out, out
    ciphers = re.findall(r"^(?:Preferred|Accepted)\s+(TLSv1\.[23])\s+(\d+) bits\s+(\S+)", out, re.M)
    assert ciphers, out
    names = [c[2] for c in ciphers]
    # both key types are served: ECDSA and RSA suites
    assert any("ECDSA" in n for n in names) and any("-RSA-" in n for n in names), names
    for proto, bits, name in ciphers:
        assert int(bits) >= 128, (proto, bits, name)
        # forward secrecy and AEAD only: no static RSA, no CBC, no RC4/3DES/NULL/EXPORT
        if proto == "TLSv1.2":
            assert name.startswith("ECDHE-"), name
            assert "GCM" in name or "CHACHA20" in name, name
        for weak in ("RC4", "DES", "NULL", "EXP", "MD5", "CBC", "anon"):
            assert weak not in name, name
    groups = re.findall(r"^TLSv1\.[23]\s+(\d+) bits\s+(\S+)", out.split("Key Exchange Group")[1], re.M)
    assert groups and all(int(b) >= 128 for b, _ in groups), groups


def test_chromium_loads_the_dashboard_over_https(env):
    if cdp.chromium_path() is None:
        pytest.fail("chromium is not installed: run tools/deps.sh test (as root) first")
    port = free_port()
    origin = env.origin("web1")
    fe = "    stats uri /stats\n    stats refresh 5s"
    env.keel(tls_config(port, make_certs(env.dir),
                        [("web1", origin.addr, "check inter 300ms")], extra_fe=fe), [port])
    # the certificate is self-signed: Chromium is told to accept it, TLS is still negotiated
    rc, dom = cdp._run(["--ignore-certificate-errors", "--dump-dom",
                        "https://localhost:%d/stats" % port], 60)
    assert "web1" in dom and "live, every 5 s" in dom, dom[:2000]
    # and plain HTTP on the TLS port gets no page
    rc, dom = cdp._run(["--dump-dom", "http://localhost:%d/stats" % port], 60)
    assert "web1" not in dom
