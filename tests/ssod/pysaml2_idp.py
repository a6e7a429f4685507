"""pysaml2_idp.py: keywarden-ssod against a second real IdP, python3-pysaml2 (its IdP API,
saml2.server.Server), configured from the SP metadata keywarden serves (issue 17).

SP-initiated sign-in: GET /saml/login?next=PATH answers 302 to the IdP's SingleSignOnService
with a DEFLATE-encoded AuthnRequest that pysaml2 parses; its Response (signed Response, signed
Assertion, encrypted Assertion) is accepted and the browser sent back to PATH; a second answer
to the same request, and an answer to a request never sent, are refused; unsolicited Responses
are accepted unless allow_unsolicited = no. `next` that leads elsewhere is refused. NameID
policy: a transient NameID is refused without login_attribute, and taken with it. Key
transport: pysaml2's default TripleDES is refused as `algorithm` naming it; AES-256-GCM with
rsa-oaep-mgf1p is taken; xmlenc11#rsa-oaep with SHA-256 and MGF1-SHA-256 (made here with
python3-cryptography, as Keycloak sends it) is taken. Key rollover: metadata with the old and
the new certificate takes both; tampered Responses are refused. An EntitiesDescriptor with
idp_entity_id, and a metadata signature checked with idp_metadata_cert."""
import base64
import functools
import os
import re
import subprocess
import sys
import urllib.parse
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ssodtest as st  # noqa: E402

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT  # noqa: E402
from saml2 import entity as saml2_entity  # noqa: E402
from saml2 import sigver  # noqa: E402
from saml2.config import IdPConfig  # noqa: E402
from saml2.metadata import entity_descriptor  # noqa: E402
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT, NameID  # noqa: E402
from saml2.server import Server  # noqa: E402

IDP = "https://pysaml2-idp.test/idp"
IDP_SSO = "https://pysaml2-idp.test/sso/redirect"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
AES256_GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
TRIPLE_DES = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc"
NS = {"md": "urn:oasis:names:tc:SAML:2.0:metadata", "ds": "http://www.w3.org/2000/09/xmldsig#"}


def make_idp(s, sp_meta_path, key, crt, want_signed=False):
    conf = {
        "entityid": IDP,
        "service": {"idp": {
            "endpoints": {"single_sign_on_service": [(IDP_SSO, BINDING_HTTP_REDIRECT)]},
            "name_id_format": [NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT],
            "want_authn_requests_signed": want_signed,
            "policy": {"default": {"lifetime": {"minutes": 15}, "attribute_restrictions": None}},
        }},
        "key_file": key,
        "cert_file": crt,
        "metadata": {"local": [sp_meta_path]},
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "allow_unknown_attributes": True,
    }
    cfg = IdPConfig().load(conf)
    return Server(config=cfg), cfg


def idp_metadata(cfg, extra_certs=()):
    """The IdP metadata pysaml2 makes, with more signing certificates when given."""
    xml = str(entity_descriptor(cfg))
    for crt in extra_certs:
        kd = ('<ns0:KeyDescriptor xmlns:ns0="urn:oasis:names:tc:SAML:2.0:metadata" use="signing">'
              '<ns1:KeyInfo xmlns:ns1="http://www.w3.org/2000/09/xmldsig#"><ns1:X509Data>'
              '<ns1:X509Certificate>%s</ns1:X509Certificate></ns1:X509Data></ns1:KeyInfo>'
              '</ns0:KeyDescriptor>' % st.sslib.pem_body(crt))
        xml = re.sub(r"(<ns\d:IDPSSODescriptor[^>]*>)", lambda m: m.group(1) + kd, xml, count=1)
    return xml


def fresh_start(s):
    """Starts keywarden-ssod with an empty log, so that the port read is the new one."""
    open(s.log_path, "w").close()
    s.start()


def restart(s):
    """Stops keywarden-ssod and starts it again (it reads the IdP metadata at start)."""
    s.stop()
    fresh_start(s)


def login(s, next_path=None):
    q = "?" + urllib.parse.urlencode({"next": next_path}) if next_path is not None else ""
    return s.request("GET", "/saml/login" + q)


def request_of(location):
    """(SAMLRequest, the parsed query) of a redirect to the IdP."""
    u = urllib.parse.urlsplit(location)
    q = urllib.parse.parse_qs(u.query)
    return q["SAMLRequest"][0], q, u


def new_request(s, idp, next_path=None):
    """GET /saml/login and the ID of the AuthnRequest pysaml2 parses from the redirect; a
    made-up ID when there is no redirect (so that the checks after it still run, and fail)."""
    _, hdrs, _ = login(s, next_path)
    try:
        return idp.parse_authn_request(request_of(hdrs["location"])[0]).message.id
    except Exception:  # noqa: BLE001
        return "_no_redirect_from_keywarden"


def respond(idp, s, req_id, nameid="alice", fmt=NAMEID_FORMAT_PERSISTENT, groups=("eng",),
            sign_response=True, sign_assertion=False, encrypt=False, raw=False):
    identity = {"groups": list(groups), "mail": ["%s@example.org" % nameid]}
    kw = {}
    if encrypt:
        kw = {"encrypt_assertion": True, "encrypt_cert_assertion": st.sslib.pem_body(s.sp_crt)}
    resp = idp.create_authn_response(
        identity, in_response_to=req_id, destination=st.ACS, sp_entity_id=st.SP,
        name_id=NameID(format=fmt, text=nameid, sp_name_qualifier=st.SP),
        userid=nameid, sign_response=sign_response, sign_assertion=sign_assertion,
        sign_alg=RSA_SHA256, digest_alg=SHA256,
        authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"}, **kw)
    xml = str(resp)
    return xml if raw else base64.b64encode(xml.encode()).decode()


def post(s, b64):
    return s.post("/saml/acs", {"SAMLResponse": b64})


OAEP11 = "http://www.w3.org/2009/xmlenc11#rsa-oaep"
OAEP_MGF1P = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
DIGESTS = {"http://www.w3.org/2000/09/xmldsig#sha1": "SHA1",
           "http://www.w3.org/2001/04/xmlenc#sha256": "SHA256",
           "http://www.w3.org/2001/04/xmlenc#sha512": "SHA512"}


def oaep11_encrypt(idp, s, req_id, transport=OAEP11, digest=SHA256,
                   mgf="http://www.w3.org/2009/xmlenc11#mgf1sha256", label=None):
    """A Response whose signed Assertion is encrypted as Keycloak does it: AES-256-GCM data,
    key transport xmlenc11#rsa-oaep with SHA-256 and MGF1-SHA-256 by default (made with
    python3-cryptography); transport, digest (None: no DigestMethod), mgf (None: no MGF) and
    the OAEP label may be changed. A URI python3-cryptography does not know is written as
    asked, the key wrapped with SHA-256."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography import x509
    xml = respond(idp, s, req_id, nameid="kc-user", sign_response=False, sign_assertion=True,
                  raw=True)
    m = re.search(r"<(ns\d+):Assertion\b.*?</\1:Assertion>", xml, re.S)
    assertion = m.group(0)
    # the Assertion keeps the namespace declarations it used from the Response
    prefix = m.group(1)
    nsdecl = re.search(r'xmlns:%s="[^"]+"' % prefix, xml).group(0)
    if nsdecl not in assertion.split(">", 1)[0]:
        assertion = assertion.replace("<%s:Assertion" % prefix,
                                      "<%s:Assertion %s" % (prefix, nsdecl), 1)
    key = os.urandom(32)
    iv = os.urandom(12)
    ct = iv + AESGCM(key).encrypt(iv, assertion.encode(), None)
    cert = x509.load_pem_x509_certificate(open(s.sp_crt, "rb").read())
    h = getattr(hashes, DIGESTS.get(digest or "http://www.w3.org/2000/09/xmldsig#sha1",
                                    "SHA256"))
    mh = getattr(hashes, {"mgf1sha1": "SHA1", "mgf1sha256": "SHA256", "mgf1sha512": "SHA512"}
                 .get((mgf or "mgf1sha1").rsplit("#", 1)[-1], "SHA256"))
    wrapped = cert.public_key().encrypt(key, padding.OAEP(
        mgf=padding.MGF1(mh()), algorithm=h(), label=label))
    dm = '<ds:DigestMethod Algorithm="%s"/>' % digest if digest else ""
    mg = ('<xenc11:MGF xmlns:xenc11="http://www.w3.org/2009/xmlenc11#" Algorithm="%s"/>' % mgf
          if mgf else "")
    op = ('<xenc:OAEPparams>%s</xenc:OAEPparams>' % base64.b64encode(label).decode()
          if label else "")
    enc = (
        '<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">'
        '<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" '
        'Type="http://www.w3.org/2001/04/xmlenc#Element">'
        '<xenc:EncryptionMethod Algorithm="%s"/>'
        '<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
        '<xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="%s">%s%s%s'
        '</xenc:EncryptionMethod><xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue>'
        '</xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>'
        '<xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue></xenc:CipherData>'
        '</xenc:EncryptedData></saml:EncryptedAssertion>' % (
            AES256_GCM, transport, dm, mg, op, base64.b64encode(wrapped).decode(),
            base64.b64encode(ct).decode()))
    out = xml.replace(m.group(0), enc)
    del serialization
    return base64.b64encode(out.encode()).decode()


def main():
    tap = st.Tap()
    s = st.Ssod()
    try:
        run(tap, s)
    finally:
        s.cleanup()
    try:
        unsolicited_off(tap)
        entities(tap)
    finally:
        pass
    return tap.done()


def want_signed(xml):
    """The IdP metadata, saying WantAuthnRequestsSigned="true"."""
    xml = re.sub(r' WantAuthnRequestsSigned="[^"]*"', "", xml)
    return re.sub(r"(<ns\d:IDPSSODescriptor)\b", r'\1 WantAuthnRequestsSigned="true"', xml,
                  count=1)


def wait_log(s, text, timeout=10):
    """Whether text shows in the log within timeout s (lines are written after the answer)."""
    import time
    end = time.time() + timeout
    while time.time() < end:
        if text in s.log():
            return True
        time.sleep(0.05)
    return False


def setup(s, want_signed=False, extra_certs=()):
    """Fetches the SP metadata, makes the IdP from it and writes the IdP's metadata where
    keywarden-ssod reads it. The daemon must be restarted to read it."""
    status, hdrs, meta = s.request("GET", "/saml/metadata")
    sp_meta = os.path.join(s.dir, "sp-metadata.xml")
    with open(sp_meta, "w") as f:
        f.write(meta)
    idp, cfg = make_idp(s, sp_meta, s.idp_key, s.idp_crt)
    xml = idp_metadata(cfg, extra_certs)
    with open(s.meta, "w") as f:
        f.write(xml)
    return idp, meta


def run(tap, s):
    fresh_start(s)
    idp, meta = setup(s)
    tap.ok("<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
           "</md:NameIDFormat>" in meta and
           "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress" in meta,
           "SP metadata lists the NameID formats of [sso] nameid_format", meta)
    tap.ok(all('<md:EncryptionMethod Algorithm="%s"/>' % a in meta for a in (
        AES256_GCM, "http://www.w3.org/2009/xmlenc11#aes128-gcm",
        "http://www.w3.org/2009/xmlenc11#rsa-oaep",
        "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p")),
        "SP metadata lists md:EncryptionMethod: AES-256-GCM, AES-128-GCM, the OAEP transports",
        meta)
    tap.ok(True, "pysaml2 loads the SP metadata (IdPConfig metadata local)")
    restart(s)

    # SP-initiated, signed Response
    status, hdrs, _ = login(s, "/tokens?x=1")
    loc = hdrs.get("location", "")
    tap.ok(status == 302 and loc.startswith(IDP_SSO + "?SAMLRequest="),
           "GET /saml/login?next=/tokens: 302 to the IdP's SingleSignOnService", (status, hdrs,
                                                                                  s.log()))
    try:
        saml_req, q, _ = request_of(loc)
        xml = zlib.decompress(base64.b64decode(saml_req), -15).decode()
        req = idp.parse_authn_request(saml_req, BINDING_HTTP_REDIRECT)
        rid = req.message.id
        ok = (req.message.issuer.text == st.SP and
              req.message.assertion_consumer_service_url == st.ACS and
              req.message.name_id_policy.format == NAMEID_FORMAT_PERSISTENT and
              "Signature" not in q)
    except Exception as e:  # noqa: BLE001
        ok, xml, rid = False, e, "_no_redirect_from_keywarden"
    tap.ok(ok, "pysaml2 parses the AuthnRequest: Issuer, ACS URL, NameIDPolicy persistent; "
           "unsigned (the IdP does not ask for signed requests)", xml)
    b64 = respond(idp, s, rid)
    status, hdrs, body = post(s, b64)
    tap.ok(status == 303 and hdrs.get("location") == "/tokens?x=1",
           "its signed Response: accepted, 303 back to next", (status, hdrs, body, s.log()))
    tap.ok(s.users().get("alice", {}).get("role") == "Engineers", "alice is an SSO Engineer",
           s.users())
    status, hdrs, body = post(s, respond(idp, s, rid, nameid="alice2"))
    tap.ok(status == 409 and hdrs.get("x-keywarden-reason") == "replay",
           "a second Response to the same AuthnRequest: 409 replay (already answered)",
           (status, body, s.log()[-600:]))
    status, hdrs, body = post(s, respond(idp, s, "_never_sent_0123"))
    tap.ok(status == 403 and hdrs.get("x-keywarden-reason") == "inresponseto",
           "a Response to an AuthnRequest never sent: 403 inresponseto", (status, body))
    tap.ok(wait_log(s, "names no AuthnRequest we sent"), "the log says why")

    # pysaml2's default signature (RSA-SHA1) is refused without allow_sha1
    resp = idp.create_authn_response(
        {"groups": ["eng"]}, in_response_to=None, destination=st.ACS, sp_entity_id=st.SP,
        name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text="sha1-user"), userid="x",
        sign_response=True, authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"})
    status, hdrs, body = post(s, base64.b64encode(str(resp).encode()).decode())
    tap.ok(status == 403 and hdrs.get("x-keywarden-reason") == "algorithm" and
           wait_log(s, "xmldsig#rsa-sha1 not allowed"),
           "pysaml2's default signature, RSA-SHA1: 403 algorithm, naming it", (status, body))

    # signed Assertion
    rid = new_request(s, idp)
    status, hdrs, body = post(s, respond(idp, s, rid, nameid="bob", sign_response=False,
                                         sign_assertion=True))
    tap.ok(status == 200 and "Signed in to keywarden as <b>bob</b>" in body,
           "SP-initiated, signed Assertion (no next): 200", (status, body, s.log()[-600:]))

    # encrypted Assertion: pysaml2's default TripleDES, then AES-256-GCM
    rid = new_request(s, idp)
    status, hdrs, body = post(s, respond(idp, s, rid, nameid="carol", sign_assertion=True,
                                         encrypt=True))
    tap.ok(status == 403 and hdrs.get("x-keywarden-reason") == "algorithm" and
           wait_log(s, TRIPLE_DES),
           "pysaml2's default encryption (TripleDES): 403 algorithm, naming it",
           (status, body, s.log()[-600:]))
    orig = saml2_entity.pre_encryption_part
    saml2_entity.pre_encryption_part = functools.partial(sigver.pre_encryption_part,
                                                         msg_enc=AES256_GCM)
    orig_enc = idp.sec.encrypt_assertion
    idp.sec.encrypt_assertion = functools.partial(orig_enc, key_type="aes-256")
    try:
        rid = new_request(s, idp)
        status, hdrs, body = post(s, respond(idp, s, rid, nameid="carol", sign_assertion=True,
                                             encrypt=True))
    finally:
        saml2_entity.pre_encryption_part = orig
        idp.sec.encrypt_assertion = orig_enc
    tap.ok(status == 200 and "<b>carol</b>" in body,
           "encrypted, double-signed (both Signatures Id=\"Signature1\", as pysaml2 makes "
           "them), AES-256-GCM and rsa-oaep-mgf1p: 200", (status, body, s.log()[-600:]))

    # xmlenc11#rsa-oaep with SHA-256 and MGF1-SHA-256
    rid = new_request(s, idp)
    status, hdrs, body = post(s, oaep11_encrypt(idp, s, rid))
    tap.ok(status == 200 and "<b>kc-user</b>" in body,
           "xmlenc11#rsa-oaep, SHA-256 digest, MGF1 with SHA-256 (as Keycloak sends): 200",
           (status, body, s.log()[-800:]))

    # the other OAEP shapes, and algorithms not done (the reason names them)
    for name, kw, want in (
            ("rsa-oaep-mgf1p with a SHA-256 DigestMethod", {"transport": OAEP_MGF1P, "mgf": None},
             200),
            ("rsa-oaep-mgf1p with no DigestMethod (SHA-1)", {"transport": OAEP_MGF1P,
                                                             "digest": None, "mgf": None}, 200),
            ("xmlenc11#rsa-oaep, SHA-512, MGF1-SHA-1 and an OAEP label",
             {"digest": "http://www.w3.org/2001/04/xmlenc#sha512",
              "mgf": "http://www.w3.org/2009/xmlenc11#mgf1sha1", "label": b"kw-label"}, 200),
            ("xmlenc11#rsa-oaep with an MD5 DigestMethod",
             {"digest": "http://www.w3.org/2001/04/xmldsig-more#md5"}, 403),
            ("xmlenc11#rsa-oaep with an unknown MGF",
             {"mgf": "http://example.org/mgf-unknown"}, 403),
            ("key transport xmlenc#kw-aes128 (not done)",
             {"transport": "http://www.w3.org/2001/04/xmlenc#kw-aes128", "mgf": None}, 403)):
        rid = new_request(s, idp)
        status, hdrs, body = post(s, oaep11_encrypt(idp, s, rid, **kw))
        uri = kw.get("digest") if "md5" in str(kw.get("digest")) else \
            kw.get("mgf") if "unknown" in str(kw.get("mgf")) else kw.get("transport")
        if want == 200:
            tap.ok(status == 200 and "<b>kc-user</b>" in body, "%s: 200" % name,
                   (status, body, s.log()[-800:]))
        else:
            tap.ok(status == 403 and hdrs.get("x-keywarden-reason") == "algorithm" and
                   wait_log(s, uri), "%s: 403 algorithm, naming %s" % (name, uri),
                   (status, body, s.log()[-800:]))

    # unsolicited, allowed by default
    status, hdrs, body = post(s, respond(idp, s, None, nameid="dave"))
    tap.ok(status == 200, "an unsolicited (IdP-initiated) Response: 200 by default",
           (status, body, s.log()[-600:]))

    # transient NameID without login_attribute
    status, hdrs, body = post(s, respond(idp, s, None, nameid="_9b13aa", fmt=NAMEID_FORMAT_TRANSIENT))
    tap.ok(status == 403 and hdrs.get("x-keywarden-reason") == "nameid" and
           wait_log(s, "transient NameID") and "_9b13aa" not in s.users(),
           "a transient NameID without login_attribute: 403 nameid, no user made",
           (status, body, s.log()[-600:]))

    # tampered
    raw = respond(idp, s, None, nameid="erin", raw=True)
    bad = raw.replace(">erin<", ">mallory<")
    status, hdrs, body = post(s, base64.b64encode(bad.encode()).decode())
    tap.ok(bad != raw and status == 403 and hdrs.get("x-keywarden-reason") == "signature",
           "a signed pysaml2 Response with its NameID changed: 403 signature", (status, body))

    # next that leaves the site
    for nxt in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "evil",
                "/ok\r\nSet-Cookie: x=1"):
        status, hdrs, body = login(s, nxt)
        tap.ok(status == 400 and "location" not in hdrs,
               "next=%r: 400, no redirect" % nxt, (status, hdrs, body))

    # key rollover: metadata with the old and the new certificate; the IdP signs with the new
    s.stop()
    new_key, new_crt = st.keypair(s.dir, "idp-new")
    sp_meta = os.path.join(s.dir, "sp-metadata.xml")
    idp_new, cfg_new = make_idp(s, sp_meta, new_key, new_crt)
    with open(s.meta, "w") as f:
        f.write(idp_metadata(cfg_new, [s.idp_crt]))
    fresh_start(s)
    status, _, body = post(s, respond(idp_new, s, None, nameid="frank"))
    status2, _, body2 = post(s, respond(idp, s, None, nameid="grace"))
    tap.ok(status == 200 and status2 == 200,
           "key rollover: both the new and the old IdP key are taken while both are listed",
           (status, body, status2, body2, s.log()[-600:]))
    s.stop()
    with open(s.meta, "w") as f:
        f.write(idp_metadata(cfg_new))
    fresh_start(s)
    status, hdrs, body = post(s, respond(idp, s, None, nameid="heidi"))
    tap.ok(status == 403 and hdrs.get("x-keywarden-reason") == "signature",
           "after the old certificate leaves the metadata: its Responses 403 signature",
           (status, body))

    # the IdP wants signed AuthnRequests: RSA-SHA256 over the query, with sp_key
    s.stop()
    with open(s.meta, "w") as f:
        f.write(want_signed(idp_metadata(cfg_new)))
    fresh_start(s)
    status, hdrs, _ = login(s, "/a")
    loc = hdrs.get("location", "")
    query = urllib.parse.urlsplit(loc).query
    ok = False
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        signed, sig = query.rsplit("&Signature=", 1)
        pub = x509.load_pem_x509_certificate(open(s.sp_crt, "rb").read()).public_key()
        pub.verify(base64.b64decode(urllib.parse.unquote(sig)), signed.encode(),
                   padding.PKCS1v15(), hashes.SHA256())
        ok = "SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256" in signed
    except Exception as e:  # noqa: BLE001
        ok = e
    tap.ok(status == 302 and ok is True,
           "WantAuthnRequestsSigned: the redirect carries SigAlg rsa-sha256 and a Signature "
           "that sp_cert verifies", (status, loc, ok))


def unsolicited_off(tap):
    s = st.Ssod({"allow_unsolicited": "no", "login_attribute": "login"})
    try:
        fresh_start(s)
        idp, _ = setup(s)
        s.stop()
        fresh_start(s)
        identity = {"login": ["ivan"], "groups": ["eng"]}
        resp = idp.create_authn_response(
            identity, in_response_to=None, destination=st.ACS, sp_entity_id=st.SP,
            name_id=NameID(format=NAMEID_FORMAT_TRANSIENT, text="_e792ff", sp_name_qualifier=st.SP),
            userid="ivan", sign_response=True, sign_alg=RSA_SHA256, digest_alg=SHA256,
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"})
        status, hdrs, body = post(s, base64.b64encode(str(resp).encode()).decode())
        tap.ok(status == 403 and hdrs.get("x-keywarden-reason") == "inresponseto" and
               wait_log(s, "allow_unsolicited is off"),
               "allow_unsolicited = no: an IdP-initiated Response is 403 inresponseto",
               (status, body, s.log()[-600:]))
        rid = new_request(s, idp)
        resp = idp.create_authn_response(
            identity, in_response_to=rid, destination=st.ACS, sp_entity_id=st.SP,
            name_id=NameID(format=NAMEID_FORMAT_TRANSIENT, text="_e792ff", sp_name_qualifier=st.SP),
            userid="ivan", sign_response=True, sign_alg=RSA_SHA256, digest_alg=SHA256,
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"})
        status, hdrs, body = post(s, base64.b64encode(str(resp).encode()).decode())
        tap.ok(status == 200 and "<b>ivan</b>" in body and "ivan" in s.users() and
               "_e792ff" not in s.users(),
               "SP-initiated with a transient NameID and login_attribute = login: 200, the user "
               "is the uid", (status, body, s.log()[-600:]))
    finally:
        s.cleanup()


def entities(tap):
    s = st.Ssod()
    try:
        fresh_start(s)
        idp, _ = setup(s)
        s.stop()
        conf = os.path.join(s.dir, "keywarden.conf")
        with open(conf, "a") as f:
            f.write("idp_entity_id = %s\n" % IDP)
        one = open(s.meta).read().split("?>", 1)[-1]
        other = one.replace(IDP, "https://other-idp.test/idp")
        fed = ('<?xml version="1.0"?>\n<md:EntitiesDescriptor '
               'xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" ID="fed1" Name="federation">'
               '%s%s</md:EntitiesDescriptor>\n' % (other, one))
        with open(s.meta, "w") as f:
            f.write(fed)
        try:
            fresh_start(s)
        except RuntimeError as e:
            tap.ok(False, "an EntitiesDescriptor of two IdPs, idp_entity_id choosing one: "
                   "keywarden-ssod starts", e)
            return
        status, _, body = post(s, respond(idp, s, None, nameid="judy"))
        tap.ok(status == 200, "an EntitiesDescriptor of two IdPs, idp_entity_id choosing one: "
               "its Response 200", (status, body, s.log()[-600:]))
        s.stop()
        # without idp_entity_id: refused at start, naming the key
        text = open(conf).read()
        with open(conf, "w") as f:
            f.write(re.sub(r"idp_entity_id = .*\n", "", text))
        p = subprocess.run([st.SSOD, "--state-dir", s.dir, "ingest", "/dev/null"],
                           capture_output=True, text=True, env=st.kwpg.env(s.dir, st.env()),
                           timeout=30)
        tap.ok(p.returncode != 0 and "idp_entity_id" in p.stderr,
               "without idp_entity_id, two IdPs: refused at start, naming idp_entity_id",
               (p.returncode, p.stderr))
        # signed metadata, checked with idp_metadata_cert
        mkey, mcrt = st.keypair(s.dir, "fed")
        tmpl = fed.replace('Name="federation">', 'Name="federation">' + (
            '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
            '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
            '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
            '<ds:Reference URI="#fed1"><ds:Transforms>'
            '<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
            '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>'
            '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
            '<ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/>'
            '</ds:Signature>'), 1)
        tpl_path = os.path.join(s.dir, "fed-tmpl.xml")
        with open(tpl_path, "w") as f:
            f.write(tmpl)
        signed = subprocess.run(["xmlsec1", "--sign", "--privkey-pem", mkey, "--id-attr:ID",
                                 "urn:oasis:names:tc:SAML:2.0:metadata:EntitiesDescriptor",
                                 tpl_path], capture_output=True, text=True)
        with open(s.meta, "w") as f:
            f.write(signed.stdout)
        with open(conf, "w") as f:
            f.write(text + "idp_metadata_cert = %s\n" % mcrt)
        fresh_start(s)
        status, _, body = post(s, respond(idp, s, None, nameid="ken"))
        tap.ok(signed.returncode == 0 and status == 200,
               "signed federation metadata that idp_metadata_cert verifies: loaded, 200",
               (signed.stderr, status, body, s.log()[-600:]))
        s.stop()
        with open(s.meta, "w") as f:
            f.write(signed.stdout.replace("federation", "federatioN"))
        p = subprocess.run([st.SSOD, "--state-dir", s.dir, "ingest", "/dev/null"],
                           capture_output=True, text=True, env=st.kwpg.env(s.dir, st.env()),
                           timeout=30)
        tap.ok(p.returncode != 0 and "does not verify" in p.stderr,
               "the same metadata altered after signing: refused at start",
               (p.returncode, p.stderr))
    finally:
        s.cleanup()


if __name__ == "__main__":
    sys.exit(main())
