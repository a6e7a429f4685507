#!/usr/bin/python3
"""report.py: keywarden report on a prepared database: every section, text and JSON, the
--account filter, and [sso] stale_days."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "notify"))
from kwtest import DAY, State, Tap  # noqa: E402

t = Tap()
st = State()
try:
    now = int(time.time())
    st.run("account", "add", "acme", "--token-limit", "20")
    st.run("account", "add", "beta", "--token-limit", "5")
    for login, acct, role in [("alice", "acme", "Administrators"), ("bob", "acme", "Engineers"),
                              ("sam", "acme", "Engineers"), ("sue", "acme", "Users"),
                              ("sid", "acme", "Users"), ("gina", "beta", "Administrators")]:
        st.run("user", "add", "--account", acct, login, "--role", role)
    far = now + 200 * DAY
    never = st.token("alice", "forever", "Users")                      # never expires
    soon = st.token("alice", "soon", "Users", now + 3 * DAY)           # within 7 days
    later = st.token("alice", "later", "Users", now + 10 * DAY)        # not within 7 days
    above = st.token("bob", "above", "Engineers", far)                 # bob is downgraded
    sam_t = st.token("sam", "sam-revoked", "Users", far)               # SSO revoked
    sue_t = st.token("sue", "sue-stale", "Users", far)                 # SSO not seen 40 days
    sid_t = st.token("sid", "sid-fresh", "Users", far)                 # SSO seen yesterday
    used = st.token("alice", "used", "Users", far)                     # used 2 days ago
    old = st.token("alice", "old-use", "Users", far)                   # used 120 days ago
    gone = st.token("alice", "gone", "Users")                          # deleted: never listed
    beta = [st.token("gina", "b%d" % i, "Users", far) for i in range(4)]  # 4 of 5: 80%
    st.run("token", "delete", "--as", "alice", str(gone))
    st.run("user", "set", "bob", "--role", "Users")
    st.sql("UPDATE \"user\" SET source = 'sso', sso_state = 'revoked', sso_last_seen = %d "
           "WHERE login = 'sam';" % (now - DAY))
    st.sql("UPDATE \"user\" SET source = 'sso', sso_state = 'active', sso_last_seen = %d "
           "WHERE login = 'sue';" % (now - 40 * DAY))
    st.sql("UPDATE \"user\" SET source = 'sso', sso_state = 'active', sso_last_seen = %d "
           "WHERE login = 'sid';" % (now - DAY))
    st.sql("UPDATE token SET last_used = %d WHERE id = %d;" % (now - 2 * DAY, used))
    st.sql("UPDATE token SET last_used = %d WHERE id = %d;" % (now - 120 * DAY, old))
    for tid in beta:
        st.sql("UPDATE token SET last_used = %d WHERE id = %d;" % (now - DAY, tid))

    p = st.run("report", "--json", check=False)
    t.eq(p.returncode, 0, "report --json succeeds")
    try:
        rep = json.loads(p.stdout)
        parsed = True
    except ValueError:
        rep, parsed = {"sections": {}}, False
    t.ok(parsed, "report --json is JSON", p.stdout)
    sec = rep.get("sections", {})

    def ids(name):
        return sorted(x["id"] for x in sec.get(name, []))

    t.eq(ids("never_expires"), [never], "never_expires: the token without expiry")
    t.eq(ids("sso_access_changed"), sorted([sam_t, sue_t]),
         "sso_access_changed: revoked and stale SSO users, not a fresh one")
    t.eq(ids("role_above_issuer"), [above], "role_above_issuer: the downgraded issuer's token")
    t.eq(ids("unused"), sorted([never, soon, later, above, sam_t, sue_t, sid_t, old]),
         "unused: never used or unused for 90 days, not the recently used")
    t.eq(ids("expiring_soon"), [soon], "expiring_soon: within 7 days only")
    t.eq([(a["account"], a["tokens"], a["token_limit"]) for a in
          sec.get("accounts_near_limit", [])], [("beta", 4, 5)],
         "accounts_near_limit: 4 of 5 (80%), not 9 of 20")
    reasons = {x["id"]: x["reason"] for x in sec.get("sso_access_changed", [])}
    t.ok("revoked" in reasons.get(sam_t, "") and "40 days" in reasons.get(sue_t, ""),
         "the reasons say revoked / not seen for 40 days", reasons)
    t.ok(all(gone != x["id"] for s in sec.values() for x in s if "id" in x),
         "a deleted token is in no section")

    p = st.run("report", check=False)
    t.eq(p.returncode, 0, "the text report succeeds")
    for title in ("Tokens that never expire", "Tokens of SSO users", "role exceeds",
                  "unused for 90 days", "expire within 7 days", "80% or more"):
        t.ok(title in p.stdout, "the text report has the section %r" % title, p.stdout)
    t.ok("sam-revoked" in p.stdout and "SSO access revoked" in p.stdout,
         "the text report names the tokens and why")

    p = st.run("report", "--account", "beta", "--json", check=False)
    rep = json.loads(p.stdout)
    t.ok(p.returncode == 0 and rep["account"] == "beta" and
         all(x.get("account") == "beta" for s in rep["sections"].values() for x in s),
         "--account limits every section to that account", p.stdout)
    p = st.run("report", "--account", "nope", check=False)
    t.eq(p.returncode, 4, "an unknown account is exit 4")

    st.write_conf("[sso]\nstale_days = 60\n")
    rep = json.loads(st.run("report", "--json").stdout)
    t.eq(sorted(x["id"] for x in rep["sections"]["sso_access_changed"]), [sam_t],
         "[sso] stale_days = 60: a user seen 40 days ago is not stale")
    rep = json.loads(st.run("report", "--json", offset=8 * DAY).stdout)
    t.eq(sorted(x["id"] for x in rep["sections"]["expiring_soon"]), [later],
         "8 days later: the expired token is gone, the next one expires soon")
finally:
    st.cleanup()
t.done()
