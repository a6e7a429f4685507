"""idp.py: keywarden-ssod in daemon mode against a real IdP (python3-lasso). The IdP loads the
SP metadata served at /saml/metadata, signs Responses with current times, and they are POSTed
to /saml/acs; SSO users and their roles appear in `keywarden user list --json`. A lasso
LogoutRequest is recorded and leaves tokens valid. Also: the Unix-socket listener, READY=1 and
STOPPING=1 to systemd, and a clean exit on SIGTERM."""
import os
import socket
import sys
import xml.dom.minidom

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ssodtest as st  # noqa: E402


def main():
    tap = st.Tap()
    s = st.Ssod()
    try:
        run(tap, s)
    finally:
        s.cleanup()
    unix(tap)
    tap.done()


def run(tap, s):
    s.start()
    status, hdrs, meta = s.request("GET", "/saml/metadata")
    tap.ok(status == 200 and hdrs.get("content-type") == "application/samlmetadata+xml",
           "GET /saml/metadata: 200 application/samlmetadata+xml", (status, hdrs))
    try:
        doc = xml.dom.minidom.parseString(meta)
        root = doc.documentElement
        ok = (root.localName == "EntityDescriptor" and root.getAttribute("entityID") == st.SP)
    except Exception as e:  # noqa: BLE001
        ok, doc = False, e
    tap.ok(ok, "the metadata is well-formed XML: EntityDescriptor of the SP entity id", meta)
    tap.ok('Location="%s"' % st.ACS in meta and 'Location="%s"' % st.SLO in meta and
           meta.count("<md:KeyDescriptor") == 2,
           "it names the ACS and SLO endpoints (HTTP-POST) and the sp_cert twice", meta)
    try:
        idp = st.LassoIdp(s, meta)
        tap.ok(True, "lasso loads it as SP metadata (lasso.Server.addProvider)")
    except Exception as e:  # noqa: BLE001
        tap.ok(False, "lasso loads it as SP metadata (lasso.Server.addProvider)", e)
        return

    resp = idp.response("alice@example.org", ["admins", "eng"], mail="alice.w@example.org")
    status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": resp,
                                              "RelayState": "https://elsewhere.example/x"})
    tap.ok(status == 200 and "Signed in to keywarden as <b>alice@example.org</b> with role "
           "<b>Administrators</b>" in body, "lasso Response for alice: 200, who signed in",
           (status, body, s.log()))
    status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": idp.response("bob@example.org",
                                                                            ["eng"])})
    tap.ok(status == 200, "lasso Response for bob: 200", (status, body))
    status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": idp.response(
        "carol@example.org", ["visitors"])})
    tap.ok(status == 200 and "no keywarden role maps" in body,
           "a Response whose groups map to no role: 200, saying so", (status, body))
    users = s.users()
    tap.ok({k: (v["role"], v["source"]) for k, v in users.items()} == {
        "root": ("Administrators", "local"), "alice@example.org": ("Administrators", "sso"),
        "bob@example.org": ("Engineers", "sso")},
        "user list --json: alice Administrators, bob Engineers (source sso); carol not created",
        users)
    tap.ok(users["alice@example.org"].get("email") == "alice.w@example.org" and
           users["bob@example.org"].get("email") is None,
           "email_attribute: alice's mail attribute became her email; bob sent none", users)
    status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": resp})
    tap.ok(status == 409 and hdrs.get("x-keywarden-reason") == "replay",
           "the same Response again: 409 replay", (status, hdrs, body))
    # A cache entry past its expiry no longer blocks its id (the daemon purges only once a
    # minute, so the leftover row is still there and must be taken over, not count as replay).
    db = st.kwpg.connect(s.dir)
    with db:
        n_rows = db.execute("UPDATE saml_replay SET expires = 1").rowcount
    status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": resp})
    with db:
        left = db.execute("SELECT count(*) FROM saml_replay WHERE expires > 1").fetchone()[0]
    db.close()
    tap.ok(n_rows >= 1 and status == 200 and left == 1,
           "an expired replay-cache entry is taken over: the id is accepted and re-recorded",
           (n_rows, status, body, left))
    status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": resp})
    tap.ok(status == 409, "and is a replay again right after", (status, body))
    tampered = st.decode(idp.response("alice@example.org", ["staff"])).replace(
        "alice@example.org", "mallory@example.org")
    status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": tampered})
    tap.ok(status == 403 and hdrs.get("x-keywarden-reason") == "signature",
           "a Response altered after signing (raw XML in the field): 403 signature",
           (status, hdrs, body))
    status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": "PHgvPg=="})
    tap.ok(status == 400 and hdrs.get("x-keywarden-reason") == "structure",
           "base64 of a non-SAML document: 400 structure", (status, hdrs, body))
    status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": st.decode(resp).replace(
        "<saml:Issuer>", "<!DOCTYPE x><saml:Issuer>", 1)})
    tap.ok(status == 400, "a DOCTYPE: 400", (status, hdrs, body))
    ev = idp.response("eve<script>@example.org", ["eng"])
    status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": ev})
    tap.ok(status == 200 and "<script>" not in body and "eve&lt;script&gt;@example.org" in body,
           "the answer HTML-escapes the login", body)
    # ---- signed Responses whose login keywarden cannot take: 403 with a reason class ----
    for nameid, what in (("bad login@example.org", "a blank"), ("a=b@example.org", "an '='")):
        status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": idp.response(nameid, ["eng"])})
        tap.ok(status == 403 and hdrs.get("x-keywarden-reason") == "nameid",
               "a signed Response whose NameID login has %s: 403 nameid" % what,
               (status, hdrs, body))
    tap.ok("rejected nameid login bad login@example.org: login must not contain blanks or '='"
           in s.log(), "the log names the login and why", s.log()[-1500:])
    status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": idp.response("root", ["admins"])})
    tap.ok(status == 403 and hdrs.get("x-keywarden-reason") == "local_user",
           "a Response for the login of a local user: 403 local_user", (status, hdrs, body))
    # olga is an SSO user of account other (a second keywarden-ssod with account = other)
    s.kw("account", "add", "other")
    conf = os.path.join(s.dir, "other.conf")
    with open(os.path.join(s.dir, "keywarden.conf")) as f:
        text = f.read().replace("account = acme", "account = other")
    with open(conf, "w") as f:
        f.write("[store]\nstate_dir = %s\n%s" % (s.dir, text))
    olga = os.path.join(s.dir, "olga.b64")
    with open(olga, "w") as f:
        f.write(idp.response("olga@example.org", ["eng"]))
    p = st.subprocess.run([st.SSOD, "-c", conf, "ingest", olga], env=st.env(),
                          capture_output=True, text=True, timeout=60)
    tap.ok(p.returncode == 0 and p.stdout.strip() == "accepted olga@example.org Engineers",
           "olga signs in to account other (ingest with account = other)",
           (p.returncode, p.stdout, p.stderr))
    status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": idp.response("olga@example.org",
                                                                            ["eng"])})
    tap.ok(status == 403 and hdrs.get("x-keywarden-reason") == "other_account",
           "a Response for an SSO user of another account: 403 other_account",
           (status, hdrs, body))
    log = s.log()
    tap.ok('"POST /saml/acs" 200 accepted login alice@example.org role Administrators' in log
           and '"POST /saml/acs" 409 rejected replay' in log and
           '"POST /saml/acs" 403 rejected signature' in log and
           '"GET /saml/metadata" 200' in log and "peer 127.0.0.1:" in log,
           "each request is logged with its peer, request id and outcome", log)

    # ---- LogoutRequest: recorded, tokens stay valid ----
    tok = s.kw("token", "create", "--as", "alice@example.org", "--name", "deploy", "--role",
               "Engineers").stdout.strip()
    tok_id = tok.split("$")[0]
    s.start_validator()
    lr = idp.logout_request("alice@example.org")
    status, hdrs, body = s.post("/saml/slo", {"SAMLRequest": lr})
    tap.ok(status == 200 and "Signed out" in body and "not affected" in body,
           "a lasso LogoutRequest at /saml/slo: 200", (status, body, s.log()))
    rows = s.kw("audit", "export").stdout
    tap.ok('"sso.logout"' in rows or "sso.logout" in rows, "the logout is in the audit log",
           rows[-2000:])
    log = s.log()
    tap.ok("permanent API tokens are not affected" in log,
           "the log says that permanent API tokens are not affected", log)
    p = s.check_token(tok)
    tap.ok(p.returncode == 0 and ("token_id=%s" % tok_id in p.stdout or tok_id in p.stdout),
           "after the logout, alice's token still checks OK through the validator",
           (p.returncode, p.stdout, p.stderr))
    status, hdrs, body = s.post("/saml/slo", {"SAMLRequest": lr})
    tap.ok(status == 409, "the same LogoutRequest again: 409 replay", (status, body))
    unsigned = st.decode(idp.logout_request("bob@example.org"))
    import re
    unsigned = re.sub(r"<Signature .*?</Signature>", "", unsigned, flags=re.S)
    status, hdrs, body = s.post("/saml/slo", {"SAMLRequest": unsigned})
    tap.ok(status == 403 and hdrs.get("x-keywarden-reason") == "signature",
           "an unsigned LogoutRequest: 403 signature", (status, hdrs, body))
    status, hdrs, body = s.post("/saml/slo", {"SAMLRequest": resp})
    tap.ok(status == 400 and hdrs.get("x-keywarden-reason") == "structure",
           "a Response posted to /saml/slo: 400 structure", (status, hdrs, body))
    rc = s.stop()
    tap.ok(rc == 0 and "stopping" in s.log(), "SIGTERM: exit 0, logged", (rc, s.log()[-500:]))


def unix(tap):
    d = st.tempfile.mkdtemp(prefix="kw-ssod-unix-")
    path = os.path.join(d, "ssod.sock")
    s = st.Ssod(listen="unix:" + path)
    notify = os.path.join(d, "notify.sock")
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    n.bind(notify)
    n.settimeout(10)
    try:
        s.start({"NOTIFY_SOCKET": notify})
        msg = n.recv(4096).decode()
        tap.ok("READY=1" in msg, "sd_notify READY=1 once listening", msg)
        tap.ok(os.path.exists(path) and (os.stat(path).st_mode & 0o777) == 0o660,
               "listen = unix:PATH makes a 0660 socket", oct(os.stat(path).st_mode))
        status, hdrs, body = s.request("GET", "/healthz")
        tap.ok(status == 200 and body == "ok\n", "GET /healthz over the Unix socket: 200 ok",
               (status, body))
        idp = st.LassoIdp(s, s.request("GET", "/saml/metadata")[2])
        status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": idp.response(
            "dave@example.org", ["eng"])})
        tap.ok(status == 200 and "dave@example.org" in s.users(),
               "a lasso Response over the Unix socket: 200, user created", (status, body))
        tap.ok("peer unix req" in s.log(), "requests over the socket are logged as peer unix",
               s.log())
        s.proc.send_signal(st.signal.SIGTERM)
        msg = n.recv(4096).decode()
        tap.ok("STOPPING=1" in msg, "SIGTERM: sd_notify STOPPING=1", msg)
        rc = s.proc.wait(15)
        s.stop()
        tap.ok(rc == 0 and not os.path.exists(path), "exit 0 and the socket is removed",
               (rc, s.log()))
    finally:
        n.close()
        s.cleanup()
        st.shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
