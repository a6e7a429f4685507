#!/bin/sh
# exports.sh: pam_keywarden.so exports pam_sm_* only and loads with dlopen(); libkeywarden
# exports kw_* only and needs libc only (the sanitizer runtimes aside, in a sanitizer build).
# TAP.
set -u
B=${top_builddir:-.}
MOD=$B/libkeywarden/.libs/pam_keywarden.so
LIB=$B/libkeywarden/.libs/libkeywarden.so
DLSYMS=$B/tests/pam/dlsyms
n=0
fails=0
ok() { # ok COND-STATUS NAME [DETAIL]
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		fails=$((fails + 1))
		echo "not ok $n - $2"
		[ $# -gt 2 ] && printf '%s\n' "$3" | sed 's/^/# /'
	fi
}
# Defined dynamic symbols, names only.
defined() { nm -D --defined-only "$1" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u; }
# NEEDED entries, sanitizer runtimes left out.
needed() {
	readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' |
		grep -v -E '^lib(asan|ubsan|lsan|tsan)\.so' | sort
}

test -f "$MOD"; ok $? "pam_keywarden.so is built"
syms=$(defined "$MOD")
test "$syms" = "$(printf 'pam_sm_acct_mgmt\npam_sm_authenticate\npam_sm_setcred')"
ok $? "pam_keywarden.so defines exactly pam_sm_acct_mgmt, pam_sm_authenticate, pam_sm_setcred" "$syms"
out=$("$DLSYMS" "$MOD" +pam_sm_authenticate +pam_sm_acct_mgmt +pam_sm_setcred \
	-kw_client_new -kw_client_check -kw_client_set_server_uid -kw_client_error \
	-kw_check_status_name -pam_code -parse_cfg -check_server 2>&1)
ok $? "dlopen(pam_keywarden.so): pam_sm_* resolve, client and internal symbols do not" "$out"
need=$(needed "$MOD")
test "$need" = "$(printf 'libc.so.6\nlibpam.so.0')"
ok $? "pam_keywarden.so needs libc and libpam only" "$need"

test -f "$LIB"; ok $? "libkeywarden.so is built"
syms=$(defined "$LIB")
bad=$(printf '%s\n' "$syms" | grep -v '^kw_')
test -n "$syms" && test -z "$bad"
ok $? "libkeywarden.so defines kw_* symbols only" "$syms"
out=$("$DLSYMS" "$LIB" +kw_client_new +kw_client_free +kw_client_check +kw_client_check_batch \
	+kw_check_status_name +kw_client_set_server_uid +kw_client_error -parse_answer -run -handshake \
	-check_server -distrust 2>&1)
ok $? "dlopen(libkeywarden.so): the API resolves, internals do not" "$out"
need=$(needed "$LIB")
test "$need" = "libc.so.6"
ok $? "libkeywarden.so needs libc only" "$need"
soname=$(readelf -d "$LIB" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
test "$soname" = "libkeywarden.so.1"
ok $? "libkeywarden.so has the soname libkeywarden.so.1 (libkeywarden1)" "$soname"
echo "1..$n"
