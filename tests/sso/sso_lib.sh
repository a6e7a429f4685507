# tests/sso/sso_lib.sh: helpers of the SSO tests, on top of tests/lib.sh (source that first).
DRIVER="$top_builddir/tests/sso/sso_driver"
IDP="https://idp.example.org/saml"
RULE="SSO revocation does not revoke API tokens"
MSGID_RULE=117387bb7edf4efc86b66f03874b06b0
MSGID_STALE=2b7d18aeb6a1418f8bd526c1ecb7e11d
MSGID_LOGOUT=51b0864ad3e8486bbd74a53d5e572258
# libfaketime is preloaded: under ASan the runtime must not insist on coming first.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
export ASAN_OPTIONS

# drv ARGS...: the driver (what an accepted SAML message does); $T/dout, $T/derr, $drc.
drv() {
	"$DRIVER" --state-dir "$STATE" "$@" >"$T/dout" 2>"$T/derr"
	drc=$?
	return 0
}
# login LOGIN ROLE|- SESSION ASSERTION_ID [ACCOUNT]
login() {
	drv login "${5:-acme}" "$1" "$2" "$IDP" "$3" "$4"
}
# later DAYS CMD...: runs CMD with the clock DAYS days ahead.
later() {
	_d=$1
	shift
	at_time "+${_d}d" "$@"
}
# kw_later DAYS ARGS...: kw with the clock DAYS days ahead.
kw_later() {
	_d=$1
	shift
	at_time "+${_d}d" "$KEYWARDEN" --state-dir "$STATE" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	return 0
}
# has FILE TEXT DESCRIPTION
has() {
	if grep -qF -- "$2" "$1"; then ok "$3"; else not_ok "$3" "$(basename "$1"): $(head -c 600 "$1")"; fi
}
hasnt() {
	if grep -qF -- "$2" "$1"; then not_ok "$3" "$(basename "$1"): $(head -c 600 "$1")"; else ok "$3"; fi
}
# is GOT WANT DESCRIPTION
is() {
	if [ "$1" = "$2" ]; then ok "$3"; else not_ok "$3" "got '$1', wanted '$2'"; fi
}
sql() {
	kw_sql "$1"
}
# token_id LOGIN NAME: the id of LOGIN's token NAME (through the CLI, as an admin sees it).
token_id() {
	sql "SELECT t.id FROM token t JOIN \"user\" u ON u.id = t.issuer_id WHERE u.login = '$1' AND t.name = '$2'"
}
# token_status ADMIN ID
token_status() {
	kw token show --as "$1" "$2" --json
	json_get "$T/out" 'j["status"]'
}
# review_json [ARGS]: keywarden sso review --json into $T/review.json
review_json() {
	kw sso review --json "$@"
	cp "$T/out" "$T/review.json"
}
