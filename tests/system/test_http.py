"""HTTP/1.1 on both sides: keep-alive, reuse, pipelining, bodies, 100-continue, HEAD, 1xx,
Connection: close, HTTP/1.0, Upgrade tunnels, and the headers keel adds or removes."""
import socket
import time

from conftest import Conn, basic_config, free_port, origin_of, recv_until_closed


def start(env, n=2, **kw):
    origins = [env.origin("o%d" % (i + 1)) for i in range(n)]
    port = free_port()
    env.keel(basic_config(port, [o.addr for o in origins], **kw), [port])
    return port, origins


def test_keepalive_client_and_server_reuse(env):
    port, (o1, o2) = start(env)
    c = Conn(port)
    seen = {}
    for _ in range(20):
        r = c.request("GET", "/")
        assert r.status == 200
        assert r.header("connection") is None or r.header("connection").lower() != "close"
        # the origin numbers the requests it got on each of its connections
        seen[origin_of(r)] = int(r.body.decode().split("conn_req ")[1].split("\n")[0])
    c.close()
    # 20 requests over one client connection, 10 per origin, all on one reused connection each
    assert seen == {"o1": 10, "o2": 10}, seen


def test_round_robin_alternates(env):
    port, _ = start(env)
    names = []
    for _ in range(6):
        c = Conn(port)
        names.append(origin_of(c.request("GET", "/")))
        c.close()
    assert names[0] != names[1] and names[::2] == [names[0]] * 3 and names[1::2] == [names[1]] * 3


def test_pipelined_requests_answered_in_order(env):
    port, _ = start(env)
    c = Conn(port)
    c.send(b"".join(b"GET /p%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(10)))
    for i in range(10):
        r = c.request if False else None
        r = c.read_response()
        assert r.status == 200
        assert b"path /p%d" % i in r.body


def test_xff_and_hop_by_hop(env):
    port, _ = start(env, extra_defaults="    option forwardfor")
    c = Conn(port)
    r = c.request("GET", "/", headers={"X-Forwarded-For": "1.2.3.4", "Keep-Alive": "timeout=5",
                                       "Proxy-Connection": "keep-alive", "X-Forwarded-Proto": "https"})
    body = r.body.decode()
    lines = body.split("\n")
    xff = [l for l in lines if l.lower().startswith("x-forwarded-for:")]
    # the client's header is kept and keel's own value comes after it
    assert [l.split(":", 1)[1].strip() for l in xff] == ["1.2.3.4", "127.0.0.1"], body
    assert "x-forwarded-proto: http" in body.lower()
    assert "https" not in body.lower()
    assert "keep-alive:" not in body.lower()
    assert "proxy-connection" not in body.lower()


def test_xff_formats_every_ipv4_octet_width(env):
    port, _ = start(env, extra_defaults="    option forwardfor")
    for src in ("127.0.0.1", "127.10.200.9", "127.255.0.99", "127.1.23.123"):
        c = Conn(port, source=src)
        body = c.request("GET", "/").body.decode()
        c.close()
        xff = [l.split(":", 1)[1].strip() for l in body.split("\n")
               if l.lower().startswith("x-forwarded-for:")]
        assert xff == [src], (src, body)


def test_connection_close_from_client(env):
    port, _ = start(env)
    c = Conn(port)
    r = c.request("GET", "/", headers={"Connection": "close"})
    assert r.status == 200
    assert r.header("connection", "").lower() == "close"
    assert c.closed_by_peer()


def test_connection_close_from_server(env):
    port, _ = start(env)
    c = Conn(port)
    r = c.request("GET", "/?close=1")
    assert r.status == 200
    # keel keeps the client connection although the server closed its own
    r = c.request("GET", "/")
    assert r.status == 200


def test_http10_client(env):
    port, _ = start(env)
    c = Conn(port)
    r = c.request("GET", "/", version="HTTP/1.0", host=None)
    assert r.status == 200
    assert c.closed_by_peer()
    c = Conn(port)
    r = c.request("GET", "/", version="HTTP/1.0", headers={"Connection": "keep-alive"})
    assert r.status == 200 and r.header("connection", "").lower() == "keep-alive"
    r = c.request("GET", "/", version="HTTP/1.0", headers={"Connection": "keep-alive"})
    assert r.status == 200


def test_head_has_no_body(env):
    port, _ = start(env)
    c = Conn(port)
    r = c.request("HEAD", "/?size=5000")
    assert r.status == 200 and r.header("content-length") == "5000" and r.body == b""
    r = c.request("GET", "/?size=10")  # the connection is still in sync
    assert r.body == b"abcdefghij"


def test_chunked_and_length_responses(env):
    port, _ = start(env)
    c = Conn(port)
    r = c.request("GET", "/?size=100000&chunked=1")
    assert r.status == 200 and len(r.body) == 100000 and r.header("transfer-encoding") == "chunked"
    r = c.request("GET", "/?size=100000")
    assert len(r.body) == 100000
    r = c.request("GET", "/?status=204")
    assert r.status == 204


def test_close_delimited_response_closes_client(env):
    port, _ = start(env)
    c = Conn(port)
    c.send(b"GET /?nolength=1&size=3000 HTTP/1.1\r\nHost: t\r\n\r\n")
    data = recv_until_closed(c.sock)
    head, body = data.split(b"\r\n\r\n", 1)
    assert b" 200 " in head.split(b"\r\n")[0]
    assert len(body) == 3000


def test_post_bodies_streamed(env):
    port, (o1, o2) = start(env)
    c = Conn(port)
    body = bytes(range(256)) * 4000  # ~1 MB
    r = c.request("POST", "/upload", body=body)
    assert r.status == 200 and b"body_len %d" % len(body) in r.body
    # chunked upload
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7000]), body[i:i + 7000])
                      for i in range(0, len(body), 7000)) + b"0\r\n\r\n"
    c.send(b"POST /up2 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
    r = c.read_response()
    assert r.status == 200 and b"body_len %d" % len(body) in r.body


def test_expect_100_continue(env):
    port, _ = start(env)
    c = Conn(port)
    c.keep_interim = True
    c.send(b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    r = c.read_response()
    assert r.status == 100
    c.send(b"hello")
    r = c.read_response()
    assert r.status == 200 and b"body_len 5" in r.body


def test_websocket_upgrade_tunnel(env):
    port, _ = start(env, extra_defaults="    timeout tunnel 5s")
    c = Conn(port)
    c.send(b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    r = c.read_response()
    assert r.status == 101
    assert r.header("upgrade", "").lower() == "websocket"
    for msg in (b"ping-1", b"x" * 50000, b"last"):
        c.send(msg)
        got = c.buf
        c.buf = b""
        c.sock.settimeout(5)
        while len(got) < len(msg):
            d = c.sock.recv(65536)
            assert d, "tunnel closed"
            got += d
        assert got == msg


def test_server_1xx_then_final(env):
    port, _ = start(env)
    c = Conn(port)
    c.keep_interim = True
    c.send(b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok")
    r = c.read_response()
    statuses = [r.status]
    if r.status == 100:
        statuses.append(c.read_response().status)
    assert statuses[-1] == 200


def test_absolute_form_rewritten_to_origin_form(env):
    port, _ = start(env)
    c = Conn(port)
    r = c.request("GET", "http://example.org/abs?q=1", host="other")
    assert r.status == 200
    assert b"path /abs?q=1" in r.body
    assert b"host: example.org" in r.body.lower()
