"""roles.py: roles sent by SCIM map through [sso] role_map like SAML groups. POST /Users
creates the SSO user with the mapped role (201, Location), or nobody when no role maps (400);
a lower role by PATCH downgrades the user and applies the rule (warning, review case
"downgraded", sessions and access tokens end, the permanent token stays OK); removing the
roles ends access by the rule ("revoked"); a revoked user's roles wait for active:true. Every
answer body is checked against doc/scim-schemas.json."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scimtest  # noqa: E402

st = scimtest.st
tokens = __import__("tokens")  # tests/api/tokens.py
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def main():
    tap = st.Tap()
    sc = scimtest.Scim(tap)
    try:
        run(tap, sc)
        sc.finish()
    finally:
        sc.cleanup()
    sys.exit(tap.done())


def cases(sc, login):
    r = json.loads(sc.s.kw("sso", "review", "--json").stdout)
    return [c for c in r["cases"] if c["user"] == login]


def run(tap, sc):
    sc.start()
    sc.s.start_validator()
    _, _, meta = sc.s.request("GET", "/saml/metadata")
    idp = st.LassoIdp(sc.s, meta)

    body = {"schemas": [USER], "userName": "nina@idp.test", "externalId": "00uNINA",
            "active": True, "name": {"givenName": "Nina"},
            "roles": [{"value": "eng", "primary": True}, {"value": "unmapped"}]}
    status, h, j, _ = sc.call("POST", "/Users", body=body)
    tap.ok(status == 201 and j["userName"] == "nina@idp.test" and
           j["roles"] == [{"value": "Engineers"}] and j["externalId"] == "00uNINA" and
           h.get("location") == "/scim/v2/Users/%s" % j["id"],
           "POST /Users with roles [eng, unmapped]: 201, an SSO user with role Engineers",
           (status, h, j))
    user = sc.s.users().get("nina@idp.test", {})
    tap.ok(user.get("sso_state") == "active" and user.get("role") == "Engineers",
           "the user exists in the store as an SSO user", user)
    ev = [e for e in sc.api.audit() if e["target"] == "nina@idp.test"]
    tap.ok(ev and ev[0]["action"] == "sso.user_create" and ev[0]["actor"] == "scim" and
           ev[0]["details"].get("via") == "scim",
           "the creation is audited (sso.user_create by scim)", ev)
    status, _, j, _ = sc.call("POST", "/Users", body=body)
    tap.ok(status == 409 and j["scimType"] == "uniqueness", "the same POST again: 409", j)
    status, _, j, _ = sc.call("POST", "/Users", body={"schemas": [USER],
                                                      "userName": "nobody@idp.test",
                                                      "roles": [{"value": "visitors"}]})
    tap.ok(status == 400 and "nobody@idp.test" not in sc.s.users(),
           "POST with roles that map to nothing: 400, nobody created", (status, j))
    status, _, j, _ = sc.call("POST", "/Users", body={"schemas": [USER], "userName": "root",
                                                      "roles": ["eng"]})
    tap.ok(status == 409, "POST of a local user's login: 409", (status, j))

    # she signs in, takes an access token and a permanent one
    hdr = tokens.session(sc.api, idp, "nina@idp.test", ["eng"])
    _, p = tokens.pair(sc.api, hdr)
    access = p.get("access", "0$x")
    perm = sc.api.token("nina@idp.test", "Engineers", name="ci")
    tid = perm.split("$")[0]
    uid = sc.user_id("nina@idp.test")
    mark = len(sc.s.log())
    status, _, j, _ = sc.call("PATCH", "/Users/%s" % uid, body={
        "schemas": [PATCH], "Operations": [{"op": "replace", "path": "roles",
                                            "value": [{"value": "staff"}]}]})
    tap.ok(status == 200 and j["roles"] == [{"value": "Users"}],
           "PATCH roles [staff]: 200, role Users", (status, j))
    user = sc.s.users()["nina@idp.test"]
    tap.ok(user["sso_state"] == "downgraded" and user["role"] == "Users",
           "she is downgraded to Users", user)
    line = tokens.check(sc.api, access)
    tap.ok(line == "FAIL\t7\tcode=deleted", "the downgrade ends her access token at once", line)
    p2 = sc.s.check_token(perm)
    tap.ok(p2.returncode == 0, "her permanent token (Engineers) still checks OK (the rule)",
           (p2.returncode, p2.stdout))
    warning = sc.s.log()[mark:]
    cmd = "keywarden token delete --as root %s" % tid
    tap.ok("warning: " + st.RULE in warning and cmd in warning and "SCIM" in warning,
           "the warning states the rule, names SCIM and the token's delete command", warning)
    c = cases(sc, "nina@idp.test")
    tap.ok(len(c) == 1 and c[0]["kind"] == "downgraded" and
           [t["id"] for t in c[0]["tokens"]] == [int(tid)],
           "sso review: a downgraded case with her token", c)

    status, _, j, _ = sc.call("PATCH", "/Users/%s" % uid, body={
        "schemas": [PATCH], "Operations": [{"op": "remove", "path": "roles"}]})
    user = sc.s.users()["nina@idp.test"]
    c = cases(sc, "nina@idp.test")
    tap.ok(status == 200 and j["active"] is False and user["sso_state"] == "revoked" and
           len(c) == 1 and c[0]["kind"] == "revoked",
           "PATCH remove roles: access ended by the rule (revoked, the case updated)",
           (status, j, user, c))
    p2 = sc.s.check_token(perm)
    tap.ok(p2.returncode == 0, "the permanent token still checks OK", p2.stdout)

    status, _, j, _ = sc.call("PATCH", "/Users/%s" % uid, body={
        "schemas": [PATCH], "Operations": [{"op": "add", "path": "roles",
                                            "value": ["admins"]}]})
    user = sc.s.users()["nina@idp.test"]
    tap.ok(status == 200 and user["sso_state"] == "revoked" and user["role"] == "Users",
           "roles sent to a revoked user wait for active:true", (status, user))
    status, _, j, _ = sc.call("PUT", "/Users/%s" % uid, body={
        "schemas": [USER], "userName": "nina@idp.test", "active": True, "roles": ["eng"]})
    user = sc.s.users()["nina@idp.test"]
    tap.ok(status == 200 and j["active"] is True and user["sso_state"] == "active" and
           user["role"] == "Engineers",
           "PUT active true with roles [eng]: access back, role Engineers", (status, user))


if __name__ == "__main__":
    main()
