"""ACME: keel obtains and renews its certificate from a real ACME server on loopback, Debian's
pebble, answering the HTTP-01 challenges on its own HTTP bind, and serves it without a reload.
pebble resolves every name to 127.0.0.1 through pebble-challtestsrv's DNS stub, and connects to
keel's HTTP bind (its httpPort) to validate. pebble's own HTTPS certificate comes from a test CA
made here, which keel trusts through httpclient.ssl.ca-file."""
import json
import os
import signal
import re
import socket
import ssl
import stat
import subprocess
import time

import pytest

from conftest import KEEL, Proc, free_port, wait_for, wait_port

DOMAINS = ["acme.test", "www.acme.test"]


def run(*args):
    subprocess.run(args, check=True, capture_output=True)


def pebble_pki(d):
    """A CA and pebble's HTTPS certificate for 127.0.0.1 and localhost, signed by it."""
    ca, cak = os.path.join(d, "pebble-ca.pem"), os.path.join(d, "pebble-ca.key")
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", cak, "-out", ca, "-days", "2", "-subj", "/CN=pebble test CA")
    ext = os.path.join(d, "pebble-ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    key, csr, crt = (os.path.join(d, n) for n in ("pebble.key", "pebble.csr", "pebble.crt"))
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cak, "-CAcreateserial",
        "-out", crt, "-days", "2", "-extfile", ext)
    return ca, crt, key


class Pebble:
    """pebble and its DNS stub (pebble-challtestsrv, every name -> 127.0.0.1)."""

    def __init__(self, env, http_port, validity=3600):
        self.env = env
        self.port = free_port()
        self.http_port = http_port
        self.dns_port = free_port()
        self.ca, crt, key = pebble_pki(env.dir)
        self.cfg = os.path.join(env.dir, "pebble.json")
        with open(self.cfg, "w") as f:
            json.dump({"pebble": {
                "listenAddress": "127.0.0.1:%d" % self.port,
                "managementListenAddress": "127.0.0.1:%d" % free_port(),
                "certificate": crt, "privateKey": key,
                "httpPort": http_port, "tlsPort": free_port(),
                "ocspResponderURL": "", "externalAccountBindingRequired": False,
                "certificateValidityPeriod": validity}}, f)
        self.dns = None
        self.proc = None

    @property
    def directory(self):
        return "https://127.0.0.1:%d/dir" % self.port

    def start(self):
        if self.dns is None:
            self.dns = self.env.proc("challtestsrv", [
                "pebble-challtestsrv", "-dns01", "127.0.0.1:%d" % self.dns_port, "-http01", "",
                "-https01", "", "-tlsalpn01", "", "-management", "127.0.0.1:%d" % free_port(),
                "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            wait_for(lambda: "Answering" in self.dns.output() or "Starting" in self.dns.output(),
                     timeout=5)
        # No random sleep before validations; pebble's nonce rejections (5%) stay on.
        self.proc = Proc("pebble", [
            "pebble", "-config", self.cfg, "-dnsserver", "127.0.0.1:%d" % self.dns_port],
            self.env.dir, env=dict(os.environ, PEBBLE_VA_NOSLEEP="1"))
        self.env.procs.append(self.proc)
        wait_port(self.port, proc=self.proc.p, timeout=15)
        return self

    def stop(self):
        self.proc.stop()


def start_pebble(env, http_port, **kw):
    return Pebble(env, http_port, **kw).start()


def keel_config(d, pb_directory, ca, http_port, https_port, origin, crt, extra_acme=""):
    return """global
    nbthread 2
    httpclient.ssl.ca-file %(ca)s
    expose-experimental-directives

acme pebble
    directory %(dir)s
    account-key %(d)s/acme.account.key
    contact admin@acme.test
    challenge HTTP-01
    keytype ECDSA
    curves P-256
%(extra)s

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    log stdout format raw local0

frontend www
    bind 127.0.0.1:%(http)d
    bind 127.0.0.1:%(https)d ssl crt %(crt)s acme pebble domains %(domains)s
    default_backend web

backend web
    server o %(origin)s
""" % {"ca": ca, "dir": pb_directory, "d": d, "extra": extra_acme, "http": http_port,
       "https": https_port, "crt": crt, "domains": ",".join(DOMAINS), "origin": origin}


def served(port, name="acme.test"):
    """The certificate keel serves for name: (serial, issuer, subject) from openssl, or None."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            with ctx.wrap_socket(s, server_hostname=name) as t:
                der = t.getpeercert(binary_form=True)
    except OSError:
        return None
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-serial", "-issuer", "-subject"],
                         input=pem, capture_output=True, text=True, check=True).stdout
    f = dict(line.split("=", 1) for line in out.strip().splitlines())
    return f["serial"], f["issuer"], f["subject"]


def file_serial(path):
    try:
        out = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", path],
                             capture_output=True, text=True).stdout
    except OSError:
        return None
    return out.strip().split("=", 1)[1] if "=" in out else None


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_acme_issue_then_renew_without_reload(env):
    http_port, https_port = free_port(), free_port()
    origin = env.origin()
    pb = start_pebble(env, http_port)
    crt = os.path.join(env.dir, "certs", "site.pem")
    os.makedirs(os.path.dirname(crt))
    # renew-before close to pebble's validity (1 h): a renewal about 20 s after the first one.
    k = env.keel(keel_config(env.dir, pb.directory, pb.ca, http_port, https_port, origin.addr,
                             crt, "    renew-before 3580s\n    retry-delay 1s"),
                 ports=[http_port, https_port])
    pid = k.p.pid
    # keel started without the file: a temporary self-signed certificate for the names.
    assert "temporary self-signed certificate" in k.output()
    assert mode(crt) == 0o600

    # pebble validates through keel's HTTP bind, issues; keel writes the file, then serves it.
    first = wait_for(lambda: "Pebble Intermediate" in (served(https_port) or ("", "", ""))[1]
                     and served(https_port), timeout=30, step=0.2)
    assert first, "not served: %r\n%s\n%s" % (served(https_port), k.output(), pb.proc.output())
    serial, issuer, subject = first
    assert "acme.test" in subject
    assert file_serial(crt) == serial
    assert mode(crt) == 0o600
    assert mode(os.path.join(env.dir, "acme.account.key")) == 0o600
    assert not [f for f in os.listdir(os.path.dirname(crt)) if f != "site.pem"]
    assert "new certificate for acme.test" in k.output()
    served_www = served(https_port, "www.acme.test")
    assert served_www and served_www[0] == serial
    # HTTP keeps working on both binds.
    out = subprocess.run(["curl", "-sk", "--resolve", "acme.test:%d:127.0.0.1" % https_port,
                          "https://acme.test:%d/" % https_port], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr

    # Renewal: a new certificate, another serial, with no reload.
    second = wait_for(lambda: (served(https_port) or (serial,))[0] != serial and
                      served(https_port), timeout=60, step=0.5)
    assert second and second[0] != serial, k.output()
    assert "Pebble Intermediate" in second[1]
    assert "expires soon" in k.output()
    assert k.p.pid == pid and k.alive()
    assert "reload" not in k.output().lower()
    assert mode(crt) == 0o600


def test_acme_authority_down_then_up(env):
    """pebble down at start: keel serves the temporary certificate, logs its retries with a
    growing delay, and gets its certificate once pebble is up."""
    http_port, https_port = free_port(), free_port()
    origin = env.origin()
    pb = Pebble(env, http_port)
    crt = os.path.join(env.dir, "site.pem")
    k = env.keel(keel_config(env.dir, pb.directory, pb.ca, http_port, https_port, origin.addr,
                             crt, "    retry-delay 1s"),
                 ports=[http_port, https_port])
    retries = wait_for(lambda: re.findall(r"retrying in (\d+) s \(failure (\d+)\)", k.output()),
                       timeout=10)
    assert retries, k.output()
    wait_for(lambda: len(re.findall(r"retrying in", k.output())) >= 3, timeout=15)
    found = re.findall(r"retrying in (\d+) s \(failure (\d+)\)", k.output())
    assert [int(d) for d, _ in found[:3]] == [1, 2, 4], k.output()
    assert "cannot connect to 127.0.0.1" in k.output()
    s = served(https_port)
    assert s and "keel temporary certificate" in s[1], s
    pb.start()
    got = wait_for(lambda: "Pebble Intermediate" in (served(https_port) or ("", "", ""))[1],
                   timeout=40, step=0.3)
    assert got, k.output()
    assert k.alive()


@pytest.mark.parametrize("acme_lines,bind_extra,message", [
    ("    contact a@b.test\n", "acme LE domains a.test", "has no 'directory'"),
    ("    directory https://127.0.0.1:1/dir\n", "acme other domains a.test",
     "no acme section named 'other'"),
    ("    directory https://127.0.0.1:1/dir\n", "acme LE", "needs 'domains LIST'"),
    ("    directory https://127.0.0.1:1/dir\n", "domains a.test", "without 'acme NAME'"),
    ("    directory https://127.0.0.1:1/dir\n    challenge DNS-01\n", "acme LE domains a.test",
     "DNS-01' is not implemented"),
    ("    directory https://127.0.0.1:1/dir\n", "acme LE domains *.a.test", "wildcard"),
    ("    directory http://127.0.0.1:1/dir\n", "acme LE domains a.test", "https:// URL"),
    ("    directory https://127.0.0.1:1/dir\n    keytype DSA\n", "acme LE domains a.test",
     "'keytype' expects RSA or ECDSA"),
    ("    directory https://127.0.0.1:1/dir\n    contakt a@b.test\n", "acme LE domains a.test",
     "unknown keyword 'contakt' in 'acme' section; did you mean 'contact'?"),
])
def test_acme_bad_config(env, acme_lines, bind_extra, message):
    crt = os.path.join(env.dir, "x.pem")
    cfg = os.path.join(env.dir, "bad.cfg")
    with open(cfg, "w") as f:
        f.write("acme LE\n%sfrontend fe\n    mode http\n    bind 127.0.0.1:%d ssl crt %s %s\n"
                "    default_backend be\nbackend be\n    server s 127.0.0.1:1\n"
                % (acme_lines, free_port(), crt, bind_extra))
    r = subprocess.run([KEEL, "-c", "-f", cfg], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1, r.stdout + r.stderr
    assert message in r.stdout + r.stderr
    assert not os.path.exists(crt) or "directory" not in message


def test_acme_config_check_makes_temporary_certificate(env):
    """A good section passes the check; the missing file is made (0600, self-signed)."""
    crt = os.path.join(env.dir, "ok.pem")
    cfg = os.path.join(env.dir, "ok.cfg")
    with open(cfg, "w") as f:
        f.write("acme LE\n    directory https://127.0.0.1:1/dir\n    map virt@acme\n"
                "frontend fe\n    mode http\n    bind 127.0.0.1:%d ssl crt %s acme LE domains "
                "a.test,B.test\n    default_backend be\nbackend be\n    server s 127.0.0.1:1\n"
                % (free_port(), crt))
    r = subprocess.run([KEEL, "-c", "-f", cfg], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "'map' is ignored" in r.stdout + r.stderr
    assert mode(crt) == 0o600
    out = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", crt], capture_output=True,
                         text=True, check=True).stdout
    assert "DNS:a.test, DNS:b.test" in out and "keel temporary certificate" in out


def test_acme_reload_keeps_the_certificate_and_renews(env):
    """After a reload (SIGUSR2), the new process serves the file as it is (no temporary
    certificate, no new order) and its own client renews it later; the old one stopped."""
    http_port, https_port = free_port(), free_port()
    origin = env.origin()
    pb = start_pebble(env, http_port)
    crt = os.path.join(env.dir, "site.pem")
    pidfile = os.path.join(env.dir, "keel.pid")
    cfg = keel_config(env.dir, pb.directory, pb.ca, http_port, https_port, origin.addr, crt,
                      "    renew-before 3585s\n    retry-delay 1s")
    cfg = cfg.replace("    expose-experimental-directives\n",
                      "    expose-experimental-directives\n    pidfile %s\n" % pidfile)
    k = env.keel(cfg, ports=[http_port, https_port])
    first = wait_for(lambda: "Pebble Intermediate" in (served(https_port) or ("", "", ""))[1]
                     and served(https_port), timeout=30, step=0.2)
    assert first, k.output()
    old = k.p.pid
    os.kill(old, signal.SIGUSR2)
    assert wait_for(lambda: "(reload)" in k.output(), timeout=15), k.output()
    k.p.wait(15)
    with open(pidfile) as f:
        new = int(f.read())
    assert new != old
    try:
        after = k.output().split("(reload)", 1)[1]
        assert "did not exist" not in after
        s = served(https_port)
        assert s and s[0] in (first[0], file_serial(crt))
        # the new process's client renews it (renew-before: 15 s after its issue)
        renewed = wait_for(lambda: "new certificate" in k.output().split("(reload)", 1)[1],
                           timeout=40, step=0.5)
        assert renewed, k.output()
        got = wait_for(lambda: (served(https_port) or (first[0],))[0] == file_serial(crt) !=
                       first[0], timeout=10, step=0.2)
        assert got, k.output()
    finally:
        os.kill(new, signal.SIGTERM)
        wait_for(lambda: not os.path.exists("/proc/%d" % new), timeout=10)
