"""Certificates replaced while keel runs, without a reload: a file replaced on disk (also when
keel is jailed with chroot), and HAProxy's admin commands set/commit/abort/show ssl cert. A bad
certificate is refused and the previous one keeps serving."""
import os
import shutil
import socket
import ssl
import subprocess
import time

from conftest import admin_cmd, free_port, wait_for


def make_cert(d, name, cn="www.example.org"):
    """A self-signed ECDSA certificate for cn with its key, in one PEM file; returns (path,
    serial as openssl prints it)."""
    key, crt = os.path.join(d, name + ".key.tmp"), os.path.join(d, name + ".crt.tmp")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=" + cn, "-addext", "subjectAltName=DNS:" + cn],
                   check=True, capture_output=True)
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(open(crt).read() + open(key).read())
    out = subprocess.run(["openssl", "x509", "-in", crt, "-noout", "-serial"], check=True,
                         capture_output=True, text=True).stdout
    os.unlink(key)
    os.unlink(crt)
    return path, out.strip().split("=")[1].upper()


def served_serial(port):
    """The serial of the certificate keel serves on port (a new connection)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="www.example.org") as s:
            der = s.getpeercert(binary_form=True)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                         check=True, capture_output=True).stdout.decode()
    return out.strip().split("=")[1].upper()


def replace_file(src, dst):
    """As an operator or certbot does: a new file renamed over the old one."""
    shutil.copy(src, dst + ".new")
    os.rename(dst + ".new", dst)


def config(port, crt, admin, extra_global=""):
    return """global
    stats socket %s level admin
%s
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:%d ssl crt %s
    http-request return status 200 content-type text/plain string ok
""" % (admin, extra_global, port, crt)


def test_a_certificate_replaced_on_disk_is_served_without_reload(env):
    d = env.dir
    live, s1 = make_cert(d, "live.pem")
    new, s2 = make_cert(d, "new.pem")
    bad = os.path.join(d, "bad.pem")
    with open(bad, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    port, admin = free_port(), os.path.join(d, "admin.sock")
    k = env.keel(config(port, live, admin), ports=[port])
    pid = k.p.pid
    assert served_serial(port) == s1
    replace_file(new, live)
    assert wait_for(lambda: served_serial(port) == s2, timeout=5), "the new file was not picked up"
    # a broken file: refused, reported, the previous certificate keeps serving
    replace_file(bad, live)
    assert wait_for(lambda: "cannot be used" in k.output(), timeout=5), k.output()
    for _ in range(3):
        assert served_serial(port) == s2
    # a file whose key does not match its certificate is refused too
    other, _ = make_cert(d, "other.pem")
    mixed = os.path.join(d, "mixed.pem")
    with open(mixed, "w") as f:
        f.write(open(new).read().split("-----BEGIN PRIVATE KEY-----")[0] +
                "-----BEGIN PRIVATE KEY-----" + open(other).read().split("-----BEGIN PRIVATE KEY-----")[1])
    replace_file(mixed, live)
    assert wait_for(lambda: "does not match" in k.output(), timeout=5), k.output()
    assert served_serial(port) == s2
    # and the good one again
    replace_file(new, live)
    time.sleep(1.5)
    assert served_serial(port) == s2
    assert k.p.pid == pid and k.p.poll() is None
    assert "Serial: %s" % s2 in admin_cmd(admin, "show ssl cert %s" % live)


def test_set_and_commit_ssl_cert_on_the_admin_socket(env):
    d = env.dir
    live, s1 = make_cert(d, "live.pem")
    new, s2 = make_cert(d, "new.pem")
    port, admin = free_port(), os.path.join(d, "admin.sock")
    env.keel(config(port, live, admin), ports=[port])
    pem = open(new).read()
    out = admin_cmd(admin, "set ssl cert %s <<\n%s" % (live, pem))
    assert "Transaction created for certificate %s!" % live in out, out
    assert served_serial(port) == s1  # not before the commit
    assert "change waiting" in admin_cmd(admin, "show ssl cert")
    out = admin_cmd(admin, "commit ssl cert %s" % live)
    assert "Success!" in out, out
    assert served_serial(port) == s2
    # the file on disk did not change: the watcher does not bring the old one back
    time.sleep(1.5)
    assert served_serial(port) == s2
    # refused: bad text, an unknown file, a commit without a set; abort drops a change
    assert admin_cmd(admin, "set ssl cert %s <<\ngarbage\n" % live).startswith("error:")
    assert admin_cmd(admin, "set ssl cert /nonexistent.pem <<\n%s" % pem).startswith("error:")
    assert admin_cmd(admin, "commit ssl cert %s" % live).startswith("error:")
    old = open(live).read()
    assert "Transaction created" in admin_cmd(admin, "set ssl cert %s <<\n%s" % (live, old))
    assert "aborted" in admin_cmd(admin, "abort ssl cert %s" % live)
    assert served_serial(port) == s2


def test_a_payload_keeps_the_admin_socket_safe(env):
    """A payload larger than the limit is refused; the socket keeps serving."""
    d = env.dir
    live, _ = make_cert(d, "live.pem")
    port, admin = free_port(), os.path.join(d, "admin.sock")
    env.keel(config(port, live, admin), ports=[port])
    big = ("A" * 63 + "\n") * 5000  # 320 kB
    out = admin_cmd(admin, "set ssl cert %s <<\n%s" % (live, big))
    assert "payload too large" in out, out[:200]
    assert "Filename: %s" % live in admin_cmd(admin, "show ssl cert")


def test_replaced_on_disk_under_chroot(env):
    """Jailed, keel still sees the certificate's folder (opened before chroot)."""
    if os.geteuid() != 0:
        raise AssertionError("this test needs root (chroot); the test suite runs as root in CI")
    d = env.dir
    live, s1 = make_cert(d, "live.pem")
    new, s2 = make_cert(d, "new.pem")
    jail = os.path.join(d, "jail")
    port, admin = free_port(), os.path.join(d, "admin.sock")
    env.keel(config(port, live, admin, extra_global="    chroot %s" % jail), ports=[port])
    assert served_serial(port) == s1
    replace_file(new, live)
    assert wait_for(lambda: served_serial(port) == s2, timeout=5)


def make_ca_chain(d):
    """A CA, a certificate for www.example.org signed by it (PEM: certificate, CA, key) and two
    OCSP responses for it made with `openssl ocsp` from an index: one "good", one "revoked"."""
    def run(*a):
        return subprocess.run(a, check=True, capture_output=True, text=True, cwd=d).stdout
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "5", "-subj", "/CN=ocsp test CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=www.example.org")
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=DNS:www.example.org\n")
    run("openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "leaf.crt", "-days", "2", "-extfile", "ext")
    pem = os.path.join(d, "www.pem")
    with open(pem, "w") as f:
        for n in ("leaf.crt", "ca.pem", "leaf.key"):
            f.write(open(os.path.join(d, n)).read())
    serial = run("openssl", "x509", "-in", "leaf.crt", "-noout", "-serial").strip().split("=")[1]
    exp = time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() + 2 * 86400))
    run("openssl", "ocsp", "-issuer", "ca.pem", "-cert", "leaf.crt", "-reqout", "req.der", "-no_nonce")
    out = {}
    for status, line in (("good", "V\t%s\t\t%s\tunknown\t/CN=www.example.org\n" % (exp, serial)),
                         ("revoked", "R\t%s\t%s\t%s\tunknown\t/CN=www.example.org\n"
                          % (exp, time.strftime("%y%m%d%H%M%SZ", time.gmtime()), serial))):
        with open(os.path.join(d, "index.txt"), "w") as f:
            f.write(line)
        run("openssl", "ocsp", "-index", "index.txt", "-rsigner", "ca.pem", "-rkey", "ca.key",
            "-CA", "ca.pem", "-reqin", "req.der", "-respout", status + ".ocsp", "-ndays", "1")
        out[status] = os.path.join(d, status + ".ocsp")
    return pem, out


def stapled(port):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-status",
                        "-servername", "www.example.org"], input="", capture_output=True,
                       text=True, timeout=10)
    if "OCSP Response Status: successful" in r.stdout:
        return "good" if "Cert Status: good" in r.stdout else "other"
    return None


def test_ocsp_response_stapled_and_refreshed_from_disk(env):
    d = env.dir
    pem, ocsp = make_ca_chain(d)
    port, admin = free_port(), os.path.join(d, "admin.sock")
    k = env.keel(config(port, pem, admin), ports=[port])
    assert stapled(port) is None  # no .ocsp file yet
    shutil.copy(ocsp["good"], pem + ".ocsp.new")
    os.rename(pem + ".ocsp.new", pem + ".ocsp")
    assert wait_for(lambda: stapled(port) == "good", timeout=5), k.output()
    # a response that does not say "good" is refused and reported: nothing is stapled then
    shutil.copy(ocsp["revoked"], pem + ".ocsp.new")
    os.rename(pem + ".ocsp.new", pem + ".ocsp")
    assert wait_for(lambda: "not stapled" in k.output(), timeout=5), k.output()
    assert "does not say the certificate is good" in k.output()
    assert stapled(port) is None


def test_an_ocsp_response_for_another_certificate_is_not_stapled(env):
    d = env.dir
    pem, ocsp = make_ca_chain(d)
    other_dir = os.path.join(d, "other")
    os.mkdir(other_dir)
    _, other = make_ca_chain(other_dir)
    shutil.copy(other["good"], pem + ".ocsp")
    port, admin = free_port(), os.path.join(d, "admin.sock")
    k = env.keel(config(port, pem, admin), ports=[port])
    assert stapled(port) is None
    assert "not stapled" in k.output(), k.output()
