"""attacks.py: Responses made at test time by a real signer (tests/saml/idp.py: openssl keys,
xmlsec1 signatures, XML Encryption) and an attack suite built from them, run through
keywarden-ssod ingest. Each case is one TAP line that checks the exact output line (verdict,
reason class, login and role) and the exit status; the store is checked too."""
import base64
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import idp as idplib  # noqa: E402
import sslib  # noqa: E402
from sslib import kwpg  # noqa: E402

IDP = "https://idp.test/saml/metadata"
SP = "https://sp.test/saml/metadata"
ACS = "https://sp.test/saml/acs"
ROLE_MAP = "eng:Engineers, admins:Administrators, staff:Users"
SIG_RE = re.compile(r"<ds:Signature .*?</ds:Signature>", re.S)


def main():
    tap = sslib.Tap()
    work = tempfile.mkdtemp(prefix="kw-idp-")
    try:
        run(tap, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tap.done()


def run(tap, work):
    idp = idplib.Idp(work, IDP, SP, ACS)
    idp2_key, idp2_crt = idplib.keypair(work, "idp2")
    rogue_key, rogue_crt = idplib.keypair(work, "rogue")
    sp_key, sp_crt = idplib.keypair(work, "sp")
    base = {"role_attribute": "groups", "role_map": ROLE_MAP}

    def state(extra=None):
        e = dict(base)
        e.update(extra or {})
        return sslib.make_state(IDP, [idp.crt, idp2_crt], SP, ACS, sp_key, e)

    def write(text, name):
        p = idp.path(name)
        with open(p, "w" if isinstance(text, str) else "wb") as f:
            f.write(text)
        return p

    def case(name, texts, expect, extra=None, keep=None):
        """texts: one document or a list (one run); expect: list of exact output lines, where
        a set means any of those lines."""
        texts = texts if isinstance(texts, list) else [texts]
        expect = expect if isinstance(expect, list) else [expect]
        st = keep or state(extra)
        files = [write(t, name) for t in texts]
        rc, out, err = sslib.run_ssod(st, files)
        good = len(out) == len(expect) and all(
            (o in e) if isinstance(e, (set, frozenset)) else o == e for o, e in zip(out, expect))
        want_rc = 0 if all(isinstance(e, str) and e.startswith("accepted") for e in expect) else 1
        good = good and rc == want_rc
        tap.ok(good, "%s: %s" % (name, " | ".join(out) or "no output"),
               "expected %s (exit %d), got exit %d\n%s" % (expect, want_rc, rc, err))
        if keep is None:
            shutil.rmtree(st, ignore_errors=True)
        return st

    eng = "accepted alice@example.org Engineers"

    # ---- Responses a real IdP sends: all accepted ----
    _, plain = idp.assertion()
    resp_signed = idp.signed_response(plain)
    case("Response-level signature", resp_signed, eng)
    aid, a_signed = idp.signed_assertion()
    _, assert_signed = idp.response(a_signed)
    case("Assertion-level signature", assert_signed, eng)
    case("Assertion-level signature, base64 as HTTP-POST carries it",
         base64.b64encode(assert_signed.encode()) + b"\n", eng)
    b64 = base64.b64encode(assert_signed.encode())
    case("base64 wrapped at 76 columns with CRLF (MIME style)",
         b"\r\n".join(b64[k:k + 76] for k in range(0, len(b64), 76)) + b"\r\n", eng)
    case("base64 with a character outside the alphabet in the middle",
         b64[:len(b64) // 2] + b"*" + b64[len(b64) // 2 + 1:], "rejected xml")
    case("base64 with padding in the middle",
         b64[:400] + b"==" + b64[402:], "rejected xml")
    case("base64 cut short by one character", b64[:-1], "rejected xml")
    _, a2 = idp.signed_assertion()
    case("Response and Assertion both signed", idp.signed_response(a2), eng)
    _, a3 = idp.signed_assertion()
    _, enc = idp.response(idp.encrypt(a3, sp_crt))
    case("EncryptedAssertion (RSA-OAEP, AES-256-GCM), Assertion signed inside", enc, eng)
    _, p4 = idp.assertion()
    case("EncryptedAssertion, Response signed over the ciphertext",
         idp.signed_response(idp.encrypt(p4, sp_crt)), eng)
    _, p5 = idp.assertion()
    case("key rollover: signed by the second pinned certificate",
         idp.signed_response(p5, key=idp2_key, crt=idp2_crt), eng)
    _, p6 = idp.assertion(groups=("staff", "admins", "eng"))
    case("role map: the highest mapped role wins", idp.signed_response(p6),
         "accepted alice@example.org Administrators")
    _, p7 = idp.assertion(groups=("visitors",))
    case("role map: no group maps", idp.signed_response(p7), "accepted alice@example.org -")
    _, p8 = idp.assertion(attrs_extra='<saml:Attribute Name="uid"><saml:AttributeValue>'
                          'alice</saml:AttributeValue></saml:Attribute>')
    case("login_attribute names the login", idp.signed_response(p8),
         "accepted alice Engineers", {"login_attribute": "uid"})
    _, p9 = idp.assertion()
    case("SHA-1 accepted with allow_sha1",
         idp.signed_response(p9, sigargs={"sigalg": idplib.RSA_SHA1, "digalg": idplib.SHA1}),
         eng, {"allow_sha1": "yes"})
    _, a10 = idp.signed_assertion()
    _, legacy = idp.response(idp.encrypt(a10, sp_crt, legacy=True))
    case("RSA-1_5/AES-CBC accepted with allow_legacy_encryption", legacy, eng,
         {"allow_legacy_encryption": "yes"})

    # ---- comment and CDATA inside NameID (CVE-2017-11427 class): whole text, never cut ----
    long_id = "alice@example.org.evil.test"
    _, c1 = idp.signed_assertion(nameid=long_id)
    _, r = idp.response(c1.replace(">alice@example.org.evil.test<",
                                   ">alice@example.org<!---->.evil.test<"))
    case("comment inside NameID after signing: login is the whole text", r,
         "accepted alice@example.org.evil.test Engineers")
    _, c2 = idp.signed_assertion(nameid=long_id)
    _, r = idp.response(c2.replace(">alice@example.org.evil.test<",
                                   ">alice@example.org<![CDATA[.evil.test]]><"))
    case("CDATA inside NameID after signing: login is the whole text", r,
         "accepted alice@example.org.evil.test Engineers")

    # ---- forged or broken signatures ----
    _, t = idp.signed_assertion()
    _, r = idp.response(t.replace("alice@example.org", "admin@example.org"))
    case("tampered after signing", r, "rejected signature")
    _, p = idp.assertion()
    case("signed with a key that is not pinned", idp.signed_response(p, key=rogue_key,
                                                                       crt=rogue_crt),
         "rejected signature")
    _, p = idp.assertion()
    case("key only in KeyInfo (KeyValue of an attacker's key)",
         idp.signed_response(p, key=rogue_key, crt=rogue_crt,
                             sigargs={"keyinfo": "<ds:KeyValue/>"}), "rejected signature")
    _, p = idp.assertion()
    _, r = idp.response(p)
    case("unsigned", r, "rejected signature")
    _, p = idp.assertion()
    rid = idplib.new_id()
    r = idp.signed_response(p, rid=rid)
    case("Reference URI=\"\" (whole document)",
         r.replace('URI="#%s"' % rid, 'URI=""'), "rejected reference")
    _, p = idp.assertion()
    case("SHA-1 without allow_sha1",
         idp.signed_response(p, sigargs={"sigalg": idplib.RSA_SHA1, "digalg": idplib.SHA1}),
         "rejected algorithm")
    case("HMAC signature method", resp_signed.replace(
        idplib.RSA_SHA256, "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"),
        "rejected algorithm")
    case("XPath transform", resp_signed.replace(
        "http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms>",
        "http://www.w3.org/TR/1999/REC-xpath-19991116\"/></ds:Transforms>"),
        "rejected algorithm")
    case("RSA-1_5/AES-CBC without allow_legacy_encryption", legacy, "rejected algorithm")

    # ---- XML signature wrapping, XSW1-8 (Somorovsky et al.) ----
    wrap = {"rejected wrapping", "rejected structure"}
    _, evil = idp.assertion(nameid="admin@example.org", groups=("admins",))
    rsig = SIG_RE.search(resp_signed).group(0)
    _, x1 = idp.response(evil, sign=rsig.replace("</ds:Signature>",
                                                 resp_signed + "</ds:Signature>"))
    case("XSW1: signed Response inside the evil Response's Signature", x1, wrap)
    _, x2 = idp.response(evil, sign=resp_signed + rsig)
    case("XSW2: signed Response before the evil Response's Signature", x2, wrap)
    aid, a_sig = idp.signed_assertion()
    asig = SIG_RE.search(a_sig).group(0)
    a_nosig = a_sig.replace(asig, "")
    _, evil_same = idp.assertion(aid=aid, nameid="admin@example.org", groups=("admins",))
    _, x3 = idp.response(evil_same + a_sig)
    case("XSW3: evil Assertion with the same ID before the signed one", x3, wrap)
    _, x4 = idp.response(evil_same.replace("</saml:Assertion>", a_sig + "</saml:Assertion>"))
    case("XSW4: signed Assertion inside the evil one", x4, wrap)
    evil_with_sig = evil_same.replace("</saml:Issuer>", "</saml:Issuer>" + asig, 1)
    _, x5 = idp.response(evil_with_sig + a_nosig)
    case("XSW5: Signature moved to the evil Assertion, original at the end", x5, wrap)
    _, x6 = idp.response(evil_same.replace(
        "</saml:Issuer>", "</saml:Issuer>" + asig.replace("</ds:Signature>",
                                                           a_nosig + "</ds:Signature>"), 1))
    case("XSW6: original Assertion inside the evil Assertion's Signature", x6, wrap)
    _, x7 = idp.response(evil_same, sign="<samlp:Extensions>" + a_sig + "</samlp:Extensions>")
    case("XSW7: signed Assertion hidden in Extensions", x7, wrap)
    _, x8 = idp.response(evil_same.replace(
        "</saml:Issuer>", "</saml:Issuer>" + asig.replace(
            "</ds:Signature>", "<ds:Object>" + a_nosig + "</ds:Object></ds:Signature>"), 1))
    case("XSW8: original Assertion in a ds:Object of the evil Assertion's Signature", x8, wrap)
    _, x9 = idp.response(a_sig + evil)
    case("two assertions (one signed, one not)", x9, {"rejected structure"})
    _, s1 = idp.signed_assertion()
    _, s2 = idp.signed_assertion(nameid="bob@example.org")
    _, x10 = idp.response(s1 + s2)
    case("two signed assertions", x10, "rejected structure")

    # ---- parser attacks ----
    case("DOCTYPE", "<!DOCTYPE samlp:Response>\n" + assert_signed, "rejected dtd")
    case("external entity (XXE)",
         '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n' +
         assert_signed.replace("alice@example.org", "&x;"), "rejected dtd")
    lol = "".join('<!ENTITY l%d "%s">' % (i + 1, ("&l%d;" % i) * 10) for i in range(9))
    case("entity expansion (billion laughs)",
         '<!DOCTYPE r [<!ENTITY l0 "lol">%s]>\n' % lol +
         assert_signed.replace("alice@example.org", "&l9;"), "rejected dtd")
    case("undeclared entity reference", assert_signed.replace("alice@example.org", "&x;"),
         "rejected xml")
    case("oversize (300 KiB)", assert_signed.replace(
        "</samlp:Response>", "<!--" + "x" * 300000 + "--></samlp:Response>"), "rejected limit")
    deep = "<x:a xmlns:x='urn:x'>" * 60 + "</x:a>" * 60
    case("nesting deeper than the limit", assert_signed.replace(
        "<samlp:Status>", "<samlp:Extensions>%s</samlp:Extensions><samlp:Status>" % deep),
        "rejected limit")
    case("not XML", "hello world", "rejected xml")

    # ---- the SAML checks, each on a correctly signed Response ----
    def signed(**kw):
        rkw = {k: kw.pop(k) for k in ("destination", "status", "issuer") if k in kw}
        _, a = idp.signed_assertion(**kw)
        return idp.response(a, **rkw)[1]

    case("wrong Audience", signed(audience="https://other.test/sp"), "rejected audience")
    case("wrong Destination", signed(destination="https://evil.test/acs"),
         "rejected destination")
    case("wrong Recipient", signed(recipient="https://evil.test/acs"), "rejected recipient")
    case("wrong Assertion Issuer", signed(issuer="https://evil.test/idp"), "rejected issuer")
    _, a = idp.signed_assertion()
    case("wrong Response Issuer", idp.response(a, issuer="https://evil.test/idp")[1],
         "rejected issuer")
    case("expired", signed(shift=-3600), "rejected time")
    case("not yet valid", signed(shift=3600), "rejected time")
    case("inside the clock skew (issued 100 s ahead, skew 180 s)", signed(shift=100), eng)
    case("Status not Success", signed(status="urn:oasis:names:tc:SAML:2.0:status:Responder"),
         "rejected status")
    case("unknown Condition", signed(extra_conditions='<saml:Condition xmlns:xsi="http://www.w3'
                                     '.org/2001/XMLSchema-instance" xsi:type="x:y"/>'),
         "rejected conditions")

    # ---- no Recipient: the Response's Destination stands in only when the Response is signed
    # (unsigned, it is outside the signature: an IdP-signed Assertion without a Recipient,
    # issued for another SP's ACS, could be re-wrapped with our Destination) ----
    nr = idplib.NO_RECIPIENT
    _, p = idp.assertion(recipient=nr)
    case("no Recipient, Response signed with Destination the ACS URL",
         idp.signed_response(p), eng)
    _, p = idp.assertion(recipient=nr)
    case("no Recipient, Response signed without Destination",
         idp.signed_response(p, destination=""), "rejected destination")
    _, a = idp.signed_assertion(recipient=nr)
    case("no Recipient, only the Assertion signed, unsigned Destination the ACS URL",
         idp.response(a)[1], "rejected recipient")
    _, a = idp.signed_assertion(recipient=nr)
    case("no Recipient, only the Assertion signed, encrypted to the SP (anyone can encrypt)",
         idp.response(idp.encrypt(a, sp_crt))[1], "rejected recipient")
    _, a = idp.signed_assertion(recipient=nr)
    case("... accepted with allow_missing_recipient = yes, as python3-saml and lasso do",
         idp.response(a)[1], eng, extra={"allow_missing_recipient": "yes"})
    _, a = idp.signed_assertion(recipient=nr)
    case("no Recipient, Assertion and Response both signed", idp.signed_response(a), eng)

    # ---- ciphertext inline only: a CipherData without CipherValue (found by the fuzzer:
    # xmlsec1 leaked on it) or with a CipherReference is refused before decryption ----
    _, p = idp.assertion()
    enc = idp.encrypt(p, sp_crt)
    last = enc.rindex("<xenc:CipherValue>")
    no_value = enc[:last] + "hIQQ" + enc[enc.index("</xenc:CipherValue>", last) +
                                         len("</xenc:CipherValue>"):]
    case("EncryptedData whose CipherData holds text, no CipherValue",
         idp.signed_response(no_value), "rejected decryption")
    ref = enc[:last] + '<xenc:CipherReference URI="http://127.0.0.1:9/x"/>' + \
        enc[enc.index("</xenc:CipherValue>", last) + len("</xenc:CipherValue>"):]
    case("EncryptedData with a CipherReference (to fetch)", idp.signed_response(ref),
         "rejected decryption")
    first = enc.index("<xenc:CipherValue>")
    two = enc[:first] + "<xenc:CipherValue>AAAA</xenc:CipherValue>" + enc[first:]
    case("EncryptedKey with two CipherValues", idp.signed_response(two), "rejected decryption")

    # ---- an EncryptedID in the Assertion's Subject: its plaintext is walked like the rest ----
    def with_encrypted_id(assertion, plain_name_id):
        start = assertion.index("<saml:NameID ")
        end = assertion.index("</saml:NameID>") + len("</saml:NameID>")
        eid = idp.encrypt(plain_name_id, sp_crt).replace("saml:EncryptedAssertion",
                                                         "saml:EncryptedID")
        return assertion[:start] + eid + assertion[end:]

    aid, p = idp.assertion()
    case("encrypted NameID, Response signed",
         idp.signed_response(with_encrypted_id(
             p, '<saml:NameID xmlns:saml="%s">alice@example.org</saml:NameID>' % idplib.NS_SAML)),
         eng)
    aid, p = idp.assertion()
    case("encrypted NameID whose plaintext reuses the Assertion's ID: duplicate",
         idp.signed_response(with_encrypted_id(
             p, '<saml:NameID xmlns:saml="%s" ID="%s">alice@example.org</saml:NameID>'
             % (idplib.NS_SAML, aid))), "rejected wrapping")

    # ---- the decrypted Assertion is walked alone: its following siblings were walked with
    # the Response already, and must not be counted twice (IDs, nodes) ----
    def ext(eid, inner=""):
        return '<x:Ext xmlns:x="urn:x:ext"%s>%s</x:Ext>' % (
            ' ID="%s"' % eid if eid else "", inner)

    _, p = idp.assertion()
    case("EncryptedAssertion followed by an ID-bearing sibling, Response signed",
         idp.signed_response(idp.encrypt(p, sp_crt) + ext(idplib.new_id())), eng)
    _, p = idp.assertion(audience="https://other.test/sp")
    case("... and a wrong Audience: rejected for the Audience, not as a duplicate ID",
         idp.signed_response(idp.encrypt(p, sp_crt) + ext(idplib.new_id())),
         "rejected audience")
    aid, a = idp.signed_assertion()
    case("... a sibling with the decrypted Assertion's ID: duplicate",
         idp.response(idp.encrypt(a, sp_crt) + ext(aid))[1], "rejected wrapping")
    _, p = idp.assertion()
    case("... a sibling (no ID) of 12000 nodes: counted once (limit 20000)",
         idp.signed_response(idp.encrypt(p, sp_crt) + ext(None, "<e/>" * 12000)),
         eng)
    _, a = idp.signed_assertion(attrs_extra='<saml:Attribute Name="junk"><saml:AttributeValue>'
                                + "<e/>" * 6000 + "</saml:AttributeValue></saml:Attribute>")
    case("... a sibling of 15000 nodes and 6000 more inside the ciphertext: limit",
         idp.response(idp.encrypt(a, sp_crt) + ext(None, "<e/>" * 15000))[1],
         "rejected limit")

    # ---- replay cache in the database ----
    st = state()
    try:
        case("replay within one run", [assert_signed, assert_signed], [eng, "rejected replay"],
             keep=st)
        case("replay in a later run", assert_signed, "rejected replay", keep=st)
        db = kwpg.connect(st)
        rows = db.execute("SELECT u.login, r.name, u.source, u.sso_state, a.name FROM \"user\" u "
                          "JOIN role r ON r.id = u.role_id JOIN account a ON "
                          "a.id = u.account_id").fetchall()
        tap.ok(rows == [("alice@example.org", "Engineers", "sso", "active", "acme")],
               "accepted login created the SSO user in the account", rows)
        n = db.execute("SELECT count(*) FROM saml_replay").fetchone()[0]
        tap.ok(n == 1, "one assertion ID in the replay cache (%d)" % n)
        db.close()
    finally:
        shutil.rmtree(st, ignore_errors=True)
    st = state()
    try:
        case("a rejected message ...", [x3, resp_signed.replace("alice", "mallory")],
             [wrap, "rejected signature"], keep=st)
        db = kwpg.connect(st)
        n = db.execute("SELECT (SELECT count(*) FROM \"user\") + (SELECT count(*) FROM saml_replay)"
                       " + (SELECT count(*) FROM sso_event)").fetchone()[0]
        tap.ok(n == 0, "... changes nothing in the store (%d rows)" % n)
        db.close()
    finally:
        shutil.rmtree(st, ignore_errors=True)

    # ---- bad configuration is refused at start, naming the key ----
    for key, value, extra in (
            ("role_map", "eng:Wizards", {}),
            ("clock_skew", "soon", {}),
            ("allow_sha1", "maybe", {}),
            ("idp_metadata", os.path.join(work, "missing.xml"), {}),
            ("sp_key", idp.crt, {}),
            ("acs_url", "", {}),
            ("role_map", "eng:Engineers", {"role_attribute": None})):
        e = {key: value}
        e.update(extra)
        st = state({k: v for k, v in e.items() if v is not None})
        conf = os.path.join(st, "keywarden.conf")
        lines = [l for l in open(conf) if not (l.startswith("role_attribute") and
                                               "role_attribute" in extra)]
        lines = [l for l in lines if not (key == "acs_url" and l.startswith("acs_url"))]
        open(conf, "w").writelines(lines)
        rc, out, err = sslib.run_ssod(st, [write(assert_signed, "cfg")])
        tap.ok(rc == 3 and not out and ("[sso] %s" % key in err or (
            key in ("idp_metadata", "sp_key") and key in err)),
               "bad %s refused at start, naming the key" % key, "exit %d\n%s" % (rc, err))
        shutil.rmtree(st, ignore_errors=True)

    logout_encrypted_id(tap, idp)


def logout_encrypted_id(tap, idp):
    """A signed LogoutRequest with an EncryptedID followed by an ID-bearing SessionIndex, over
    HTTP (the only way in): the decrypted NameID is walked alone, so the SessionIndex's ID is
    not counted twice. The user is unknown, so a verified request is answered 404."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ssod"))
    import ssodtest  # noqa: E402
    s = ssodtest.Ssod()
    try:
        s.start()
        now = idplib.datetime.datetime.utcnow()
        lid = idplib.new_id()
        eid = idp.encrypt('<saml:NameID xmlns:saml="%s">nobody@example.org</saml:NameID>'
                          % idplib.NS_SAML, s.sp_crt).replace(
                              "saml:EncryptedAssertion", "saml:EncryptedID")
        tmpl = ('<samlp:LogoutRequest xmlns:samlp="%s" xmlns:saml="%s" ID="%s" Version="2.0" '
                'IssueInstant="%s" Destination="%s"><saml:Issuer>%s</saml:Issuer>%s%s'
                '<samlp:SessionIndex ID="%s">_sess1</samlp:SessionIndex></samlp:LogoutRequest>'
                % (idplib.NS_SAMLP, idplib.NS_SAML, lid, idplib.iso(now), ssodtest.SLO,
                   ssodtest.IDP, idplib.sig_template("#" + lid), eid, idplib.new_id()))
        src, out = idp.path("logout-tmpl"), idp.path("logout")
        with open(src, "w") as f:
            f.write(tmpl)
        idplib.subprocess.run(["xmlsec1", "--sign", "--privkey-pem",
                               "%s,%s" % (s.idp_key, s.idp_crt), "--id-attr:ID",
                               idplib.NS_SAMLP + ":LogoutRequest", "--output", out, src],
                              check=True, stdout=idplib.subprocess.DEVNULL,
                              stderr=idplib.subprocess.PIPE)
        body = base64.b64encode(open(out, "rb").read()).decode()
        status, hdrs, text = s.post("/saml/slo", {"SAMLRequest": body})
        reason = hdrs.get("x-keywarden-reason")
        tap.ok(status == 404 and reason != "wrapping",
               "LogoutRequest: EncryptedID then an ID-bearing SessionIndex: verified, 404 "
               "unknown user (%d %s)" % (status, reason), (status, hdrs, text, s.log()))
    finally:
        s.cleanup()


if __name__ == "__main__":
    sys.exit(main())
