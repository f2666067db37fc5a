"""TLS session resumption (docs/configuration.md, "Session resumption"; docs/internals/reload.md,
"TLS ticket keys"): a client that got a session ticket resumes, also after a reload (the new
process receives the old one's ticket keys), for TLS 1.2 (session tickets) and TLS 1.3 (PSK
tickets); keys rotate on a schedule; `no-tls-tickets` turns tickets off; `tls-ticket-keys FILE`
(HAProxy's format) shares keys between processes; a bad key file fails `keel -c`."""
import base64
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import KEEL, KEELCTL, free_port, wait_for

VERSIONS = [pytest.param(ssl.TLSVersion.TLSv1_2, id="tls12"),
            pytest.param(ssl.TLSVersion.TLSv1_3, id="tls13")]


def make_cert(d):
    """A self-signed ECDSA certificate and its key in one PEM file, made with the openssl CLI."""
    key, crt, pem = (os.path.join(d, n) for n in ("site.key.tmp", "site.crt.tmp", "site.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    with open(pem, "w") as out:
        for p in (crt, key):
            with open(p) as f:
                out.write(f.read())
    return pem


def write_keys(d, name, keys):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write("".join(base64.b64encode(k).decode() + "\n" for k in keys))
    return path


def config(env, port, origin, gen, bind_extra="", extra_global=""):
    pem = os.path.join(env.dir, "site.pem")
    if not os.path.exists(pem):
        make_cert(env.dir)
    sock = os.path.join(env.dir, "admin-%d.sock" % port)
    pidfile = os.path.join(env.dir, "keel-%d.pid" % port)
    return """global
    nbthread 2
    stats socket %(sock)s
    pidfile %(pidfile)s
%(extra_global)s
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:%(port)d ssl crt %(pem)s %(bind_extra)s
    http-response set-header X-Gen %(gen)s
    default_backend be
backend be
    server s1 %(origin)s
""" % {"sock": sock, "pidfile": pidfile, "extra_global": extra_global, "port": port, "pem": pem,
       "bind_extra": bind_extra, "gen": gen, "origin": origin.addr}, sock, pidfile


class Client:
    """Python's ssl module as the client, one context per TLS version (a session is only offered
    again through the context that made it)."""

    def __init__(self, version):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.ctx.minimum_version = self.ctx.maximum_version = version

    def get(self, port, session=None):
        """One request on a new connection: (session_reused, session, X-Gen). The whole response
        is read first: TLS 1.3 tickets arrive after the handshake."""
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with self.ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    data += d
                assert data.startswith(b"HTTP/1.1 200"), data[:200]
                gen = None
                for line in data.split(b"\r\n\r\n")[0].split(b"\r\n"):
                    if line.lower().startswith(b"x-gen:"):
                        gen = line.split(b":", 1)[1].strip().decode()
                return s.session_reused, s.session, gen


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def start(env, gen="g0", **kw):
    origin = env.origin("a")
    port = free_port()
    cfg, sock, pidfile = config(env, port, origin, gen, **kw)
    k = env.keel(cfg, [port])
    wait_for(lambda: os.path.exists(sock) and read_pid(pidfile) == k.p.pid, 5)
    return k, port, origin, sock, pidfile


def reload(env, k, port, origin, gen, sock, pidfile, how="keelctl", **kw):
    """Rewrites the configuration (a new X-Gen) and reloads; returns once the new process serves
    and the old one no longer accepts."""
    with open(k.cfg_path, "w") as f:
        f.write(config(env, port, origin, gen, **kw)[0])
    old = read_pid(pidfile)
    if how == "keelctl":
        p = subprocess.run([KEELCTL, "-s", sock, "reload"], capture_output=True, text=True,
                           timeout=40)
        assert p.returncode == 0, (p.stdout, p.stderr, k.output())
    else:
        os.kill(old, signal.SIGUSR2)
    assert wait_for(lambda: read_pid(pidfile) not in (0, old), 10), k.output()
    # the pid file is written before the new process serves: wait until it answers
    assert wait_for(lambda: Client(ssl.TLSVersion.TLSv1_2).get(port)[2] == gen, 10), k.output()


@pytest.mark.parametrize("version", VERSIONS)
def test_resume_across_reloads(env, version):
    """A session resumes on the same process, then with the new process after a reload
    (keelctl), and after a second one (SIGUSR2: the keys pass on again)."""
    k, port, origin, sock, pidfile = start(env)
    c = Client(version)
    reused, sess, gen = c.get(port)
    assert not reused and gen == "g0"
    assert sess is not None and sess.has_ticket
    assert c.get(port, sess)[0], "no resumption on the same process"
    reload(env, k, port, origin, "g1", sock, pidfile)
    reused, _, gen = c.get(port, sess)
    assert gen == "g1"
    assert reused, "the new process did not resume a session of the old one"
    reload(env, k, port, origin, "g2", sock, pidfile, how="signal")
    reused, _, gen = c.get(port, sess)
    assert gen == "g2" and reused, "not resumed after a second reload"
    out = k.output()
    assert "ticket keys not passed" not in out and "were not received" not in out, out


def test_resume_across_reloads_with_chroot(env):
    """With chroot and user, the spawner passes the keys' pipe to each new process."""
    assert os.geteuid() == 0, "this test needs root (chroot, user nobody)"
    g = "    chroot %s\n    user nobody" % os.path.join(env.dir, "jail")
    k, port, origin, sock, pidfile = start(env, extra_global=g)
    c = Client(ssl.TLSVersion.TLSv1_3)
    sess = c.get(port)[1]
    for i, how in enumerate(("keelctl", "signal"), 1):
        reload(env, k, port, origin, "g%d" % i, sock, pidfile, how=how, extra_global=g)
        reused, _, gen = c.get(port, sess)
        assert gen == "g%d" % i and reused, k.output()


@pytest.mark.parametrize("version", VERSIONS)
def test_no_tls_tickets(env, version):
    """no-tls-tickets: no ticket for TLS 1.2; OpenSSL's session cache still resumes on the same
    process (TLS 1.3 with stateful tickets), but nothing survives a reload."""
    k, port, origin, sock, pidfile = start(env, bind_extra="no-tls-tickets")
    c = Client(version)
    reused, sess, _ = c.get(port)
    assert not reused
    if version == ssl.TLSVersion.TLSv1_2:
        assert not sess.has_ticket
    # the process's own session cache (a session id, or a TLS 1.3 stateful ticket)
    assert c.get(port, sess)[0]
    reload(env, k, port, origin, "g1", sock, pidfile, bind_extra="no-tls-tickets")
    reused, _, gen = c.get(port, sess)
    assert gen == "g1" and not reused


@pytest.mark.parametrize("version", VERSIONS)
def test_ticket_keys_file_shared(env, version):
    """Two separate processes with the same tls-ticket-keys file resume each other's sessions;
    a process without it does not. The file rotates as in HAProxy: the penultimate key
    encrypts, the last three decrypt."""
    keys = [os.urandom(80) for _ in range(5)]
    path = write_keys(env.dir, "tickets.keys", keys[:3])
    k1, port1, _, _, _ = start(env, bind_extra="tls-ticket-keys %s" % path)
    c = Client(version)
    reused, sess, _ = c.get(port1)
    assert not reused and sess.has_ticket
    k2, port2, _, _, _ = start(env, bind_extra="tls-ticket-keys %s" % path)
    assert c.get(port2, sess)[0], "a second process with the same key file did not resume"
    k3, port3, _, _, _ = start(env)
    assert not c.get(port3, sess)[0], "a process with its own keys resumed"
    # Rotated once (a key appended, the oldest dropped): the encrypting key still decrypts.
    write_keys(env.dir, "tickets.keys", keys[1:4])
    k4, port4, _, _, _ = start(env, bind_extra="tls-ticket-keys %s" % path)
    assert c.get(port4, sess)[0], "the previous encrypting key no longer decrypts"
    # Rotated twice: the key of this ticket is gone.
    write_keys(env.dir, "tickets.keys", keys[2:5])
    k5, port5, _, _, _ = start(env, bind_extra="tls-ticket-keys %s" % path)
    assert not c.get(port5, sess)[0], "a key out of the file still decrypts"
    for k in (k1, k2, k4, k5):
        out = k.output()
        assert not any(base64.b64encode(x).decode()[:16] in out for x in keys)


def test_ticket_keys_file_48_bytes(env):
    """48-byte keys (AES-128) work too, and more than three lines: the last three are used."""
    keys = [os.urandom(48) for _ in range(4)]
    path = os.path.join(env.dir, "t48.keys")
    with open(path, "w") as f:
        f.write("# ticket keys\n\n" + "".join(base64.b64encode(x).decode() + "\r\n" for x in keys))
    k1, port1, _, _, _ = start(env, bind_extra="tls-ticket-keys %s" % path)
    c = Client(ssl.TLSVersion.TLSv1_2)
    sess = c.get(port1)[1]
    k2, port2, _, _, _ = start(env, bind_extra="tls-ticket-keys %s" % path)
    assert c.get(port2, sess)[0]


def test_rotation(env):
    """tune.ssl.ticket-rotate 1s: a ticket made before a rotation still resumes; its lifetime
    (two periods: the hint sent to clients, and what keel accepts) is over after four
    seconds."""
    k, port, origin, sock, pidfile = start(env, extra_global="    tune.ssl.ticket-rotate 1s")
    c = Client(ssl.TLSVersion.TLSv1_3)
    sess = c.get(port)[1]
    time.sleep(1.2)  # at least one rotation
    assert c.get(port, sess)[0], "a ticket of the previous key was not accepted"
    time.sleep(3.5)
    assert not c.get(port, sess)[0], "a ticket older than its lifetime resumed"


BAD_FILES = [
    ("missing", None, "No such file"),
    ("not-base64", "!!!!\n", "not base64"),
    ("short-key", base64.b64encode(os.urandom(32)).decode() + "\n", "a key of 32 bytes"),
    ("mixed", "".join(base64.b64encode(os.urandom(n)).decode() + "\n" for n in (48, 80, 80)),
     "after keys of 48"),
    ("two-keys", "".join(base64.b64encode(os.urandom(80)).decode() + "\n" for _ in range(2)),
     "at least 3"),
]


@pytest.mark.parametrize("name,content,want", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_ticket_keys_file(env, name, content, want):
    path = os.path.join(env.dir, name + ".keys")
    if content is not None:
        with open(path, "w") as f:
            f.write(content)
    cfg_path = os.path.join(env.dir, "bad.cfg")
    origin = env.origin("a")
    with open(cfg_path, "w") as f:
        f.write(config(env, free_port(), origin, "g0", bind_extra="tls-ticket-keys %s" % path)[0])
    r = subprocess.run([KEEL, "-c", "-f", cfg_path], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1, r.stdout + r.stderr
    msg = r.stdout + r.stderr
    assert "[ALERT]" in msg and "tls-ticket-keys" in msg and want in msg, msg


def test_rotate_keyword_bounds(env):
    origin = env.origin("a")
    for value, ok in (("1h", True), ("90s", True), ("500ms", False), ("4d", False)):
        cfg_path = os.path.join(env.dir, "r.cfg")
        with open(cfg_path, "w") as f:
            f.write(config(env, free_port(), origin, "g0",
                           extra_global="    tune.ssl.ticket-rotate %s" % value)[0])
        r = subprocess.run([KEEL, "-c", "-f", cfg_path], capture_output=True, text=True,
                           timeout=10)
        assert (r.returncode == 0) == ok, (value, r.stdout + r.stderr)
