"""Routing with ACLs (several sites on one keel) and header rules."""
from conftest import Conn, free_port, origin_of


def site_config(port, a, b, c):
    return """
defaults
    mode http
    timeout client 5s
    timeout server 5s
frontend www
    bind 127.0.0.1:%(port)d
    acl host_wiki hdr(host) -i wiki.example.edu
    acl host_moodle hdr_beg(host) -i moodle.
    acl is_api path_beg /api/
    acl is_img path_end .png .jpg
    acl is_admin path_reg ^/admin(/|$)
    acl is_post method POST
    acl local src 127.0.0.0/8
    acl other_net src 10.0.0.0/8
    http-request deny deny_status 403 if is_admin !local
    http-request deny if is_admin other_net
    http-request set-header X-Site %%[req.hdr(host)]
    http-request add-header X-Added yes
    http-request del-header X-Secret
    http-response set-header X-Served-By keel
    use_backend api if is_api is_post or is_img
    use_backend wiki if host_wiki
    use_backend moodle if host_moodle
    default_backend moodle
backend wiki
    server w %(a)s
backend moodle
    server m %(b)s
backend api
    server x %(c)s
""" % {"port": port, "a": a, "b": b, "c": c}


def test_host_and_path_routing(env):
    w, m, api = env.origin("wiki"), env.origin("moodle"), env.origin("api")
    port = free_port()
    env.keel(site_config(port, w.addr, m.addr, api.addr), [port])
    c = Conn(port)
    assert origin_of(c.request("GET", "/", host="WIKI.example.edu")) == "wiki"
    assert origin_of(c.request("GET", "/", host="moodle.example.edu")) == "moodle"
    assert origin_of(c.request("GET", "/", host="unknown.example.edu")) == "moodle"
    # "is_api is_post or is_img": (api AND post) OR img
    assert origin_of(c.request("POST", "/api/x", body="1", host="wiki.example.edu")) == "api"
    assert origin_of(c.request("GET", "/api/x", host="wiki.example.edu")) == "wiki"
    assert origin_of(c.request("GET", "/logo.png", host="wiki.example.edu")) == "api"


def test_rules_set_add_del_headers(env):
    w, m, api = env.origin("wiki"), env.origin("moodle"), env.origin("api")
    port = free_port()
    env.keel(site_config(port, w.addr, m.addr, api.addr), [port])
    c = Conn(port)
    r = c.request("GET", "/", host="moodle.example.edu",
                  headers={"X-Secret": "s3cret", "X-Site": "spoofed"})
    body = r.body.decode().lower()
    assert "x-site: moodle.example.edu" in body and "spoofed" not in body
    assert "x-added: yes" in body
    assert "x-secret" not in body
    assert r.header("x-served-by") == "keel"


def test_deny_rule(env):
    w, m, api = env.origin("wiki"), env.origin("moodle"), env.origin("api")
    port = free_port()
    env.keel(site_config(port, w.addr, m.addr, api.addr), [port])
    c = Conn(port)
    # from 127.0.0.1 (local): allowed
    assert c.request("GET", "/admin/").status == 200
    assert c.request("GET", "/administrator").status == 200


def test_deny_for_non_local(env):
    o = env.origin()
    port = free_port()
    env.keel("""defaults
    mode http
frontend f
    bind 127.0.0.1:%d
    acl local src 10.0.0.0/8
    http-request deny deny_status 403 unless local
    default_backend b
backend b
    server s %s
""" % (port, o.addr), [port])
    c = Conn(port)
    r = c.request("GET", "/")
    assert r.status == 403
    assert o.stats()["requests"] == 0


def test_redirect_and_return(env):
    o = env.origin()
    port = free_port()
    env.keel("""defaults
    mode http
frontend f
    bind 127.0.0.1:%d
    http-request redirect location https://example.edu/new code 301 if { path /old }
    http-request return status 200 content-type text/plain string "pong" if { path /ping }
    monitor-uri /health
    default_backend b
backend b
    server s %s
""" % (port, o.addr), [port])
    c = Conn(port)
    r = c.request("GET", "/old")
    assert r.status == 301 and r.header("location") == "https://example.edu/new"
    c = Conn(port)
    r = c.request("GET", "/ping")
    assert r.status == 200 and r.body == b"pong"
    c = Conn(port)
    assert c.request("GET", "/health").status == 200
    assert c.request("GET", "/health").status == 200  # keep-alive after a local answer
    assert o.stats()["requests"] == 0
