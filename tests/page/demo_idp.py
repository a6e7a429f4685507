"""demo_idp.py: the API tokens pages on this machine, for a look (./demo-page.sh runs it).
Starts keywarden-ssod on http://127.0.0.1:PORT and the validator in a temporary state folder,
and a test SAML IdP made of python3-lasso (as the tests use) on http://127.0.0.1:PORT+1: its
page lets you sign in as ann (Engineers), sam (Users) or boss (Administrators), and posts the
signed Response to /saml/acs. Not a real IdP: for a demonstration only. Ctrl-C stops all."""
import html
import http.server
import os
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ssod"))
import ssodtest as st  # noqa: E402

USERS = [("ann@idp.test", ["eng"], "Engineers"), ("sam@idp.test", ["staff"], "Users"),
         ("boss@idp.test", ["admins"], "Administrators")]


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    base = "http://127.0.0.1:%d" % port
    idp_base = "http://127.0.0.1:%d" % (port + 1)
    st.ACS = base + "/saml/acs"
    s = st.Ssod(extra={"listen": "127.0.0.1:%d" % port, "acs_url": st.ACS})
    # the IdP's metadata as ssod pins it, with its sign-in URL (for /saml/login)
    with open(s.meta) as f:
        meta = f.read()
    meta = meta.replace("</md:IDPSSODescriptor>",
                        '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:'
                        'HTTP-Redirect" Location="%s/sso"/></md:IDPSSODescriptor>' % idp_base)
    with open(s.meta, "w") as f:
        f.write(meta)
    try:
        s.start()
        s.start_validator()
        _, _, sp_meta = s.request("GET", "/saml/metadata")
        idp = st.LassoIdp(s, sp_meta)
        # a token expiring soon, so that the `!` shows
        s.kw("user", "add", "--account", "acme", "ci-bot", "--role", "Engineers")
        s.kw("token", "create", "--as", "ci-bot", "--name", "nightly-purge", "--role", "Users",
             "--expires", __import__("datetime").date.fromordinal(
                 __import__("datetime").date.today().toordinal() + 3).isoformat())
        serve(idp, base, port + 1)
    except KeyboardInterrupt:
        pass
    finally:
        s.cleanup()


def serve(idp, base, port):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            pass

        def page(self, body):
            data = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                    "<meta name=\"viewport\" content=\"width=device-width\">"
                    "<title>Test IdP</title></head><body style=\"font-family:sans-serif\">"
                    "%s</body></html>" % body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            u = urllib.parse.urlsplit(self.path)
            q = urllib.parse.parse_qs(u.query)
            if u.path == "/login" and q.get("user"):
                user = [x for x in USERS if x[0] == q["user"][0]]
                if user:
                    resp = idp.response(user[0][0], user[0][1], user[0][0].replace(
                        "@idp.test", "@example.test"))
                    self.page('<p>Signing in as %s&hellip;</p><form method="post" '
                              'action="%s/saml/acs"><input type="hidden" name="SAMLResponse" '
                              'value="%s"><input type="hidden" name="RelayState" '
                              'value="/tokens"><button>Continue</button></form><script>'
                              'document.forms[0].submit()</script>'
                              % (html.escape(user[0][0]), base, html.escape(resp)))
                    return
            self.page("<h1>Test IdP (lasso)</h1><p>Sign in to keywarden as:</p><ul>" + "".join(
                '<li><a href="/login?user=%s">%s</a> (%s)</li>'
                % (urllib.parse.quote(u_), html.escape(u_), r) for u_, _, r in USERS) +
                "</ul>")

    srv = http.server.HTTPServer(("127.0.0.1", port), Handler)
    print("keywarden-ssod: %s/tokens    test IdP: http://127.0.0.1:%d/    (Ctrl-C stops)"
          % (base, port), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
