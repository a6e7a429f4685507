"""ssodtest.py: what the keywarden-ssod HTTP tests share: a state folder (account acme, local
Administrator root), keywarden-ssod started in daemon mode on 127.0.0.1:0 (the port is read
from its log) or a Unix socket, HTTP by http.client, and a real SAML IdP: Debian's
python3-lasso (lasso.Server with IdP metadata and key; lasso.Login for IdP-initiated
Responses over the HTTP-POST binding; lasso.Logout for signed LogoutRequests). The IdP loads
the SP metadata that keywarden-ssod serves, so every test also checks that lasso accepts it."""
import base64
import datetime
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "saml"))
sys.path.insert(0, os.path.join(HERE, "..", "notify"))
import sslib  # noqa: E402
from sslib import kwpg  # noqa: E402,F401
from kwtest import Tap  # noqa: E402,F401

TOP_BUILDDIR = sslib.TOP_BUILDDIR
SSOD = sslib.SSOD
KEYWARDEN = sslib.KEYWARDEN
VALIDATOR = os.path.join(TOP_BUILDDIR, "keywarden-validator")
IDP = "https://idp.test/saml/metadata"
SP = "https://sp.test/saml/metadata"
ACS = "https://sp.test/saml/acs"
SLO = "https://sp.test/saml/slo"
ROLE_MAP = "eng:Engineers, admins:Administrators, staff:Users"
RULE = "SSO revocation does not revoke API tokens"
MSGID_RULE = "117387bb7edf4efc86b66f03874b06b0"


def env():
    e = sslib.asan_env()
    e.pop("JOURNAL_STREAM", None)
    e.pop("NOTIFY_SOCKET", None)
    return e


def keypair(folder, name):
    key = os.path.join(folder, name + ".key")
    crt = os.path.join(folder, name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", "/CN=" + name], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return key, crt


class Ssod:
    """A state folder and a keywarden-ssod serving it."""

    def __init__(self, extra=None, listen="127.0.0.1:0"):
        self.dir = tempfile.mkdtemp(prefix="kw-ssod-")
        os.chmod(self.dir, 0o700)
        kwpg.use(self.dir)  # with KW_TEST_PG: a database of its own
        self.idp_key, self.idp_crt = keypair(self.dir, "idp")
        self.sp_key, self.sp_crt = keypair(self.dir, "sp")
        self.meta = os.path.join(self.dir, "idp-metadata.xml")
        sslib.write_metadata(self.meta, IDP, [self.idp_crt])
        conf = {"account": "acme", "sp_entity_id": SP, "acs_url": ACS,
                "idp_metadata": self.meta, "sp_key": self.sp_key, "sp_cert": self.sp_crt,
                "role_attribute": "groups", "role_map": ROLE_MAP, "listen": listen,
                "email_attribute": "mail"}
        conf.update(extra or {})
        with open(os.path.join(self.dir, "keywarden.conf"), "w") as f:
            f.write("[sso]\n" + "".join("%s = %s\n" % kv for kv in conf.items()))
        self.kw("init")
        self.kw("account", "add", "acme")
        self.kw("user", "add", "--account", "acme", "root", "--role", "Administrators")
        self.log_path = os.path.join(self.dir, "ssod.log")
        self.proc = None
        self.port = None
        self.unix = listen[5:] if listen.startswith("unix:") else None
        self.validator = None

    def kw(self, *args, check=True, stdin=None):
        p = subprocess.run([KEYWARDEN, "--state-dir", self.dir] + list(args),
                           env=kwpg.env(self.dir, env()),
                           capture_output=True, text=True, timeout=60, input=stdin)
        if check and p.returncode != 0:
            raise RuntimeError("keywarden %s: exit %d\n%s%s" % (" ".join(args), p.returncode,
                                                              p.stdout, p.stderr))
        return p

    def start(self, extra_env=None):
        e = kwpg.env(self.dir, env())
        e.update(extra_env or {})
        self.logf = open(self.log_path, "a")
        self.proc = subprocess.Popen([SSOD, "--state-dir", self.dir], stdout=self.logf,
                                     stderr=self.logf, env=e)
        deadline = time.time() + 15
        while time.time() < deadline:
            m = re.search(r"listening on (\S+)", self.log())
            if m:
                if self.unix is None:
                    self.port = int(m.group(1).rsplit(":", 1)[1])
                return
            if self.proc.poll() is not None:
                raise RuntimeError("keywarden-ssod exited %d: %s" % (self.proc.returncode,
                                                                    self.log()))
            time.sleep(0.02)
        raise RuntimeError("keywarden-ssod did not start: " + self.log())

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.logf.close()
        return rc

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def connect(self, timeout=10):
        if self.unix is not None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(self.unix)
            return s
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=10):
        """Returns (status, headers dict lower-case, body text)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port or 80, timeout=timeout)
        if self.unix is not None:
            c.sock = self.connect(timeout)
        h = dict(headers or {})
        if body is not None and "Content-Type" not in h:
            h["Content-Type"] = "application/x-www-form-urlencoded"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read().decode(errors="replace")
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        return r.status, hdrs, data

    def post(self, path, fields):
        return self.request("POST", path, urllib.parse.urlencode(fields))

    def users(self):
        import json
        return {u["login"]: u for u in json.loads(self.kw("user", "list", "--account", "acme",
                                                          "--json").stdout)}

    def start_validator(self):
        self.vlog = open(os.path.join(self.dir, "validator.log"), "a")
        self.validator = subprocess.Popen([VALIDATOR, "--state-dir", self.dir],
                                          stdout=self.vlog, stderr=self.vlog,
                                          env=kwpg.env(self.dir, env()))
        sock = os.path.join(self.dir, "validator.sock")
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.validator.poll() is not None:
                raise RuntimeError("validator exited %d" % self.validator.returncode)
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(sock)
                s.close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("validator did not start")

    def check_token(self, token):
        """keywarden token check - (the token on stdin), through the running validator."""
        return self.kw("token", "check", "-", check=False, stdin=token + "\n")

    def cleanup(self):
        self.stop()
        if self.validator is not None:
            self.validator.send_signal(signal.SIGTERM)
            try:
                self.validator.wait(10)
            except subprocess.TimeoutExpired:
                self.validator.kill()
            self.vlog.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class LassoIdp:
    """A SAML identity provider made of python3-lasso, pinned by the Ssod's IdP metadata."""

    def __init__(self, ssod, sp_metadata):
        import lasso
        self.lasso = lasso
        cert = sslib.pem_body(ssod.idp_crt)
        meta = os.path.join(ssod.dir, "idp-lasso.xml")
        with open(meta, "w") as f:
            f.write('<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
                    'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="%s">'
                    '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:'
                    'SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo>'
                    '<ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data>'
                    '</ds:KeyInfo></md:KeyDescriptor><md:SingleLogoutService Binding="urn:oasis'
                    ':names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.test/slo"/>'
                    '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:'
                    'HTTP-POST" Location="https://idp.test/sso"/></md:IDPSSODescriptor>'
                    '</md:EntityDescriptor>' % (IDP, cert))
        self.server = lasso.Server(meta, ssod.idp_key, None, ssod.idp_crt)
        self.server.signatureMethod = lasso.SIGNATURE_METHOD_RSA_SHA256
        # raises lasso.Error when the SP metadata does not load
        self.server.addProviderFromBuffer(lasso.PROVIDER_ROLE_SP, sp_metadata)
        self.sessions = {}

    def response(self, nameid, groups, mail=None):
        """An IdP-initiated, signed Response (base64, as the HTTP-POST binding carries it)."""
        lasso = self.lasso
        login = lasso.Login(self.server)
        login.initIdpInitiatedAuthnRequest(SP)
        login.request.nameIdPolicy.format = lasso.SAML2_NAME_IDENTIFIER_FORMAT_EMAIL
        login.request.nameIdPolicy.allowCreate = True
        login.request.protocolBinding = lasso.SAML2_METADATA_BINDING_POST
        login.processAuthnRequestMsg(None)
        login.validateRequestMsg(True, True)
        now = datetime.datetime.utcnow()
        login.buildAssertion(lasso.SAML2_AUTHN_CONTEXT_PASSWORD_PROTECTED_TRANSPORT, _iso(now),
                             None, _iso(now - datetime.timedelta(seconds=60)),
                             _iso(now + datetime.timedelta(seconds=300)))
        login.assertion.subject.nameID.content = nameid
        login.assertion.subject.nameID.format = lasso.SAML2_NAME_IDENTIFIER_FORMAT_EMAIL
        def attribute(name, texts):
            values = []
            for text in texts:
                t = lasso.MiscTextNode.newWithString(text)
                t.textChild = True
                v = lasso.Saml2AttributeValue()
                v.any = [t]
                values.append(v)
            attr = lasso.Saml2Attribute()
            attr.name = name
            attr.nameFormat = lasso.SAML2_ATTRIBUTE_NAME_FORMAT_BASIC
            attr.attributeValue = values
            return attr
        st = lasso.Saml2AttributeStatement()
        st.attribute = [attribute("groups", groups)] + (
            [attribute("mail", [mail])] if mail is not None else [])
        login.assertion.attributeStatement = [st]
        login.buildAuthnResponseMsg()
        if login.msgUrl != ACS:
            raise RuntimeError("lasso posts to %s, not the ACS URL" % login.msgUrl)
        self.sessions[nameid] = login.session.dump()
        return login.msgBody

    def logout_request(self, nameid):
        """A signed LogoutRequest for nameid's last session (base64, HTTP-POST binding)."""
        lasso = self.lasso
        lo = lasso.Logout(self.server)
        lo.setSessionFromDump(self.sessions[nameid])
        lo.initRequest(SP, lasso.HTTP_METHOD_POST)
        lo.buildRequestMsg()
        if lo.msgUrl != SLO:
            raise RuntimeError("lasso posts the LogoutRequest to %s" % lo.msgUrl)
        return lo.msgBody


def decode(b64):
    return base64.b64decode(b64).decode()
