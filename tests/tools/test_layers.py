"""tools/check-layers: the real tree has no upward include, and the check catches one."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHECK = os.path.join(ROOT, "tools", "check-layers")


def run(root):
    return subprocess.run(["/usr/bin/python3", CHECK, root], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def tree(tmp_path):
    """A copy of src/ and include/ to break on purpose."""
    for d in ("src", "include"):
        shutil.copytree(os.path.join(ROOT, d), str(tmp_path / d))
    return tmp_path


def add_include(path, header):
    with open(path) as f:
        text = f.read()
    first = text.index("#include <keel/")
    with open(path, "w") as f:
        f.write(text[:first] + "#include <keel/%s.h>\n" % header + text[first:])


def test_real_tree_is_clean():
    r = run(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == ""


def test_ground_source_including_admin_fails(tree):
    add_include(str(tree / "src" / "core" / "loop.c"), "stats")
    r = run(str(tree))
    assert r.returncode == 1
    assert "src/core/loop.c" in r.stdout and "keel/stats.h of the admin layer" in r.stdout
    assert "1 upward include(s)" in r.stdout


def test_runtime_source_including_process_fails(tree):
    add_include(str(tree / "src" / "proxy" / "backend.c"), "reload")
    r = run(str(tree))
    assert r.returncode == 1
    assert "src/proxy/backend.c" in r.stdout and "keel/reload.h of the process layer" in r.stdout


def test_header_including_higher_header_fails(tree):
    add_include(str(tree / "include" / "keel" / "buf.h"), "proxy-t")
    r = run(str(tree))
    assert r.returncode == 1
    assert "include/keel/buf.h" in r.stdout and "of the runtime layer" in r.stdout


def test_same_layer_and_downward_includes_pass(tree):
    add_include(str(tree / "src" / "check" / "health.c"), "stick")   # runtime -> runtime
    add_include(str(tree / "src" / "admin" / "history.c"), "conn")  # admin -> ground
    r = run(str(tree))
    assert r.returncode == 0, r.stdout


def test_unknown_folder_and_header_are_refused(tree):
    os.makedirs(str(tree / "src" / "quic"))
    with open(str(tree / "src" / "quic" / "quic.c"), "w") as f:
        f.write("#include <keel/common.h>\n")
    add_include(str(tree / "src" / "core" / "buf.c"), "no-such-module")
    r = run(str(tree))
    assert r.returncode == 2
    assert "src/quic/quic.c: no layer" in r.stdout
    assert "keel/no-such-module.h has no layer" in r.stdout
