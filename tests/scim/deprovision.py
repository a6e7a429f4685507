"""deprovision.py: an IdP's SCIM client ends a user's access, and keywarden acts by the rule.
The request shapes are those the IdPs document: Okta deactivates with
PATCH /Users/{id} {"op":"replace","value":{"active":false}} (no path); Entra ID with
{"op":"Replace","path":"active","value":"False"} (a capitalised op, a string boolean) and sends
DELETE only at hard delete. Each ends the user's SSO sessions and 1-hour access tokens at once
(FAIL at the validator), leaves the permanent token OK, logs the warning with its delete
command, opens a case in `keywarden sso review`, and is audited; active:true restores SSO
access. Users sign in through the real lasso IdP first."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scimtest  # noqa: E402

st = scimtest.st
tokens = __import__("tokens")  # tests/api/tokens.py: check(), session(), pair()
OKTA_OFF = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": False}}]}
OKTA_ON = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "replace", "value": {"active": True}}]}
ENTRA_OFF = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}
ENTRA_ON = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": "True"}]}


def main():
    tap = st.Tap()
    sc = scimtest.Scim(tap)
    try:
        run(tap, sc)
        sc.finish()
    finally:
        sc.cleanup()
    sys.exit(tap.done())


def review(sc):
    return json.loads(sc.s.kw("sso", "review", "--json").stdout)


def case_of(sc, login):
    return [c for c in review(sc)["cases"] if c["user"] == login]


def scenario(tap, sc, idp, login, how, off, method="PATCH"):
    api = sc.api
    hdr = tokens.session(api, idp, login, ["eng"])
    status, p = tokens.pair(api, hdr)
    access = p.get("access", "0$x")
    perm = api.token(login, "Engineers", name="deploy")
    tid = perm.split("$")[0]
    ok_before = tokens.check(api, access).startswith("OK") and \
        tokens.check(api, perm).startswith("OK")
    tap.ok(status == 201 and ok_before,
           "%s: %s has a session, an access token and a permanent token, all OK" % (how, login),
           (status, p))
    uid = sc.user_id(login)
    tap.ok(uid is not None, "%s: GET /Users?filter=userName eq finds %s" % (how, login))
    mark = len(sc.s.log())
    status, _, j, _ = sc.call(method, "/Users/%s" % uid, body=off)
    if method == "DELETE":
        tap.ok(status == 204, "%s: DELETE /Users/{id}: 204" % how, (status, j))
    else:
        tap.ok(status == 200 and j["active"] is False and j["userName"] == login,
               "%s: 200, the User with active false" % how, (status, j))
    line = tokens.check(api, access)
    tap.ok(line == "FAIL\t7\tcode=deleted",
           "%s: the access token FAILs at the validator at once" % how, line)
    status, _, j, _ = api.call("GET", "/api/v1/me", headers=hdr)
    tap.ok(status == 401, "%s: the SSO session ends at once (401)" % how, (status, j))
    p = sc.s.check_token(perm)
    tap.ok(p.returncode == 0, "%s: the permanent token still checks OK (the rule)" % how,
           (p.returncode, p.stdout, p.stderr))
    warning = sc.s.log()[mark:]
    cmd = "keywarden token delete --as root %s" % tid
    tap.ok("warning: " + st.RULE in warning and "[%s]" % st.MSGID_RULE in warning and
           ('token %s "deploy"' % tid) in warning and cmd in warning and "SCIM" in warning and
           st.IDP in warning,
           "%s: the warning states the rule, names the token and its delete command, SCIM "
           "and the IdP" % how, warning)
    user = sc.s.users()[login]
    tap.ok(user["sso_state"] == "revoked" and user["enabled"] is True,
           "%s: %s is revoked, not disabled" % (how, login), user)
    cases = case_of(sc, login)
    tap.ok(len(cases) == 1 and cases[0]["kind"] == "idp_revoked" and
           [t["id"] for t in cases[0]["tokens"]] == [int(tid)] and
           cases[0]["tokens"][0]["delete"] == cmd and "SCIM" in cases[0]["reason"],
           "%s: keywarden sso review lists the case with the token and its command" % how,
           cases)
    ev = [e for e in api.audit() if e["action"] == "sso.revoke" and e["target"] == login]
    tap.ok(len(ev) == 1 and ev[0]["actor"] == "scim" and "SCIM" in ev[0]["details"]["reason"],
           "%s: one audit event sso.revoke by scim" % how, ev)
    # again: nothing new (an IdP retries)
    if method != "DELETE":
        status, _, j, _ = sc.call(method, "/Users/%s" % uid, body=off)
        ev2 = [e for e in api.audit() if e["action"] == "sso.revoke" and e["target"] == login]
        tap.ok(status == 200 and len(ev2) == 1,
               "%s: the same deactivation again: 200, no second event" % how, (status, ev2))
    return uid, perm


def run(tap, sc):
    sc.start()
    sc.s.start_validator()
    _, _, meta = sc.s.request("GET", "/saml/metadata")
    idp = st.LassoIdp(sc.s, meta)

    uid, perm = scenario(tap, sc, idp, "olga@idp.test", "Okta", OKTA_OFF)
    status, _, j, _ = sc.call("PATCH", "/Users/%s" % uid, body=OKTA_ON)
    user = sc.s.users()["olga@idp.test"]
    ev = [e for e in sc.api.audit() if e["action"] == "sso.restore"]
    tap.ok(status == 200 and j["active"] is True and user["sso_state"] == "active" and
           len(ev) == 1 and ev[0]["target"] == "olga@idp.test" and ev[0]["actor"] == "scim",
           "Okta: active true restores SSO access (sso_state active, audit sso.restore)",
           (status, j, user, ev))
    p = sc.s.check_token(perm)
    tap.ok(p.returncode == 0, "Okta: the permanent token is unchanged by the restore",
           p.stdout)
    hdr = tokens.session(sc.api, idp, "olga@idp.test", ["eng"])
    status, _, j, _ = sc.api.call("GET", "/api/v1/me", headers=hdr)
    tap.ok(status == 200, "Okta: after reactivation she signs in again", (status, j))

    uid, _ = scenario(tap, sc, idp, "erik@idp.test", "Entra ID", ENTRA_OFF)
    status, _, j, _ = sc.call("PATCH", "/Users/%s" % uid, body=ENTRA_ON)
    tap.ok(status == 200 and j["active"] is True and
           sc.s.users()["erik@idp.test"]["sso_state"] == "active",
           "Entra ID: Replace active \"True\" restores SSO access", (status, j))

    scenario(tap, sc, idp, "dora@idp.test", "Entra ID hard delete", None, method="DELETE")


if __name__ == "__main__":
    main()
