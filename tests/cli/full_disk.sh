#!/bin/sh
# full_disk.sh: a full disk does not stop revocation (issue 10, item 9). The state folder sits
# on a small tmpfs that the test fills up while the validator runs: 'token delete' and 'user
# set --disable' still commit (the store releases slices of its reserve, and says so), the
# validator refuses the tokens at once; once the reserve is spent, the CLI says that the token
# still validates; after space is freed, the next command re-creates the reserve.
. "$top_srcdir/tests/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP mounting a small tmpfs needs root"
	exit 0
fi
FS="$T/fs"
mkdir "$FS"
if ! mount -t tmpfs -o size=8m,mode=0700 tmpfs "$FS" 2>"$T/mount.err"; then
	echo "1..0 # SKIP cannot mount a tmpfs here: $(cat "$T/mount.err")"
	exit 0
fi
VALIDATOR="$top_builddir/keywarden-validator"
STATE="$FS/state"
RESERVE="$STATE/keywarden.db-reserve"
cleanup() {
	[ -f "$T/validator.pid" ] && kill "$(cat "$T/validator.pid")" 2>/dev/null &&
		wait "$(cat "$T/validator.pid")" 2>/dev/null
	rm -f "$T/validator.pid"
	umount "$FS"
	_tap_cleanup
}
trap cleanup EXIT

# fill: writes zeros until the tmpfs is full (tmpfs counts whole pages: nothing is left).
fill() {
	dd if=/dev/zero of="$FS/filler.$1" bs=4k >/dev/null 2>&1
	if (echo x >"$FS/probe") 2>/dev/null; then
		not_ok "the disk is not full after filling it"
		rm -f "$FS/probe"
	fi
}
# check_token TOKEN EXIT DESCRIPTION: the validator's answer through 'token check'.
check_token() {
	kw token check "$1"
	[ "$rc" -eq "$2" ] && ok "$3 (token check exits $rc)" ||
		not_ok "$3: token check exits $rc, want $2" "$(cat "$T/out" "$T/err")"
}
# err_grep TEXT DESCRIPTION: the last kw's stderr holds TEXT.
err_grep() {
	grep -qF -- "$1" "$T/err" && ok "$2" || not_ok "$2" "stderr: $(cat "$T/err")"
}
reserve_size() { stat -c %s "$RESERVE" 2>/dev/null || echo 0; }
reserve_allocated() { echo $(($(stat -c %b "$RESERVE") * $(stat -c %B "$RESERVE"))); }

setup_acme
for n in 1 2 3 4; do
	kw token create --as "$([ $n -eq 2 ] && echo bob || echo alice)" --name "t$n" --role Users
	eval "tok$n=\$(cat \"\$T/out\")"
done
[ "$(reserve_size)" -eq $((2 * 1024 * 1024)) ] && [ "$(reserve_allocated)" -ge $((2 * 1024 * 1024)) ] &&
	ok "the state has an allocated 2 MiB reserve beside the database" ||
	not_ok "reserve: $(reserve_size) bytes, $(reserve_allocated) allocated"

"$VALIDATOR" --state-dir "$STATE" >"$T/vlog" 2>&1 &
echo $! >"$T/validator.pid"
i=0
while [ ! -S "$STATE/validator.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
# shellcheck disable=SC2154
check_token "$tok1" 0 "before the disk fills, token 1 validates"

fill 1
kw token delete --as alice 1
[ "$rc" -eq 0 ] && ok "on a full disk, token delete still succeeds" ||
	not_ok "token delete on a full disk: exit $rc" "$(cat "$T/err")"
err_grep "released 256 KiB of the revocation reserve" "... and says that it used the reserve"
check_token "$tok1" 12 "the validator refuses the deleted token at once"
[ "$(reserve_size)" -lt $((2 * 1024 * 1024)) ] && ok "the reserve shrank ($(reserve_size) bytes)" ||
	not_ok "the reserve did not shrink"

fill 2
# shellcheck disable=SC2154
check_token "$tok2" 0 "bob's token validates before bob is disabled"
kw user set bob --disable
[ "$rc" -eq 0 ] && ok "on a full disk, user set --disable still succeeds" ||
	not_ok "user set --disable on a full disk: exit $rc" "$(cat "$T/err")"
check_token "$tok2" 13 "the validator refuses the disabled user's token at once"

# A spent reserve: the CLI fails and says the token still validates.
: >"$RESERVE"
fill 3
kw token delete --as alice 3
[ "$rc" -eq 8 ] && ok "with the reserve spent, token delete exits 8" ||
	not_ok "spent reserve: exit $rc" "$(cat "$T/err")"
err_grep "token 3 STILL VALIDATES" "... and says that the token still validates"
# shellcheck disable=SC2154
check_token "$tok3" 0 "token 3 indeed still validates"
kw token list --as alice
err_grep "cannot allocate the revocation reserve" "while the disk is full, every command warns that the reserve is missing"

# Without the validator, nothing else holds the database open: the CLI must make the WAL
# index itself, which needs room too.
kill "$(cat "$T/validator.pid")" && wait "$(cat "$T/validator.pid")"
rm -f "$T/validator.pid"
rm -f "$FS"/filler.*
kw token list --as alice
fill 4
kw token delete --as alice 4
[ "$rc" -eq 0 ] && ok "with no other program on the database, token delete still succeeds on a full disk" ||
	not_ok "lone token delete on a full disk: exit $rc" "$(cat "$T/err")"
"$VALIDATOR" --state-dir "$STATE" >"$T/vlog" 2>&1 &
echo $! >"$T/validator.pid"

rm -f "$FS"/filler.*
kw token list --as alice
[ "$rc" -eq 0 ] && [ "$(reserve_size)" -eq $((2 * 1024 * 1024)) ] &&
	[ "$(reserve_allocated)" -ge $((2 * 1024 * 1024)) ] &&
	ok "with room again, the next command re-creates the whole reserve" ||
	not_ok "reserve after freeing space: $(reserve_size) bytes, exit $rc" "$(cat "$T/err")"
i=0
while [ ! -S "$STATE/validator.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kw token delete --as alice 3
check_token "$tok3" 12 "token 3 is deleted once there is room"
# shellcheck disable=SC2154
check_token "$tok4" 12 "token 4, deleted while the validator was away, is refused too"
check_token "$tok2" 13 "bob's token stays refused"
expect 0 "the audit chain is intact after all this" audit verify
n=$(sqlite3 "$STATE/keywarden.db" "SELECT count(*) FROM audit WHERE action IN ('token.delete', 'user.set')")
[ "$n" -eq 4 ] && ok "each revocation has its audit event" || not_ok "$n revocation events, want 4"
done_testing
