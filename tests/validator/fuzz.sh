#!/bin/sh
# fuzz.sh: builds the libFuzzer targets of the validator's protocol line parser
# (tests/fuzz/fuzz_proto.c), its HTTP request head parser (tests/fuzz/fuzz_http.c) and the
# token parser (tests/fuzz/fuzz_token.c) with clang, apart
# from the gcc build, and runs each for a bounded number of inputs from a small seed corpus.
# FUZZ_RUNS overrides the number of runs (default 200000 each).
set -u
: "${top_builddir:?run through make check}"
: "${top_srcdir:?run through make check}"
RUNS=${FUZZ_RUNS:-200000}
T=$(mktemp -d "${TMPDIR:-/tmp}/kw-fuzz.XXXXXX")
trap 'rm -rf "$T"' EXIT
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }

CLANG=${CLANG:-clang}
if ! command -v "$CLANG" >/dev/null 2>&1; then
	for t in proto http token; do skip "fuzz_$t" "clang not installed"; done
	echo "1..$n"
	exit 0
fi
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I$top_builddir -I$top_srcdir/lib -I$top_srcdir/validator -I$top_srcdir/libkeywarden"

mkdir -p "$T/seed_proto" "$T/seed_http" "$T/seed_token"
tok='7711$Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1u'
printf 'VERSION\t1\t0' >"$T/seed_proto/1"
printf 'CHECK\t42\tservice=api\tremote_ip=203.0.113.7\ttoken=APIKey %s' "$tok" >"$T/seed_proto/2"
printf 'CHECK\t4294967295\tx=\ttoken=' >"$T/seed_proto/3"
printf 'VERSION\t2\t13\tfuture=1' >"$T/seed_proto/4"
printf 'GET /authz?min_role=Engineers HTTP/1.0\r\nHost: kw\r\nConnection: close\r\nX-Forwarded-For: 203.0.113.7, 10.0.0.1\r\nAuthorization: APIKey %s\r\n\r\n' "$tok" >"$T/seed_http/1"
printf 'POST /authz/api/x HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\nx-keywarden-min-role: Users\r\n\r\nabcHEAD /authz HTTP/1.1\r\nHost: a\r\n\r\n' >"$T/seed_http/2"
printf 'GET /authz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer x.y\r\n\r\n' >"$T/seed_http/3"
printf '%s' "$tok" >"$T/seed_token/1"
printf 'APIKey  %s ' "$tok" >"$T/seed_token/2"
printf '1_%s' "${tok#7711\$}" >"$T/seed_token/3"

for t in proto http token; do
	case $t in
	proto) srcs="$top_srcdir/tests/fuzz/fuzz_proto.c $top_srcdir/validator/proto.c"; libs= ;;
	http) srcs="$top_srcdir/tests/fuzz/fuzz_http.c $top_srcdir/validator/http.c"; libs= ;;
	token) srcs="$top_srcdir/tests/fuzz/fuzz_token.c $top_srcdir/lib/token.c $top_srcdir/lib/secret.c $top_srcdir/lib/error.c"; libs="-lcrypto" ;;
	esac
	if ! $CLANG $FLAGS -o "$T/fuzz_$t" $srcs $libs >"$T/build_$t.log" 2>&1; then
		not_ok "fuzz_$t builds with clang -fsanitize=fuzzer" "$(head -c 2000 "$T/build_$t.log")"
		continue
	fi
	ok "fuzz_$t builds with clang -fsanitize=fuzzer"
	mkdir -p "$T/corpus_$t"
	if (cd "$T" && "./fuzz_$t" -runs="$RUNS" -max_len=9000 -seed=1 -timeout=10 \
		"corpus_$t" "seed_$t") >"$T/run_$t.log" 2>&1; then
		ok "fuzz_$t: $RUNS runs without a crash, leak or sanitizer report"
	else
		not_ok "fuzz_$t: $RUNS runs without a crash, leak or sanitizer report" \
			"$(tail -c 3000 "$T/run_$t.log")"
	fi
done
echo "1..$n"
[ "$failed" -eq 0 ]
