#!/bin/sh
# sync.sh: an accepted assertion creates or updates the SSO user with the mapped role and
# records the login with its replay-cache entry; replays change nothing; a LogoutRequest is
# recorded and leaves tokens valid. The SAML path is stood in for by tests/sso/sso_driver.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/sso/sso_lib.sh"

kw init && kw account add acme && kw user add --account acme root --role Administrators
is "$rc" 0 "state with account acme and local admin root"

# first login creates the user with the mapped role
login alice Administrators s1 a1
is "$drc" 0 "first login of alice accepted"
has "$T/dout" "outcome=created" "first login creates the user"
kw user list --account acme --json
is "$(json_get "$T/out" '[(u["source"], u["role"], u["sso_state"]) for u in j if u["login"] == "alice"][0]')" \
	"('sso', 'Administrators', 'active')" "alice is an active SSO user with the mapped role"
is "$(sql "SELECT idp || '|' || session_index || '|' || (CASE WHEN ended IS NULL THEN 1 ELSE 0 END) FROM sso_session s JOIN \"user\" u ON u.id = s.user_id WHERE u.login = 'alice'")" \
	"$IDP|s1|1" "the login is recorded with IdP and session index"
is "$(sql "SELECT count(*) FROM saml_replay WHERE assertion_id = 'a1'")" 1 \
	"the assertion id is in the replay cache"
is "$(sql "SELECT count(*) FROM audit WHERE action = 'sso.user_create' AND target = 'alice'")" 1 \
	"the user's creation is audited"

# a login that maps to no role creates nobody
login carol - s2 a2
is "$drc" 0 "login of an unknown user with no role is accepted"
has "$T/dout" "outcome=ignored" "and ignored"
is "$(sql "SELECT count(*) FROM \"user\" WHERE login = 'carol'")" 0 "carol is not created"

# a local user's login is never taken over
before=$(db_dump)
login root Users s3 a3
is "$drc" 5 "an assertion for a local login is refused"
is "$(db_dump)" "$before" "and changes nothing"

# an upgrade and an unchanged role
login bob Users s4 a4
login bob Engineers s5 a5
has "$T/dout" "outcome=upgraded" "a higher mapped role upgrades"
login bob Engineers s6 a6
has "$T/dout" "outcome=updated" "the same role updates last seen only"
kw user list --account acme --json
is "$(json_get "$T/out" '[u["role"] for u in j if u["login"] == "bob"][0]')" Engineers \
	"bob has the new role"
is "$(sql "SELECT count(*) FROM audit WHERE action = 'sso.rule'")" 0 \
	"no rule event for upgrades"

# replay: refused, nothing changes
kw token create --as alice --name deploy --role Engineers
is "$rc" 0 "alice creates a token"
id=$(token_id alice deploy)
before=$(db_dump)
login alice - s9 a1
is "$drc" 7 "a replayed assertion id is refused (even one that would revoke)"
has "$T/derr" "replay" "the error says replay"
is "$(db_dump)" "$before" "a replay changes nothing"
is "$(token_status root "$id")" active "the token is untouched by the replay"
kw user list --account acme --json
is "$(json_get "$T/out" '[u["sso_state"] for u in j if u["login"] == "alice"][0]')" active \
	"alice is still active after the replay"

# expired replay entries are purged
sql "UPDATE saml_replay SET expires = 1 WHERE assertion_id = 'a2'"
login bob Engineers s7 a7
is "$(sql "SELECT count(*) FROM saml_replay WHERE assertion_id = 'a2'")" 0 \
	"expired replay entries are purged"

# LogoutRequest
login alice Administrators s8 a8
drv logout alice "$IDP" s1 lr1
is "$drc" 0 "a LogoutRequest for one session is accepted"
has "$T/dout" "sessions_ended=1" "it ends that session"
has "$T/derr" "permanent API tokens are not affected" "the log says tokens are not affected"
has "$T/derr" "$MSGID_LOGOUT" "with its stable message id"
is "$(sql "SELECT count(*) FROM sso_session s JOIN \"user\" u ON u.id = s.user_id WHERE u.login = 'alice' AND ended IS NULL")" 1 \
	"the other session stays open"
drv logout alice "$IDP" - lr2
has "$T/dout" "sessions_ended=1" "a LogoutRequest without session index ends the rest"
is "$(token_status root "$id")" active "the token stays active after the logouts"
kw user list --account acme --json
is "$(json_get "$T/out" '[(u["role"], u["sso_state"], u["enabled"]) for u in j if u["login"] == "alice"][0]')" \
	"('Administrators', 'active', True)" "the logout changes neither role nor state"
is "$(sql "SELECT count(*) FROM audit WHERE action = 'sso.logout' AND target = 'alice'")" 2 \
	"each logout is audited"
is "$(sql "SELECT count(*) FROM sso_event WHERE kind = 'logout'")" 2 "and recorded as an SSO event"
before=$(db_dump)
drv logout alice "$IDP" - lr2
is "$drc" 7 "a replayed LogoutRequest is refused"
is "$(db_dump)" "$before" "and changes nothing"
drv logout nobody "$IDP" - lr3
is "$drc" 4 "a LogoutRequest for an unknown user is refused"

done_testing
