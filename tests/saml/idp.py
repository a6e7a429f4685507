"""idp.py: a small SAML IdP for the tests, built on real parts: keys and certificates from
`openssl req` at test time, signatures by the `xmlsec1` command (Response-level,
Assertion-level or both), EncryptedAssertion by RSA-OAEP/AES-GCM (or the legacy RSA-1_5/
AES-CBC) with python3-cryptography. Everything is produced as text so that attacks can be
made by exact surgery on the signed bytes."""
import base64
import datetime
import os
import subprocess
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509 import load_pem_x509_certificate

NS_SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
NS_SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
NO_RECIPIENT = object()  # Idp.assertion(recipient=NO_RECIPIENT): SubjectConfirmationData without one


def keypair(folder, name, bits=2048):
    key = os.path.join(folder, name + ".key")
    crt = os.path.join(folder, name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:%d" % bits, "-nodes",
                    "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + name],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return key, crt


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id():
    return "_" + uuid.uuid4().hex


def sig_template(ref_id, sigalg=RSA_SHA256, digalg=SHA256, keyinfo="<ds:X509Data/>",
                 transforms=None):
    if transforms is None:
        transforms = ['http://www.w3.org/2000/09/xmldsig#enveloped-signature',
                      'http://www.w3.org/2001/10/xml-exc-c14n#']
    tr = "".join('<ds:Transform Algorithm="%s"/>' % t for t in transforms)
    return ('<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
            '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
            '<ds:SignatureMethod Algorithm="%s"/><ds:Reference URI="%s"><ds:Transforms>%s'
            '</ds:Transforms><ds:DigestMethod Algorithm="%s"/><ds:DigestValue/></ds:Reference>'
            '</ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo>%s</ds:KeyInfo></ds:Signature>'
            % (sigalg, ref_id, tr, digalg, keyinfo))


class Idp:
    def __init__(self, folder, entity_id, sp_entity_id, acs_url):
        self.folder = folder
        self.entity_id = entity_id
        self.sp_entity_id = sp_entity_id
        self.acs_url = acs_url
        self.key, self.crt = keypair(folder, "idp")
        self.n = 0

    def path(self, name):
        self.n += 1
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40]
        return os.path.join(self.folder, "%03d-%s.xml" % (self.n, name))

    def assertion(self, aid=None, nameid="alice@example.org", groups=("eng",), shift=0,
                  issuer=None, audience=None, recipient=None, extra_conditions="",
                  sign=None, lifetime=300, subject_extra="", attrs_extra=""):
        now = datetime.datetime.utcnow() + datetime.timedelta(seconds=shift)
        aid = aid or new_id()
        values = "".join("<saml:AttributeValue>%s</saml:AttributeValue>" % g for g in groups)
        return aid, (
            '<saml:Assertion xmlns:saml="%s" ID="%s" Version="2.0" IssueInstant="%s">'
            '<saml:Issuer>%s</saml:Issuer>%s'
            '<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:'
            'emailAddress">%s</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:'
            'tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="%s"'
            '%s/></saml:SubjectConfirmation>%s</saml:Subject>'
            '<saml:Conditions NotBefore="%s" NotOnOrAfter="%s"><saml:AudienceRestriction>'
            '<saml:Audience>%s</saml:Audience></saml:AudienceRestriction>%s</saml:Conditions>'
            '<saml:AuthnStatement AuthnInstant="%s" SessionIndex="_sess1"><saml:AuthnContext>'
            '<saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:'
            'PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext>'
            '</saml:AuthnStatement><saml:AttributeStatement><saml:Attribute Name="groups">%s'
            '</saml:Attribute>%s</saml:AttributeStatement></saml:Assertion>'
            % (NS_SAML, aid, iso(now), issuer or self.entity_id,
               sign if sign is not None else "", nameid, iso(now + datetime.timedelta(
                   seconds=lifetime)), "" if recipient is NO_RECIPIENT else
               ' Recipient="%s"' % (recipient or self.acs_url), subject_extra,
               iso(now - datetime.timedelta(seconds=60)),
               iso(now + datetime.timedelta(seconds=lifetime)), audience or self.sp_entity_id,
               extra_conditions, iso(now), values, attrs_extra))

    def response(self, body, rid=None, destination=None, status=SUCCESS, issuer=None,
                 sign=None, shift=0):
        now = datetime.datetime.utcnow() + datetime.timedelta(seconds=shift)
        rid = rid or new_id()
        dest = destination if destination is not None else self.acs_url
        return rid, (
            '<samlp:Response xmlns:samlp="%s" xmlns:saml="%s" ID="%s" Version="2.0" '
            'IssueInstant="%s" Destination="%s"><saml:Issuer>%s</saml:Issuer>%s'
            '<samlp:Status><samlp:StatusCode Value="%s"/></samlp:Status>%s</samlp:Response>'
            % (NS_SAMLP, NS_SAML, rid, iso(now), dest, issuer or self.entity_id,
               sign if sign is not None else "", status, body))

    def sign(self, xml, key=None, crt=None, name="signed"):
        """Signs the first ds:Signature template in xml with xmlsec1; returns the text."""
        src = self.path(name + "-tmpl")
        out = self.path(name)
        with open(src, "w") as f:
            f.write(xml)
        keyarg = "%s,%s" % (key or self.key, crt or self.crt)
        subprocess.run(["xmlsec1", "--sign", "--privkey-pem", keyarg,
                        "--id-attr:ID", NS_SAMLP + ":Response",
                        "--id-attr:ID", NS_SAML + ":Assertion", "--output", out, src],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        text = open(out).read()
        if text.startswith("<?xml"):
            text = text[text.index("?>") + 2:].lstrip("\n")
        return text

    def signed_assertion(self, **kw):
        aid = kw.pop("aid", None) or new_id()
        sigargs = kw.pop("sigargs", {})
        key = kw.pop("key", None)
        crt = kw.pop("crt", None)
        _, a = self.assertion(aid=aid, sign=sig_template("#" + aid, **sigargs), **kw)
        return aid, self.sign(a, key, crt, "assertion").rstrip("\n")

    def signed_response(self, body, key=None, crt=None, sigargs=None, **kw):
        rid = kw.pop("rid", None) or new_id()
        _, r = self.response(body, rid=rid, sign=sig_template("#" + rid, **(sigargs or {})),
                             **kw)
        return self.sign(r, key, crt, "response")

    def encrypt(self, plaintext, sp_crt, legacy=False):
        cert = load_pem_x509_certificate(open(sp_crt, "rb").read())
        pub = cert.public_key()
        data = plaintext.encode()
        if legacy:
            key = os.urandom(16)
            iv = os.urandom(16)
            pad = 16 - len(data) % 16
            padded = data + os.urandom(pad - 1) + bytes([pad])
            enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
            cipher = iv + enc.update(padded) + enc.finalize()
            ek = pub.encrypt(key, padding.PKCS1v15())
            dalg = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
            kalg = "http://www.w3.org/2001/04/xmlenc#rsa-1_5"
        else:
            key = os.urandom(32)
            iv = os.urandom(12)
            cipher = iv + AESGCM(key).encrypt(iv, data, None)
            ek = pub.encrypt(key, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()),
                                               algorithm=hashes.SHA1(), label=None))
            dalg = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
            kalg = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
        b = lambda x: base64.b64encode(x).decode()  # noqa: E731
        return ('<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc='
                '"http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#'
                'Element"><xenc:EncryptionMethod Algorithm="%s"/><ds:KeyInfo xmlns:ds='
                '"http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey><xenc:EncryptionMethod'
                ' Algorithm="%s"/><xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue>'
                '</xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData>'
                '<xenc:CipherValue>%s</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>'
                '</saml:EncryptedAssertion>' % (dalg, kalg, b(ek), b(cipher)))
