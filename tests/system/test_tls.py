"""TLS termination (`bind ... ssl crt ...`, HAProxy 2.6 semantics), tested with certificates
generated at test time (tlsutil.PKI) and real clients: Python's ssl module (negotiated version,
cipher, ALPN, the certificate the server chose), curl and openssl s_client.

Covered: crt files with their chain, several crt, crt DIR, crt-list with SNI filters; certificate
selection by SNI (exact, then wildcard, then the first certificate) and by the client's signature
algorithms (ECDSA or RSA for one name); ALPN; protocol versions, ciphers, TLS 1.3 suites and
curves on the bind line and from global ssl-default-bind-*; no renegotiation; client
certificates (ca-file, verify, crl-file) and the ssl_* samples in headers, ACLs and logs; the
redirect to https, HSTS, X-Forwarded-Proto; configuration errors; plain text, stalled handshakes
and garbage on the TLS port; balancing, keep-alive, large bodies, close_notify, concurrency,
cookies, health and logs (httplog, log-format, %sslv/%sslc) through HTTPS; a reload that renews
the certificate; the seed configuration with a TLS bind.

Every test but three (X-Forwarded-Proto from option forwardfor, the seed configuration with its
pre-2.1 keywords, the reload) also passes against HAProxy 2.6 itself:
    KEEL=/usr/sbin/haproxy /usr/bin/python3 -m pytest -p no:cacheprovider -q test_tls.py"""
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import (KEEL, ROOT, Conn, basic_config, free_port, origin_of, stats_rows, wait_for,
                      wait_port)
from tlsutil import PKI, TLSConn, curl, handshake_fails, partial_client_hello, s_client, tls_socket

V = ssl.TLSVersion
OLD = "DEFAULT:@SECLEVEL=0"  # OpenSSL 3 allows TLS 1.0/1.1 only at security level 0


@pytest.fixture(scope="session")
def pki():
    d = tempfile.mkdtemp(prefix="keel-tls-pki-")
    try:
        yield PKI(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def config(binds, servers, fe="", be="", glob="", defaults="", logs=True, tail=""):
    """conftest.basic_config with one `bind 127.0.0.1:PORT OPTIONS` line per (port, options)."""
    cfg = basic_config(0, servers, extra_fe=fe, extra_be=be, extra_global=glob,
                       extra_defaults=defaults, logs=logs)
    lines = "".join("    bind 127.0.0.1:%d %s\n" % (p, o) for p, o in binds)
    assert "    bind 127.0.0.1:0\n" in cfg
    return cfg.replace("    bind 127.0.0.1:0\n", lines) + tail


def run_keel(env, text, ports):
    """env.keel, failing with keel's own messages when it does not come up."""
    k = env.keel(text, ports, wait=False)
    for p in ports:
        try:
            wait_port(p, proc=k.p)
        except RuntimeError as e:
            pytest.fail("keel did not start (%s):\n%s" % (e, k.output()[-3000:]))
    return k


def start(env, bind_options, n=1, **kw):
    """keel with one bind per entry of bind_options (options after the address) in front of n
    origins o1..on; returns (ports, origins, keel)."""
    origins = [env.origin("o%d" % (i + 1)) for i in range(n)]
    ports = [free_port() for _ in bind_options]
    k = run_keel(env, config(list(zip(ports, bind_options)), [o.addr for o in origins], **kw), ports)
    return ports, origins, k


def served(pki, port, sni=None, **kw):
    """The name of the certificate the server presented to a client sending this SNI."""
    s = tls_socket(port, sni=sni, **kw)
    try:
        return pki.which(s.getpeercert(binary_form=True))
    finally:
        s.close()


def echoed(r):
    """The request headers keel-origin received, as {lowercase name: [values]}."""
    text = r.body.decode(errors="replace").split("\n\n", 1)[1]
    out = {}
    for line in text.split("\n"):
        if ":" in line:
            n, v = line.split(":", 1)
            out.setdefault(n.strip().lower(), []).append(v.strip())
    return out


def tls_get(port, path="/", sni="www.example.org", headers=None, host="www.example.org", **kw):
    c = TLSConn(port, sni=sni, **kw)
    try:
        return c.request("GET", path, headers=headers, host=host)
    finally:
        c.close()


def refused(port, **kw):
    """Asserts that a client with these settings gets no HTTP answer; returns the reason."""
    why = handshake_fails(port, **kw)
    assert why, "a TLS client with %r got an answer: it should have been refused" % (kw,)
    # the refusal must come from the server, not from a client unable to offer the settings
    assert "NO_PROTOCOLS_AVAILABLE" not in why and "NO_CIPHERS_AVAILABLE" not in why, why
    return why


def keel_check(env, text):
    """`keel -c -f CFG`: (exit status, stdout + stderr)."""
    path = os.path.join(env.dir, "check-%d.cfg" % random.randrange(1 << 30))
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([KEEL, "-c", "-f", path], capture_output=True, text=True, timeout=20)
    return r.returncode, r.stdout + r.stderr


def log_line(proc, needle, timeout=5):
    """The first line of proc's output containing needle (waits for it; fails without it)."""
    def find():
        return next((l for l in proc.output().splitlines() if needle in l), None)
    line = wait_for(find, timeout)
    assert line, "no log line with %r in:\n%s" % (needle, proc.output()[-3000:])
    return line


# ---------------------------------------------------------------- certificates and selection

def test_https_request_with_verified_certificate(env, pki):
    """`bind ssl crt FILE`: a verifying client (Python, curl) gets the certificate and answers
    from the origin; several requests share one TLS connection."""
    (port,), (o1,), k = start(env, ["ssl crt %s" % pki.www.pem])
    c = TLSConn(port, sni="www.example.org", ca=pki.ca, check_hostname=True)
    assert c.peer_der() == pki.www.der
    for i in range(5):
        r = c.request("GET", "/r%d" % i, host="www.example.org")
        assert r.status == 200 and origin_of(r) == "o1"
        assert b"path /r%d" % i in r.body
    c.close()
    r = curl(["--cacert", pki.ca, "--resolve", "www.example.org:%d:127.0.0.1" % port,
              "https://www.example.org:%d/curl?x=1" % port])
    assert r.returncode == 0, r.stderr
    assert "origin o1" in r.stdout and "path /curl?x=1" in r.stdout, r.stdout


def test_chain_from_the_pem_file_is_sent(env, pki):
    """The crt file holds certificate, intermediate and key: the intermediate is sent, so a
    client trusting only the root verifies the server."""
    (port,), _, k = start(env, ["ssl crt %s" % pki.chain.pem])
    c = TLSConn(port, sni="chain.example.org", ca=pki.ca, check_hostname=True)
    assert c.peer_der() == pki.chain.der
    assert c.request("GET", "/", host="chain.example.org").status == 200
    c.close()
    r = curl(["--cacert", pki.ca, "--resolve", "chain.example.org:%d:127.0.0.1" % port,
              "https://chain.example.org:%d/" % port])
    assert r.returncode == 0 and "origin o1" in r.stdout, r.stderr
    # openssl s_client -showcerts: exactly the leaf and the intermediate
    rc, out, der = s_client(port, ["-showcerts"], sni="chain.example.org")
    assert der == pki.chain.der, out
    assert out.count("-----BEGIN CERTIFICATE-----") == 2, out


def test_sni_exact_then_wildcard_then_first_certificate(env, pki):
    """Several crt on one line: exact names win over a wildcard loaded before them, a wildcard
    matches one label only, CN is used when a certificate has no SAN, every SAN entry counts,
    and the first certificate is the default (no SNI, unknown name)."""
    crts = [pki.default, pki.wild, pki.www, pki.cnonly, pki.multi]
    (port,), _, k = start(env, ["ssl " + " ".join("crt " + c.pem for c in crts)])
    expect = {
        "www.example.org": "www",
        "WWW.Example.ORG": "www",  # names are case-insensitive
        "foo.example.org": "wild",
        "a.b.example.org": "default",  # *.example.org covers one label only
        "example.org": "default",
        "cn.example.com": "cnonly",
        "a.example.com": "multi",
        "b.example.com": "multi",
        "unknown.test": "default",
        None: "default",
    }
    got = {sni: served(pki, port, sni) for sni in expect}
    assert got == expect
    # the selected certificate is the one the requests are then served with
    r = tls_get(port, sni="foo.example.org", host="foo.example.org")
    assert r.status == 200 and origin_of(r) == "o1"


def test_pem_blocks_in_any_order(env, pki):
    """A crt file with the private key first, then the certificate and its chain, works."""
    (port,), _, k = start(env, ["ssl crt %s" % pki.keyfirst])
    c = TLSConn(port, sni="chain.example.org", ca=pki.ca, check_hostname=True)
    assert c.peer_der() == pki.chain.der
    assert c.request("GET", "/", host="chain.example.org").status == 200
    c.close()


def test_first_crt_of_the_line_is_the_default(env, pki):
    """The default certificate is the first one loaded for the bind, whichever it is."""
    (p1, p2), _, k = start(env, ["ssl crt %s crt %s" % (pki.www.pem, pki.default.pem),
                                 "ssl crt %s crt %s" % (pki.multi.pem, pki.www.pem)])
    assert served(pki, p1, None) == "www"
    assert served(pki, p1, "nothing.test") == "www"
    assert served(pki, p1, "default.test") == "default"
    assert served(pki, p2, None) == "multi"
    assert served(pki, p2, "www.example.org") == "www"


def test_crt_directory_loads_every_pem_file(env, pki):
    """`crt DIR`: every PEM file of the directory is loaded, in alphabetical order (the first
    is the default certificate)."""
    d = pki.crt_dir("certdir", {"10-multi.pem": pki.multi, "20-www.pem": pki.www,
                                "30-wild.pem": pki.wild, "40-cn.pem": pki.cnonly})
    (port,), _, k = start(env, ["ssl crt %s" % d])
    assert served(pki, port, "www.example.org") == "www"
    assert served(pki, port, "x.example.org") == "wild"
    assert served(pki, port, "cn.example.com") == "cnonly"
    assert served(pki, port, "b.example.com") == "multi"
    assert served(pki, port, "unknown.test") == "multi"
    assert served(pki, port, None) == "multi"
    assert tls_get(port).status == 200


def test_crt_list_with_sni_filters(env, pki):
    """`crt-list FILE`: comments and blank lines skipped, the first line is the default, SNI
    filters (exact and wildcard) replace the names of the certificate itself."""
    path = os.path.join(pki.dir, "list-%d.txt" % random.randrange(1 << 30))
    with open(path, "w") as f:
        f.write("# keel test crt-list\n\n%s\n%s list.example.com *.list.example.net\n"
                "# another comment\n%s\n" % (pki.default.pem, pki.listed.pem, pki.wild.pem))
    (port,), _, k = start(env, ["ssl crt-list %s" % path])
    assert served(pki, port, "list.example.com") == "listed"
    assert served(pki, port, "a.list.example.net") == "listed"
    assert served(pki, port, "a.b.list.example.net") == "default"
    # the filters replace the certificate's own name (listed.example.org): the wildcard
    # certificate of the next line matches it
    assert served(pki, port, "listed.example.org") == "wild"
    assert served(pki, port, "foo.example.org") == "wild"
    assert served(pki, port, "unknown.test") == "default"
    assert served(pki, port, None) == "default"
    assert tls_get(port, sni="list.example.com", host="list.example.com").status == 200


@pytest.mark.parametrize("order", ["rsa_first", "ecdsa_first"])
def test_ecdsa_or_rsa_certificate_by_client_support(env, pki, order):
    """An ECDSA and an RSA certificate for the same name: a client that accepts only RSA gets
    the RSA one, a client that accepts only ECDSA the ECDSA one, in TLS 1.2 (cipher suites) and
    TLS 1.3 (signature algorithms), whichever was loaded first."""
    pair = [pki.www_rsa, pki.www] if order == "rsa_first" else [pki.www, pki.www_rsa]
    (port,), _, k = start(env, ["ssl " + " ".join("crt " + c.pem for c in pair)])
    sni = "www.example.org"
    # TLS 1.2: the cipher suite decides
    s = tls_socket(port, sni=sni, max_ver=V.TLSv1_2, ciphers="ECDHE-RSA-AES128-GCM-SHA256")
    assert pki.which(s.getpeercert(True)) == "www_rsa" and s.cipher()[0] == "ECDHE-RSA-AES128-GCM-SHA256"
    s.close()
    s = tls_socket(port, sni=sni, max_ver=V.TLSv1_2, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    assert pki.which(s.getpeercert(True)) == "www" and s.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
    s.close()
    # TLS 1.3: the signature algorithms decide
    # (a real RSA-only client offers PKCS#1 and PSS; HAProxy 2.6 needs rsa_pkcs1_* to see RSA)
    rc, out, der = s_client(port, ["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256:rsa_pkcs1_sha256"],
                            sni=sni)
    assert rc == 0 and der == pki.www_rsa.der, out
    rc, out, der = s_client(port, ["-tls1_3", "-sigalgs", "ecdsa_secp256r1_sha256"], sni=sni)
    assert rc == 0 and der == pki.www.der, out
    # TLS 1.2 with RSA signature algorithms only (s_client)
    rc, out, der = s_client(port, ["-tls1_2", "-sigalgs", "rsa_pkcs1_sha256:rsa_pss_rsae_sha256"],
                            sni=sni)
    assert rc == 0 and der == pki.www_rsa.der, out


def test_ecdsa_preferred_when_client_supports_both(env, pki):
    """HAProxy's order: with both certificates usable, ECDSA is chosen (RSA loaded first)."""
    (port,), _, k = start(env, ["ssl crt %s crt %s" % (pki.www_rsa.pem, pki.www.pem)])
    assert served(pki, port, "www.example.org") == "www"
    assert served(pki, port, "www.example.org", max_ver=V.TLSv1_2) == "www"


# ---------------------------------------------------------------- ALPN

def test_alpn_http11_and_no_alpn_without_keyword(env, pki):
    """`alpn http/1.1` selects http/1.1 for a client offering h2 and http/1.1; without the
    keyword the server selects no protocol."""
    crt = "ssl crt %s" % pki.www.pem
    (p_alpn, p_none), _, k = start(env, [crt + " alpn http/1.1", crt])
    c = TLSConn(p_alpn, sni="www.example.org", alpn=["h2", "http/1.1"])
    assert c.sock.selected_alpn_protocol() == "http/1.1"
    assert c.request("GET", "/").status == 200
    c.close()
    c = TLSConn(p_none, sni="www.example.org", alpn=["http/1.1"])
    assert c.sock.selected_alpn_protocol() is None
    assert c.request("GET", "/").status == 200
    c.close()
    r = curl(["-k", "--http1.1", "-w", "%{http_version}", "-o", "/dev/null",
              "https://127.0.0.1:%d/" % p_alpn])
    assert r.returncode == 0 and r.stdout == "1.1", (r.stdout, r.stderr)


def test_alpn_list_with_h2_negotiates_http11_for_http11_clients(env, pki):
    """An `alpn h2,http/1.1` list is accepted; a client offering only http/1.1 gets it."""
    (port,), _, k = start(env, ["ssl crt %s alpn h2,http/1.1" % pki.www.pem])
    c = TLSConn(port, sni="www.example.org", alpn=["http/1.1"])
    assert c.sock.selected_alpn_protocol() == "http/1.1"
    assert c.request("GET", "/").status == 200
    c.close()


# ---------------------------------------------------------------- versions, ciphers, curves

def test_default_is_tls12_and_tls13_only(env, pki):
    """Without options: TLS 1.3 for a modern client, TLS 1.2 when the client stops there,
    TLS 1.0 and 1.1 refused (even for a client at security level 0)."""
    (port,), _, k = start(env, ["ssl crt %s" % pki.www.pem])
    c = TLSConn(port, sni="www.example.org")
    assert c.version() == "TLSv1.3" and c.request("GET", "/").status == 200
    c.close()
    c = TLSConn(port, sni="www.example.org", max_ver=V.TLSv1_2)
    assert c.version() == "TLSv1.2" and c.request("GET", "/").status == 200
    c.close()
    for v in (V.TLSv1, V.TLSv1_1):
        refused(port, sni="www.example.org", min_ver=v, max_ver=v, ciphers=OLD)


def test_ssl_min_ver_and_max_ver_on_bind(env, pki):
    """ssl-min-ver / ssl-max-ver: TLSv1.3 only; TLSv1.2 at most; TLSv1.0 allowed again (with
    the security level 0 that OpenSSL 3 needs for it)."""
    crt = "ssl crt %s" % pki.www.pem
    (p13, p12, p10), _, k = start(env, [crt + " ssl-min-ver TLSv1.3",
                                        crt + " ssl-max-ver TLSv1.2",
                                        crt + " ssl-min-ver TLSv1.0 ciphers " + OLD])
    sni = "www.example.org"
    refused(p13, sni=sni, max_ver=V.TLSv1_2)
    assert TLSConn(p13, sni=sni).version() == "TLSv1.3"
    c = TLSConn(p12, sni=sni)
    assert c.version() == "TLSv1.2" and c.request("GET", "/").status == 200
    c.close()
    for v, name in ((V.TLSv1, "TLSv1"), (V.TLSv1_1, "TLSv1.1")):
        c = TLSConn(p10, sni=sni, min_ver=v, max_ver=v, ciphers=OLD)
        assert c.version() == name and c.request("GET", "/").status == 200
        c.close()
    assert TLSConn(p10, sni=sni).version() == "TLSv1.3"


def test_ciphers_and_ciphersuites_on_bind(env, pki):
    """`ciphers` (TLS <= 1.2) and `ciphersuites` (TLS 1.3) restrict what is negotiated."""
    crt = "ssl crt %s" % pki.www.pem
    (p12, p13), _, k = start(env, [crt + " ssl-max-ver TLSv1.2 ciphers ECDHE-ECDSA-AES256-GCM-SHA384",
                                   crt + " ciphersuites TLS_CHACHA20_POLY1305_SHA256"])
    sni = "www.example.org"
    c = TLSConn(p12, sni=sni)
    assert (c.version(), c.cipher()) == ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384")
    assert c.request("GET", "/").status == 200
    c.close()
    refused(p12, sni=sni, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    c = TLSConn(p13, sni=sni)
    assert (c.version(), c.cipher()) == ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256")
    assert c.request("GET", "/").status == 200
    c.close()
    rc, out, der = s_client(p13, ["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"], sni=sni)
    assert rc != 0 and der is None, out
    rc, out, der = s_client(p13, ["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"], sni=sni)
    assert rc == 0 and der == pki.www.der, out


def test_curves_on_bind(env, pki):
    """`curves X25519`: a client offering only P-256 is refused, X25519 is used otherwise; the
    default accepts P-256."""
    crt = "ssl crt %s" % pki.www.pem
    (p_x, p_def), _, k = start(env, [crt + " curves X25519", crt])
    sni = "www.example.org"
    for v in ("-tls1_3", "-tls1_2"):
        rc, out, der = s_client(p_x, [v, "-groups", "P-256"], sni=sni)
        assert rc != 0 and der is None, out
        rc, out, der = s_client(p_x, [v, "-groups", "X25519:P-256"], sni=sni)
        assert rc == 0 and "Server Temp Key: X25519" in out, out
        rc, out, der = s_client(p_def, [v, "-groups", "P-256"], sni=sni)
        assert rc == 0 and "Server Temp Key: ECDH, prime256v1" in out, out


def test_global_default_bind_ciphersuites_and_curves(env, pki):
    """ssl-default-bind-ciphersuites and ssl-default-bind-curves apply to a bind without its
    own; a bind's ciphersuites and curves override them."""
    crt = "ssl crt %s" % pki.www.pem
    (p_g, p_own), _, k = start(env, [crt, crt + " ciphersuites TLS_AES_128_GCM_SHA256 curves P-256"],
                               glob="    ssl-default-bind-ciphersuites TLS_CHACHA20_POLY1305_SHA256\n"
                                    "    ssl-default-bind-curves X25519")
    sni = "www.example.org"
    c = TLSConn(p_g, sni=sni)
    assert c.cipher() == "TLS_CHACHA20_POLY1305_SHA256" and c.request("GET", "/").status == 200
    c.close()
    c = TLSConn(p_own, sni=sni)
    assert c.cipher() == "TLS_AES_128_GCM_SHA256" and c.request("GET", "/").status == 200
    c.close()
    rc, out, der = s_client(p_g, ["-groups", "P-256"], sni=sni)
    assert rc != 0 and der is None, out
    rc, out, der = s_client(p_g, ["-groups", "X25519"], sni=sni)
    assert rc == 0 and der == pki.www.der, out
    rc, out, der = s_client(p_own, ["-groups", "P-256"], sni=sni)
    assert rc == 0 and der == pki.www.der, out


def test_global_default_bind_options_min_ver_and_ciphers(env, pki):
    """ssl-default-bind-options ssl-min-ver TLSv1.3 refuses TLS 1.2 on a bind without options;
    a bind's own ssl-min-ver overrides it, and ssl-default-bind-ciphers applies there."""
    crt = "ssl crt %s" % pki.www.pem
    (p_g, p_own), _, k = start(env, [crt, crt + " ssl-min-ver TLSv1.2"],
                               glob="    ssl-default-bind-options ssl-min-ver TLSv1.3\n"
                                    "    ssl-default-bind-ciphers ECDHE-ECDSA-AES256-GCM-SHA384")
    sni = "www.example.org"
    refused(p_g, sni=sni, max_ver=V.TLSv1_2)
    assert TLSConn(p_g, sni=sni).version() == "TLSv1.3"
    c = TLSConn(p_own, sni=sni, max_ver=V.TLSv1_2)
    assert (c.version(), c.cipher()) == ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384")
    assert c.request("GET", "/").status == 200
    c.close()
    refused(p_own, sni=sni, max_ver=V.TLSv1_2, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")


def test_global_default_bind_options_no_tlsv12(env, pki):
    """ssl-default-bind-options no-tlsv12: TLS 1.2 refused, TLS 1.3 served."""
    (port,), _, k = start(env, ["ssl crt %s" % pki.www.pem],
                          glob="    ssl-default-bind-options no-tlsv12")
    refused(port, sni="www.example.org", max_ver=V.TLSv1_2)
    c = TLSConn(port, sni="www.example.org")
    assert c.version() == "TLSv1.3" and c.request("GET", "/").status == 200
    c.close()


def test_no_client_renegotiation(env, pki):
    """A TLS 1.2 client asking for a renegotiation (s_client's R command) gets no answer on that
    connection; without it the same session is answered."""
    (port,), _, k = start(env, ["ssl crt %s" % pki.www.pem])
    req = b"GET /reneg HTTP/1.1\r\nHost: www.example.org\r\nConnection: close\r\n\r\n"

    def session(steps):
        p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                              "-servername", "www.example.org", "-tls1_2"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            time.sleep(0.5)
            for data in steps:
                try:
                    p.stdin.write(data)
                    p.stdin.flush()
                except BrokenPipeError:
                    break
                time.sleep(0.7)
            return p.communicate(timeout=10)[0].decode(errors="replace")  # closes stdin: quits
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()

    out = session([req])
    assert "HTTP/1.1 200" in out and "path /reneg" in out, out
    out = session([b"R\n", req])
    assert "RENEGOTIATING" in out, out
    assert "HTTP/1.1 200" not in out, out
    # keel still serves
    assert tls_get(port).status == 200


# ---------------------------------------------------------------- client certificates

HDRS = """    http-request set-header X-C-Used %[ssl_c_used]
    http-request set-header X-C-Verify %[ssl_c_verify]
    http-request set-header X-C-DN %[ssl_c_s_dn]"""


def client_view(port, cert=None):
    r = tls_get(port, cert=cert)
    assert r.status == 200, r.status
    h = echoed(r)
    return h.get("x-c-used", [None])[0], h.get("x-c-verify", [None])[0], h.get("x-c-dn", [None])[0]


def test_client_cert_required(env, pki):
    """`ca-file` with `verify required`: no certificate or an untrusted one is refused (TLS 1.3
    and 1.2), a trusted one is let through and shown by ssl_c_used, ssl_c_verify, ssl_c_s_dn
    (HAProxy's default DN format: /O=.../CN=...)."""
    crt = "ssl crt %s ca-file %s" % (pki.www.pem, pki.ca)
    (p_req, p_req2), _, k = start(env, [crt + " verify required", "verify required " + crt], fe=HDRS)
    for port in (p_req, p_req2):
        refused(port, sni="www.example.org")
        refused(port, sni="www.example.org", max_ver=V.TLSv1_2)
        refused(port, sni="www.example.org", cert=pki.eve)
        assert client_view(port, pki.alice) == ("1", "0", "/O=keel tests/CN=alice")
        c = TLSConn(port, sni="www.example.org", cert=pki.alice, max_ver=V.TLSv1_2)
        assert c.request("GET", "/").status == 200
        c.close()


def test_client_cert_optional(env, pki):
    """`verify optional`: a client without a certificate is served (ssl_c_used 0); a trusted
    certificate is checked and shown; an untrusted one aborts the handshake (HAProxy does not
    ignore verification errors without ca-ignore-err/crt-ignore-err)."""
    (port,), _, k = start(env, ["ssl crt %s ca-file %s verify optional" % (pki.www.pem, pki.ca)],
                          fe=HDRS)
    used, verify, dn = client_view(port)
    assert (used, verify) == ("0", "0")
    assert client_view(port, pki.alice) == ("1", "0", "/O=keel tests/CN=alice")
    refused(port, sni="www.example.org", cert=pki.eve)


def test_client_cert_verify_none(env, pki):
    """`verify none`: no certificate is asked for, so a client that has one does not send it."""
    (port,), _, k = start(env, ["ssl crt %s ca-file %s verify none" % (pki.www.pem, pki.ca)],
                          fe=HDRS)
    assert client_view(port, pki.alice)[0] == "0"
    assert client_view(port, pki.eve)[0] == "0"
    assert client_view(port)[0] == "0"


def test_ca_file_alone_does_not_request_client_cert(env, pki):
    """`ca-file` without `verify`: HAProxy 2.6's default is verify none (its documentation: "If
    set to 'none', client certificate is not requested. This is the default."; checked against
    haproxy 2.6.12): a client without a certificate is served, one with a certificate does not
    send it."""
    (port,), _, k = start(env, ["ssl crt %s ca-file %s" % (pki.www.pem, pki.ca)], fe=HDRS)
    assert client_view(port)[:2] == ("0", "0")
    assert client_view(port, pki.alice)[0] == "0"


def test_client_cert_revoked_by_crl(env, pki):
    """`crl-file`: a certificate revoked by the CA's CRL is refused, others are served."""
    (port,), _, k = start(env, ["ssl crt %s ca-file %s verify required crl-file %s"
                                % (pki.www.pem, pki.ca, pki.crl)], fe=HDRS)
    refused(port, sni="www.example.org", cert=pki.mallory)
    refused(port, sni="www.example.org", cert=pki.mallory, max_ver=V.TLSv1_2)
    assert client_view(port, pki.alice) == ("1", "0", "/O=keel tests/CN=alice")


# ---------------------------------------------------------------- samples, rules, headers

def test_ssl_fc_samples_in_headers_and_acls(env, pki):
    """ssl_fc, ssl_fc_sni, ssl_fc_protocol and ssl_fc_cipher in set-header, in ACLs (deny,
    use_backend, a named acl); ssl_fc is 0 on a plain bind of the same frontend."""
    o2 = env.origin("o2")
    fe = """    http-request deny if { ssl_fc_sni -i blocked.example.org }
    http-request set-header X-TLS %[ssl_fc]
    http-request set-header X-SNI %[ssl_fc_sni]
    http-request set-header X-Proto %[ssl_fc_protocol]
    http-request set-header X-Cipher %[ssl_fc_cipher]
    acl tls13 ssl_fc_protocol TLSv1.3
    http-request set-header X-Is-TLS13 yes if tls13
    use_backend be2 if { ssl_fc_sni -i www.example.org }"""
    (p_tls, p_plain), (o1,), k = start(
        env, ["ssl crt %s crt %s" % (pki.default.pem, pki.www.pem), ""], fe=fe,
        tail="backend be2\n    server s1 %s\n" % o2.addr)
    c = TLSConn(p_tls, sni="www.example.org")
    r = c.request("GET", "/", host="www.example.org")
    h = echoed(r)
    assert r.status == 200 and origin_of(r) == "o2", r.body
    assert (h["x-tls"], h["x-sni"], h["x-proto"], h["x-cipher"], h.get("x-is-tls13")) == \
        (["1"], ["www.example.org"], ["TLSv1.3"], [c.cipher()], ["yes"]), h
    c.close()
    c = TLSConn(p_tls, sni="other.test", max_ver=V.TLSv1_2)
    r = c.request("GET", "/", host="other.test")
    h = echoed(r)
    assert r.status == 200 and origin_of(r) == "o1", r.body
    assert (h["x-tls"], h["x-sni"], h["x-proto"], h["x-cipher"], h.get("x-is-tls13")) == \
        (["1"], ["other.test"], ["TLSv1.2"], [c.cipher()], None), h
    c.close()
    assert tls_get(p_tls, sni="blocked.example.org", host="x").status == 403
    c = Conn(p_plain)
    r = c.request("GET", "/", host="www.example.org")
    h = echoed(r)
    assert r.status == 200 and origin_of(r) == "o1" and h["x-tls"] == ["0"], r.body
    assert "x-is-tls13" not in h, h
    c.close()


def test_ssl_samples_empty_on_plain_bind(env, pki):
    """On a plain connection the ssl_fc_* and ssl_c_* fetches find nothing: set-header writes an
    empty value, as HAProxy 2.6 does (checked against haproxy 2.6.12), not "-" (that is only
    for log lines)."""
    fe = """    http-request set-header X-SNI %[ssl_fc_sni]
    http-request set-header X-Proto %[ssl_fc_protocol]
    http-request set-header X-DN %[ssl_c_s_dn]"""
    (p_plain, p_tls), _, k = start(env, ["", "ssl crt %s" % pki.www.pem], fe=fe)
    c = Conn(p_plain)
    h = echoed(c.request("GET", "/"))
    c.close()
    assert (h.get("x-sni"), h.get("x-proto"), h.get("x-dn")) == ([""], [""], [""]), h
    h = echoed(tls_get(p_tls))
    assert (h.get("x-sni"), h.get("x-proto"), h.get("x-dn")) == (["www.example.org"], ["TLSv1.3"], [""]), h


def test_redirect_to_https_and_hsts(env, pki):
    """`redirect scheme https code 301 if !{ ssl_fc }` on the plain bind of the same frontend;
    Strict-Transport-Security added to TLS responses only."""
    fe = """    redirect scheme https code 301 if !{ ssl_fc }
    http-response set-header Strict-Transport-Security "max-age=31536000" if { ssl_fc }"""
    (p_plain, p_tls), _, k = start(env, ["", "ssl crt %s" % pki.www.pem], fe=fe)
    c = Conn(p_plain)
    r = c.request("GET", "/a/b?c=1", host="www.example.org")
    assert r.status == 301 and r.header("location") == "https://www.example.org/a/b?c=1", r.raw_head
    assert r.header("strict-transport-security") is None
    c.close()
    r = tls_get(p_tls, "/a/b?c=1")
    assert r.status == 200 and b"path /a/b?c=1" in r.body
    assert r.header("strict-transport-security") == "max-age=31536000", r.raw_head


def test_forwardfor_sets_x_forwarded_proto(env, pki):
    """keel's option forwardfor: X-Forwarded-Proto https on a TLS bind, http on a plain one,
    replacing what the client sent; X-Forwarded-For added as over HTTP."""
    (p_tls, p_plain), _, k = start(env, ["ssl crt %s" % pki.www.pem, ""],
                                   defaults="    option forwardfor")
    h = echoed(tls_get(p_tls, headers={"X-Forwarded-Proto": "http"}))
    assert h["x-forwarded-proto"] == ["https"], h
    assert h["x-forwarded-for"] == ["127.0.0.1"], h
    c = Conn(p_plain)
    h = echoed(c.request("GET", "/", headers={"X-Forwarded-Proto": "https"}))
    assert h["x-forwarded-proto"] == ["http"], h
    c.close()


# ---------------------------------------------------------------- configuration errors

def bad_config(pki, case):
    if case == "missing-crt":
        return "ssl crt %s" % pki.missing, pki.missing
    if case == "crt-without-key":
        return "ssl crt %s" % pki.certonly, pki.certonly
    if case == "key-mismatch":
        return "ssl crt %s" % pki.mismatch, pki.mismatch
    if case == "missing-crt-in-list":
        lst = os.path.join(pki.dir, "badlist.txt")
        with open(lst, "w") as f:
            f.write("%s\n%s www.example.org\n" % (pki.default.pem, pki.missing))
        return "ssl crt-list %s" % lst, pki.missing
    if case == "missing-crt-list":
        return "ssl crt-list %s" % (pki.missing + ".list"), pki.missing + ".list"
    if case == "missing-ca-file":
        return "ssl crt %s ca-file %s" % (pki.www.pem, pki.missing + ".ca"), pki.missing + ".ca"
    if case == "missing-crl-file":
        return ("ssl crt %s ca-file %s crl-file %s" % (pki.www.pem, pki.ca, pki.missing + ".crl"),
                pki.missing + ".crl")
    raise ValueError(case)


@pytest.mark.parametrize("case", ["missing-crt", "crt-without-key", "key-mismatch",
                                  "missing-crt-in-list", "missing-crt-list", "missing-ca-file",
                                  "missing-crl-file"])
def test_bad_tls_files_rejected_naming_the_file(env, pki, case):
    """keel -c refuses a bind whose files are missing or unusable, naming the file."""
    opts, path = bad_config(pki, case)
    rc, out = keel_check(env, config([(free_port(), opts)], ["127.0.0.1:9"]))
    assert rc != 0, out
    assert path in out, "the message should name %s:\n%s" % (path, out)
    assert "not implemented" not in out, out


def test_ssl_without_crt_rejected(env, pki):
    rc, out = keel_check(env, config([(free_port(), "ssl")], ["127.0.0.1:9"]))
    assert rc != 0, out
    assert "crt" in out.lower() or "certificate" in out.lower(), out
    assert "not implemented" not in out, out


def test_valid_tls_config_checks_ok(env, pki):
    """The checks above fail for the files, not for TLS: a correct TLS config passes keel -c."""
    lst = os.path.join(pki.dir, "goodlist.txt")
    with open(lst, "w") as f:
        f.write("%s\n%s list.example.com\n" % (pki.default.pem, pki.listed.pem))
    binds = [(free_port(), "ssl crt %s crt %s alpn http/1.1 ssl-min-ver TLSv1.2" % (pki.www.pem, pki.www_rsa.pem)),
             (free_port(), "ssl crt-list %s ca-file %s verify optional crl-file %s" % (lst, pki.ca, pki.crl)),
             (free_port(), "ssl crt %s ciphers ECDHE-ECDSA-AES128-GCM-SHA256 ciphersuites "
              "TLS_AES_128_GCM_SHA256 curves X25519:P-256" % pki.chain.pem)]
    rc, out = keel_check(env, config(binds, ["127.0.0.1:9"],
                                     glob="    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets\n"
                                          "    ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256\n"
                                          "    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256\n"
                                          "    ssl-default-bind-curves X25519"))
    assert rc == 0, out


# ---------------------------------------------------------------- bad clients

def test_plaintext_http_to_tls_port_is_closed(env, pki):
    """A plain HTTP request on the TLS port: the connection is closed without an HTTP answer,
    and TLS clients are still served."""
    (port,), _, k = start(env, ["ssl crt %s" % pki.www.pem])
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: www.example.org\r\n\r\n")
        data, closed, end = b"", False, time.time() + 5
        s.settimeout(0.5)
        while time.time() < end:
            try:
                d = s.recv(4096)
            except socket.timeout:
                continue
            except ConnectionResetError:
                closed = True
                break
            if not d:
                closed = True
                break
            data += d
        s.close()
        assert closed, "the TLS port kept a plain text connection open (got %r)" % data
        assert not data.startswith(b"HTTP/"), data
    assert k.alive()
    assert tls_get(port).status == 200


def test_stalled_handshakes_do_not_block_other_clients(env, pki):
    """Clients that connect and send nothing, send half a ClientHello, or send a whole
    ClientHello and then stop, do not delay other clients."""
    (port,), _, k = start(env, ["ssl crt %s" % pki.www.pem])
    hello = partial_client_hello()
    assert len(hello) > 100 and hello[0] == 0x16
    stalled = []
    for i in range(30):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if i % 3 == 1:
            s.sendall(hello[:len(hello) // 2])
        elif i % 3 == 2:
            s.sendall(hello)
        stalled.append(s)
    time.sleep(0.2)
    for i in range(10):
        t0 = time.monotonic()
        r = tls_get(port, "/other%d" % i, timeout=3)
        assert r.status == 200
        assert time.monotonic() - t0 < 1.5, "a request took %.2fs" % (time.monotonic() - t0)
    for s in stalled:
        s.close()
    assert k.alive()


def test_stalled_handshake_closed_by_client_timeout(env, pki):
    """A client that stops in the middle of its handshake is closed by the timeouts (HAProxy's
    handshake timeout defaults to `timeout client`, keel documents `timeout http-request`:
    both are 1 s here)."""
    (port,), _, k = start(env, ["ssl crt %s" % pki.www.pem],
                          defaults="    timeout client 1s\n    timeout http-request 1s")
    hello = partial_client_hello()
    half = socket.create_connection(("127.0.0.1", port), timeout=5)
    half.sendall(hello[:len(hello) // 2])
    whole = socket.create_connection(("127.0.0.1", port), timeout=5)
    whole.sendall(hello)
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    t0 = time.monotonic()
    for s in (half, whole, idle):
        s.settimeout(max(0.1, t0 + 6 - time.monotonic()))
        try:
            while s.recv(65536):
                pass  # the server's hello, an alert
        except ConnectionResetError:
            pass
        except socket.timeout:
            pytest.fail("a stalled handshake is still open after %.1fs" % (time.monotonic() - t0))
        s.close()
    assert time.monotonic() - t0 < 4
    assert tls_get(port).status == 200


def test_garbage_flood_does_not_crash(env, pki):
    """Random bytes, TLS record headers with garbage and ClientHellos followed by garbage, on
    many connections at once: keel stays up and serves TLS clients."""
    (port,), _, k = start(env, ["ssl crt %s" % pki.www.pem])
    rnd = random.Random(1234)
    hello = partial_client_hello()
    payloads = []
    for i in range(60):
        junk = bytes(rnd.getrandbits(8) for _ in range(rnd.choice((10, 300, 5000))))
        kind = i % 4
        if kind == 0:
            payloads.append(junk * 4)
        elif kind == 1:
            payloads.append(b"\x16\x03\x01\xff\xff" + junk)  # a huge handshake record
        elif kind == 2:
            payloads.append(hello + junk)  # a valid hello, then garbage
        else:
            payloads.append(b"\x16\x03\x03\x00\x05\x01\x00\x00\x01\x00" + junk)  # a tiny hello

    def blast(chunk):
        for p in chunk:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    s.sendall(p)
                    s.shutdown(socket.SHUT_WR)
                    s.recv(65536)
            except OSError:
                pass

    threads = [threading.Thread(target=blast, args=(payloads[i::6],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert k.alive(), k.output()[-2000:]
    for _ in range(5):
        assert tls_get(port).status == 200


# ---------------------------------------------------------------- HTTP features through TLS

def test_round_robin_and_keepalive_over_https(env, pki):
    """roundrobin over 2 origins through TLS, per connection and on one keep-alive connection."""
    (port,), (o1, o2), k = start(env, ["ssl crt %s" % pki.www.pem], n=2)
    names = [origin_of(tls_get(port)) for _ in range(6)]
    assert names[0] != names[1] and names[::2] == [names[0]] * 3 and names[1::2] == [names[1]] * 3, names
    c = TLSConn(port, sni="www.example.org")
    names = [origin_of(c.request("GET", "/")) for _ in range(10)]
    assert sorted(names) == ["o1"] * 5 + ["o2"] * 5, names
    c.close()


def test_pipelining_and_large_bodies_over_https(env, pki):
    """Pipelined requests, and bodies larger than a TLS record (16 KB) both ways: 1 MB up,
    17 KB, 2 MB and 300 KB chunked down, all on one TLS connection."""
    (port,), _, k = start(env, ["ssl crt %s" % pki.www.pem])
    c = TLSConn(port, sni="www.example.org")
    try:
        c.send(b"".join(b"GET /p%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(10)))
        for i in range(10):
            r = c.read_response()
            assert r.status == 200 and b"path /p%d\n" % i in r.body
        body = bytes(range(256)) * 4000  # ~1 MB up
        r = c.request("POST", "/upload", body=body)
        assert r.status == 200 and b"body_len %d" % len(body) in r.body
        for size in (17000, 2000000):
            r = c.request("GET", "/?size=%d" % size)
            assert r.status == 200 and len(r.body) == size
        r = c.request("GET", "/?size=300000&chunked=1")
        assert r.status == 200 and len(r.body) == 300000
    finally:
        c.close()


def test_connection_close_over_https_ends_with_close_notify(env, pki):
    """`Connection: close` and a close-delimited response over TLS: the whole response arrives
    and the connection ends with a TLS close_notify (a bare TCP close would be a truncation)."""
    (port,), _, k = start(env, ["ssl crt %s" % pki.www.pem])
    c = TLSConn(port, sni="www.example.org", strict_eof=True)
    r = c.request("GET", "/", headers={"Connection": "close"})
    assert r.status == 200 and r.header("connection", "").lower() == "close"
    c.sock.settimeout(5)
    assert c.sock.recv(1) == b""  # SSLEOFError without close_notify
    c.close()
    c = TLSConn(port, sni="www.example.org", strict_eof=True)
    c.send(b"GET /?nolength=1&size=10000 HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    while True:
        d = c.sock.recv(65536)
        if not d:
            break
        data += d
    c.close()
    head, body = data.split(b"\r\n\r\n", 1)
    assert b" 200 " in head.split(b"\r\n")[0] and len(body) == 10000, (head, len(body))


def test_concurrent_tls_clients(env, pki):
    """40 TLS clients at once (new handshakes, keep-alive requests, both threads of keel): all
    answered correctly."""
    (port,), (o1, o2), k = start(env, ["ssl crt %s crt %s" % (pki.www.pem, pki.www_rsa.pem)], n=2)
    errors, done = [], []

    def client(i):
        try:
            for _ in range(3):
                kw = {"max_ver": V.TLSv1_2} if i % 2 else {}
                c = TLSConn(port, sni="www.example.org", ca=pki.ca, check_hostname=True, **kw)
                for j in range(4):
                    r = c.request("GET", "/c%d-%d" % (i, j))
                    assert r.status == 200 and b"path /c%d-%d\n" % (i, j) in r.body, r.status
                c.close()
            done.append(i)
        except Exception as e:  # reported below
            errors.append("client %d: %r" % (i, e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:5]
    assert len(done) == 40


def test_cookie_insert_persistence_over_https(env, pki):
    """cookie SRV insert: the inserted cookie keeps the user on its server through HTTPS."""
    a, b = env.origin("a"), env.origin("b")
    port = free_port()
    cfg = config([(port, "ssl crt %s" % pki.www.pem)],
                 [("s1", a.addr, "cookie a"), ("s2", b.addr, "cookie b")],
                 be="    cookie SRV insert indirect nocache")
    run_keel(env, cfg, [port])
    r = tls_get(port)
    name = origin_of(r)
    assert r.header("set-cookie") == "SRV=%s; path=/" % name, r.raw_head
    c = TLSConn(port, sni="www.example.org")
    for _ in range(6):
        r = c.request("GET", "/", headers={"Cookie": "SRV=%s" % name})
        assert origin_of(r) == name and r.header("set-cookie") is None
    c.close()
    other = "b" if name == "a" else "a"
    for _ in range(4):
        assert origin_of(tls_get(port, headers={"Cookie": "SRV=%s" % other})) == other


def test_health_checks_with_https_frontend(env, pki):
    """Active checks work the same behind a TLS bind: a dead server goes DOWN on the stats page
    and every HTTPS request is served by the other."""
    (p_tls, p_plain), (o1, o2), k = start(
        env, ["ssl crt %s" % pki.www.pem, ""], n=2, fe="    stats uri /stats",
        be="    default-server check inter 100ms fall 1 rise 1")
    assert wait_for(lambda: all(r["status"] == "UP" for r in stats_rows(p_plain).values()), 5)
    assert sorted(origin_of(tls_get(p_tls)) for _ in range(4)) == ["o1", "o1", "o2", "o2"]
    o2.stop(signal.SIGKILL)
    assert wait_for(lambda: stats_rows(p_plain)["s2"]["status"].startswith("DOWN"), 5), \
        stats_rows(p_plain)["s2"]
    for _ in range(6):
        r = tls_get(p_tls)
        assert r.status == 200 and origin_of(r) == "o1"


def test_httplog_line_for_tls_request(env, pki):
    """option httplog: a TLS request is logged like an HTTP one, its frontend as `fe~` (%ft:
    the frontend name with HAProxy's `~` for TLS); the plain bind's line says `fe`."""
    o = env.origin("webA")
    p_tls, p_plain = free_port(), free_port()
    k = run_keel(env, config([(p_tls, "ssl crt %s" % pki.www.pem), (p_plain, "")],
                        [("webA", o.addr, "")]), [p_tls, p_plain])
    assert tls_get(p_tls, "/tls/path?x=1").status == 200
    c = Conn(p_plain)
    assert c.request("GET", "/plain").status == 200
    c.close()
    l_tls = log_line(k, '"GET /tls/path?x=1 HTTP/1.1"')
    assert l_tls.startswith("127.0.0.1:") and " 200 " in l_tls, l_tls
    assert " fe~ be/webA " in l_tls, l_tls
    l_plain = log_line(k, '"GET /plain HTTP/1.1"')
    assert " fe be/webA " in l_plain, l_plain


def test_log_format_with_ssl_samples(env, pki):
    """log-format with %[ssl_fc] %[ssl_fc_sni] %[ssl_fc_protocol] %[ssl_fc_cipher]."""
    o = env.origin()
    port = free_port()
    k = run_keel(env, """defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    log stdout format raw local0
    log-format "TLS %%ST %%[ssl_fc] %%[ssl_fc_sni] %%[ssl_fc_protocol] %%[ssl_fc_cipher] %%HU"
frontend fe
    bind 127.0.0.1:%d ssl crt %s crt %s
    default_backend be
backend be
    server s1 %s
""" % (port, pki.default.pem, pki.www.pem, o.addr), [port])
    c = TLSConn(port, sni="www.example.org", max_ver=V.TLSv1_2)
    assert c.request("GET", "/logged").status == 200
    cipher = c.cipher()
    c.close()
    line = log_line(k, "/logged")
    assert line == "TLS 200 1 www.example.org TLSv1.2 %s /logged" % cipher, line


def test_log_format_sslv_sslc(env, pki):
    """%sslv and %sslc log the TLS version and cipher of the client connection ("-" on a
    plain one)."""
    o = env.origin()
    p_tls, p_plain = free_port(), free_port()
    k = run_keel(env, """defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    log stdout format raw local0
    log-format "V %%sslv %%sslc %%HU"
frontend fe
    bind 127.0.0.1:%d ssl crt %s
    bind 127.0.0.1:%d
    default_backend be
backend be
    server s1 %s
""" % (p_tls, pki.www.pem, p_plain, o.addr), [p_tls, p_plain])
    c = TLSConn(p_tls, sni="www.example.org")
    assert c.request("GET", "/v13").status == 200
    cipher13 = c.cipher()
    c.close()
    c = TLSConn(p_tls, sni="www.example.org", max_ver=V.TLSv1_2)
    assert c.request("GET", "/v12").status == 200
    cipher12 = c.cipher()
    c.close()
    c = Conn(p_plain)
    assert c.request("GET", "/plain").status == 200
    c.close()
    assert log_line(k, "/v13") == "V TLSv1.3 %s /v13" % cipher13
    assert log_line(k, "/v12") == "V TLSv1.2 %s /v12" % cipher12
    assert log_line(k, "/plain") == "V - - /plain"


def test_reload_renews_certificate_and_does_not_pass_tls_connections(env, pki):
    """Not HAProxy syntax but keel's reload (docs/admin.md, "Reload"): a SIGUSR2 reload loads
    the certificate file again (renewal), and TLS connections, whose keys are in the old
    process, are not passed to the new one: the old process answers the next request of each
    (a connection that did its handshake but sent no request yet, an idle keep-alive one) with
    `Connection: close`, never garbled, then exits."""
    o = env.origin("o1")
    port = free_port()
    pem = os.path.join(env.dir, "site.pem")
    shutil.copy(pki.www.pem, pem)
    sock, pidfile = os.path.join(env.dir, "admin.sock"), os.path.join(env.dir, "keel.pid")

    def cfg(gen):
        return config([(port, "ssl crt %s" % pem)], [o.addr], logs=False,
                      glob="    stats socket %s\n    pidfile %s" % (sock, pidfile),
                      fe="    http-response set-header X-Gen %s" % gen)

    k = run_keel(env, cfg("g0"), [port])
    assert wait_for(lambda: os.path.exists(pidfile) and open(pidfile).read().strip() == str(k.p.pid), 5)
    idle = []
    for _ in range(5):
        c = TLSConn(port, sni="www.example.org")
        r = c.request("GET", "/")
        assert r.status == 200 and r.header("x-gen") == "g0" and c.peer_der() == pki.www.der
        idle.append(c)
    fresh = [TLSConn(port, sni="www.example.org") for _ in range(3)]
    shutil.copy(pki.www_rsa.pem, pem)  # the renewed certificate (another key, same name)
    with open(k.cfg_path, "w") as f:
        f.write(cfg("g1"))
    os.kill(k.p.pid, signal.SIGUSR2)
    assert wait_for(lambda: open(pidfile).read().strip() not in ("", str(k.p.pid)), 10), \
        "no new process:\n" + k.output()[-2000:]

    def new_gen():
        try:
            c = TLSConn(port, sni="www.example.org")
            der = c.peer_der()
            r = c.request("GET", "/")
            c.close()
            return r.header("x-gen") == "g1" and der == pki.www_rsa.der
        except (OSError, EOFError):
            return False
    assert wait_for(new_gen, 10), "the new process does not serve the renewed certificate"
    for c in fresh + idle:
        r = c.request("GET", "/")
        assert r.status == 200 and r.header("x-gen") == "g0", r.raw_head
        assert r.header("connection", "").lower() == "close", r.raw_head
        assert c.closed_by_peer()
        c.close()
    k.p.wait(10)  # the old process is done once its TLS connections are


# ---------------------------------------------------------------- the seed configuration

def seed_path():
    for p in (os.path.join(ROOT, "examples", "seed-haproxy.cfg"),
              os.path.join(ROOT, "..", "shared", "examples", "seed-haproxy.cfg")):
        if os.path.exists(p):
            return p
    pytest.fail("seed-haproxy.cfg not found in examples/ or ../shared/examples/")


def test_seed_config_with_tls_bind(env, pki):
    """The seed configuration (ports, paths and daemon settings adapted as bench/faults does)
    with `bind 127.0.0.1:PORT ssl crt FILE` added to its listen section serves HTTPS: round
    robin, X-Forwarded-For, the stats page with its credentials; its HTTP port still works."""
    web_a, web_b = env.origin("webA"), env.origin("webB")
    p_http, p_tls = free_port(), free_port()
    out, servers, listen = [], [web_a, web_b], False
    with open(seed_path()) as f:
        for line in f.read().splitlines():
            w = line.split()
            if w and w[0] in ("chroot", "user", "group", "daemon"):
                continue
            if w and w[0] == "pidfile":
                line = "pidfile %s" % os.path.join(env.dir, "keel.pid")
            elif w and w[0] == "listen" and len(w) == 3:
                out.append("listen %s 127.0.0.1:%d" % (w[1], p_http))
                out.append("bind 127.0.0.1:%d ssl crt %s" % (p_tls, pki.www.pem))
                listen = True
                continue
            elif w and w[0] == "server":
                assert servers, "the seed config has more than 2 servers"
                line = re.sub(r"(\s)\S*:\d+", r"\g<1>%s" % servers.pop(0).addr, line, count=1)
            out.append(line)
    assert listen and not servers, "the seed config changed: no listen line or fewer servers"
    run_keel(env, "\n".join(out) + "\n", [p_http, p_tls])
    names = [origin_of(tls_get(p_tls, "/name")) for _ in range(6)]
    assert names in (["webA", "webB"] * 3, ["webB", "webA"] * 3), names
    h = echoed(tls_get(p_tls))
    assert h["x-forwarded-for"] == ["127.0.0.1"], h
    assert tls_get(p_tls, "/haproxy-status").status == 401
    import base64
    auth = "Basic " + base64.b64encode(b"username:password").decode()
    r = tls_get(p_tls, "/haproxy-status", headers={"Authorization": auth})
    assert r.status == 200 and b"webA" in r.body and b"webB" in r.body
    r = curl(["--cacert", pki.ca, "--resolve", "www.example.org:%d:127.0.0.1" % p_tls,
              "https://www.example.org:%d/" % p_tls])
    assert r.returncode == 0 and "origin web" in r.stdout, r.stderr
    c = Conn(p_http)
    assert c.request("GET", "/").status == 200
    c.close()
