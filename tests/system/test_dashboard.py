"""The stats dashboard: the server-rendered page (every server, its state and why), the admin
buttons of "stats admin" and their CSRF protection (token, Origin/Referer), the history
sparklines, and the page in a real browser (Debian's headless Chromium: screenshot, DOM, a click
on Drain, the in-place refresh, the phone layout)."""
import base64
import csv
import io
import os
import re
import socket
import struct
import time

import pytest

import cdp
from conftest import Conn, basic_config, free_port, wait_for, admin_cmd

AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:s3cret").decode()}
FORM = "application/x-www-form-urlencoded"


def dead_port():
    """A port nobody listens on (connections are refused)."""
    return free_port()


def dash_config(port, servers, admin="if LOCALHOST", extra_fe="", extra_global=""):
    fe = "    stats uri /stats\n    stats auth admin:s3cret\n    stats realm keel-test"
    if admin:
        fe += "\n    stats admin " + admin
    if extra_fe:
        fe += "\n" + extra_fe
    return basic_config(port, servers, extra_fe=fe, extra_be="    option httpchk GET /",
                        extra_global=extra_global)


def checked(addr):
    return "%s check inter 300ms fall 1 rise 1" % addr


def servers3(env, dead=None):
    """web1..web3 on keel-origins; the one named dead points at a closed port."""
    out = []
    for n in ("web1", "web2", "web3"):
        addr = "127.0.0.1:%d" % dead_port() if n == dead else env.origin(n).addr
        out.append((n, checked(addr), ""))
    return [(n, a.split(" ", 1)[0], a.split(" ", 1)[1]) for n, a, _ in out]


def page(port, path="/stats"):
    c = Conn(port)
    r = c.request("GET", path, headers=AUTH)
    c.close()
    assert r.status == 200, r.status
    return r.body.decode()


def server_rows(html):
    """{server name: (state text, the row's HTML)} from the dashboard's server rows."""
    rows = {}
    for tr in re.split(r"<tr(?: class=\"?tot\"?)?>", html)[1:]:
        m = re.match(r'<td class="l name">([^<]+)(?:<small>[^<]*</small>)?\s*</td>'
                     r'<td data-l="state" class="?l"?><span class="st (\w+)">([^<]+)</span>', tr)
        if m and m.group(1).strip() not in ("Frontend", "Backend"):
            rows[m.group(1).strip()] = (m.group(3), tr.split("</tr>")[0])
    return rows


def token_of(html):
    m = re.search(r'name=token value="([0-9a-f]{32})"', html)
    return m.group(1) if m else None


def post(port, body, headers=None, host=None):
    c = Conn(port)
    hs = dict(AUTH)
    hs["Content-Type"] = FORM
    hs.update(headers or {})
    r = c.request("POST", "/stats", headers=hs, body=body,
                  host=host if host is not None else "127.0.0.1:%d" % port)
    closed = c.closed_by_peer(2)
    c.close()
    return r, closed


def statuses(port):
    """{server: the stats CSV's status column} (conftest's stats_rows() with credentials)."""
    c = Conn(port)
    r = c.request("GET", "/stats;csv", headers=AUTH)
    c.close()
    assert r.status == 200, r.status
    rows = list(csv.reader(io.StringIO(r.body.decode().lstrip("# "))))
    return {row[1]: dict(zip(rows[0], row))["status"] for row in rows[1:]
            if row and row[0] == "be" and row[1] != "BACKEND"}


def wait_status(port, name, want, timeout=8):
    return wait_for(lambda: statuses(port).get(name) == want, timeout)


def test_page_shows_every_server_state_and_reason(env):
    port = free_port()
    k = env.keel(dash_config(port, servers3(env, dead="web3"), admin=None,
                             extra_fe="    stats refresh 3s\n    stats hide-version"), [port])
    assert wait_status(port, "web3", "DOWN"), statuses(port)
    wait_for(lambda: "check passed" in page(port), 5)
    html = page(port)
    rows = server_rows(html)
    assert set(rows) == {"web1", "web2", "web3"}, rows.keys()
    assert rows["web1"][0] == "UP" and rows["web2"][0] == "UP"
    assert rows["web3"][0].startswith("DOWN"), rows["web3"][0]
    # the reason and the last check are on the row
    assert "connection refused" in rows["web3"][1] and "L4CON" in rows["web3"][1]
    assert "check passed" in rows["web1"][1] and "L7OK" in rows["web1"][1]
    assert "Frontend" in html and "Backend" in html and "2/3 usable" in html
    # summary chips
    assert '<span class="st UP">2 UP</span>' in html and '<span class="st DOWN">1 DOWN</span>' in html
    # stats refresh: a meta refresh for browsers without JavaScript, the same period for the script
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in html
    assert 'data-refresh="3"' in html and "<script>" in html
    # stats hide-version
    assert "keel 0." not in html
    # self-contained: no external asset of any kind
    assert not re.search(r"\b(src|href)\s*=", html), "external reference in the page"
    assert "url(" not in html and "@import" not in html
    assert "http://" not in html and "https://" not in html
    # without "stats admin": no buttons, no token, and a POST is refused and changes nothing
    assert "<form" not in html and token_of(html) is None
    r, _ = post(port, "action=drain&b=be&s=web1&token=" + "0" * 32)
    assert r.status == 403
    assert statuses(port)["web1"] == "UP"
    assert "admin state" not in k.output()


def test_admin_condition_false_gives_no_buttons(env):
    o = env.origin("web1")
    port = free_port()
    env.keel(dash_config(port, [("web1", o.addr, "")], admin="unless LOCALHOST"), [port])
    html = page(port)
    assert "web1" in html and "<form" not in html and token_of(html) is None
    r, _ = post(port, "action=maint&b=be&s=web1&token=" + "0" * 32)
    assert r.status == 403
    assert statuses(port)["web1"] == "UP"


def test_admin_buttons_and_csrf(env):
    port = free_port()
    k = env.keel(dash_config(port, servers3(env), extra_fe="    stats auth ops:other"), [port])
    html = page(port)
    assert html.count("<form method=post") == 3
    for n in ("web1", "web2", "web3"):
        row = server_rows(html)[n][1]
        for a in ("ready", "drain", "maint"):
            assert "name=action value=%s" % a in row
    tok = token_of(html)
    assert tok and all(token_of(f) == tok for f in html.split("<form")[1:])
    origin = {"Origin": "http://127.0.0.1:%d" % port}
    bad_tok = ("1" if tok[0] != "1" else "2") + tok[1:]
    refused = [
        ("action=drain&b=be&s=web2", origin),                               # no token
        ("action=drain&b=be&s=web2&token=", origin),                        # empty token
        ("action=drain&b=be&s=web2&token=" + bad_tok, origin),              # wrong token
        ("action=drain&b=be&s=web2&token=" + tok[:-1], origin),             # truncated
        ("action=drain&b=be&s=web2&token=" + tok, {"Origin": "http://evil.example"}),
        ("action=drain&b=be&s=web2&token=" + tok, {"Origin": "null"}),
        ("action=drain&b=be&s=web2&token=" + tok,
         {"Referer": "http://evil.example/stats"}),                         # no Origin: Referer
        ("action=drain&b=be&s=web2&token=" + tok,
         {"Origin": "http://127.0.0.1:%d.evil.example" % port}),
    ]
    for body, hs in refused:
        r, closed = post(port, body, hs)
        assert r.status == 403, (body, hs, r.status)
    assert set(statuses(port).values()) == {"UP"}
    assert "admin state" not in k.output()
    # a token is bound to the user: admin's token with ops' credentials is refused
    ops = {"Authorization": "Basic " + base64.b64encode(b"ops:other").decode()}
    r, _ = post(port, "action=drain&b=be&s=web2&token=" + tok, dict(origin, **ops))
    assert r.status == 403
    ops_html = Conn(port).request("GET", "/stats", headers=ops).body.decode()
    assert token_of(ops_html) not in (None, tok)
    # good token, Origin matches Host: drained, 303 back to the page, connection closed
    r, closed = post(port, "action=drain&b=be&s=web2&token=" + tok, origin)
    assert r.status == 303 and r.header("location") == "/stats" and closed
    assert statuses(port)["web2"] == "DRAIN"
    assert wait_for(lambda: "Server be/web2 admin state ready -> drain (by stats page, user admin)" in k.output(), 5)
    rows = server_rows(page(port))
    assert rows["web2"][0] == "DRAIN" and "set to drain by stats page" in rows["web2"][1]
    assert 'value=drain class="drain on" aria-pressed=true' in rows["web2"][1]
    # no Origin nor Referer (curl, scripts): the token alone; Referer of the same host is fine
    r, _ = post(port, "token=%s&action=maint&b=be&s=web3" % tok)
    assert r.status == 303 and statuses(port)["web3"] == "MAINT"
    r, _ = post(port, "action=ready&b=be&s=web3&token=" + tok,
                {"Referer": "http://127.0.0.1:%d/stats" % port})
    assert r.status == 303 and statuses(port)["web3"] == "UP"
    # bad forms
    for body, want in (("action=explode&b=be&s=web1&token=" + tok, 400),
                       ("action=drain&b=be&s=nope&token=" + tok, 400),
                       ("action=drain&b=nope&s=web1&token=" + tok, 400),
                       ("action=drain&b=be&token=" + tok, 400),
                       ("action=drain&b=be&s=web1&token=%s&pad=%s" % (tok, "x" * 1100), 413)):
        r, _ = post(port, body)
        assert r.status == want, (body[:40], r.status)
    assert statuses(port)["web1"] == "UP"
    # the credentials are still required
    c = Conn(port)
    r = c.request("POST", "/stats", headers={"Content-Type": FORM},
                  body="action=drain&b=be&s=web1&token=" + tok)
    assert r.status == 401
    # a body that arrives after the head is not waited for: 400, nothing changes
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    body = "action=drain&b=be&s=web1&token=" + tok
    s.sendall(("POST /stats HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: %s\r\n"
               "Content-Length: %d\r\n\r\n" % (AUTH["Authorization"], FORM, len(body))).encode())
    head = s.recv(100)
    s.close()
    assert head.startswith(b"HTTP/1.1 400"), head
    assert statuses(port)["web1"] == "UP"
    # back to ready through the page too
    r, _ = post(port, "action=ready&b=be&s=web2&token=" + tok, origin)
    assert r.status == 303 and statuses(port)["web2"] == "UP"


def test_history_sparkline_and_rates(env):
    o1, o2 = env.origin("web1"), env.origin("web2")
    port = free_port()
    env.keel(dash_config(port, [("web1", o1.addr, ""), ("web2", o2.addr, "")], admin=None), [port])
    assert "collecting" in page(port)
    # two samples (every 5 s) need about 10.5 s of uptime; keep traffic flowing meanwhile
    deadline = time.time() + 25
    html = ""
    while time.time() < deadline:
        c = Conn(port)
        for _ in range(20):
            c.request("GET", "/")
        c.close()
        html = page(port)
        if html.count("<svg class=spark") >= 4:
            break
        time.sleep(0.2)
    rows = server_rows(html)
    assert html.count("<svg class=spark") == 4, html[:2000]  # frontend, 2 servers, backend
    for n in ("web1", "web2"):
        row = rows[n][1]
        assert "<polyline class=r points=" in row
        rate = float(re.search(r'data-l="req/s">([0-9.]+)<', row).group(1))
        assert rate > 0, row
        assert re.search(r'data-l="errors"[^>]*>0\.0%', row), row


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", head[:8]
    return struct.unpack(">II", head[16:24])


def need_chromium():
    """A missing browser is a failure, not a skip: `make test` installs it (tools/deps.sh)."""
    if cdp.chromium_path() is None:
        pytest.fail("chromium is not installed: run tools/deps.sh test (as root) first")


def test_chromium_screenshot_and_dom(env, tmp_path):
    need_chromium()
    port = free_port()
    env.keel(dash_config(port, servers3(env, dead="web3")), [port])
    assert wait_status(port, "web3", "DOWN")
    url = "http://admin:s3cret@127.0.0.1:%d/stats" % port
    shot = str(tmp_path / "dash.png")
    rc, out = cdp.cli_shot(url, shot, 1280, 900)
    assert rc == 0, out[-2000:]
    assert png_size(shot) == (1280, 900)
    # a blank page compresses to a couple of kB; the dashboard is text, colours and lines
    assert os.path.getsize(shot) > 20000, os.path.getsize(shot)
    dom = cdp.cli_dump_dom(url)
    rows = server_rows(dom)
    assert {n: st for n, (st, _) in rows.items()} == {"web1": "UP", "web2": "UP", "web3": "DOWN"}, dom[:3000]
    assert "connection refused" in rows["web3"][1]
    assert "live, every 5 s" in dom  # the script ran


def test_chromium_click_drain_live_refresh_and_phone(env, tmp_path):
    need_chromium()
    port = free_port()
    sock = os.path.join(env.dir, "admin.sock")
    k = env.keel(dash_config(port, servers3(env), extra_fe="    stats refresh 1s",
                             extra_global="    stats socket %s level user" % sock), [port])
    with cdp.Browser(1280, 900, log_path=str(tmp_path / "chromium.log")) as b:
        b.set_headers(AUTH)
        b.navigate("http://127.0.0.1:%d/stats" % port)
        states = "[...document.querySelectorAll('tbody tr')].map(r => [r.cells[0].textContent, " \
                 "r.cells[1].querySelector('.st').textContent])"
        got = dict(b.eval(states))
        assert got["web1"] == got["web2"] == got["web3"] == "UP", got
        # laptop: nothing wider than the screen
        assert b.eval("[...document.querySelectorAll('section')].every(s => s.scrollWidth <= "
                      "s.clientWidth + 1)")
        # click Drain on web2: POST, 303, page again
        b.clear_events()
        b.eval("document.querySelector('input[name=s][value=web2]').form"
               ".querySelector('button[value=drain]').click()")
        b.wait_event("Page.loadEventFired")
        assert wait_status(port, "web2", "DRAIN")
        assert dict(b.eval(states))["web2"] == "DRAIN"
        assert wait_for(lambda: "(by stats page, user admin)" in k.output(), 5)
        # and keel itself says so on its admin socket
        row = [l for l in admin_cmd(sock, "show stat").splitlines() if l.startswith("be,web2,")]
        assert row and row[0].split(",")[17] == "DRAIN", row
        # the page refreshes in place: a change made elsewhere shows up without a reload
        b.eval("window.keelMarker = 42")
        r, _ = post(port, "action=maint&b=be&s=web3&token=" + b.eval(
            "document.querySelector('input[name=token]').value"))
        assert r.status == 303
        assert b.wait_js("[...document.querySelectorAll('tbody tr')].some(r => "
                         "r.cells[0].textContent == 'web3' && "
                         "r.cells[1].textContent.startsWith('MAINT'))", timeout=8)
        assert b.eval("window.keelMarker") == 42
        # phone: cards, no horizontal scrolling, the buttons still there
        b.viewport(390, 844, mobile=True)
        time.sleep(0.3)
        assert b.eval("document.documentElement.scrollWidth <= innerWidth + 1")
        assert b.eval("getComputedStyle(document.querySelector('thead')).display") == "none"
        assert b.eval("document.querySelectorAll('button[value=drain]').length") == 3
        b.screenshot(str(tmp_path / "phone.png"))
        assert png_size(str(tmp_path / "phone.png"))[0] == 390
