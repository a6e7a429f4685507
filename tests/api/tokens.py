"""tokens.py: the 1-hour access and 24-hour refresh tokens of the REST API. A session signed in
by the real lasso IdP takes a pair (POST /api/v1/auth/tokens, with X-CSRF-Token); the access
token drives the API as Authorization: Bearer and checks at the real validator, in its own
protocol, as `OK ... kind=access` (raw lines on its socket); refresh returns a new pair and
retires the old refresh token, whose reuse ends the whole family; logout, the hour passing, an
SSO downgrade, `keywarden sso revoke` and disabling the user end access tokens at once
(FAIL at the validator) while the user's permanent token still checks OK (the rule). Every
answer body is checked against doc/openapi.yaml."""
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apitest  # noqa: E402
import kwpg  # noqa: E402  (tests/pg, on the path through sslib)

st = apitest.st
BASE = 900000000000000


def main():
    tap = st.Tap()
    api = apitest.Api(tap)
    try:
        run(tap, api)
        api.finish()
    finally:
        api.cleanup()
    tap.done()


def check(api, token):
    """One CHECK on the validator's socket, in its protocol: the answer line."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(os.path.join(api.s.dir, "validator.sock"))
    s.sendall(("VERSION\t1\t0\nCHECK\t7\ttoken=%s\n" % token).encode())
    buf = b""
    while buf.count(b"\n") < 2:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    s.close()
    lines = buf.decode().splitlines()
    return lines[1] if len(lines) > 1 else ""


def session(api, idp, login, groups):
    fields = {"SAMLResponse": idp.response(login, groups)}
    _, h, _ = api.s.post("/saml/acs", fields)
    m = re.match(r"__Host-kw_session=([^;]*)", h.get("set-cookie", ""))
    cookie = m.group(1) if m else "0$none"
    hdr = {"Cookie": "__Host-kw_session=" + cookie}
    _, _, j, _ = api.call("GET", "/api/v1/me", headers=hdr)
    csrf = (j or {}).get("csrf_token", "")
    return dict(hdr, **{"X-CSRF-Token": csrf})


def pair(api, hdr):
    status, _, j, _ = api.call("POST", "/api/v1/auth/tokens", headers=hdr)
    return status, j or {}


def bearer(token):
    return {"Authorization": "Bearer " + token}


def authz(api, scheme, token):
    """GET /authz on the validator's HTTP endpoint (doc/http-authz.md): (status, headers)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(os.path.join(api.s.dir, "authz.sock"))
    s.sendall(("GET /authz HTTP/1.1\r\nHost: x\r\nAuthorization: %s %s\r\n"
               "Connection: close\r\n\r\n" % (scheme, token)).encode())
    buf = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    s.close()
    head = buf.split(b"\r\n\r\n", 1)[0].decode()
    lines = head.split("\r\n")
    hdrs = {}
    for k, v in (l.split(": ", 1) for l in lines[1:] if ": " in l):
        k = k.lower()
        hdrs[k] = hdrs[k] + "," + v if k in hdrs else v  # a repeated header shows as a list
    return int(lines[0].split()[1]), hdrs


def run(tap, api):
    api.start()
    # the validator also answers the HTTP check endpoint (Bearer access tokens, issue 14)
    with open(os.path.join(api.s.dir, "keywarden.conf"), "a") as f:
        f.write("[validator]\nhttp_listen = unix:%s\n" % os.path.join(api.s.dir, "authz.sock"))
    api.s.start_validator()
    _, _, meta = api.s.request("GET", "/saml/metadata")
    idp = st.LassoIdp(api.s, meta)

    hdr = session(api, idp, "eve@idp.test", ["eng"])
    no_csrf = {"Cookie": hdr["Cookie"]}
    status, j = pair(api, no_csrf)
    tap.ok(status == 403 and j.get("error") == "csrf", "POST /auth/tokens without CSRF: 403",
           (status, j))
    status, p = pair(api, hdr)
    tap.ok(status == 201 and p["token_type"] == "Bearer" and
           int(p["access"].split("$")[0]) > BASE and int(p["refresh"].split("$")[0]) > BASE,
           "POST /auth/tokens: 201, an access and a refresh token", (status, p))
    key = api.token("root", "Administrators", "root")
    status, _, j, _ = api.call("POST", "/api/v1/auth/tokens",
                               headers={"Authorization": "APIKey " + key})
    tap.ok(status == 403, "an API key cannot take a pair (403: sessions only)", (status, j))

    acc, ref = p.get("access", "0$x"), p.get("refresh", "0$x")
    status, _, j, _ = api.call("GET", "/api/v1/me", headers=bearer(acc))
    tap.ok(status == 200 and j["login"] == "eve@idp.test" and j["auth"] == "bearer" and
           j["role"] == "Engineers", "Bearer <access> acts as its user (GET /me)", (status, j))
    status, _, j, _ = api.call("POST", "/api/v1/tokens", body={"name": "ci", "role": "Users"},
                               headers=bearer(acc))
    tap.ok(status == 201, "...and drives the API (a permanent token created, no CSRF needed)",
           (status, j))
    perm = j.get("token", "0$x") if status == 201 else "0$x"
    c = kwpg.connect(api.s.dir)
    c.execute("UPDATE sso_session SET login_time = login_time - 11 * 60")
    c.commit()
    status, _, j, _ = api.call("POST", "/api/v1/tokens", body={"name": "ci2", "role": "Users"},
                               headers=bearer(acc))
    c.execute("UPDATE sso_session SET login_time = login_time + 11 * 60")
    c.commit()
    c.close()
    tap.ok(status == 401 and j["error"] == "reauthentication_required",
           "...but not from a sign-in older than reauth_minutes (401, as a session)", (status, j))
    status, _, j, _ = api.call("GET", "/api/v1/tokens", headers=bearer(acc))
    tap.ok(status == 200 and [t["name"] for t in j] == ["ci"],
           "access and refresh tokens are not listed as tokens (nor count toward the 50)", j)
    line = check(api, acc)
    tap.ok(line.startswith("OK\t7\t") and "\tkind=access" in line and
           "\tuser=eve@idp.test" in line and "\trole=Engineers" in line,
           "the validator answers the access token OK ... kind=access", line)
    tap.ok(check(api, ref) == "FAIL\t7\tcode=invalid",
           "a refresh token never checks OK at the validator", check(api, ref))
    line = check(api, perm)
    tap.ok(line.startswith("OK\t7\t") and "kind=" not in line,
           "a permanent token's answer has no kind field", line)
    status, _, j, _ = api.call("GET", "/api/v1/me", headers=bearer(ref))
    tap.ok(status == 401, "a refresh token is no access token (401)", (status, j))
    status, h = authz(api, "Bearer", acc)
    tap.ok(status == 200 and h.get("x-keywarden-kind") == "access" and
           h.get("x-keywarden-user") == "eve@idp.test",
           "GET /authz with Bearer <access>: 200, X-Keywarden-Kind: access", (status, h))
    status, h = authz(api, "Bearer", perm)
    tap.ok(status == 401 and h.get("x-keywarden-reason") == "invalid",
           "a permanent token under Bearer: 401 invalid (it belongs under APIKey)", (status, h))
    status, h = authz(api, "APIKey", perm)
    tap.ok(status == 200 and h.get("x-keywarden-kind") == "apikey",
           "the permanent token under APIKey: 200, X-Keywarden-Kind: apikey (once)",
           (status, h))
    status, h = authz(api, "Bearer", ref)
    tap.ok(status == 401, "a refresh token under Bearer: 401", (status, h))

    # refresh, and reuse detection
    status, _, p2, _ = api.call("POST", "/api/v1/auth/refresh", body={"refresh": ref})
    tap.ok(status == 200 and p2["access"] != acc and p2["refresh"] != ref,
           "POST /auth/refresh: a new pair", (status, p2))
    p2 = p2 or {}
    status, _, j, _ = api.call("GET", "/api/v1/me", headers=bearer(p2.get("access", "0$x")))
    tap.ok(status == 200, "the new access token acts", (status, j))
    status, _, j, _ = api.call("POST", "/api/v1/auth/refresh", body={"refresh": ref})
    tap.ok(status == 401 and "used before" in j["message"],
           "the retired refresh token used again: 401 (reuse)", (status, j))
    status, _, j, _ = api.call("GET", "/api/v1/me", headers=bearer(p2.get("access", "0$x")))
    line = check(api, p2.get("access", "0$x"))
    tap.ok(status == 401 and line == "FAIL\t7\tcode=deleted",
           "reuse ends the whole family: the new access token fails at once", (status, line))
    status, _, j, _ = api.call("POST", "/api/v1/auth/refresh", body={"refresh": p2["refresh"]})
    tap.ok(status == 401, "...and so does the family's new refresh token", (status, j))
    status, _, j, _ = api.call("POST", "/api/v1/auth/refresh", body={"refresh": 42})
    tap.ok(status == 400, "a malformed refresh body: 400", (status, j))
    ev = {e["action"] for e in api.audit()}
    tap.ok({"session_token.issue", "session_token.refresh", "session_token.reuse"} <= ev,
           "issue, refresh and reuse are audited", ev)

    # logout with the access token ends its family
    status, p3 = pair(api, hdr)
    status, _, _, _ = api.call("POST", "/api/v1/auth/logout", headers=bearer(p3["access"]))
    line = check(api, p3["access"])
    status2, _, _, _ = api.call("POST", "/api/v1/auth/refresh", body={"refresh": p3["refresh"]})
    tap.ok(status == 204 and line == "FAIL\t7\tcode=deleted" and status2 == 401,
           "POST /auth/logout with Bearer ends the pair (validator FAIL, refresh refused)",
           (status, line, status2))

    # the hour passes
    status, p4 = pair(api, hdr)
    c = kwpg.connect(api.s.dir)
    c.execute("UPDATE session_token SET expires = ? WHERE id = ?",
              (int(time.time()) - 1, int(p4["access"].split("$")[0]) - BASE))
    c.commit()
    c.close()
    line = check(api, p4["access"])
    status, _, j, _ = api.call("GET", "/api/v1/me", headers=bearer(p4["access"]))
    tap.ok(line == "FAIL\t7\tcode=expired" and status == 401,
           "after its hour the access token is FAIL expired", (line, status, j))
    status, _, p5, _ = api.call("POST", "/api/v1/auth/refresh", body={"refresh": p4["refresh"]})
    tap.ok(status == 200, "...and its refresh token still renews the pair", (status, p5))

    # an SSO downgrade ends the access tokens at once; the permanent token still checks OK
    line_before = check(api, p5["access"])
    api.s.post("/saml/acs", {"SAMLResponse": idp.response("eve@idp.test", ["staff"])})
    line = check(api, p5["access"])
    status, _, _, _ = api.call("POST", "/api/v1/auth/refresh", body={"refresh": p5["refresh"]})
    pline = check(api, perm)
    tap.ok(line_before.startswith("OK") and line == "FAIL\t7\tcode=deleted" and status == 401,
           "an SSO downgrade by assertion ends access and refresh tokens at once",
           (line_before, line, status))
    tap.ok(pline.startswith("OK\t7\t"), "...while her permanent token still checks OK (the rule)",
           pline)

    # sso revoke
    hdr2 = session(api, idp, "eve@idp.test", ["eng"])
    status, p6 = pair(api, hdr2)
    ok_before = check(api, p6["access"]).startswith("OK")
    api.kw("sso", "revoke", "eve@idp.test", "--reason", "left")
    line = check(api, p6["access"])
    tap.ok(ok_before and line == "FAIL\t7\tcode=deleted" and check(api, perm).startswith("OK"),
           "keywarden sso revoke ends access tokens at once; the permanent token checks OK",
           (ok_before, line))

    # disable
    hdr3 = session(api, idp, "fay@idp.test", ["eng"])
    status, p7 = pair(api, hdr3)
    api.kw("user", "set", "fay@idp.test", "--disable")
    line = check(api, p7["access"])
    status, _, j, _ = api.call("GET", "/api/v1/me", headers=bearer(p7["access"]))
    tap.ok(line == "FAIL\t7\tcode=deleted" and status == 401,
           "disabling the user ends the access token at once (FAIL deleted: it is ended)",
           (line, status))
    api.kw("user", "set", "fay@idp.test", "--enable")
    line = check(api, p7["access"])
    status, _, j, _ = api.call("GET", "/api/v1/me", headers=hdr3)
    tap.ok(line.startswith("FAIL\t7\t") and status == 401,
           "enabling the user again brings neither the access token nor the session back",
           (line, status))

    log = api.s.log()
    secrets = [t.split("$")[1] for t in (acc, ref, p2["access"], p2["refresh"], p7["access"])]
    tap.ok(not any(x in log for x in secrets), "no access or refresh secret reaches the log")


if __name__ == "__main__":
    main()
