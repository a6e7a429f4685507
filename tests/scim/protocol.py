"""protocol.py: the SCIM 2.0 protocol of keywarden-ssod as IdP clients use it: discovery
(ServiceProviderConfig, Schemas, ResourceTypes), lookup by filter (userName eq, externalId eq,
names and operator in any case; anything else 400 invalidFilter), paging (startIndex, count,
ListResponse), POST of an existing user (409), PUT, unknown attributes ignored, malformed,
oversize and too deep bodies, a wrong bearer token (401, logged without the token, then
throttled: 429). Every answer body is checked against doc/scim-schemas.json."""
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scimtest  # noqa: E402

st = scimtest.st


def main():
    tap = st.Tap()
    sc = scimtest.Scim(tap, extra=None)
    try:
        run(tap, sc)
        sc.finish()
    finally:
        sc.cleanup()
    sys.exit(tap.done())


def q(filter_):
    return "/Users?filter=" + urllib.parse.quote(filter_)


def run(tap, sc):
    sc.start()
    _, _, meta = sc.s.request("GET", "/saml/metadata")
    idp = st.LassoIdp(sc.s, meta)
    logins = ["u%02d@idp.test" % i for i in range(7)]
    for login in logins:
        status, _, _ = sc.s.post("/saml/acs", {"SAMLResponse": idp.response(login, ["eng"])})
    sc.s.kw("user", "add", "--account", "acme", "local1", "--role", "Users")

    for path in ("/ServiceProviderConfig", "/Schemas", "/ResourceTypes"):
        status, h, j, _ = sc.call("GET", path)
        tap.ok(status == 200 and h.get("content-type") == "application/scim+json",
               "GET %s: 200 application/scim+json" % path, (status, h, j))
    status, _, j, _ = sc.call("GET", "/ServiceProviderConfig")
    tap.ok(j["patch"]["supported"] is True and j["bulk"]["supported"] is False and
           j["authenticationSchemes"][0]["type"] == "oauthbearertoken",
           "ServiceProviderConfig: PATCH yes, bulk no, a bearer token", j)

    status, _, j, _ = sc.call("GET", "/Users")
    tap.ok(status == 200 and j["totalResults"] == 7 and
           sorted(r["userName"] for r in j["Resources"]) == logins,
           "GET /Users lists the account's SSO users only (not local1, not root)", j)
    status, _, j, _ = sc.call("GET", "/Users?startIndex=3&count=2")
    tap.ok(status == 200 and j["totalResults"] == 7 and j["startIndex"] == 3 and
           j["itemsPerPage"] == 2 and len(j["Resources"]) == 2,
           "paging: startIndex=3&count=2 gives 2 of 7 from the third", j)
    seen = []
    for start in (1, 4, 7):
        _, _, j, _ = sc.call("GET", "/Users?startIndex=%d&count=3" % start)
        seen += [r["userName"] for r in j["Resources"]]
    tap.ok(sorted(seen) == logins and len(seen) == 7, "three pages of 3 cover all 7 once", seen)
    status, _, j, _ = sc.call("GET", "/Users?startIndex=50&count=5")
    tap.ok(status == 200 and j["Resources"] == [] and j["itemsPerPage"] == 0,
           "a page past the end is empty", j)
    status, _, j, _ = sc.call("GET", "/Users?count=0")
    tap.ok(status == 200 and j["totalResults"] == 7 and j["Resources"] == [],
           "count=0 gives the total only", j)
    status, _, j, _ = sc.call("GET", "/Users?startIndex=x")
    tap.ok(status == 400 and j["scimType"] == "invalidValue", "startIndex=x: 400", j)

    status, _, j, _ = sc.call("GET", q('userName eq "u03@idp.test"'))
    tap.ok(status == 200 and j["totalResults"] == 1 and
           j["Resources"][0]["userName"] == "u03@idp.test",
           'filter userName eq "u03@idp.test" finds one', j)
    uid = j["Resources"][0]["id"] if status == 200 and j["Resources"] else "0"
    status, _, j, _ = sc.call("GET", q('USERNAME EQ "U03@IDP.TEST"'))
    tap.ok(status == 200 and j["totalResults"] == 1, "names, operator and value in any case", j)
    status, _, j, _ = sc.call("GET", q('userName eq "nobody@idp.test"'))
    tap.ok(status == 200 and j["totalResults"] == 0 and j["Resources"] == [],
           "an unknown userName: an empty ListResponse (how IdPs learn to POST)", j)
    status, _, j, _ = sc.call("GET", q('externalId eq "00u1abc"'))
    tap.ok(status == 200 and j["totalResults"] == 0, "filter externalId eq is accepted", j)
    status, _, j, _ = sc.call("GET", q('userName eq "local1"'))
    tap.ok(status == 200 and j["totalResults"] == 0, "a local user is not a SCIM user", j)
    for bad in ('userName co "u0"', 'emails.value eq "x"', 'userName eq "a" or userName eq "b"',
                'userName eq u03', 'userName pr', ''):
        status, _, j, _ = sc.call("GET", q(bad))
        tap.ok(status == 400 and j["scimType"] == "invalidFilter",
               "filter %r: 400 invalidFilter" % bad, (status, j))

    status, _, j, _ = sc.call("GET", "/Users/%s" % uid)
    tap.ok(status == 200 and j["userName"] == "u03@idp.test" and j["active"] is True and
           j["roles"] == [{"value": "Engineers"}],
           "GET /Users/{id}: the user, active, with her role", j)
    for bad in ("999999", "abc", "-1"):
        status, _, j, _ = sc.call("GET", "/Users/" + bad)
        tap.ok(status == 404, "GET /Users/%s: 404" % bad, (status, j))

    status, _, j, _ = sc.call("POST", "/Users", body={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "u01@idp.test",
        "active": True})
    tap.ok(status == 409 and j["scimType"] == "uniqueness", "POST of an existing user: 409", j)

    # unknown attributes are ignored; PUT with everything an IdP sends
    put = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                       "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
           "userName": "u03@idp.test", "externalId": "00u1abc", "active": True,
           "name": {"givenName": "U", "familyName": "Three"}, "displayName": "U Three",
           "emails": [{"value": "u03@idp.test", "primary": True, "type": "work"}],
           "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"},
           "favouriteColour": "green"}
    status, _, j, _ = sc.call("PUT", "/Users/%s" % uid, body=put)
    tap.ok(status == 200 and j["active"] is True and j.get("externalId") == "00u1abc",
           "PUT with unknown attributes: 200, externalId kept", (status, j))
    status, _, j, _ = sc.call("GET", q('EXTERNALID eq "00u1abc"'))
    tap.ok(status == 200 and j["totalResults"] == 1 and
           j["Resources"][0]["userName"] == "u03@idp.test" and
           j["Resources"][0]["externalId"] == "00u1abc",
           "filter externalId eq finds the user by the IdP's id", j)
    status, _, j, _ = sc.call("GET", q('externalId eq "00U1ABC"'))
    tap.ok(status == 200 and j["totalResults"] == 0, "externalId is case-exact", j)
    ev = [e for e in sc.api.audit() if e["action"] == "scim.external_id"]
    tap.ok(len(ev) == 1 and ev[0]["target"] == "u03@idp.test" and
           ev[0]["details"]["external_id"] == "00u1abc",
           "keeping the externalId is an audit event", ev)
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "replace", "path": "displayName", "value": "X"},
                            {"op": "Add", "path": "title", "value": "Dr"},
                            {"op": "remove", "path": "nickName"}]}
    status, _, j, _ = sc.call("PATCH", "/Users/%s" % uid, body=patch)
    tap.ok(status == 200 and j["active"] is True and
           sc.s.users()["u03@idp.test"]["sso_state"] == "active",
           "PATCH of attributes keywarden does not keep: 200, nothing changes", (status, j))
    put2 = dict(put, userName="someone-else")
    status, _, j, _ = sc.call("PUT", "/Users/%s" % uid, body=put2)
    tap.ok(status == 400 and j["scimType"] == "mutability", "PUT renaming the user: 400", j)

    # malformed and hostile bodies
    path = "/Users/%s" % uid
    for raw, why in (('{"Operations":[', "truncated JSON"), ("[]", "not an object"),
                     ('{"Operations":{}}', "Operations not an array"),
                     ('{"Operations":[{"op":"move","path":"active","value":false}]}',
                      "an unknown op"),
                     ('{"Operations":[{"op":"replace","path":"active","value":"maybe"}]}',
                      "active neither true nor false"),
                     ('{"Operations":[{"op":"replace","value":[1]}]}',
                      "no path and a value not an object"),
                     ('{"Operations":' + "[" * 40 + "]" * 40 + "}", "nested 40 deep"),
                     ('{"a":"\xff"}', "not UTF-8"), ('{"a":1}x', "trailing bytes")):
        data = raw.encode("latin-1") if "\xff" in raw else raw
        status, _, j, _ = sc.call("PATCH", path, raw=data)
        tap.ok(status == 400 and j and j.get("scimType") in ("invalidSyntax", "invalidValue"),
               "PATCH with %s: 400" % why, (status, j))
    status, _, j, _ = sc.call("PATCH", path, raw='{"Operations":[]}', ctype="text/plain")
    tap.ok(status == 415, "PATCH as text/plain: 415", (status, j))
    big = '{"Operations":[],"pad":"' + "x" * (64 * 1024) + '"}'
    status, _, j, _ = sc.call("PATCH", path, raw=big)
    tap.ok(status == 413, "an oversize body: 413", status)
    tap.ok(sc.s.users()["u03@idp.test"]["sso_state"] == "active",
           "none of the bad bodies changed the user")

    # the bearer token
    status, h, j, _ = sc.call("GET", "/Users", bearer=None)
    tap.ok(status == 401 and h.get("www-authenticate", "").startswith("Bearer"),
           "no Authorization: 401 with a Bearer challenge", (status, h))
    status, _, j, _ = sc.call("GET", "/Users", bearer=scimtest.BEARER[:-1])
    tap.ok(status == 401, "a bearer token one character short: 401", status)
    status, _, j, _ = sc.call("GET", "/Users", bearer=scimtest.BEARER + "x" * 100)
    tap.ok(status == 401, "a longer bearer token: 401", status)
    status, _, j, _ = sc.call("GET", "/Users", bearer=None,
                              headers={"Authorization": "APIKey " + scimtest.BEARER})
    tap.ok(status == 401, "the token under another scheme: 401", status)
    log = sc.s.log()
    tap.ok("SCIM 401" in log and scimtest.BEARER[:12] not in log,
           "failures are logged, the token never", log[-2000:])
    codes = []
    for _ in range(12):
        status, h, _, _ = sc.call("PATCH", path, bearer="wrong-token-000000",
                                  body={"Operations": [{"op": "replace", "path": "active",
                                                        "value": False}]})
        codes.append(status)
    tap.ok(codes[-1] == 429 and 401 in codes and
           sc.s.users()["u03@idp.test"]["sso_state"] == "active",
           "repeated wrong tokens are throttled (429); the user is untouched", codes)
    status, _, _, _ = sc.call("GET", "/Users")
    tap.ok(status == 429, "while blocked, even the right token waits (429)", status)


if __name__ == "__main__":
    main()
