#!/bin/sh
# state_guard.sh: the state an attacker or an accident can break (issue 10, items 6, 7, 10 and
# 12). An empty or schema-less database is refused, never made new; the changes a user is told
# about wait for the disk; a FIFO in place of the key hangs nothing; a key other than the
# database's is refused with exit 8; the state folder and database must be private; audit
# events name the Unix user; --token-limit takes digits only.
. "$top_srcdir/tests/lib.sh"

VALIDATOR="$top_builddir/keywarden-validator"

# start_validator: the validator on $STATE in the background; waits for its socket.
start_validator() {
	"$VALIDATOR" --state-dir "$STATE" >"$T/vlog" 2>&1 &
	echo $! >"$T/validator.pid"
	_i=0
	while [ ! -S "$STATE/validator.sock" ] && [ $_i -lt 100 ]; do
		kill -0 "$(cat "$T/validator.pid")" 2>/dev/null || return 1
		sleep 0.1
		_i=$((_i + 1))
	done
	[ -S "$STATE/validator.sock" ]
}
stop_validator() {
	kill "$(cat "$T/validator.pid")" 2>/dev/null
	wait "$(cat "$T/validator.pid")" 2>/dev/null
	rm -f "$T/validator.pid"
}
# validator_refuses TEXT DESCRIPTION: the validator exits (within 10 s) with TEXT in its log.
validator_refuses() {
	timeout 10 "$VALIDATOR" --state-dir "$STATE" >"$T/vlog" 2>&1
	_rc=$?
	if [ "$_rc" -ne 0 ] && [ "$_rc" -ne 124 ] && grep -qF -- "$1" "$T/vlog"; then
		ok "$2 (validator exits $_rc)"
	else
		not_ok "$2: validator exit $_rc (124: hung)" "$(cat "$T/vlog")"
	fi
}

setup_acme
kw token create --as alice --name first --role Users
tok=$(cat "$T/out")
cp -p "$STATE/keywarden.db" "$T/good.db"

# -- item 6: only init makes a database --------------------------------------------------------
: >"$STATE/keywarden.db"
expect 8 "audit verify refuses an empty database" audit verify
err_has "is empty (0 bytes)"
expect 8 "token list refuses an empty database" token list --as alice
validator_refuses "is empty" "the validator refuses an empty database"
[ ! -s "$STATE/keywarden.db" ] && ok "the empty database was left empty" ||
	not_ok "the empty database was initialised by a command other than init"
rm -f "$STATE/keywarden.db" "$STATE/keywarden.db-wal" "$STATE/keywarden.db-shm"
sqlite3 "$STATE/keywarden.db" "CREATE TABLE t (x); INSERT INTO t VALUES (1);"
chmod 600 "$STATE/keywarden.db"
expect 8 "a SQLite file without keywarden's schema is refused" audit verify
err_has "holds no keywarden data"
[ "$(sqlite3 "$STATE/keywarden.db" "PRAGMA user_version")" = 0 ] &&
	ok "... and not migrated" || not_ok "a foreign SQLite file was migrated"
rm -f "$STATE/keywarden.db"
: >"$STATE/keywarden.db"
chmod 600 "$STATE/keywarden.db"
expect 0 "init may make the empty file a database" init
expect 0 "... which then works" audit verify
rm -f "$STATE/keywarden.db" "$STATE/keywarden.db-wal" "$STATE/keywarden.db-shm"
cp -p "$T/good.db" "$STATE/keywarden.db"
expect 0 "the restored database works again" token show --as alice 1

# -- item 7: acknowledged changes wait for the disk ------------------------------------------
# With the validator holding the database open, the CLI's exit checkpoints nothing: only a
# commit with synchronous = FULL syncs the WAL.
if command -v strace >/dev/null 2>&1; then
	start_validator || not_ok "validator did not start" "$(cat "$T/vlog")"
	kw token create --as alice --name durable --role Users
	durable=$(sed -n 's/\$.*//p' "$T/out")
	for cmd in "token delete --as alice $durable" "user set bob --disable"; do
		# LeakSanitizer cannot run under ptrace (sanitizer builds).
		# shellcheck disable=SC2086
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
			strace -f -qq -y -e trace=fsync,fdatasync -o "$T/trace" \
			"$KEYWARDEN" --state-dir "$STATE" $cmd >"$T/out" 2>"$T/err"
		rc=$?
		if [ "$rc" -eq 0 ] && grep -q 'keywarden\.db-wal>) = 0' "$T/trace"; then
			ok "'$cmd' syncs the WAL before it reports success"
		else
			not_ok "'$cmd' (exit $rc) never synced the WAL" "$(cat "$T/trace" "$T/err")"
		fi
	done
	stop_validator
	kw user set bob --enable
else
	ok "durability of commits # SKIP strace is not installed"
fi

# -- item 10: a FIFO in place of the key ------------------------------------------------------
mv "$STATE/keywarden.key" "$T/key"
mkfifo -m 600 "$STATE/keywarden.key"
timeout 10 "$KEYWARDEN" --state-dir "$STATE" token create --as alice --name x --role Users \
	>"$T/out" 2>"$T/err"
rc=$?
[ "$rc" -eq 8 ] && ok "a FIFO as the key: token create exits 8 at once" ||
	not_ok "a FIFO as the key: exit $rc (124: hung)"
err_has "key file is not a regular file"
validator_refuses "key file is not a regular file" "a FIFO as the key: the validator stops"
rm "$STATE/keywarden.key"
ln -s "$T/key" "$STATE/keywarden.key"
expect 8 "a symbolic link as the key is refused" token create --as alice --name x --role Users
err_has "key file is a symbolic link"
rm "$STATE/keywarden.key"
cp -p "$T/key" "$STATE/keywarden.key"
chown 65534 "$STATE/keywarden.key"
expect 8 "a key that belongs to another user is refused" token create --as alice --name x --role Users
err_has "key file belongs to another user"
chown 0 "$STATE/keywarden.key"

# -- item 10: the database knows its key ------------------------------------------------------
fp=$(sqlite3 "$STATE/keywarden.db" "SELECT value FROM meta WHERE name = 'key_fingerprint'")
[ ${#fp} -eq 32 ] && ok "init recorded the key's fingerprint" || not_ok "fingerprint: '$fp'"
head -c 32 /dev/urandom >"$T/other.key"
chmod 600 "$T/other.key"
cp -p "$T/other.key" "$STATE/keywarden.key"
expect 8 "another key is refused by token create" token create --as alice --name x --role Users
err_has "not this database's key"
validator_refuses "not this database's key" "another key: the validator stops"
expect 8 "init refuses another key for an existing database" init
err_has "not this database's key"
cp -p "$T/key" "$STATE/keywarden.key"
start_validator || not_ok "validator did not start with its key" "$(cat "$T/vlog")"
kw token check "$tok"
[ "$rc" -eq 0 ] && ok "the database's own key works" || not_ok "own key: exit $rc" "$(cat "$T/err")"
stop_validator
# A database made before the fingerprint existed adopts the first key it sees.
sqlite3 "$STATE/keywarden.db" "DROP TABLE meta; PRAGMA user_version = 4;"
expect 0 "an older database is migrated and adopts its key" token create --as alice --name adopt --role Users
[ "$(sqlite3 "$STATE/keywarden.db" "SELECT value FROM meta WHERE name = 'key_fingerprint'")" = "$fp" ] &&
	ok "... recording the same fingerprint" || not_ok "adopted fingerprint differs"
cp -p "$T/other.key" "$STATE/keywarden.key"
expect 8 "... and refuses another key afterwards" token create --as alice --name x --role Users
cp -p "$T/key" "$STATE/keywarden.key"

# -- item 12: private state, the Unix user in audit events, --token-limit ----------------------
chmod 0750 "$STATE"
expect 8 "a state folder open to its group is refused" token list --as alice
err_has "is open to other users"
expect 8 "... by init too" init
chmod 0700 "$STATE"
chmod 0644 "$STATE/keywarden.db"
expect 8 "a database readable by others is refused" token list --as alice
err_has "readable or writable by others"
validator_refuses "readable or writable by others" "... by the validator too"
chmod 0600 "$STATE/keywarden.db"
expect 0 "private again: accepted" token list --as alice

kw token create --as alice --name who --role Users
id=$(sed -n 's/\$.*//p' "$T/out")
user=$(id -un)
uid=$(id -u)
details=$(sqlite3 "$STATE/keywarden.db" "SELECT details FROM audit WHERE action = 'token.create' AND target = 'token:$id'")
if json_get /dev/stdin "j['unix_uid'] == $uid and j['unix_user'] == '$user'" <<EOF | grep -qx True; then
$details
EOF
	ok "token.create records the Unix user ($user, uid $uid)"
else
	not_ok "token.create details: $details"
fi
kw token delete --as alice "$id"
details=$(sqlite3 "$STATE/keywarden.db" "SELECT details FROM audit WHERE action = 'token.delete' AND target = 'token:$id'")
case "$details" in
*"\"unix_user\":\"$user\""*) ok "token.delete records it too" ;;
*) not_ok "token.delete details: $details" ;;
esac

expect 3 "--token-limit ' 5' is refused like '5 '" account add lead --token-limit ' 5'
expect 3 "--token-limit '5 ' is refused" account add trail --token-limit '5 '
expect 3 "--token-limit '+5' is refused" account add plus --token-limit '+5'
expect 0 "--token-limit '5' is taken" account add five --token-limit 5
done_testing
