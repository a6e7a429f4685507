#!/bin/sh
# rule.sh: "SSO revocation does not revoke API tokens". When SSO access ends (no role maps),
# shrinks (a lower role) or an admin records a revocation, no token changes; one warning with
# a stable message id and one audit event name each active token with its delete command;
# a review case opens and closes once the tokens are gone or an Administrator dismisses it.
# Users unseen for [sso] stale_days appear in the review (the clock is moved with faketime).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/sso/sso_lib.sh"

kw init && kw account add acme && kw user add --account acme root --role Administrators &&
	kw user add --account acme bob --role Users
is "$rc" 0 "state with account acme, local admin root, local user bob"

# ---- revoked: the mapped role disappears ----
login alice Administrators s1 a1
kw token create --as alice --name deploy --role Administrators
is "$rc" 0 "an SSO Administrator creates a token"
id=$(token_id alice deploy)
has "$T/err" "$RULE" "token create prints the rule as a notice for an SSO user"
kw token create --as root --name local --role Users
hasnt "$T/err" "$RULE" "no notice for a local user's token"

login alice - s2 a2
is "$drc" 0 "a later assertion that maps to no role is accepted"
has "$T/dout" "outcome=revoked" "alice's SSO access is revoked"
has "$T/derr" "warning: $RULE" "the warning states the rule"
has "$T/derr" "[$MSGID_RULE]" "with the stable message id"
has "$T/derr" "token $id \"deploy\" (role Administrators, expires never, last used never)" \
	"the warning names the token, its role, expiry and last use"
has "$T/derr" "keywarden token delete --as root $id" "and the command that deletes it"
is "$(token_status root "$id")" active "the token is still active"
kw user list --account acme --json
is "$(json_get "$T/out" '[(u["sso_state"], u["enabled"]) for u in j if u["login"] == "alice"][0]')" \
	"('revoked', True)" "alice is marked revoked, not disabled"
before=$(db_dump)
expect 5 "a user whose SSO access is revoked may not create tokens" \
	token create --as alice --name more --role Users
err_has "was revoked"
expect 5 "nor delete them" token delete --as alice "$id"
expect 5 "nor list them" token list --as alice
[ "$(db_dump)" = "$before" ] && ok "the refusals changed nothing" || not_ok "refusals changed the database"
sql "SELECT details FROM audit WHERE action = 'sso.rule' AND target = 'alice'" >"$T/audit"
is "$(wc -l <"$T/audit")" 1 "one audit event states the rule"
has "$T/audit" "\"rule\":\"$RULE\"" "the audit event states the rule"
has "$T/audit" "\"delete\":\"keywarden token delete --as root $id\"" \
	"the audit event names the token's delete command"
has "$T/audit" "\"tokens_changed\":0" "the audit event says no token changed"
review_json
is "$(json_get "$T/review.json" '[(c["user"], c["kind"], [t["id"] for t in c["tokens"]]) for c in j["cases"]]')" \
	"[('alice', 'revoked', [$id])]" "sso review lists the case with the token"
is "$(json_get "$T/review.json" 'j["cases"][0]["tokens"][0]["delete"]')" \
	"keywarden token delete --as root $id" "with its delete command"
kw sso review
has "$T/out" "keywarden token delete --as root $id" "the text review prints the command"
login alice - s3 a3
has "$T/dout" "outcome=still_revoked" "another assertion without role: still revoked"
is "$(sql "SELECT count(*) FROM audit WHERE action = 'sso.rule' AND target = 'alice'")" 1 \
	"and no second rule event"
kw token delete --as root "$id"
is "$rc" 0 "the admin deletes the token"
review_json
is "$(json_get "$T/review.json" 'len(j["cases"])')" 0 "after the delete, the case is closed"
is "$(sql "SELECT closed_by || '|' || close_reason FROM sso_case WHERE kind = 'revoked'")" \
	"keywarden|no active token left" "it closed by itself"
is "$(sql "SELECT count(*) FROM audit WHERE action = 'sso.case_close'")" 1 "the close is audited"

# ---- downgraded: a lower role ----
login dave Administrators s1 d1
kw token create --as dave --name ci --role Engineers
id=$(token_id dave ci)
login dave Users s2 d2
has "$T/dout" "outcome=downgraded" "a lower mapped role downgrades"
has "$T/derr" "[$MSGID_RULE]" "the downgrade logs the rule with its message id"
has "$T/derr" "keywarden token delete --as root $id" "naming the token's delete command"
kw user list --account acme --json
is "$(json_get "$T/out" '[(u["role"], u["sso_state"]) for u in j if u["login"] == "dave"][0]')" \
	"('Users', 'downgraded')" "dave now has the lower role"
is "$(token_status root "$id")" active "dave's token is still active, with its old role"
review_json
is "$(json_get "$T/review.json" '[(c["kind"], c["tokens"][0]["id"], c["tokens"][0]["above_user_role"]) for c in j["cases"] if c["user"] == "dave"]')" \
	"[('downgraded', $id, True)]" "sso review lists it, token above the user's role"
# a new event on an open case updates it
login dave - s3 d3
review_json
is "$(json_get "$T/review.json" '[(c["kind"], c["events"]) for c in j["cases"] if c["user"] == "dave"]')" \
	"[('revoked', 2)]" "a revocation on the open case updates it (one case per user)"
kw token delete --as root "$id"
review_json
is "$(json_get "$T/review.json" 'len(j["cases"])')" 0 "after the delete, dave's case is closed"

# ---- sso revoke: a revocation known at the IdP ----
login erin Engineers s1 e1
kw token create --as erin --name backup --role Engineers
id=$(token_id erin backup)
kw sso revoke erin --reason "left the company"
is "$rc" 0 "an admin records erin's revocation"
has "$T/err" "[$MSGID_RULE]" "sso revoke logs the rule with its message id"
has "$T/err" "keywarden token delete --as root $id" "naming the token's delete command"
is "$(token_status root "$id")" active "erin's token is still active"
kw user list --account acme --json
is "$(json_get "$T/out" '[u["sso_state"] for u in j if u["login"] == "erin"][0]')" revoked \
	"erin is marked revoked"
review_json
is "$(json_get "$T/review.json" '[(c["kind"], "left the company" in c["reason"], c["tokens"][0]["id"]) for c in j["cases"] if c["user"] == "erin"]')" \
	"[('idp_revoked', True, $id)]" "sso review lists the case with the reason"
is "$(sql "SELECT count(*) FROM audit WHERE action = 'sso.revoke' AND target = 'erin' AND actor LIKE 'unix:%'")" 1 \
	"the revocation is audited with the operator"
# A reason is limited in characters, so its buffers must hold 4 bytes a character.
long=$(python3 -c 'print("\u00e9" * 890, end="")')
login fay Users s1 f1
kw token create --as fay --name cron --role Users
kw sso revoke fay --reason "$long"
is "$rc" 0 "a reason of 890 two-byte characters is accepted"
review_json
is "$(json_get "$T/review.json" '[c["reason"].count("\u00e9") for c in j["cases"] if c["user"] == "fay"]')" \
	"[890]" "and stored whole, not cut inside a character"
kw token delete --as root "$(token_id fay cron)"
is "$rc" 0 "fay's token deleted: her case closes"
expect 3 "sso revoke of a local user is refused" sso revoke bob --reason x
expect 4 "sso revoke of an unknown user" sso revoke nobody --reason x
expect 2 "sso revoke needs a reason" sso revoke erin
expect 3 "sso revoke refuses an empty reason" sso revoke erin --reason ""

# ---- dismiss ----
case_id=$(json_get "$T/review.json" '[c["id"] for c in j["cases"] if c["user"] == "erin"][0]')
before=$(db_dump)
expect 5 "a non-Administrator may not dismiss" sso dismiss "$case_id" --as bob --reason ok
expect 5 "an SSO Administrator whose access is revoked may not dismiss" \
	sso dismiss "$case_id" --as alice --reason ok
is "$(db_dump)" "$before" "refused dismissals change nothing"
expect 2 "dismiss needs a reason" sso dismiss "$case_id" --as root
expect 0 "an Administrator dismisses the case" sso dismiss "$case_id" --as root \
	--reason "token kept for the migration"
review_json
is "$(json_get "$T/review.json" 'len(j["cases"])')" 0 "the dismissed case is gone from the review"
is "$(token_status root "$id")" active "dismissing changes no token"
is "$(sql "SELECT count(*) FROM audit WHERE action = 'sso.case_dismiss' AND actor = 'root' AND details LIKE '%token kept for the migration%'")" 1 \
	"the dismissal is audited with its reason"
expect 7 "a closed case cannot be dismissed again" sso dismiss "$case_id" --as root --reason x
expect 4 "an unknown case" sso dismiss 999 --as root --reason x
expect 3 "a malformed case id" sso dismiss 1x --as root --reason x

# ---- disable, then enable: the case stays open while the tokens can come back ----
login kate Administrators s1 k1
kw token create --as kate --name sync --role Users
kid=$(token_id kate sync)
login kate - s2 k2
has "$T/dout" "outcome=revoked" "kate's SSO access is revoked"
kw user set kate --disable
is "$rc" 0 "an admin disables kate"
review_json
is "$(json_get "$T/review.json" '[(c["kind"], c["enabled"], [t["id"] for t in c["tokens"]]) for c in j["cases"] if c["user"] == "kate"]')" \
	"[('revoked', False, [$kid])]" "disabling kate does not close her case: it still lists the token"
kw sso review
has "$T/out" "validate again once it is enabled" "the text review says the tokens come back on enable"
kw user set kate --enable
is "$rc" 0 "an admin enables kate again"
review_json
is "$(json_get "$T/review.json" '[(c["kind"], c["enabled"], [t["id"] for t in c["tokens"]]) for c in j["cases"] if c["user"] == "kate"]')" \
	"[('revoked', True, [$kid])]" "once enabled, kate's case is open with the token that validates again"
is "$(token_status root "$kid")" active "kate's token is active again"
is "$(sql "SELECT count(*) FROM audit WHERE action = 'sso.case_close' AND details LIKE '%\"kate\"%'")" 0 \
	"no close of kate's case was audited"

# ---- an Administrator may not dismiss the case about themselves ----
login liam Administrators s1 l1
kw token create --as liam --name etl --role Users
login liam - s2 l2
login liam Administrators s3 l3
has "$T/dout" "outcome=upgraded" "liam's access comes back: his revoked case stays open"
lcase=$(sql "SELECT c.id FROM sso_case c JOIN \"user\" u ON u.id = c.user_id WHERE u.login = 'liam' AND c.closed IS NULL")
before=$(db_dump)
expect 5 "the SSO Administrator liam may not dismiss the case about himself" \
	sso dismiss "$lcase" --as liam --reason mine
err_has "another Administrator must dismiss it"
is "$(db_dump)" "$before" "the refused self-dismissal changes nothing"
expect 0 "another Administrator may" sso dismiss "$lcase" --as root --reason "liam keeps etl"

# ---- no Administrator to name: the placeholder ----
kw account add solo
login zed Administrators s1 z1 solo
kw token create --as zed --name only --role Users
id=$(token_id zed only)
login zed - s2 z2 solo
has "$T/derr" "keywarden token delete --as ADMIN $id" \
	"without another Administrator the command names the ADMIN placeholder"

# ---- stale users ----
kw account add far
login gina Engineers s1 g1 far
kw token create --as gina --name nightly --role Engineers
gid=$(token_id gina nightly)
login hank Users s1 h1 far
login ivan Users s1 i1 far
kw token create --as ivan --name cron --role Users
review_json --account far
is "$(json_get "$T/review.json" 'len(j["stale"])')" 0 "nobody is stale today"
kw_later 31 sso review --account far --json
cp "$T/out" "$T/review.json"
is "$rc" 0 "31 days later, sso review runs"
is "$(json_get "$T/review.json" 'sorted(s["user"] for s in j["stale"])')" \
	"['gina', 'hank', 'ivan']" "SSO users unseen for 30 days appear in the review"
is "$(json_get "$T/review.json" '[s["note"] for s in j["stale"]][0]')" \
	"access may have been revoked at the IdP" "as 'access may have been revoked at the IdP'"
is "$(json_get "$T/review.json" 'sorted((c["user"], c["kind"], [t["id"] for t in c["tokens"]]) for c in j["cases"])[0]')" \
	"('gina', 'stale', [$gid])" "a stale user holding tokens gets a case with them"
is "$(json_get "$T/review.json" '[s["case"] for s in j["stale"] if s["user"] == "hank"][0]')" None \
	"a stale user without tokens gets no case"
has "$T/err" "[$MSGID_STALE]" "the stale case is logged with its message id"
kw_later 31 sso review --account far
has "$T/out" "access may have been revoked at the IdP" "the text review says so too"
is "$(sql "SELECT count(*) FROM sso_case WHERE kind = 'stale'")" 2 \
	"reviewing again opens no second stale case"
icase=$(sql "SELECT c.id FROM sso_case c JOIN \"user\" u ON u.id = c.user_id WHERE u.login = 'ivan'")
expect 4 "another account's case is not found" sso dismiss "$icase" --as root --reason x
kw user add --account far farroot --role Administrators
kw_later 31 sso dismiss "$icase" --as farroot --reason "on leave"
is "$rc" 0 "far's Administrator dismisses ivan's stale case"
kw_later 31 sso review --account far --json
cp "$T/out" "$T/review.json"
is "$(json_get "$T/review.json" '[c["user"] for c in j["cases"]]')" "['gina']" \
	"a dismissed stale case is not reopened while ivan stays unseen"
at_time "+31d" "$DRIVER" --state-dir "$STATE" login far gina Engineers "$IDP" s2 g2 \
	>"$T/dout" 2>"$T/derr"
has "$T/dout" "outcome=updated" "gina signs in again, 31 days later"
kw_later 31 sso review --account far --json
cp "$T/out" "$T/review.json"
is "$(json_get "$T/review.json" '([c["user"] for c in j["cases"]], sorted(s["user"] for s in j["stale"]))')" \
	"([], ['hank', 'ivan'])" "seen again: her stale case closes and she is no longer stale"
is "$(token_status farroot "$gid")" active "no token changed along the way"

done_testing
