"""Parsing is the security perimeter: malformed requests get 400 (or 414/431/505) and the
connection is closed; garbage from a server gets 502. Nothing malformed reaches a server."""
import pytest

from conftest import Conn, basic_config, free_port, recv_until_closed


@pytest.fixture
def proxy(env):
    o = env.origin()
    port = free_port()
    env.keel(basic_config(port, [o.addr], extra_global="    tune.bufsize 16384\n    tune.http.maxhdr 50"), [port])
    return port, o


BAD = {
    "cl_and_te": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "dup_cl_differ": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    "te_not_chunked": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc", 400),
    "te_chunked_not_last": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
    "obs_fold": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n", 400),
    "space_before_colon": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A : 1\r\n\r\n", 400),
    "ctl_in_value": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x012\r\n\r\n", 400),
    "nul_in_value": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x002\r\n\r\n", 400),
    "nul_in_name": (b"GET / HTTP/1.1\r\nHost: a\r\nX\x00A: 1\r\n\r\n", 400),
    "bad_chunk_size": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\nabc\r\n0\r\n\r\n", 400),
    "asterisk_target": (b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "authority_target": (b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org\r\n\r\n", 400),
    "relative_target": (b"GET index.html HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "bare_lf": (b"GET / HTTP/1.1\nHost: a\n\n", 400),
    "no_host_11": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "two_hosts": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "http09": (b"GET /\r\n\r\n", 400),
    "http2_version": (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    "long_request_line": (b"GET /" + b"a" * 17000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    "huge_header": (b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 17000 + b"\r\n\r\n", 431),
    "too_many_headers": (b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(60)) + b"\r\n", 431),
    "garbage": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    "te_in_http10": (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_request_rejected_and_closed(proxy, name):
    port, origin = proxy
    data, status = BAD[name]
    c = Conn(port)
    c.send(data)
    raw = recv_until_closed(c.sock)  # returns only when keel closed the connection
    assert raw.startswith(b"HTTP/1.1 %d " % status), raw[:100]
    # nothing malformed reached the origin
    assert origin.stats()["requests"] == 0


def test_good_request_after_bad_ones_still_served(proxy):
    port, origin = proxy
    c = Conn(port)
    assert c.request("GET", "/fine").status == 200


def test_bad_chunk_after_head_already_sent(proxy):
    port, origin = proxy
    c = Conn(port)
    c.send(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    import time
    time.sleep(0.3)
    c.send(b"zz\r\n")
    raw = recv_until_closed(c.sock)
    assert raw.startswith(b"HTTP/1.1 400 ")


def test_limits_follow_bufsize(env):
    o = env.origin()
    port = free_port()
    env.keel(basic_config(port, [o.addr], extra_global="    tune.bufsize 65536"), [port])
    c = Conn(port)
    r = c.request("GET", "/" + "a" * 30000)
    assert r.status == 200
