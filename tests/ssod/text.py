"""text.py: a signed Response or LogoutRequest whose NameID holds a bidirectional override, a
bidi isolate or a C1 control (issue 10, item 4) is refused (403, reason nameid) before the
store, the log or the HTTP answer sees it: nobody is created, and neither the log nor the
answer holds the raw character. A mail attribute with one is ignored, as a malformed address
is; a login_attribute value with one is refused (403, reason attribute). Non-ASCII text that
is plain UTF-8 still signs in."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ssodtest as st  # noqa: E402

BAD = (("RLO U+202E", "evil\u202egro.elpmaxe@example.org"),
       ("LRI U+2066", "mallory\u2066@example.org"),
       ("C1 CSI U+009B", "x\u009b2J@example.org"),
       ("RLM U+200F", "bob\u200f@example.org"),
       ("LINE SEPARATOR U+2028", "a\u2028b@example.org"))
RAW = [b"\xe2\x80\xae", b"\xe2\x81\xa6", b"\xc2\x9b", b"\xe2\x80\x8f", b"\xe2\x80\xa8"]


def main():
    tap = st.Tap()
    s = st.Ssod()
    try:
        s.start()
        run(tap, s)
    finally:
        if os.environ.get("KW_KEEP"):
            print(s.log())
        s.cleanup()
    s = st.Ssod({"login_attribute": "mail"})
    try:
        s.start()
        by_attribute(tap, s)
    finally:
        s.cleanup()
    tap.done()


def raw_log(s):
    with open(s.log_path, "rb") as f:
        return f.read()


def run(tap, s):
    idp = st.LassoIdp(s, s.request("GET", "/saml/metadata")[2])
    for what, nameid in BAD:
        status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": idp.response(nameid, ["eng"])})
        tap.ok(status == 403 and hdrs.get("x-keywarden-reason") == "nameid",
               "a NameID with %s: 403 nameid" % what, (status, hdrs, body, s.log()))
        tap.ok(not any(c in body for c in "\u202e\u2066\u009b\u200f\u2028"),
               "  the answer does not show it", body)
    users = s.users()
    tap.ok(sorted(users) == ["root"], "nobody was created", users)
    status, hdrs, body = s.post("/saml/slo", {"SAMLRequest": idp.logout_request(BAD[0][1])})
    tap.ok(status == 403 and hdrs.get("x-keywarden-reason") == "nameid",
           "a LogoutRequest whose NameID holds an RLO: 403 nameid", (status, hdrs, body))

    nameid = "j\u00fcrgen.\U0001f511@example.org"
    status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": idp.response(
        nameid, ["eng"], mail="j\u202e@example.org")})
    users = s.users()
    tap.ok(status == 200 and nameid in users,
           "a NameID of plain non-ASCII UTF-8 (\u00fc, a four-byte character): 200, created",
           (status, body, users))
    tap.ok(nameid in users and users[nameid].get("email") is None,
           "  its mail attribute with an RLO is ignored, as a malformed address is",
           users.get(nameid))
    log = raw_log(s)
    tap.ok(not any(r in log for r in RAW), "the log holds none of the refused characters",
           log[-2000:])


def by_attribute(tap, s):
    idp = st.LassoIdp(s, s.request("GET", "/saml/metadata")[2])
    status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": idp.response(
        "plain@example.org", ["eng"], mail="eve\u202egro.elpmaxe@example.org")})
    tap.ok(status == 403 and hdrs.get("x-keywarden-reason") == "attribute",
           "login_attribute = mail, its value with an RLO: 403 attribute", (status, hdrs, body))
    tap.ok(sorted(s.users()) == ["root"], "  nobody was created", s.users())
    log = raw_log(s)
    tap.ok(not any(r in log for r in RAW), "  the log does not hold it", log[-2000:])


if __name__ == "__main__":
    main()
