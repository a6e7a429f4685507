#!/bin/sh
# bad_input.sh: every kind of bad input gets a one-line error, its documented exit code, and
# changes nothing.
. "$top_srcdir/tests/lib.sh"

# A missing or unreadable state folder.
"$KEYWARDEN" --state-dir "$T/nowhere" token list --as alice >"$T/out" 2>"$T/err"
rc=$?
[ "$rc" -eq 8 ] && ok "missing state folder: exit 8" || not_ok "missing state folder: exit $rc"
err_has "state folder"
[ ! -e "$T/nowhere" ] && ok "missing state folder is not created" || not_ok "state folder was created"
mkdir -m 0700 "$T/empty"
"$KEYWARDEN" --state-dir "$T/empty" token list --as alice >"$T/out" 2>"$T/err"
rc=$?
[ "$rc" -eq 8 ] && ok "uninitialised state folder: exit 8" || not_ok "uninitialised: exit $rc"
err_has "keywarden init"
if [ "$(id -u)" -eq 0 ]; then
	# root reads anything: check as an unprivileged user instead.
	chmod 0711 "$T"
	mkdir "$T/locked" && chmod 0700 "$T/locked"
	setpriv --reuid=65534 --regid=65534 --clear-groups "$KEYWARDEN" --state-dir "$T/locked" token list --as a >"$T/out" 2>"$T/err"
	rc=$?
else
	mkdir "$T/locked" && chmod 0000 "$T/locked"
	"$KEYWARDEN" --state-dir "$T/locked" token list --as a >"$T/out" 2>"$T/err"
	rc=$?
fi
[ "$rc" -eq 8 ] && ok "unreadable state folder: exit 8" || not_ok "unreadable: exit $rc" "$(cat "$T/err")"
err_has "Permission denied"

setup_acme
kw token create --as alice --name first --role Users
before=$(db_dump)

# Usage errors: exit 2.
expect 2 "no command" ""
expect 2 "unknown command" frobnicate
expect 2 "unknown option" token list --as alice --colour
expect 2 "option without value" token create --as alice --name
expect 2 "missing --role" token create --as alice --name x
expect 2 "missing --as" token list

# Invalid values: exit 3.
expect 3 "empty name" token create --as alice --name "" --role Users
err_has "must not be empty"
long=$(printf 'n%.0s' $(seq 1 101))
expect 3 "over-long name" token create --as alice --name "$long" --role Users
err_has "longer than 100"
desc=$(printf 'd%.0s' $(seq 1 1001))
expect 3 "over-long description" token create --as alice --name x --description "$desc" --role Users
expect 3 "control character in name" token create --as alice --name "$(printf 'a\tb')" --role Users
expect 3 "malformed date" token create --as alice --name x --role Users --expires 2027-02-30
err_has "is not 'never', a date"
expect 3 "past date" token create --as alice --name x --role Users --expires 2020-01-01
err_has "lies in the past"
expect 3 "malformed time" token create --as alice --name x --role Users --expires "2027-01-01T10:00"
expect 3 "malformed id" token delete --as alice 12abc
err_has "is not a token id"
expect 3 "zero id" token show --as alice 0
expect 3 "bad status" token list --as alice --status gone
expect 3 "bad email" user add --account acme carol --role Users --email nobody
expect 3 "bad token limit" account add other --token-limit -1
expect 3 "login with blanks" user add --account acme "car ol" --role Users

# Not found: exit 4.
expect 4 "unknown account" user add --account nope carol --role Users
err_has "unknown account 'nope'"
expect 4 "unknown role" token create --as alice --name x --role Root
err_has "unknown role 'Root'"
expect 4 "unknown acting user" token create --as mallory --name x --role Users
err_has "unknown user 'mallory'"
expect 4 "unknown token" token delete --as alice 999
expect 4 "unknown user in filter" token list --as alice --issued-by nobody

# Conflicts: exit 7.
expect 7 "duplicate account" account add acme
expect 7 "duplicate login" user add --account acme bob --role Users

[ "$(db_dump)" = "$before" ] && ok "no bad input changed the database" || not_ok "bad input changed the database"

# A database newer than the program is refused.
# (SQLite keeps the schema version in its header, PostgreSQL in the table meta)
if kw_pg; then
	version=$(kw_sql "SELECT value FROM meta WHERE name = 'schema_version'")
	kw_sql "UPDATE meta SET value = '99' WHERE name = 'schema_version'"
else
	version=$(sqlite3 "$STATE/keywarden.db" "PRAGMA user_version")
	sqlite3 "$STATE/keywarden.db" "PRAGMA user_version = 99"
fi
expect 8 "newer database is refused" token list --as alice
err_has "newer than this program"
if kw_pg; then
	kw_sql "UPDATE meta SET value = '$version' WHERE name = 'schema_version'"
else
	sqlite3 "$STATE/keywarden.db" "PRAGMA user_version = $version"
fi

# A missing key is refused at creation, and init refuses to replace it.
mv "$STATE/keywarden.key" "$T/key"
expect 8 "missing key" token create --as alice --name x --role Users
err_has "key file is missing"
expect 8 "init refuses to make a new key for an existing database" init
mv "$T/key" "$STATE/keywarden.key"
chmod 0644 "$STATE/keywarden.key"
expect 8 "a key readable by others is refused" token create --as alice --name x --role Users
err_has "readable or writable by others"
chmod 0600 "$STATE/keywarden.key"

# A bad config file names the key.
printf '[validator]\nidel_timeout = 5\n' >"$STATE/keywarden.conf"
expect 8 "unknown config key" token list --as alice
err_has "unknown key 'idel_timeout' in [validator]"
rm "$STATE/keywarden.conf"

# Every command that --help lists is dispatched (its own option parser answers), and the
# unknowns are told apart.
kw --help
grep '^  [a-z]' "$T/out" | awk '{ if ($2 ~ /^[a-z]+$/) print $1, $2; else print $1 }' >"$T/cmds"
is "$(wc -l <"$T/cmds")" 18 "--help lists the 18 commands"
while read -r group verb; do
	# shellcheck disable=SC2086
	KEYWARDEN_NOTIFY_PROGRAM="$top_builddir/keywarden-notify" kw $group $verb --no-such-option
	if [ "$rc" -eq 2 ] && ! grep -q "unknown command\|needs a subcommand" "$T/err"; then
		ok "'$group${verb:+ $verb}' is dispatched to its own parser"
	else
		not_ok "'$group${verb:+ $verb}' is not dispatched" "$rc $(cat "$T/err")"
	fi
done <"$T/cmds"
expect 2 "an unknown command" frob
err_has "unknown command 'frob'"
expect 2 "an unknown subcommand" token frob
err_has "unknown command 'token frob'"
expect 2 "a group without its subcommand" user
err_has "'user' needs a subcommand"
done_testing
