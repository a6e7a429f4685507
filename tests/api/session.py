"""session.py: SSO sessions of the REST API. The real lasso IdP signs users in over
/saml/acs; the session cookie (__Host-, Secure, HttpOnly, SameSite=Lax, stored as a digest)
drives the API; POST and DELETE need X-CSRF-Token; a permanent token needs a recent sign-in
(reauth_minutes); RelayState redirects only to a path on this site; sessions end by logout,
idle time, lifetime, SLO, `keywarden sso revoke` and an assertion that lowers the user's
access. Every answer body is checked against doc/openapi.yaml. Times are moved by editing the
session's row (no test waits)."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apitest  # noqa: E402
import kwpg  # noqa: E402  (tests/pg, on the path through sslib)

st = apitest.st
T = "/api/v1/tokens"


def main():
    tap = st.Tap()
    api = apitest.Api(tap)
    try:
        run(tap, api)
        api.finish()
    finally:
        api.cleanup()
    tap.done()


def sign_in(api, idp, login, groups, relay=None):
    fields = {"SAMLResponse": idp.response(login, groups)}
    if relay is not None:
        fields["RelayState"] = relay
    status, h, body = api.s.post("/saml/acs", fields)
    cookie = None
    m = re.match(r"__Host-kw_session=([^;]*)", h.get("set-cookie", ""))
    if m:
        cookie = m.group(1)
    return status, h, cookie


def me(api, cookie):
    return api.call("GET", "/api/v1/me", headers={"Cookie": "__Host-kw_session=" + cookie})


def with_cookie(cookie, csrf=None):
    h = {"Cookie": "theme=dark; __Host-kw_session=" + cookie + "; lang=en"}
    if csrf is not None:
        h["X-CSRF-Token"] = csrf
    return h


def db(api, sql, args=()):
    c = kwpg.connect(api.s.dir)
    try:
        rows = c.execute(sql, args).fetchall()
        c.commit()
        return rows
    finally:
        c.close()


def run(tap, api):
    api.start()
    api.s.start_validator()
    _, _, meta = api.s.request("GET", "/saml/metadata")
    idp = st.LassoIdp(api.s, meta)

    status, h, cookie = sign_in(api, idp, "ann@idp.test", ["eng"])
    sc = h.get("set-cookie", "")
    tap.ok(status == 200 and cookie is not None, "an accepted Response sets the session cookie",
           (status, h))
    flags = [f.strip().lower() for f in sc.split(";")[1:]]
    tap.ok({"secure", "httponly", "samesite=lax", "path=/"} <= set(flags) and
           not any(f.startswith("domain") for f in flags) and
           any(f.startswith("max-age=") for f in flags),
           "the cookie is __Host-: Secure, HttpOnly, SameSite=Lax, Path=/, no Domain, Max-Age",
           sc)
    cookie = cookie or "0$x"
    sid = int(cookie.split("$")[0]) if "$" in cookie else 0
    rows = db(api, "SELECT cookie_digest, csrf FROM sso_web_session WHERE session_id = ?",
              (sid,))
    secret = cookie.split("$")[1] if "$" in cookie else "x"
    dump = "\n".join("X'%s'" % bytes(r[0]).hex().upper()
                     for r in db(api, "SELECT cookie_digest FROM sso_web_session"))
    tap.ok(len(rows) == 1 and len(rows[0][0]) == 32 and secret not in dump and
           secret.encode() not in rows[0][0],
           "the session is stored as a 32-byte digest, not its secret", rows)

    status, _, j, _ = api.call("GET", "/api/v1/me", headers=with_cookie(cookie))
    tap.ok(status == 200 and j["login"] == "ann@idp.test" and j["auth"] == "session" and
           j["role"] == "Engineers" and re.match("^[0-9a-f]{64}$", j.get("csrf_token", "")),
           "GET /me with the cookie: the user, her role and a csrf_token", (status, j))
    csrf = j["csrf_token"] if status == 200 else ""
    status, _, j, _ = api.call("GET", T, headers=with_cookie(cookie))
    tap.ok(status == 200 and j == [], "GET /tokens with the cookie (no CSRF needed to read)",
           (status, j))

    body = {"name": "laptop", "role": "Engineers"}
    status, _, j, _ = api.call("POST", T, body=body, headers=with_cookie(cookie))
    tap.ok(status == 403 and j["error"] == "csrf", "POST with the cookie and no X-CSRF-Token: 403",
           (status, j))
    status, _, j, _ = api.call("POST", T, body=body, headers=with_cookie(cookie, "0" * 64))
    tap.ok(status == 403 and j["error"] == "csrf", "a wrong X-CSRF-Token: 403", (status, j))
    status, _, j, _ = api.call("POST", T, body=body, headers=with_cookie(cookie, csrf))
    tap.ok(status == 201 and j["issued_by"] == "ann@idp.test", "with the csrf_token: 201",
           (status, j))
    tid = j["id"] if status == 201 else 0
    p = api.s.check_token(j["token"]) if status == 201 else None
    tap.ok(p is not None and p.returncode == 0, "the token checks OK at the validator",
           p and (p.stdout, p.stderr))
    ev = [e for e in api.audit() if e["action"] == "token.create"]
    tap.ok(ev and ev[-1]["actor"] == "ann@idp.test" and
           ev[-1]["details"].get("credential") == "session:%d" % sid and
           ev[-1]["details"].get("via") == "api",
           "the audit event names the session as the credential", ev[-1:])
    status, _, j, _ = api.call("DELETE", "%s/%d" % (T, tid), headers=with_cookie(cookie))
    tap.ok(status == 403, "DELETE with the cookie and no X-CSRF-Token: 403", (status, j))

    # sudo mode: a sign-in older than reauth_minutes cannot make a permanent token
    db(api, "UPDATE sso_session SET login_time = login_time - 11 * 60 WHERE id = ?", (sid,))
    status, h, j, _ = api.call("POST", T, body=body, headers=with_cookie(cookie, csrf))
    tap.ok(status == 401 and j["error"] == "reauthentication_required" and
           "sign in again" in j["message"],
           "a session older than reauth_minutes: 401 reauthentication_required", (status, j))
    status, _, j, _ = api.call("DELETE", "%s/%d" % (T, tid), headers=with_cookie(cookie, csrf))
    tap.ok(status == 204, "...while it may still delete (204)", (status, j))

    # idle time and lifetime
    db(api, "UPDATE sso_web_session SET last_seen = last_seen - 1800 WHERE session_id = ?",
       (sid,))
    status, _, j, _ = me(api, cookie)
    tap.ok(status == 401 and "expired" in j["message"], "an idle session has expired (401)",
           (status, j))
    now = int(time.time())
    db(api, "UPDATE sso_web_session SET last_seen = ?, expires = ? WHERE session_id = ?",
       (now, now - 1, sid))
    status, _, j, _ = me(api, cookie)
    tap.ok(status == 401, "a session past its lifetime has expired (401)", (status, j))
    status, _, j, _ = me(api, cookie[:-4] + ("AAAA" if not cookie.endswith("AAAA") else "BBBB"))
    tap.ok(status == 401, "a forged cookie: 401", (status, j))

    # logout
    _, _, c2 = sign_in(api, idp, "ann@idp.test", ["eng"])
    status, _, j, _ = me(api, c2)
    csrf2 = j.get("csrf_token", "") if status == 200 else ""
    status, h, _, text = api.call("POST", "/api/v1/auth/logout", headers=with_cookie(c2))
    tap.ok(status == 403, "logout without X-CSRF-Token: 403", status)
    status, h, _, text = api.call("POST", "/api/v1/auth/logout", headers=with_cookie(c2, csrf2))
    tap.ok(status == 204 and h.get("set-cookie", "").startswith("__Host-kw_session=;") and
           "max-age=0" in h.get("set-cookie", "").lower(),
           "logout: 204 and the cookie cleared", (status, h))
    status, _, j, _ = me(api, c2)
    tap.ok(status == 401, "after logout the cookie is refused", (status, j))

    # SLO
    _, _, c3 = sign_in(api, idp, "ann@idp.test", ["eng"])
    status, _, _, _ = me(api, c3)
    slo_status, _, body = api.s.post("/saml/slo",
                                     {"SAMLRequest": idp.logout_request("ann@idp.test")})
    status2, _, j, _ = me(api, c3)
    tap.ok(status == 200 and slo_status == 200 and status2 == 401,
           "a LogoutRequest (SLO) ends the session", (status, slo_status, status2, body))

    # an assertion that lowers her access ends the session; the new one has the new role
    _, _, c4 = sign_in(api, idp, "ann@idp.test", ["eng"])
    _, _, c5 = sign_in(api, idp, "ann@idp.test", ["staff"])
    s4, _, _, _ = me(api, c4)
    s5, _, j5, _ = me(api, c5)
    tap.ok(s4 == 401 and s5 == 200 and j5["role"] == "Users",
           "a downgrade by assertion ends her sessions; the new one acts as Users",
           (s4, s5, j5))

    # sso revoke ends sessions; her permanent token still checks (the rule)
    perm = api.kw("token", "create", "--as", "ann@idp.test", "--name", "perm", "--role",
                  "Users").stdout.strip()
    api.kw("sso", "revoke", "ann@idp.test", "--reason", "left")
    s5b, _, _, _ = me(api, c5)
    p = api.s.check_token(perm)
    tap.ok(s5b == 401 and p.returncode == 0,
           "sso revoke ends the session; her permanent token still checks OK",
           (s5b, p.stdout, p.stderr))
    status, _, c6 = sign_in(api, idp, "bo@idp.test", [])
    tap.ok(c6 is None, "a sign-in that maps to no role gets no session", status)

    # RelayState: only a path on this site
    for relay, follow in (("/tokens?x=1", True), ("https://evil.example/", False),
                          ("//evil.example/x", False), ("/\\evil.example", False),
                          ("javascript:alert(1)", False), ("/a b", False)):
        status, h, c = sign_in(api, idp, "cy@idp.test", ["eng"], relay)
        if follow:
            tap.ok(status == 303 and h.get("location") == relay and c is not None,
                   "RelayState %r: 303 to it, with the cookie" % relay, (status, h))
        else:
            tap.ok(status == 200 and "location" not in h and c is not None,
                   "RelayState %r is not followed (200, no Location)" % relay, (status, h))

    log = api.s.log()
    tap.ok(secret not in log and (c2 is None or c2.split("$")[1] not in log),
           "no session secret reaches the log")


if __name__ == "__main__":
    main()
