"""simplesamlphp_idp.py: keywarden-ssod against Debian's SimpleSAMLphp 1.19 as a real IdP,
served by PHP's built-in web server in a temporary folder (simplesaml.py), configured from the
SP metadata keywarden serves (issue 17).

IdP-initiated and SP-initiated sign-in (the AuthnRequest is SimpleSAMLphp's to accept; its
Response answers it and the browser goes back to `next`) for signed-Response, signed-Assertion
and encrypted-Assertion shapes; a replay and a tampered Response are refused; SimpleSAMLphp's
hard-coded AES-128-CBC is refused as `algorithm` naming it unless allow_legacy_encryption;
its default transient NameIDs are refused (no throwaway users) and, with login_attribute,
sign the same user in twice."""
import base64
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ssodtest as st  # noqa: E402
from simplesaml import SimpleSamlIdp  # noqa: E402

IDP = "https://ssp-idp.test/idp"
EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
AES128_CBC = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
ATTRS = {"uid": ["alice"], "mail": ["alice@example.org"], "groups": ["eng", "staff"]}


def wait_log(s, text, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if text in s.log():
            return True
        time.sleep(0.05)
    return False


def restart(s):
    s.stop()
    open(s.log_path, "w").close()
    s.start()


def with_idp(s, **kw):
    """A SimpleSAMLphp IdP for s (its metadata becomes s's idp_metadata; s is restarted)."""
    _, _, meta = s.request("GET", "/saml/metadata")
    idp = SimpleSamlIdp(meta, IDP, s.idp_key, s.idp_crt, ATTRS, **kw)
    with open(s.meta, "w") as f:
        f.write(idp.metadata())
    restart(s)
    return idp


def post(s, b64):
    return s.post("/saml/acs", {"SAMLResponse": b64 or ""})


def email_nameid(**kw):
    return dict(nameid_format=EMAIL, extra_sp={"simplesaml.nameidattribute": "mail"}, **kw)


def main():
    tap = st.Tap()
    for fn in (shapes, encrypted, transient):
        s = st.Ssod()
        idps = []
        try:
            s.start()
            fn(tap, s, idps)
        finally:
            for idp in idps:
                idp.cleanup()
            s.cleanup()
    return tap.done()


def shapes(tap, s, idps):
    idp = with_idp(s, **email_nameid())
    idps.append(idp)
    tap.ok("https://sp.test/saml/acs" in idp.sp_remote,
           "SimpleSAMLphp's metadata parser reads keywarden's SP metadata", idp.sp_remote)
    resp, page = idp.idp_initiated(st.SP)
    status, hdrs, body = post(s, resp)
    tap.ok(status == 200 and "<b>alice@example.org</b> with role <b>Engineers</b>" in body,
           "IdP-initiated, Response and Assertion signed (SimpleSAMLphp's default): 200",
           (status, body, page[:2000], s.log()[-600:], idp.log()[-2000:]))
    status, hdrs, body = post(s, resp)
    tap.ok(status == 409 and hdrs.get("x-keywarden-reason") == "replay",
           "the same Response again: 409 replay", (status, body))
    xml = base64.b64decode(idp.idp_initiated(st.SP)[0]).decode()
    bad = xml.replace(">alice@example.org<", ">mallory@example.org<")
    status, hdrs, body = post(s, base64.b64encode(bad.encode()).decode())
    tap.ok(bad != xml and status == 403 and hdrs.get("x-keywarden-reason") == "signature",
           "its NameID changed after signing: 403 signature", (status, body))

    status, hdrs, _ = s.request("GET", "/saml/login?next=/tokens")
    loc = hdrs.get("location", "")
    tap.ok(status == 302 and "/saml2/idp/SSOService.php?SAMLRequest=" in loc,
           "GET /saml/login: 302 to SimpleSAMLphp's SSOService", (status, hdrs))
    resp, page = idp.sp_initiated(loc)
    status, hdrs, body = post(s, resp)
    tap.ok(status == 303 and hdrs.get("location") == "/tokens",
           "SimpleSAMLphp accepts the AuthnRequest; its Response: 303 back to next",
           (status, hdrs, body, page[:2000], s.log()[-600:], idp.log()[-2000:]))
    # a second Response to the same request (SimpleSAMLphp answers it again)
    resp2, _ = idp.sp_initiated(loc)
    status, hdrs, body = post(s, resp2)
    tap.ok(resp2 is not None and resp2 != resp and status == 409 and
           hdrs.get("x-keywarden-reason") == "replay" and wait_log(s, "answered before"),
           "a second Response to the same AuthnRequest: 409 replay (already answered)",
           (status, body, s.log()[-600:]))

    for name, kw in (("signed Response only", {"sign_assertion": False}),
                     ("signed Assertion only", {"sign_response": False})):
        other = with_idp(s, **email_nameid(**kw))
        idps.append(other)
        _, hdrs, _ = s.request("GET", "/saml/login")
        resp, page = other.sp_initiated(hdrs.get("location", ""))
        status, hdrs, body = post(s, resp)
        tap.ok(status == 200 and "<b>alice@example.org</b>" in body,
               "SP-initiated, %s: 200" % name, (status, body, s.log()[-600:]))


def encrypted(tap, s, idps):
    idp = with_idp(s, **email_nameid(encrypt=True))
    idps.append(idp)
    resp, page = idp.idp_initiated(st.SP)
    status, hdrs, body = post(s, resp)
    tap.ok(status == 403 and hdrs.get("x-keywarden-reason") == "algorithm" and
           wait_log(s, AES128_CBC),
           "SimpleSAMLphp's encrypted Assertion (AES-128-CBC, hard-coded in 1.19): 403 "
           "algorithm, naming it", (status, body, s.log()[-600:]))
    with open(os.path.join(s.dir, "keywarden.conf"), "a") as f:
        f.write("allow_legacy_encryption = yes\n")
    restart(s)
    _, hdrs, _ = s.request("GET", "/saml/login?next=/x")
    resp, page = idp.sp_initiated(hdrs.get("location", ""))
    status, hdrs, body = post(s, resp)
    tap.ok(status == 303 and hdrs.get("location") == "/x",
           "with allow_legacy_encryption: SP-initiated, encrypted Assertion, 303 to next",
           (status, body, s.log()[-600:]))


def transient(tap, s, idps):
    idp = with_idp(s)  # SimpleSAMLphp's default: a transient NameID
    idps.append(idp)
    for i in range(2):
        resp, page = idp.idp_initiated(st.SP)
        status, hdrs, body = post(s, resp)
        tap.ok(status == 403 and hdrs.get("x-keywarden-reason") == "nameid",
               "transient NameID (SimpleSAMLphp's default), sign-in %d: 403 nameid" % (i + 1),
               (status, body, s.log()[-600:]))
    tap.ok(wait_log(s, "set [sso] login_attribute") and
           not [u for u in s.users().values() if u.get("source") == "sso"],
           "the log says to set login_attribute; no throwaway SSO users were made", s.users())
    with open(os.path.join(s.dir, "keywarden.conf"), "a") as f:
        f.write("login_attribute = uid\n")
    restart(s)
    for i in range(2):
        _, hdrs, _ = s.request("GET", "/saml/login")
        resp, page = idp.sp_initiated(hdrs.get("location", ""))
        status, hdrs, body = post(s, resp)
        tap.ok(status == 200 and "<b>alice</b>" in body,
               "with login_attribute = uid, sign-in %d: 200 as alice" % (i + 1),
               (status, body, s.log()[-600:]))
    sso = [u for u in s.users().values() if u.get("source") == "sso"]
    tap.ok([u["login"] for u in sso] == ["alice"],
           "two transient NameIDs, one SSO user: alice", s.users())


if __name__ == "__main__":
    sys.exit(main())
