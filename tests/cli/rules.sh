#!/bin/sh
# rules.sh: the product page's token rules through the real CLI and a real database.
. "$top_srcdir/tests/lib.sh"

setup_acme
kw init
[ "$rc" -eq 0 ] && ok "init is idempotent" || not_ok "init twice" "$(cat "$T/err")"
[ "$(stat -c %a "$STATE")" = 700 ] && ok "state folder is 0700" || not_ok "state folder mode"
[ "$(stat -c %a "$STATE/keywarden.key")" = 600 ] && ok "key is 0600" || not_ok "key mode"
if kw_pg; then
	[ ! -e "$STATE/keywarden.db" ] && ok "no SQLite file beside a PostgreSQL store" || not_ok "keywarden.db made"
else
	[ "$(stat -c %a "$STATE/keywarden.db")" = 600 ] && ok "database is 0600" || not_ok "db mode"
fi

# Creation prints the token alone on stdout and a warning on stderr.
kw token create --as alice --name deploy --description "CI deploys" --role Engineers
tok=$(cat "$T/out")
if [ "$rc" -eq 0 ] && [ "$(wc -l <"$T/out")" -eq 1 ] && echo "$tok" | grep -Eq '^1\$[A-Za-z0-9_-]{48}$'; then
	ok "token create prints the token alone"
else
	not_ok "token create output" "$(cat "$T/out")"
fi
grep -q "cannot be shown again" "$T/err" && ok "stderr says it cannot be shown again" ||
	not_ok "no warning on stderr"

# Role at most the issuer's: equal and lower pass, higher fails.
expect 0 "engineer creates an Engineers token" token create --as erin --name e1 --role Engineers
expect 0 "engineer creates a lower-role token" token create --as erin --name e2 --role "Purge and Prefetch only (API)"
before=$(db_dump)
expect 5 "engineer cannot create an Administrators token" token create --as erin --name e3 --role Administrators
err_has "above the issuer's role"
[ "$(db_dump)" = "$before" ] && ok "refused creation changed nothing" || not_ok "refused creation changed the database"
expect 5 "user cannot create an Engineers token" token create --as bob --name b0 --role Engineers
expect 0 "user creates a Users token" token create --as bob --name b1 --role Users

# Default expiry is never; a date means the end of that day UTC; RFC 3339 accepted.
kw token show --as alice 1 --json
[ "$(json_get "$T/out" 'j["expires"]')" = never ] && ok "default expiry is never" || not_ok "default expiry"
year=$(($(date -u +%Y) + 1))
kw token create --as alice --name dated --role Users --expires "$year-03-04"
id=$(cut -d'$' -f1 "$T/out")
kw token show --as alice "$id" --json
[ "$(json_get "$T/out" 'j["expires"]')" = "$year-03-04T23:59:59Z" ] && ok "a date means the end of that day, UTC" ||
	not_ok "date expiry" "$(cat "$T/out")"
expect 0 "RFC 3339 expiry with offset" token create --as alice --name rfc --role Users --expires "$year-03-04T10:00:00+02:00"
id=$(cut -d'$' -f1 "$T/out")
kw token show --as alice "$id" --json
[ "$(json_get "$T/out" 'j["expires"]')" = "$year-03-04T08:00:00Z" ] && ok "RFC 3339 offset normalised to UTC" || not_ok "rfc expiry"

# Visibility: Administrators see every token of the account, others only their own.
kw token list --as alice --json
n_admin=$(json_get "$T/out" 'len(j)')
kw token list --as bob --json
n_bob=$(json_get "$T/out" 'len(j)')
issuers=$(json_get "$T/out" '",".join(sorted(set(t["issued_by"] for t in j)))')
[ "$n_admin" -eq 6 ] && ok "administrator sees all 6 tokens" || not_ok "admin sees $n_admin"
[ "$n_bob" -eq 1 ] && [ "$issuers" = bob ] && ok "user sees only his own token" || not_ok "bob sees $n_bob ($issuers)"
expect 5 "user cannot list another user's tokens" token list --as bob --issued-by erin
expect 5 "user cannot show another user's token" token show --as bob 1

# Filters.
kw token list --as alice --issued-by erin --json
[ "$(json_get "$T/out" '",".join(sorted(set(t["issued_by"] for t in j)))')" = erin ] &&
	[ "$(json_get "$T/out" 'len(j)')" -eq 2 ] && ok "filter by issuer" || not_ok "issued-by filter" "$(cat "$T/out")"
kw token list --as alice --role Users --json
[ "$(json_get "$T/out" 'all(t["role"]=="Users" for t in j) and len(j)==3')" = True ] && ok "filter by role" || not_ok "role filter" "$(cat "$T/out")"

# Deletion: others' tokens only by Administrators; soft delete, not undoable.
before=$(db_dump)
expect 5 "user cannot delete another user's token" token delete --as bob 2
err_has "only Administrators"
[ "$(db_dump)" = "$before" ] && ok "refused delete changed nothing" || not_ok "refused delete changed the database"
expect 0 "user deletes his own token" token delete --as bob 4
expect 0 "administrator deletes another user's token" token delete --as alice 2
expect 7 "a deleted token cannot be deleted again" token delete --as alice 2
kw token list --as alice --status deleted --json
[ "$(json_get "$T/out" '",".join(str(t["id"]) for t in j)')" = "2,4" ] && ok "filter by status deleted" || not_ok "status filter" "$(cat "$T/out")"
[ "$(json_get "$T/out" 'j[0]["deleted_by"]')" = alice ] && ok "deleted token shows who deleted it" || not_ok "deleted_by"
kw token list --as alice --status active --json
[ "$(json_get "$T/out" 'all(t["status"]=="active" for t in j) and len(j)==4')" = True ] && ok "filter by status active" || not_ok "active filter" "$(cat "$T/out")"

# Listing shows every field; tokens expiring within 7 days are marked and counted.
soon=$(date -u -d '+3 days' +%Y-%m-%d)
kw token create --as alice --name soon --role Users --expires "$soon"
kw token list --as alice
head -1 "$T/out" | grep -q '^! 1 token expires within 7 days' && ok "a line above the table counts expiring tokens" || not_ok "expiry count line" "$(head -2 "$T/out")"
grep -E '^! ' "$T/out" | grep -q ' soon ' && ok "the expiring token carries the marker" || not_ok "marker" "$(cat "$T/out")"
missing=
for col in ID NAME DESCRIPTION "ISSUED BY" ROLE CREATED "LAST USAGE" EXPIRES STATUS; do
	grep -q "$col" "$T/out" || missing="$missing $col"
done
[ -z "$missing" ] && ok "table has every column" || not_ok "columns missing:$missing"
kw token list --as alice --json
[ "$(json_get "$T/out" 'sorted(j[0].keys()) == sorted(["id","name","description","issued_by","role","created","last_used","last_ip","expires","status","expires_soon"])')" = True ] &&
	ok "--json gives the same fields" || not_ok "json fields" "$(head -3 "$T/out")"

# A token whose issuer is disabled is reported as disabled; enabling restores it.
kw user set erin --disable
kw token list --as alice --issued-by erin --status disabled --json
[ "$(json_get "$T/out" 'len(j)')" -eq 1 ] && ok "disabled issuer's token is reported disabled" || not_ok "disabled status" "$(cat "$T/out")"
expect 5 "a disabled user cannot create tokens" token create --as erin --name x --role Users
kw user set erin --enable
kw token list --as alice --issued-by erin --status active --json
[ "$(json_get "$T/out" 'len(j)')" -eq 1 ] && ok "enabling restores active" || not_ok "enable"

# Role change is visible in user list.
kw user set bob --role Engineers
kw user list --account acme --json
[ "$(json_get "$T/out" '[u["role"] for u in j if u["login"]=="bob"][0]')" = Engineers ] && ok "user set --role" || not_ok "role change"

# The per-account limit (default 50) counts tokens that are not deleted; the error tells how
# many expired tokens could be deleted.
kw account add small --token-limit 3
kw user add --account small sam --role Administrators
kw token create --as sam --name a --role Users
kw token create --as sam --name b --role Users --expires "$(date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%SZ)"
kw token create --as sam --name c --role Users
sleep 3
before=$(db_dump)
expect 6 "creation past the limit fails" token create --as sam --name d --role Users
err_has "1 of them is expired and could be deleted"
[ "$(db_dump)" = "$before" ] && ok "refused creation past the limit changed nothing" || not_ok "limit refusal changed db"
kw token list --as sam --status expired --json
expired_id=$(json_get "$T/out" 'j[0]["id"]')
kw token delete --as sam "$expired_id"
expect 0 "deleting makes room" token create --as sam --name d --role Users
kw init
i=1
ok_count=0
while [ $i -le 50 ]; do
	"$KEYWARDEN" --state-dir "$STATE" token create --as alice --name "bulk$i" --role Users >/dev/null 2>&1 && ok_count=$((ok_count + 1))
	i=$((i + 1))
done
kw token list --as alice --json
live=$(json_get "$T/out" 'sum(1 for t in j if t["status"]!="deleted")')
[ "$live" -eq 50 ] && ok "default limit of 50 live tokens holds ($ok_count created)" || not_ok "default limit: $live live"
expect 6 "the 51st token is refused" token create --as alice --name over --role Users
err_has "already holds 50 tokens"

# Tokens of one account are invisible to another.
expect 4 "another account's token is not found" token show --as sam 1
done_testing
