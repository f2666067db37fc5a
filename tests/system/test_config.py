"""The configuration language: HAProxy's syntax, the seed config, errors and warnings."""
import os
import shutil
import subprocess

from conftest import KEEL, ROOT, free_port

SEED = os.path.join(ROOT, "examples", "seed-haproxy.cfg")


def check(text, tmp_path):
    p = tmp_path / "k.cfg"
    p.write_text(text)
    r = subprocess.run([KEEL, "-c", "-f", str(p)], capture_output=True, text=True, timeout=10)
    return r.returncode, r.stdout + r.stderr


def test_version():
    r = subprocess.run([KEEL, "-v"], capture_output=True, text=True)
    assert r.returncode == 0
    assert "keel version" in r.stdout


def test_seed_config_checks_ok():
    r = subprocess.run([KEEL, "-c", "-f", SEED], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    # Every keyword of the seed config is implemented now: no warning at all.
    assert "WARNING" not in r.stderr, r.stderr


def test_unknown_keyword_is_error_with_line_and_suggestion(tmp_path):
    rc, out = check("frontend fe\n    bnd 127.0.0.1:80\n", tmp_path)
    assert rc == 1
    assert "k.cfg:2" in out
    assert "'bnd'" in out and "'bind'" in out


def test_unknown_option_suggests(tmp_path):
    rc, out = check("defaults\n  mode http\n  option forwardfr\nlisten l\n  bind 127.0.0.1:%d\n"
                    "  server s 127.0.0.1:1\n" % free_port(), tmp_path)
    assert rc == 1
    assert "k.cfg:3" in out and "forwardfor" in out


def test_unimplemented_keyword_warns_with_line(tmp_path):
    rc, out = check("listen l\n  bind 127.0.0.1:%d\n  unique-id-format %%{+X}o\n"
                    "  server s 127.0.0.1:1 cookie a\n" % free_port(), tmp_path)
    assert rc == 0, out
    assert "k.cfg:3" in out and "unique-id-format" in out and "not implemented" in out


def test_indentation_optional_and_comments(tmp_path):
    rc, out = check("# a comment\nglobal\nmaxconn 100 # trailing\ndefaults\nmode http\n"
                    "frontend f\nbind 127.0.0.1:%d\ndefault_backend b\nbackend b\n"
                    "server \"s 1\" 127.0.0.1:1\n" % free_port(), tmp_path)
    # a server name with a space is invalid: the quotes made it one argument
    assert rc == 1 and "invalid server name" in out
    rc, out = check("global\nmaxconn 100\ndefaults\nmode http\nfrontend f\nbind 127.0.0.1:%d\n"
                    "default_backend b\nbackend b\nserver s1 127.0.0.1:1\n" % free_port(), tmp_path)
    assert rc == 0, out


def test_bad_values_are_errors(tmp_path):
    for bad, word in [("timeout client 5parsecs", "unit"), ("balance roundrobyn", "roundrobin"),
                      ("mode tcp", "mode tcp"), ("default_backend nowhere", "nowhere"),
                      ("timeout clinet 5s", "client")]:
        rc, out = check("defaults\n mode http\nlisten l\n bind 127.0.0.1:%d\n server s1 127.0.0.1:1\n"
                        "%s\n" % (free_port(), bad), tmp_path)
        assert rc == 1, (bad, out)
        assert word in out, (bad, out)


def test_server_in_frontend_is_error(tmp_path):
    rc, out = check("frontend f\n bind 127.0.0.1:%d\n server s 127.0.0.1:1\n" % free_port(), tmp_path)
    assert rc == 1 and "not allowed" in out


def test_missing_file_one_line_error():
    r = subprocess.run([KEEL, "-f", "/nonexistent/keel.cfg"], capture_output=True, text=True)
    assert r.returncode == 1
    assert "/nonexistent/keel.cfg" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_port_taken_one_line_error(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    p = tmp_path / "k.cfg"
    p.write_text("defaults\n mode http\nlisten l\n bind 127.0.0.1:%d\n server s 127.0.0.1:1\n" % port)
    r = subprocess.run([KEEL, "-db", "-f", str(p)], capture_output=True, text=True, timeout=10)
    s.close()
    assert r.returncode == 1
    errs = [l for l in r.stderr.splitlines() if "ALERT" in l]
    assert len(errs) == 1 and "address already in use" in errs[0], r.stderr


def test_second_keel_on_same_port_fails(env):
    port = free_port()
    cfg = "defaults\n mode http\nlisten l\n bind 127.0.0.1:%d\n server s 127.0.0.1:1\n" % port
    env.keel(cfg, [port])
    r = subprocess.run([KEEL, "-db", "-f", os.path.join(env.dir, "keel.cfg")], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 1 and "address already in use" in r.stderr


def test_check_only_does_not_bind(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    rc, out = check("defaults\n mode http\nlisten l\n bind 127.0.0.1:%d\n server s 127.0.0.1:1\n" % port, tmp_path)
    s.close()
    assert rc == 0, out
