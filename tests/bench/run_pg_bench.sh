#!/bin/sh
# run_pg_bench.sh: the validator on a PostgreSQL store against the same validator on an SQLite
# store (issue 15). Not a test: it prints figures. One load generator (tests/bench/bench_validator
# load, one epoll thread on CPU 1) drives both validators (on CPU 0, as is the PostgreSQL
# server) in interleaved rounds of the same run (A, B, A, B...; medians reported):
#   - warm cache: 1,000 tokens (the same commands made them in both stores), round robin, 1 and
#     8 connections, not pipelined and pipelined 16 deep: checks/s and latency, PG/SQLite;
#   - cold checks: [validator] cache_size = 16 (the least) against 1,000 tokens round robin, so
#     that nearly every check is a cache miss that reads the store: 1 connection, latency.
# A throwaway PostgreSQL 15 (tests/pg/pgserver.sh) on a Unix socket, fsync off as in the tests.
#
# Usage: tests/bench/run_pg_bench.sh [BUILDDIR]   (SECONDS_PER_RUN=2, ROUNDS=3, TOKENS=1000)
set -eu
B=${1:-${top_builddir:-.}}
B=$(cd "$B" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${SECONDS_PER_RUN:-2}
ROUNDS=${ROUNDS:-3}
N=${TOKENS:-1000}
GEN="$B/tests/bench/bench_validator"
VAL="$B/keywarden-validator"
KW="$B/keywarden"
[ -x "$GEN" ] || { echo "build $GEN first (make check or make tests/bench/bench_validator)"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/kw-pgbench.XXXXXX")
chmod 755 "$T"
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	sleep 0.3
	sh "$SRC/tests/pg/pgserver.sh" stop "$T/pg" >/dev/null 2>&1 || true
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM
S="taskset -c 0"
L="taskset -c 1"
wait_sock() { i=0; while [ ! -S "$1" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done; sleep 0.2; }
field() { echo "$1" | tr ' ' '\n' | sed -n "s|^$2=||p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
median() { sort -t= -k4 -n "$1" | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'; }
run_load() { $L "$GEN" load val "$1" "$2" "$3" "$4" "$SECS"; }
fmt() { l=$(cat "$T/$1.med"); printf '%9s %6s/%6s/%6s' "$(field "$l" checks/s)" "$(field "$l" p50_us)" \
	"$(field "$l" p99_us)" "$(field "$l" p999_us)"; }
rps() { field "$(cat "$T/$1.med")" checks/s; }
p50() { field "$(cat "$T/$1.med")" p50_us; }

echo "# machine: $(nproc) CPUs, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
PGURL=$(sh "$SRC/tests/pg/pgserver.sh" start "$T/pg" $$)
for p in $(pgrep -f "postgres -D $T/pg/data" || true); do taskset -apc 0 "$p" >/dev/null 2>&1 || true; done
echo "# PostgreSQL $(psql -X -At -d "$PGURL" -c 'SHOW server_version'), fsync off; $ROUNDS interleaved rounds of $SECS s per side; medians; validators and server on CPU 0, load on CPU 1"
URL=$(sh "$SRC/tests/pg/pgserver.sh" newdb "$T/pg" bench)
mkdir -p "$T/lite" "$T/pgs"
chmod 700 "$T/lite" "$T/pgs"
# make_store DIR [URL]: init, an account for N tokens, an admin, N tokens into DIR/hot.txt
make_store() {
	if [ -n "${2:-}" ]; then export KEYWARDEN_STORE_URL="$2"; else unset KEYWARDEN_STORE_URL; fi
	[ -f "$T/lite/keywarden.key" ] && [ "$1" != "$T/lite" ] && cp "$T/lite/keywarden.key" "$1/"
	"$KW" --state-dir "$1" init 2>/dev/null
	"$KW" --state-dir "$1" account add bench --token-limit "$N" 2>/dev/null
	"$KW" --state-dir "$1" user add --account bench admin --role Administrators 2>/dev/null
	i=0
	: >"$1/hot.txt"
	while [ $i -lt "$N" ]; do
		"$KW" --state-dir "$1" token create --as admin --name "t$i" --role Users 2>/dev/null >>"$1/hot.txt"
		i=$((i + 1))
	done
}
make_store "$T/lite"
make_store "$T/pgs" "$URL"
echo "# $N tokens made by the CLI in each store"
unset KEYWARDEN_STORE_URL
start_val() { # DIR [URL] -> pid in $VPID
	if [ -n "${2:-}" ]; then
		KEYWARDEN_STORE_URL="$2" $S "$VAL" --state-dir "$1" 2>"$1/val.log" &
	else
		$S "$VAL" --state-dir "$1" 2>"$1/val.log" &
	fi
	VPID=$!
	PIDS="$PIDS $VPID"
	wait_sock "$1/validator.sock"
}
start_val "$T/lite"
VL=$VPID
start_val "$T/pgs" "$URL"
VP=$VPID

printf '\n%-5s %-5s | %-33s | %-33s | %s\n' conns depth "SQLite store CHECK/s p50/p99/p99.9 us" \
	"PostgreSQL store CHECK/s p50/p99/p99.9" "PG/SQLite"
for c in 1 8; do
	for d in 1 16; do
		# each validator is driven with its own store's tokens, in alternation
		: >"$T/a.res"
		: >"$T/b.res"
		r=0
		while [ $r -lt "$ROUNDS" ]; do
			run_load "$T/lite/validator.sock" "$T/lite/hot.txt" "$c" "$d" >>"$T/a.res"
			run_load "$T/pgs/validator.sock" "$T/pgs/hot.txt" "$c" "$d" >>"$T/b.res"
			r=$((r + 1))
		done
		median "$T/a.res" >"$T/a.med"
		median "$T/b.res" >"$T/b.med"
		printf '%-5s %-5s | %-33s | %-33s | %5s\n' "$c" "$d" "$(fmt a)" "$(fmt b)" \
			"$(ratio "$(rps b)" "$(rps a)")"
	done
done

# cold: the least cache, so that nearly every check reads the store
kill $VL $VP
sleep 0.5
for d in "$T/lite" "$T/pgs"; do printf '[validator]\ncache_size = 16\n' >"$d/keywarden.conf"; done
start_val "$T/lite"
start_val "$T/pgs" "$URL"
: >"$T/a.res"
: >"$T/b.res"
r=0
while [ $r -lt "$ROUNDS" ]; do
	run_load "$T/lite/validator.sock" "$T/lite/hot.txt" 1 1 >>"$T/a.res"
	run_load "$T/pgs/validator.sock" "$T/pgs/hot.txt" 1 1 >>"$T/b.res"
	r=$((r + 1))
done
median "$T/a.res" >"$T/a.med"
median "$T/b.res" >"$T/b.med"
printf '\ncold checks (cache_size = 16, %s tokens round robin, 1 connection):\n' "$N"
printf '  SQLite store:     %s checks/s, p50/p99/p99.9 us %s\n' "$(rps a)" "$(fmt a | awk '{print $2}')"
printf '  PostgreSQL store: %s checks/s, p50/p99/p99.9 us %s  (p50 PG/SQLite %s)\n' "$(rps b)" \
	"$(fmt b | awk '{print $2}')" "$(ratio "$(p50 b)" "$(p50 a)")"
