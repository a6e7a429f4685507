"""rule.py: "SSO revocation does not revoke API tokens", end to end through HTTP. Signed
Responses of a real IdP (python3-lasso) are POSTed to keywarden-ssod's /saml/acs; tokens are
checked by the real validator (keywarden token check -, the token on standard input). For a
revocation (the group disappears), a downgrade (a lower group) and `keywarden sso revoke`:
the token still checks OK, the warning names it with its delete command, `sso review --json`
lists it, and after `keywarden token delete` the case closes."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ssodtest as st  # noqa: E402


def main():
    tap = st.Tap()
    s = st.Ssod()
    try:
        run(tap, s)
    finally:
        s.cleanup()
    tap.done()


def review(s):
    return json.loads(s.kw("sso", "review", "--json").stdout)


def case_of(s, login):
    return [c for c in review(s)["cases"] if c["user"] == login]


def scenario(tap, s, idp, login, first, later, token_role, kind, how, case_kind=None):
    """first/later: group lists; later None: `keywarden sso revoke` instead of an assertion."""
    status, _, body = s.post("/saml/acs", {"SAMLResponse": idp.response(login, first)})
    tap.ok(status == 200, "%s: %s signs in through HTTP" % (how, login), (status, body))
    p = s.kw("token", "create", "--as", login, "--name", "deploy", "--role", token_role)
    token = p.stdout.strip()
    tid = token.split("$")[0]
    tap.ok(st.RULE in p.stderr and ("token %s" % tid) in p.stderr,
           "%s: token create prints the rule as a notice" % how, p.stderr)
    p = s.check_token(token)
    tap.ok(p.returncode == 0, "%s: the token checks OK through the validator" % how,
           (p.returncode, p.stdout, p.stderr))
    mark = len(s.log())
    if later is not None:
        status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": idp.response(login, later)})
        tap.ok(status == 200, "%s: the later assertion is accepted (200)" % how, (status, body))
        warning = s.log()[mark:]
    else:
        p = s.kw("sso", "revoke", login, "--reason", "left the company (IdP ticket 42)")
        tap.ok(p.returncode == 0, "%s: keywarden sso revoke %s" % (how, login), p.stderr)
        warning = p.stderr
    cmd = "keywarden token delete --as root %s" % tid
    tap.ok("warning: " + st.RULE in warning and "[%s]" % st.MSGID_RULE in warning and
           ('token %s "deploy"' % tid) in warning and cmd in warning,
           "%s: the warning states the rule and names the token with its delete command" % how,
           warning)
    user = s.users()[login]
    tap.ok(user["sso_state"] == kind and user["enabled"] is True,
           "%s: %s is %s, not disabled" % (how, login, kind), user)
    p = s.check_token(token)
    tap.ok(p.returncode == 0, "%s: the token still checks OK through the validator" % how,
           (p.returncode, p.stdout, p.stderr))
    cases = case_of(s, login)
    tap.ok(len(cases) == 1 and cases[0]["kind"] == (case_kind or kind) and
           [t["id"] for t in cases[0]["tokens"]] == [int(tid)] and
           cases[0]["tokens"][0]["delete"] == cmd,
           "%s: sso review --json lists the case, the token and its command" % how, cases)
    s.kw("token", "delete", "--as", "root", tid)
    tap.ok(case_of(s, login) == [], "%s: after token delete the case is closed" % how,
           review(s))
    p = s.check_token(token)
    tap.ok(p.returncode == 12, "%s: the deleted token no longer checks: exit 12, deleted (the "
           "validator sees the delete)" % how, (p.returncode, p.stdout, p.stderr))


def run(tap, s):
    s.start()
    s.start_validator()
    idp = st.LassoIdp(s, s.request("GET", "/saml/metadata")[2])
    scenario(tap, s, idp, "alice@example.org", ["admins"], ["visitors"], "Administrators",
             "revoked", "revoked")
    scenario(tap, s, idp, "dave@example.org", ["admins"], ["staff"], "Engineers",
             "downgraded", "downgraded")
    scenario(tap, s, idp, "erin@example.org", ["eng"], None, "Engineers", "revoked",
             "sso revoke", "idp_revoked")
    audit = s.kw("audit", "verify")
    tap.ok(audit.returncode == 0, "the audit chain verifies", audit.stdout + audit.stderr)


if __name__ == "__main__":
    main()
