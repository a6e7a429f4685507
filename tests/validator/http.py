#!/usr/bin/python3
# http.py: the validator's HTTP check endpoint (doc/http-authz.md) over raw HTTP/1.1, in the
# request shapes of nginx auth_request, Envoy ext_authz (HTTP mode) and Traefik forwardAuth:
# statuses and X-Keywarden-* headers for every verdict, min_role by query and header, Bearer
# (answered as an unknown token until access tokens exist), keep-alive and pipelining, a
# discarded body, malformed and oversized heads, trusted_proxies and X-Forwarded-For (as last
# use), the rate limit by client address (403 + Retry-After), the failed-check audit event,
# the endpoint on a Unix socket, the validator protocol still answering beside it, and a
# settings error for a non-loopback address.
import json
import os
import socket
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httptest import HttpConn, apikey, http_port  # noqa: E402
from vtest import VALIDATOR, Conn, Env, Tap, wait_for  # noqa: E402

t = Tap()
env = Env("[validator]\nhttp_listen = 127.0.0.1:0\ntrusted_proxies = 127.0.0.1\nlast_use_flush = 1\n"
          "rate_limit_failures = 5\nrate_limit_window = 60\nrate_limit_block = 7\n")
env2 = None
try:
    env.setup_users()
    env.kw("user", "add", "--account", "acme", "carol", "--role", "Administrators")
    good = env.token("alice", "good")
    good_id = int(good.split("$")[0])
    env.start()
    port = http_port(env)
    addr = ("127.0.0.1", port)
    c = HttpConn(addr)

    # --- OK ---
    r = c.request(headers=apikey(good))
    t.eq(r.status, 200, "valid token: 200")
    t.eq((r.h("X-Keywarden-Token-Id"), r.h("X-Keywarden-Account"), r.h("X-Keywarden-User"),
          r.h("X-Keywarden-Role"), r.h("X-Keywarden-Expires"), r.h("X-Keywarden-Kind")),
         (str(good_id), "acme", "alice", "Engineers", "never", "apikey"),
         "200 carries token id, account, user, role, expires and kind")
    t.eq(r.h("Cache-Control"), "no-store", "200: Cache-Control: no-store")
    t.eq((r.h("Content-Length"), r.body), ("0", b""), "empty body")
    t.ok(r.h("Date") is not None, "Date header")
    r = c.request(headers={"Authorization": "apikey   " + good.replace("$", "_") + "  "})
    t.eq(r.status, 200, "scheme case-insensitive, '_' after the id, blanks around: 200")
    r = c.request(method="HEAD", path="/authz/some/original/path", headers=apikey(good))
    t.eq((r.status, r.h("X-Keywarden-User")), (200, "alice"), "HEAD below /authz/: 200")
    r = c.request(method="POST", headers=apikey(good), body=b"x" * 3000)
    t.eq(r.status, 200, "POST with a body (discarded): 200")
    r = c.request(headers=apikey(good))
    t.eq(r.status, 200, "the same connection still answers after a discarded body")

    # --- the proxies' request shapes ---
    # Envoy ext_authz (HTTP service): the original method and path under path_prefix,
    # lower-case header names, content-length 0, x-forwarded-for with Envoy's own hop.
    c.send("POST /authz/api/v1/items?page=2 HTTP/1.1\r\nhost: api.example\r\n"
           "authorization: APIKey %s\r\nx-forwarded-for: 198.51.100.20, 127.0.0.1\r\n"
           "x-request-id: 5f1c\r\nx-envoy-expected-rq-timeout-ms: 250\r\n"
           "content-length: 0\r\n\r\n" % good)
    r = c.response()
    t.eq((r.status, r.h("x-keywarden-user")), (200, "alice"), "Envoy's request shape: 200")
    # Traefik forwardAuth: GET of the configured address with the original headers and
    # X-Forwarded-Method/-Proto/-Host/-Uri/-For.
    c.send("GET /authz HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: Go-http-client/1.1\r\n"
           "Accept: */*\r\nAuthorization: APIKey %s\r\nX-Forwarded-For: 198.51.100.21\r\n"
           "X-Forwarded-Host: api.example\r\nX-Forwarded-Method: DELETE\r\n"
           "X-Forwarded-Proto: https\r\nX-Forwarded-Uri: /api/v1/items/7\r\n"
           "Accept-Encoding: gzip\r\n\r\n" % (port, good))
    r = c.response()
    t.eq((r.status, r.h("X-Keywarden-Role")), (200, "Engineers"), "Traefik's request shape: 200")

    # --- 401 ---
    # (Four of these are `invalid` answers to 127.0.0.1, under rate_limit_failures = 5: the
    # rate limit is tested below with other client addresses.)
    exp = env.token("alice", "exp", expires=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                          time.gmtime(time.time() + 2)))
    dele = env.token("alice", "del")
    env.kw("token", "delete", "--as", "alice", dele.split("$")[0])
    bobtok = env.token("bob", "bobs", role="Users")
    env.kw("user", "set", "bob", "--disable")
    wait_for(lambda: c.request(headers=apikey(exp)).status == 401, timeout=6)
    for tok, reason in ((exp, "expired"), (dele, "deleted"), (bobtok, "disabled"),
                        (good[:-3] + "AAA", "invalid"), ("garbage", "invalid")):
        r = c.request(headers=apikey(tok))
        t.eq((r.status, r.h("WWW-Authenticate"), r.h("X-Keywarden-Reason"),
              r.h("Cache-Control"), r.h("X-Keywarden-User")),
             (401, "APIKey", reason, "no-store", None), "%s token: 401 %s" % (reason, reason))
    r = c.request()
    t.eq((r.status, r.h("X-Keywarden-Reason"), r.h("WWW-Authenticate")),
         (401, "missing", "APIKey"), "no Authorization: 401 missing")
    r = c.request(headers={"Authorization": "Bearer eyJhbGciOi.abc.def"})
    t.eq((r.status, r.h("X-Keywarden-Reason")), (401, "invalid"),
         "Bearer with no access token (a JWT-like text): 401 invalid, as an unknown token")
    r = c.request(headers={"Authorization": "Basic YWxpY2U6cHc="})
    t.eq((r.status, r.h("X-Keywarden-Reason")), (401, "invalid"), "another scheme: 401 invalid")

    # --- min_role ---
    r = c.request(path="/authz?min_role=Users", headers=apikey(good))
    t.eq(r.status, 200, "min_role below the token's role: 200")
    r = c.request(path="/authz?min_role=Engineers", headers=apikey(good))
    t.eq(r.status, 200, "min_role equal to the token's role: 200")
    r = c.request(path="/authz?min_role=Administrators", headers=apikey(good))
    t.eq((r.status, r.h("X-Keywarden-Reason"), r.h("X-Keywarden-User")),
         (403, "insufficient_role", None), "min_role above the token's role: 403")
    r = c.request(headers=dict(apikey(good), **{"X-Keywarden-Min-Role": "Administrators"}))
    t.eq(r.status, 403, "X-Keywarden-Min-Role above: 403")
    r = c.request(path="/authz?min_role=Purge+and+Prefetch%20only%20(API)",
                  headers=apikey(good))
    t.eq(r.status, 200, "a role name with blanks, URL-encoded: 200")
    r = c.request(path="/authz?min_role=Users",
                  headers=dict(apikey(good), **{"X-Keywarden-Min-Role": "Administrators"}))
    t.eq(r.status, 403, "query and header: the higher of the two applies")
    r = c.request(path="/authz?min_role=Wizards", headers=apikey(good))
    t.eq((r.status, r.h("X-Keywarden-Reason")), (500, "unknown_min_role"),
         "an unknown min_role: 500 (a proxy misconfigured), never 200")
    r = c.request(path="/authz?min_role=Users", headers=apikey(dele))
    t.eq(r.status, 401, "min_role does not turn a deleted token into a 403")

    # --- keep-alive, pipelining, HTTP/1.0 ---
    c2 = HttpConn(addr)
    one = "GET /authz HTTP/1.1\r\nHost: k\r\nAuthorization: APIKey %s\r\n\r\n"
    c2.send((one % good) + (one % dele) + (one % good) + "GET /authz HTTP/1.1\r\nHost: k\r\n"
            "Authorization: APIKey %s\r\nConnection: close\r\n\r\n" % good)
    got = [c2.response() for _ in range(4)]
    t.eq([x.status for x in got], [200, 401, 200, 200], "four pipelined requests, in order")
    t.eq(got[3].h("Connection"), "close", "Connection: close is honoured")
    t.ok(c2.eof(), "and the connection is closed after it")
    c2.close()
    c2 = HttpConn(addr)
    r = c2.request(version="1.0", host=None, headers=apikey(good))
    t.eq((r.status, r.raw_head[0].split(" ")[0], r.h("Connection")), (200, "HTTP/1.0", "close"),
         "HTTP/1.0 (nginx's auth_request default): answered, then closed")
    t.ok(c2.eof(), "HTTP/1.0 without keep-alive: closed")
    c2.close()
    c2 = HttpConn(addr)
    r = c2.request(version="1.0", host=None, headers=dict(apikey(good),
                                                           Connection="keep-alive"))
    r2 = c2.request(version="1.0", host=None, headers=apikey(good))
    t.eq((r.status, r.h("Connection"), r2.status), (200, "keep-alive", 200),
         "HTTP/1.0 keep-alive: the connection stays")
    c2.close()

    # --- malformed ---
    for raw, status, desc in (
            ("GET /authz HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 without Host"),
            ("GET /authz HTTP/1.1\nHost: k\n\n", 400, "bare LF"),
            ("GET /authz HTTP/1.1\r\nHost: k\r\n folded\r\n\r\n", 400, "obs-fold"),
            ("DELETE /authz HTTP/1.1\r\nHost: k\r\n\r\n", 405, "DELETE"),
            ("GET /authz HTTP/2.0\r\nHost: k\r\n\r\n", 505, "HTTP/2.0"),
            ("POST /authz HTTP/1.1\r\nHost: k\r\nContent-Length: 2\r\nTransfer-Encoding: "
             "chunked\r\n\r\n", 400, "Content-Length with Transfer-Encoding"),
            ("GET /authz HTTP/1.1\r\nHost: k\r\nAuthorization: APIKey %s\r\n"
             "Authorization: APIKey x\r\n\r\n" % good, 400, "two Authorization headers")):
        c2 = HttpConn(addr)
        c2.send(raw)
        r = c2.response()
        t.eq((r.status if r else None, r.h("Connection") if r else None), (status, "close"),
             "%s: %d and close" % (desc, status))
        t.ok(c2.eof(), "%s: connection closed" % desc)
        c2.close()
    r = c.request(path="/other", headers=apikey(good))
    t.eq(r.status, 404, "a path outside /authz: 404")
    c2 = HttpConn(addr)
    c2.send("GET /authz HTTP/1.1\r\nHost: k\r\n" + "X-Pad: " + "a" * 9000 + "\r\n\r\n")
    r = c2.response()
    t.eq(r.status if r else None, 431, "a head over http_max_request: 431")
    c2.close()
    c2 = HttpConn(addr)
    c2.send("GET /authz HTTP/1.1\r\nHost: k\r\n" + "".join("X-%d: v\r\n" % i
                                                            for i in range(70)) + "\r\n")
    r = c2.response()
    t.eq(r.status if r else None, 431, "more header lines than http_max_headers: 431")
    c2.close()
    c2 = HttpConn(addr)
    c2.send("POST /authz HTTP/1.1\r\nHost: k\r\nTransfer-Encoding: chunked\r\n"
            "Authorization: APIKey %s\r\n\r\n5\r\nhello\r\n0\r\n\r\n" % good)
    r = c2.response()
    t.eq((r.status, r.h("Connection")), (200, "close"),
         "a chunked body is not read: answered, then the connection closed")
    c2.close()

    # --- the validator protocol still answers beside it ---
    pc = Conn(env.sock)
    t.eq(pc.check(1, good)[:5], "OK\t1\t", "the socket protocol answers in the same loop")
    pc.close()

    # --- last use: the client address from a trusted proxy's X-Forwarded-For ---
    ip_tok = env.token("alice", "ip")
    ip_id = int(ip_tok.split("$")[0])
    r = c.request(headers=dict(apikey(ip_tok), **{"X-Forwarded-For":
                                                  "198.51.100.9, 127.0.0.1"}))
    t.eq(r.status, 200, "through a trusted proxy: 200")
    row = wait_for(lambda: (env.token_row(ip_id) or {}).get("last_ip") == "198.51.100.9"
                   and env.token_row(ip_id), timeout=6)
    t.ok(row, "last use records the client from X-Forwarded-For (the rightmost address that is "
         "not a trusted proxy)", env.token_row(ip_id))

    # --- rate limit by client address; audit event for the failures ---
    bad = {"X-Forwarded-For": "192.0.2.66"}
    codes = []
    for i in range(6):
        r = c.request(headers=dict(apikey("garbage%d" % i), **bad))
        codes.append(r.status)
    t.eq(codes, [401] * 5 + [403], "the 6th failure of one client address: 403")
    r = c.request(headers=dict(apikey(good), **bad))
    t.eq((r.status, r.h("X-Keywarden-Reason"), r.h("Retry-After")), (403, "rate_limited", "7"),
         "a rate-limited client: 403 rate_limited with Retry-After, even with a good token")
    r = c.request(headers=dict(apikey(good), **{"X-Forwarded-For": "192.0.2.67"}))
    t.eq(r.status, 200, "another client address through the same proxy is not limited")

    def failed_event():
        p = env.kw("audit", "export")
        for line in p.stdout.splitlines():
            ev = json.loads(line)
            if ev.get("action") == "validator.failed_checks":
                return ev
        return None
    ev = wait_for(failed_event, timeout=8)
    t.ok(ev is not None and "4294967295" in json.dumps(ev),
         "failed HTTP checks reach the validator.failed_checks audit event (peer uid "
         "4294967295: HTTP over TCP)", ev)
    c.close()
    rc = env.stop()
    t.eq(rc, 0, "validator stops cleanly")
    t.ok(good.split("$")[1] not in env.log(), "no secret in the log")

    # --- untrusted peer: X-Forwarded-For ignored; Unix socket endpoint ---
    env2 = Env("")
    hsock = os.path.join(env2.tmp, "authz.sock")
    env2.write_conf("[validator]\nhttp_listen = unix:%s\nlast_use_flush = 1\n" % hsock)
    env2.setup_users()
    tok2 = env2.token("alice", "u")
    id2 = int(tok2.split("$")[0])
    env2.start()
    wait_for(lambda: os.path.exists(hsock), timeout=5)
    u = HttpConn(hsock)
    r = u.request(headers=dict(apikey(tok2), **{"X-Forwarded-For": "203.0.113.5"}))
    t.eq(r.status, 200, "http_listen = unix:PATH answers")
    row = wait_for(lambda: (env2.token_row(id2) or {}).get("last_used") and env2.token_row(id2),
                   timeout=6)
    t.ok(row is not None and row.get("last_ip") in (None, ""),
         "X-Forwarded-For of a peer not in trusted_proxies is ignored", row)
    u.close()
    env2.stop()
    t.ok(not os.path.exists(hsock), "the HTTP Unix socket is removed at exit")

    # --- settings ---
    env2.write_conf("[validator]\nhttp_listen = 192.0.2.1:8080\n")
    p = subprocess.run([VALIDATOR, "--state-dir", env2.state], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=10)
    t.ok(p.returncode != 0 and "http_listen" in p.stderr,
         "a non-loopback http_listen is refused", p.stderr)
    env2.write_conf("[validator]\nhttp_listen = 127.0.0.1:0\ntrusted_proxies = 10.0.0.0/33\n")
    p = subprocess.run([VALIDATOR, "--state-dir", env2.state], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=10)
    t.ok(p.returncode != 0 and "trusted_proxies" in p.stderr,
         "a bad trusted_proxies entry is refused", p.stderr)
except Exception:  # noqa: BLE001
    t.ok(False, "test ran to the end", traceback.format_exc(), env.log())
finally:
    env.close()
    if env2 is not None:
        env2.close()
sys.exit(t.done())
