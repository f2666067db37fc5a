"""Certificates and TLS clients for the TLS system tests (test_tls.py).

PKI(dir) generates, with the openssl command line tool, a local root CA, an intermediate CA,
server certificates (ECDSA P-256 and RSA 2048, exact, wildcard, CN-only and multi-SAN names, one
issued by the intermediate), client certificates (trusted, revoked, untrusted) and a CRL. Each
server certificate is written as one PEM file: certificate, chain, private key (HAProxy's `crt`
format), plus broken files for the configuration error tests.

The clients: tls_socket() (Python's ssl module with the knobs the tests need), TLSConn (conftest's
exact HTTP/1.1 reader over TLS), s_client() (openssl s_client for what Python cannot do: TLS 1.3
signature algorithms, groups), curl()."""
import os
import shutil
import socket
import ssl
import subprocess
import warnings

import pytest

from conftest import Conn

MIN_CNF = "[req]\ndistinguished_name = dn\n[dn]\n"


def need(tool):
    """The path of a command line tool; fails the test (no skip) when it is missing."""
    path = shutil.which(tool)
    if not path:
        pytest.fail("%s is not installed: the TLS tests need it (apt-get install %s)" % (tool, tool))
    return path


def run(args, cwd, input=None):
    r = subprocess.run(args, cwd=cwd, capture_output=True, text=True, input=input, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r.stdout


class Cert:
    """One generated certificate: .crt (the certificate alone), .key, .pem (certificate, chain,
    key in one file), .der (the certificate's DER bytes, to compare with what a server sent)."""

    def __init__(self, pki, name):
        self.name = name
        self.crt = os.path.join(pki.dir, name + ".crt")
        self.key = os.path.join(pki.dir, name + ".key")
        self.pem = os.path.join(pki.dir, name + ".pem")
        with open(self.crt) as f:
            self.der = ssl.PEM_cert_to_DER_cert(f.read())

    def __repr__(self):
        return "<cert %s>" % self.name


class PKI:
    def __init__(self, dir):
        need("openssl")
        self.dir = dir
        self.cnf = os.path.join(dir, "min.cnf")
        with open(self.cnf, "w") as f:
            f.write(MIN_CNF)
        self.certs = {}
        # the root CA (RSA 2048) and an intermediate CA (ECDSA) under it
        self._make("ca", "rsa", "/O=keel tests/CN=keel test root", None,
                   ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"])
        self._make("inter", "ec", "/O=keel tests/CN=keel test intermediate", "ca",
                   ["basicConstraints=critical,CA:TRUE,pathlen:0",
                    "keyUsage=critical,keyCertSign,cRLSign"])
        self.ca = os.path.join(dir, "ca.crt")
        srv = ["basicConstraints=CA:FALSE", "extendedKeyUsage=serverAuth"]
        cli = ["basicConstraints=CA:FALSE", "extendedKeyUsage=clientAuth"]

        def server(name, kind, cn, sans, issuer="ca"):
            ext = list(srv)
            if sans:
                ext.append("subjectAltName=" + ",".join("DNS:" + s for s in sans))
            return self._make(name, kind, "/O=keel tests/CN=" + cn, issuer, ext)

        self.default = server("default", "ec", "default.test", ["default.test"])
        self.www = server("www", "ec", "www.example.org", ["www.example.org"])
        self.www_rsa = server("www_rsa", "rsa", "www.example.org", ["www.example.org"])
        self.wild = server("wild", "ec", "*.example.org", ["*.example.org"])
        self.cnonly = server("cnonly", "ec", "cn.example.com", None)
        self.multi = server("multi", "ec", "a.example.com", ["a.example.com", "b.example.com"])
        self.listed = server("listed", "ec", "listed.example.org", ["listed.example.org"])
        self.chain = server("chain", "ec", "chain.example.org", ["chain.example.org"], issuer="inter")
        # client certificates: alice (trusted), mallory (trusted issuer, revoked), eve (self-signed)
        self.alice = self._make("alice", "ec", "/O=keel tests/CN=alice", "ca", cli)
        self.mallory = self._make("mallory", "ec", "/O=keel tests/CN=mallory", "ca", cli)
        self.eve = self._make("eve", "ec", "/O=keel tests/CN=eve", None, cli)
        self.crl = self._crl([self.mallory])
        # broken files for the configuration checks
        self.certonly = os.path.join(dir, "certonly.pem")
        shutil.copy(self.www.crt, self.certonly)
        self.mismatch = os.path.join(dir, "mismatch.pem")
        with open(self.mismatch, "w") as f:
            f.write(open(self.www.crt).read() + open(self.default.key).read())
        self.missing = os.path.join(dir, "no-such-cert.pem")
        # the same chain certificate with the key first: PEM blocks may come in any order
        self.keyfirst = os.path.join(dir, "keyfirst.pem")
        with open(self.keyfirst, "w") as f:
            f.write(open(self.chain.key).read() + open(self.chain.crt).read()
                    + open(os.path.join(dir, "inter.crt")).read())

    def _make(self, name, kind, subj, issuer, exts):
        key = os.path.join(self.dir, name + ".key")
        crt = os.path.join(self.dir, name + ".crt")
        args = ["openssl", "req", "-x509", "-config", self.cnf, "-nodes", "-keyout", key,
                "-out", crt, "-days", "3650", "-subj", subj, "-sha256"]
        if kind == "rsa":
            args += ["-newkey", "rsa:2048"]
        else:
            args += ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        if issuer:
            args += ["-CA", os.path.join(self.dir, issuer + ".crt"),
                     "-CAkey", os.path.join(self.dir, issuer + ".key")]
        for e in exts:
            args += ["-addext", e]
        run(args, self.dir)
        # the HAProxy crt file: certificate, then the chain up to (not including) the root, key
        parts = [open(crt).read()]
        if issuer == "inter":
            parts.append(open(os.path.join(self.dir, "inter.crt")).read())
        parts.append(open(key).read())
        with open(os.path.join(self.dir, name + ".pem"), "w") as f:
            f.write("".join(parts))
        c = Cert(self, name)
        self.certs[name] = c
        return c

    def _crl(self, revoked):
        d = os.path.join(self.dir, "cadb")
        os.makedirs(d, exist_ok=True)
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "crlnumber"), "w") as f:
            f.write("1000\n")
        cnf = os.path.join(d, "ca.cnf")
        with open(cnf, "w") as f:
            f.write("""[ca]
default_ca = CA_default
[CA_default]
database = %(d)s/index.txt
crlnumber = %(d)s/crlnumber
certificate = %(dir)s/ca.crt
private_key = %(dir)s/ca.key
default_md = sha256
default_crl_days = 3650
""" % {"d": d, "dir": self.dir})
        for c in revoked:
            run(["openssl", "ca", "-config", cnf, "-revoke", c.crt], self.dir)
        out = os.path.join(self.dir, "crl.pem")
        run(["openssl", "ca", "-config", cnf, "-gencrl", "-out", out], self.dir)
        return out

    def crt_dir(self, name, files):
        """A directory holding copies of the given PEM files under the given names."""
        d = os.path.join(self.dir, name)
        os.makedirs(d, exist_ok=True)
        for fname, cert in files.items():
            shutil.copy(cert.pem, os.path.join(d, fname))
        return d

    def which(self, der):
        """The name of the generated certificate whose DER bytes are der (None if none)."""
        for name, c in self.certs.items():
            if c.der == der:
                return name
        return None


# ---- clients ----

def client_context(ca=None, check_hostname=False, min_ver=None, max_ver=None, ciphers=None,
                   alpn=None, cert=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca:
        ctx.load_verify_locations(ca)
        ctx.check_hostname = check_hostname
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1/TLSv1_1 on purpose
        if min_ver is not None:
            ctx.minimum_version = min_ver
        if max_ver is not None:
            ctx.maximum_version = max_ver
    if ciphers:
        ctx.set_ciphers(ciphers)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if cert is not None:
        ctx.load_cert_chain(cert.crt, cert.key)
    return ctx


def tls_socket(port, sni=None, timeout=5.0, strict_eof=False, **kw):
    """A TLS connection to 127.0.0.1:port with the handshake done (raises ssl.SSLError or
    OSError when it fails). sni=None sends no server name. strict_eof: a close without TLS
    close_notify raises ssl.SSLEOFError instead of reading as the end."""
    ctx = client_context(**kw)
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=sni, suppress_ragged_eofs=not strict_eof)
    except BaseException:
        raw.close()
        raise


class TLSConn(Conn):
    """conftest.Conn (exact HTTP/1.1 responses) over a TLS connection."""

    def __init__(self, port, sni=None, timeout=5.0, **kw):
        self.sock = tls_socket(port, sni=sni, timeout=timeout, **kw)
        self.buf = b""
        self.timeout = timeout

    def peer_der(self):
        return self.sock.getpeercert(binary_form=True)

    def version(self):
        return self.sock.version()

    def cipher(self):
        return self.sock.cipher()[0]


def handshake_fails(port, **kw):
    """True when a TLS client with these settings cannot get an HTTP answer from port: the
    handshake fails, or (TLS 1.3, where a server refuses a client certificate after the client's
    handshake is done) the connection ends with an alert or a close instead of a response.
    Returns the reason (a true string), or False when a response came."""
    try:
        c = TLSConn(port, **kw)
    except (ssl.SSLError, ConnectionError) as e:
        return "handshake: %r" % e
    try:
        r = c.request("GET", "/")
        return False if r is not None else "no response"
    except (ssl.SSLError, ConnectionError, EOFError) as e:
        return "after handshake: %r" % e
    except socket.timeout:
        return False  # neither refused nor answered: not a clean refusal
    finally:
        c.close()


def s_client(port, args=(), sni=None, input="", timeout=10):
    """Runs openssl s_client against 127.0.0.1:port with extra args; returns (exit status,
    stdout+stderr, the DER bytes of the server's certificate or None)."""
    need("openssl")
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port]
    if sni:
        cmd += ["-servername", sni]
    else:
        cmd += ["-noservername"]
    cmd += list(args)
    r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    out = r.stdout + r.stderr
    der = None
    if "-----BEGIN CERTIFICATE-----" in r.stdout:
        pem = r.stdout[r.stdout.index("-----BEGIN CERTIFICATE-----"):]
        pem = pem[:pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
        der = ssl.PEM_cert_to_DER_cert(pem + "\n")
    return r.returncode, out, der


def curl(args, timeout=15):
    """Runs curl with args; returns the CompletedProcess (text)."""
    need("curl")
    return subprocess.run(["curl", "-sS", "--max-time", "10"] + list(args), capture_output=True,
                          text=True, timeout=timeout)


def partial_client_hello(sni="www.example.org"):
    """The bytes of a real TLS ClientHello (from Python's ssl over memory BIOs)."""
    ctx = client_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()
