#!/bin/sh
# run_validator_bench.sh: the validator benchmark (issue 3, part 5). Not a test: it prints
# figures. In one run, on the same machine, it measures
#   - keywarden-validator, with tests/bench/bench_validator as the load generator,
#   - a bare line echo server over a Unix socket (bench_validator echo), same load generator,
#   - redis-server GET over a Unix socket, with redis-benchmark,
# at 1, 8 and 64 connections, not pipelined and pipelined 16 deep, then the validator again
# with 1,000,000 tokens in its database (same 1,000 hot tokens), and its resident memory.
# Servers run on CPU 0, load generators on CPU 1 (taskset), so that they do not compete.
#
# Usage: tests/bench/run_validator_bench.sh [BUILDDIR]   (SECONDS=3 per measurement)
set -eu
B=${1:-${top_builddir:-.}}
B=$(cd "$B" && pwd)
SECS=${SECONDS_PER_RUN:-3}
GEN="$B/tests/bench/bench_validator"
VAL="$B/keywarden-validator"
[ -x "$GEN" ] || { echo "build $GEN first (make check or make tests/bench/bench_validator)"; exit 1; }
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null ||
	{ echo "needs redis-server and redis-benchmark"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/kw-bench.XXXXXX")
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 0.2; rm -rf "$T"; }
trap cleanup EXIT
S="taskset -c 0"
L="taskset -c 1"
wait_sock() { i=0; while [ ! -S "$1" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done; sleep 0.2; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

echo "# machine: $(nproc) CPUs, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# populating 1,000 and 1,000,000 tokens..."
mkdir -p "$T/k1" "$T/m1"
chmod 700 "$T/k1" "$T/m1"
"$GEN" populate "$T/k1" 1000 1000 "$T/k1/hot.txt"
t0=$(date +%s.%N)
"$GEN" populate "$T/m1" 1000000 1000 "$T/m1/hot.txt"
t1=$(date +%s.%N)
echo "# 1,000,000 tokens inserted in $(echo "$t1 - $t0" | bc 2>/dev/null || echo "?") s"

# Servers.
$S "$VAL" --state-dir "$T/k1" 2>"$T/val.log" &
VPID=$!; PIDS="$PIDS $VPID"
$S "$GEN" echo "$T/echo.sock" &
PIDS="$PIDS $!"
$S redis-server --unixsocket "$T/redis.sock" --unixsocketperm 700 --port 0 --save '' \
	--appendonly no --daemonize no --logfile "$T/redis.log" &
PIDS="$PIDS $!"
wait_sock "$T/k1/validator.sock"; wait_sock "$T/echo.sock"; wait_sock "$T/redis.sock"
redis-cli -s "$T/redis.sock" set key:__rand_int__ x >/dev/null

# redis-benchmark -n requests so that a run lasts about SECS seconds at the expected rate.
redis_run() { # conns depth
	n=$((SECS * 100000 * ($2 == 1 ? 1 : 8)))
	$L redis-benchmark -s "$T/redis.sock" -t get -c "$1" -P "$2" -n "$n" 2>/dev/null |
		tr '\r' '\n' | awk -v c="$1" -v d="$2" '
		/requests per second/ && /throughput summary/ { rps = $3 }
		/^ *[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ *$/ && got == 0 { p50 = $3; p99 = $5; got = 1 }
		/^ *[0-9.]+% <= [0-9.]+ milliseconds/ && p999 == "" && $1 + 0 >= 99.9 { p999 = $3 }
		END { printf "conns=%s depth=%s checks/s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f\n", c, d, rps, p50 * 1000, p99 * 1000, p999 * 1000 }'
}

field() { echo "$1" | tr ' ' '\n' | sed -n "s|^$2=||p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

printf '\n%-8s %-5s | %-34s | %-34s | %-34s | %s\n' conns depth "validator checks/s p50/p99/p99.9 us" \
	"echo lines/s p50/p99/p99.9 us" "redis GET/s p50/p99 us" "val/redis val/echo p99(val/echo)"
for c in 1 8 64; do
	for d in 1 16; do
		v=$($L "$GEN" load "$T/k1/validator.sock" "$T/k1/hot.txt" "$c" "$d" "$SECS")
		e=$($L "$GEN" load "$T/echo.sock" "$T/k1/hot.txt" "$c" "$d" "$SECS" echo)
		r=$(redis_run "$c" "$d")
		fmt() { printf '%9s %7s/%7s/%7s' "$(field "$1" checks/s)" "$(field "$1" p50_us)" \
			"$(field "$1" p99_us)" "$(field "$1" p999_us)"; }
		printf '%-8s %-5s | %-34s | %-34s | %-34s | %s %s %s\n' "$c" "$d" "$(fmt "$v")" "$(fmt "$e")" \
			"$(fmt "$r")" "$(ratio "$(field "$v" checks/s)" "$(field "$r" checks/s)")" \
			"$(ratio "$(field "$v" checks/s)" "$(field "$e" checks/s)")" \
			"$(ratio "$(field "$v" p99_us)" "$(field "$e" p99_us)")"
		case "$(field "$v" bad)" in 0) ;; *) echo "# validator answered $(field "$v" bad) non-OK";; esac
	done
done
KPID=$VPID
$S "$VAL" --state-dir "$T/m1" 2>"$T/val1m.log" &
MPID=$!; PIDS="$PIDS $MPID"
wait_sock "$T/m1/validator.sock"
echo
echo "# database size: 1,000 vs 1,000,000 tokens (1,000 hot tokens spread over the ids), 8 conns"
for d in 1 16; do
	k=$($L "$GEN" load "$T/k1/validator.sock" "$T/k1/hot.txt" 8 "$d" "$SECS")
	m=$($L "$GEN" load "$T/m1/validator.sock" "$T/m1/hot.txt" 8 "$d" "$SECS")
	echo "1k tokens: $k"
	echo "1M tokens: $m"
	echo "depth $d: 1M/1k checks/s ratio $(ratio "$(field "$m" checks/s)" "$(field "$k" checks/s)")"
done
echo "# validator RSS: 1k tokens $(rss_kib "$KPID") KiB (peak $(hwm_kib "$KPID") KiB); 1M tokens $(rss_kib "$MPID") KiB (peak $(hwm_kib "$MPID") KiB)"
echo "# database file with 1M tokens: $(du -h "$T/m1/keywarden.db" | cut -f1)"
