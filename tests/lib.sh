# tests/lib.sh: TAP helpers for the shell tests; source it. Each test runs in its own
# temporary folder ($T) that is removed at exit, with the real programs of the build tree.
set -u
: "${top_builddir:?run through make check}"
: "${top_srcdir:?run through make check}"
KEYWARDEN="$top_builddir/keywarden"
T=$(mktemp -d "${TMPDIR:-/tmp}/kw-test.XXXXXX")
STATE="$T/state"
_tap_n=0
_tap_failed=0
_tap_cleanup() {
	for f in "$T"/*.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	[ -z "${KW_PG_DB:-}" ] ||
		sh "$top_srcdir/tests/pg/pgserver.sh" dropdb "$KW_TEST_PG" "$KW_PG_DB" >/dev/null 2>&1
	rm -rf "$T"
}
trap _tap_cleanup EXIT

# The store. With KW_TEST_PG=DIR (a server of tests/pg/pgserver.sh; `make check KW_TEST_PG=DIR`)
# the test gets a fresh PostgreSQL database of its own on it, named after $T and dropped at
# exit, and every program it runs uses it through KEYWARDEN_STORE_URL. Otherwise the store is
# the state folder's SQLite file, as always. kw_pg: true on PostgreSQL.
KW_PG_DB=
if [ -n "${KW_TEST_PG:-}" ]; then
	KW_PG_DB=kw_$(basename "$T" | tr -c 'A-Za-z0-9_\n' '_')
	KEYWARDEN_STORE_URL=$(sh "$top_srcdir/tests/pg/pgserver.sh" newdb "$KW_TEST_PG" "$KW_PG_DB") || {
		KW_PG_DB=
		echo "Bail out! cannot make this test's database on the server in $KW_TEST_PG"
		exit 1
	}
	export KEYWARDEN_STORE_URL
fi
kw_pg() { [ -n "$KW_PG_DB" ]; }

# kw_sql SQL: runs SQL (one or more statements, portable: write the table user as "user") on
# the test's store, with the sqlite3 shell or psql; prints the rows as the sqlite3 shell does
# ('|' between columns; NULL as nothing). Booleans differ (1/0 against t/f): select integers.
kw_sql() {
	if kw_pg; then
		printf '%s\n' "$1" | psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$KEYWARDEN_STORE_URL" -f -
	else
		sqlite3 "$STATE/keywarden.db" "$1"
	fi
}

plan() { echo "1..$1"; }
ok() {
	_tap_n=$((_tap_n + 1))
	echo "ok $_tap_n - $1"
}
not_ok() {
	_tap_n=$((_tap_n + 1))
	_tap_failed=$((_tap_failed + 1))
	echo "not ok $_tap_n - $1"
	shift
	for line in "$@"; do echo "# $line"; done
}
diag() { echo "# $*"; }
done_testing() {
	echo "1..$_tap_n"
	[ "$_tap_failed" -eq 0 ]
}

# at_time FAKETIME CMD...: runs CMD with libfaketime preloaded (FAKETIME as libfaketime takes
# it: "+31d", "@2014-02-19 01:37:06"). Not the faketime wrapper: it keeps a named semaphore
# per pid that a killed run leaves behind, and a later run with the same pid then fails.
LIBFAKETIME=$(for d in /usr/lib/x86_64-linux-gnu/faketime /usr/lib/aarch64-linux-gnu/faketime \
	/usr/lib/faketime; do [ -e "$d/libfaketime.so.1" ] && echo "$d/libfaketime.so.1" && break; done)
at_time() {
	_ft=$1
	shift
	LD_PRELOAD="$LIBFAKETIME${LD_PRELOAD:+ $LD_PRELOAD}" FAKETIME="$_ft" \
		DONT_FAKE_MONOTONIC=1 ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		"$@"
}

# kw ARGS...: the CLI on this test's state folder; output in $T/out, $T/err, status in $rc.
kw() {
	"$KEYWARDEN" --state-dir "$STATE" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	return 0
}

# expect CODE DESCRIPTION ARGS...: runs kw ARGS and checks the exit code.
expect() {
	_want=$1
	_desc=$2
	shift 2
	kw "$@"
	if [ "$rc" -eq "$_want" ]; then
		ok "$_desc (exit $rc)"
	else
		not_ok "$_desc: wanted exit $_want, got $rc" "stdout: $(head -c 300 "$T/out")" \
			"stderr: $(head -c 300 "$T/err")"
	fi
}

# check DESCRIPTION COMMAND...: ok when the command succeeds.
check() {
	_desc=$1
	shift
	if "$@" >/dev/null 2>&1; then ok "$_desc"; else not_ok "$_desc"; fi
}

# err_has TEXT: the last kw's stderr holds TEXT (one line only).
err_has() {
	if grep -qF -- "$1" "$T/err" && [ "$(wc -l <"$T/err")" -eq 1 ]; then
		ok "error says '$1'"
	else
		not_ok "error should say '$1' on one line" "stderr: $(cat "$T/err")"
	fi
}

# db_dump: a digest of every table, to show that a failed command changed nothing.
db_dump() {
	if kw_pg; then
		kw_sql "SELECT * FROM account ORDER BY id; SELECT * FROM \"user\" ORDER BY id; SELECT id, account_id, issuer_id, name, description, role_id, encode(digest, 'hex'), created, expires, deleted FROM token ORDER BY id; SELECT seq, encode(hash, 'hex') FROM audit ORDER BY seq;"
	else
		sqlite3 "$STATE/keywarden.db" \
			"SELECT * FROM account; SELECT * FROM user; SELECT id, account_id, issuer_id, name, description, role_id, hex(digest), created, expires, deleted FROM token; SELECT seq, hash FROM audit;"
	fi | sha256sum
}

# setup_acme: an initialised state with account acme, admin alice, engineer erin, user bob.
setup_acme() {
	kw init && kw account add acme &&
		kw user add --account acme alice --role Administrators --email alice@example.com &&
		kw user add --account acme erin --role Engineers --email erin@example.com &&
		kw user add --account acme bob --role Users --email bob@example.com
}

# json_get FILE PYEXPR: evaluates a Python expression over the JSON in FILE (as j).
json_get() {
	/usr/bin/python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"
}
