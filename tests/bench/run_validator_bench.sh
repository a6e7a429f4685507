#!/bin/sh
# run_validator_bench.sh: the validator benchmark (issues 3 and 14). Not a test: it prints
# figures. Every ratio it prints comes from ONE load generator (tests/bench/bench_validator
# load: one epoll thread, on CPU 1) driving both sides, in the same run, in interleaved rounds
# (A, B, A, B...; the median round of each side is reported, and the median and range of the
# ratios of rounds run back to back, which share the machine's load), servers on CPU 0:
#   - keywarden-validator answering CHECK over its Unix socket (1,000 real tokens, round robin)
#     against redis-server answering EXISTS over a Unix socket on the same 1,000 tokens as keys
#     (one hash lookup and a one-line reply), and a bare line echo server (no work at all);
#     1, 8 and 64 connections, not pipelined and pipelined 16 deep;
#   - through nginx (when installed): a static file location guarded by auth_request (the
#     validator's HTTP endpoint, upstream keepalive) against the same location unguarded, and
#     the validator's GET /authz alone against a static nginx "return 200", 8 connections;
#   - the validator with 1,000,000 tokens in its database (same 1,000 hot tokens), and its
#     resident memory.
#
# Usage: tests/bench/run_validator_bench.sh [BUILDDIR]
#   SECONDS_PER_RUN=2 per round, ROUNDS=3 rounds per side, BIG=0 skips the 1,000,000 tokens,
#   SKIP_NGINX=1 the nginx figures, SKIP_VAL=1 all but them, VAL_CONNS="1 8" limits the
#   connection counts, BUSY_POLL_US=N sets the validator's [validator] busy_poll_us,
#   BASELINE=/path/to/an/older/keywarden-validator adds it as a fourth side (on a copy of the
#   same database), to measure a change in the same run.
set -eu
B=${1:-${top_builddir:-.}}
B=$(cd "$B" && pwd)
SECS=${SECONDS_PER_RUN:-2}
ROUNDS=${ROUNDS:-3}
BIG=${BIG:-1}
GEN="$B/tests/bench/bench_validator"
VAL="$B/keywarden-validator"
[ -x "$GEN" ] || { echo "build $GEN first (make check or make tests/bench/bench_validator)"; exit 1; }
command -v redis-server >/dev/null || { echo "needs redis-server"; exit 1; }
NGINX=$([ "${SKIP_NGINX:-0}" = 1 ] || command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
T=$(mktemp -d "${TMPDIR:-/tmp}/kw-bench.XXXXXX")
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$T"; }
trap cleanup EXIT
S="taskset -c 0"
L="taskset -c 1"
wait_sock() { i=0; while [ ! -S "$1" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done; sleep 0.2; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
field() { echo "$1" | tr ' ' '\n' | sed -n "s|^$2=||p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The median round (by requests/s) of the result lines in file $1.
median() { sort -t= -k4 -n "$1" | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'; }

# run_load PROTO ADDR TOKENFILE CONNS DEPTH [HTTP_PATH]: one measurement of SECS seconds.
run_load() { $L "$GEN" load "$1" "$2" "$3" "$4" "$5" "$SECS" ${6:-}; }

# CPU time (user + system, clock ticks) used so far by process $1 and its threads.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)

# One round of side NAME (server process PID, load ARGS): appends the result line, with the
# server's CPU time per answer (cpu_us=), to $T/NAME.res.
round() {
	c0=$(cpu_ticks "$2")
	# shellcheck disable=SC2086
	out=$(run_load $3) || echo "# $1: some answers were not OK" >&2
	c1=$(cpu_ticks "$2")
	echo "$out" | awk -v t=$((c1 - c0)) -v hz="$HZ" '{
		n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^ok=/) n = substr($i, 4) + 0
		printf "%s cpu_us=%.2f\n", $0, (n > 0 ? t * 1e6 / hz / n : 0) }' >>"$T/$1.res"
}

# rounds NAME1 PID1 "ARGS1" NAME2 PID2 "ARGS2" [NAME3 PID3 "ARGS3"]: ROUNDS interleaved rounds
# of each; the medians land in $T/NAME.med.
rounds() {
	for n in $1 $4 ${7:-}; do : >"$T/$n.res"; done
	r=0
	while [ $r -lt "$ROUNDS" ]; do
		round "$1" "$2" "$3"
		round "$4" "$5" "$6"
		[ -z "${7:-}" ] || round "$7" "$8" "$9"
		r=$((r + 1))
	done
	for n in $1 $4 ${7:-}; do median "$T/$n.res" >"$T/$n.med"; done
}

# pair_ratios A B FIELD: the ratios A/B of FIELD in rounds run back to back: "median
# (min-max)".
pair_ratios() {
	paste -d' ' "$T/$1.res" "$T/$2.res" | awk -v f="$3=" '{
		a = b = 0; half = NF / 2
		for (i = 1; i <= NF; i++) if (index($i, f) == 1) { if (i <= half) a = substr($i, length(f) + 1); else b = substr($i, length(f) + 1) }
		if (b > 0) print a / b }' | sort -n | awk '{ r[NR] = $1 } END {
		if (NR == 0) { print "n/a"; exit }
		printf "%.2f (%.2f-%.2f)", r[int((NR + 1) / 2)], r[1], r[NR] }'
}
fmt() { l=$(cat "$T/$1.med"); printf '%9s %6s/%6s/%6s' "$(field "$l" checks/s)" "$(field "$l" p50_us)" \
	"$(field "$l" p99_us)" "$(field "$l" p999_us)"; }
rps() { field "$(cat "$T/$1.med")" checks/s; }
p99() { field "$(cat "$T/$1.med")" p99_us; }
# Median server CPU time per answer of side $1, in microseconds.
cpu() { sed -n 's/.* cpu_us=\([0-9.]*\).*/\1/p' "$T/$1.res" | sort -n | awk '{ r[NR] = $1 } END { print r[int((NR + 1) / 2)] }'; }
# Median share of its CPU the load generator used while driving side $1 (1.00: the load
# generator, not the server, was the limit).
busy() { sed -n 's/.*client_busy=\([0-9.]*\).*/\1/p' "$T/$1.res" | sort -n | awk '{ r[NR] = $1 } END { print r[int((NR + 1) / 2)] }'; }

echo "# machine: $(nproc) CPUs, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# $ROUNDS interleaved rounds of $SECS s per side; medians; servers on CPU 0, the load generator on CPU 1"
echo "# load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$T/k1" "$T/m1"
chmod 700 "$T/k1" "$T/m1"
"$GEN" populate "$T/k1" 1000 1000 "$T/k1/hot.txt"
printf '[validator]\nhttp_listen = 127.0.0.1:0\ntrusted_proxies = 127.0.0.1\n%s' \
	"${BUSY_POLL_US:+busy_poll_us = $BUSY_POLL_US
}" >"$T/k1/keywarden.conf"

$S "$VAL" --state-dir "$T/k1" 2>"$T/val.log" &
VPID=$!; PIDS="$PIDS $VPID"
$S "$GEN" echo "$T/echo.sock" &
EPID=$!; PIDS="$PIDS $EPID"
$S redis-server --unixsocket "$T/redis.sock" --unixsocketperm 700 --port 0 --save '' \
	--appendonly no --daemonize no --logfile "$T/redis.log" &
RPID=$!; PIDS="$PIDS $RPID"
wait_sock "$T/k1/validator.sock"; wait_sock "$T/echo.sock"; wait_sock "$T/redis.sock"
if [ -n "${BASELINE:-}" ]; then
	mkdir -p "$T/b1" && chmod 700 "$T/b1"
	cp "$T/k1/keywarden.db" "$T/k1/keywarden.key" "$T/b1/"
	$S "$BASELINE" --state-dir "$T/b1" 2>"$T/base.log" &
	BPID=$!; PIDS="$PIDS $BPID"
	wait_sock "$T/b1/validator.sock"
fi
VPORT=$(sed -n 's/.*HTTP check endpoint listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$T/val.log")
HOT="$T/k1/hot.txt"

printf '\n%-5s %-5s | %-33s | %-33s | %-33s | %s\n' conns depth "validator CHECK/s p50/p99/p99.9 us" \
	"redis EXISTS/s p50/p99/p99.9 us" "echo lines/s p50/p99/p99.9 us" "val/redis  p99 val/redis  val/echo"
echo "#   then: val/redis and p99 val/redis of rounds run back to back, median (range); server CPU us per answer, median"
# SKIP_VAL=1: the nginx figures alone.
[ "${SKIP_VAL:-0}" = 1 ] && VAL_CONNS=none
for c in ${VAL_CONNS:-1 8 64}; do
	[ "$c" != none ] || break
	for d in 1 16; do
		rounds val "$VPID" "val $T/k1/validator.sock $HOT $c $d" \
			redis "$RPID" "resp $T/redis.sock $HOT $c $d" \
			echo "$EPID" "echo $T/echo.sock $HOT $c $d"
		printf '%-5s %-5s | %-33s | %-33s | %-33s | %5s      %5s          %5s\n' "$c" "$d" \
			"$(fmt val)" "$(fmt redis)" "$(fmt echo)" "$(ratio "$(rps val)" "$(rps redis)")" \
			"$(ratio "$(p99 val)" "$(p99 redis)")" "$(ratio "$(rps val)" "$(rps echo)")"
		printf '%-11s | val/redis %s  p99 val/redis %s | cpu us/answer: val %s redis %s echo %s | client busy: val %s redis %s echo %s\n' \
			"  (rounds)" "$(pair_ratios val redis checks/s)" "$(pair_ratios val redis p99_us)" \
			"$(cpu val)" "$(cpu redis)" "$(cpu echo)" "$(busy val)" "$(busy redis)" "$(busy echo)"
		if [ -n "${BASELINE:-}" ]; then
			rounds val "$VPID" "val $T/k1/validator.sock $HOT $c $d" \
				base "$BPID" "val $T/b1/validator.sock $HOT $c $d" \
				redis "$RPID" "resp $T/redis.sock $HOT $c $d"
			printf '%-11s | %-33s | baseline %-33s | redis %-27s | val/base %s  base/redis %s\n' \
				"  (again)" "$(fmt val)" "$(fmt base)" "$(fmt redis)" \
				"$(ratio "$(rps val)" "$(rps base)")" "$(ratio "$(rps base)" "$(rps redis)")"
			printf '%-11s | val/base %s  val/redis %s | cpu us/answer: val %s base %s redis %s\n' \
				"  (rounds)" "$(pair_ratios val base checks/s)" "$(pair_ratios val redis checks/s)" \
				"$(cpu val)" "$(cpu base)" "$(cpu redis)"
		fi
	done
done
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -n "$NGINX" ] && [ -n "$VPORT" ]; then
	N="$T/nginx"
	mkdir -p "$N/tmp" "$N/www"
	printf 'hello\n' >"$N/www/index.html"
	NPORT=$(free_port)
	CPORT=$(free_port)
	USER_LINE=
	[ "$(id -u)" -ne 0 ] || USER_LINE="user root root;"
	cat >"$N/nginx.conf" <<EOF
worker_processes 1;
$USER_LINE
pid $N/nginx.pid;
error_log $N/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path $N/tmp/body;
    proxy_temp_path $N/tmp/proxy;
    fastcgi_temp_path $N/tmp/fastcgi;
    uwsgi_temp_path $N/tmp/uwsgi;
    scgi_temp_path $N/tmp/scgi;
    upstream keywarden {
        server 127.0.0.1:$VPORT;
        keepalive 32;
    }
    # The ceiling: an auth server that does nothing (a second nginx process, on the same
    # CPU as the validator: "return 200"), behind the same subrequest and upstream settings.
    upstream nothing {
        server 127.0.0.1:$CPORT;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$NPORT;
        location = /_keywarden {
            internal;
            proxy_pass http://keywarden/authz;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location = /_nothing {
            internal;
            proxy_pass http://nothing/authz;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location /open/ { alias $N/www/; }
        location /guarded/ {
            auth_request /_keywarden;
            alias $N/www/;
        }
        location /ceiling/ {
            auth_request /_nothing;
            alias $N/www/;
        }
        location = /static { return 200 ""; }
    }
}
EOF
	$S "$NGINX" -p "$N" -c "$N/nginx.conf" -e "$N/error.log" -g 'daemon off;' &
	NGPID=$!; PIDS="$PIDS $NGPID"
	mkdir -p "$N/auth/tmp"
	cat >"$N/auth/nginx.conf" <<EOF
worker_processes 1;
$USER_LINE
pid $N/auth/nginx.pid;
error_log $N/auth/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path $N/auth/tmp/body;
    proxy_temp_path $N/auth/tmp/proxy;
    fastcgi_temp_path $N/auth/tmp/fastcgi;
    uwsgi_temp_path $N/auth/tmp/uwsgi;
    scgi_temp_path $N/auth/tmp/scgi;
    server {
        listen 127.0.0.1:$CPORT;
        location / { return 200 ""; }
    }
}
EOF
	$S "$NGINX" -p "$N/auth" -c "$N/auth/nginx.conf" -e "$N/auth/error.log" -g 'daemon off;' &
	PIDS="$PIDS $!"
	sleep 1
	[ -s "$N/nginx.pid" ] || { echo "# nginx did not start:"; tail -5 "$N/error.log"; }
	echo
	echo "# through nginx $("$NGINX" -v 2>&1 | sed 's/.*\///'), 1 worker on CPU 0 with the validator; HTTP/1.1 keep-alive, not pipelined"
	# The file itself, not its folder: "/guarded/" would be redirected internally to
	# /guarded/index.html by the index module, and the access phase (auth_request) runs
	# again after an internal redirect: two checks per request (doc/http-authz.md).
	echo "#   ceiling: the same location behind auth_request to an auth server that does nothing (another nginx process on CPU 0: return 200)"
	printf '%-5s | %-33s | %-33s | %-33s | %s\n' conns "guarded (auth_request) req/s p50/p99/p99.9" \
		"ceiling req/s p50/p99/p99.9" "unguarded req/s p50/p99/p99.9" "guarded/unguarded  ceiling/unguarded  guarded/ceiling"
	for c in 1 8; do
		rounds guarded "$NGPID" "http 127.0.0.1:$NPORT $HOT $c 1 /guarded/index.html" \
			ceiling "$NGPID" "http 127.0.0.1:$NPORT $HOT $c 1 /ceiling/index.html" \
			open "$NGPID" "http 127.0.0.1:$NPORT $HOT $c 1 /open/index.html"
		printf '%-5s | %-33s | %-33s | %-33s | %5s              %5s              %5s\n' "$c" \
			"$(fmt guarded)" "$(fmt ceiling)" "$(fmt open)" \
			"$(ratio "$(rps guarded)" "$(rps open)")" "$(ratio "$(rps ceiling)" "$(rps open)")" \
			"$(ratio "$(rps guarded)" "$(rps ceiling)")"
		printf '%-5s | guarded/unguarded %s  ceiling/unguarded %s  guarded/ceiling %s\n' \
			"  (rounds)" "$(pair_ratios guarded open checks/s)" "$(pair_ratios ceiling open checks/s)" \
			"$(pair_ratios guarded ceiling checks/s)"
	done
	printf '%-5s %-5s | %-33s | %-33s | %s\n' conns depth "validator GET /authz req/s p50/p99/p99.9" \
		"nginx return 200 req/s p50/p99/p99.9" "endpoint/nginx static"
	for c in 1 8; do
		for d in 1 16; do
			rounds endpoint "$VPID" "http 127.0.0.1:$VPORT $HOT $c $d /authz" \
				static "$NGPID" "http 127.0.0.1:$NPORT $HOT $c $d /static"
			printf '%-5s %-5s | %-33s | %-33s | %5s\n' "$c" "$d" "$(fmt endpoint)" "$(fmt static)" \
				"$(ratio "$(rps endpoint)" "$(rps static)")"
		done
	done
else
	echo "# nginx not installed (or no HTTP port): nginx figures skipped"
fi

if [ "$BIG" = 1 ]; then
	echo
	t0=$(date +%s.%N)
	"$GEN" populate "$T/m1" 1000000 1000 "$T/m1/hot.txt"
	t1=$(date +%s.%N)
	echo "# 1,000,000 tokens inserted in $(echo "$t1 - $t0" | bc 2>/dev/null || echo "?") s"
	$S "$VAL" --state-dir "$T/m1" 2>"$T/val1m.log" &
	MPID=$!; PIDS="$PIDS $MPID"
	wait_sock "$T/m1/validator.sock"
	echo "# database size: 1,000 vs 1,000,000 tokens (1,000 hot tokens spread over the ids), 8 conns"
	for d in 1 16; do
		rounds k1 "$VPID" "val $T/k1/validator.sock $T/k1/hot.txt 8 $d" m1 "$MPID" "val $T/m1/validator.sock $T/m1/hot.txt 8 $d"
		echo "depth $d: 1k tokens $(rps k1)/s, 1M tokens $(rps m1)/s, ratio $(ratio "$(rps m1)" "$(rps k1)")"
	done
	echo "# validator RSS: 1k tokens $(rss_kib "$VPID") KiB (peak $(hwm_kib "$VPID") KiB); 1M tokens $(rss_kib "$MPID") KiB (peak $(hwm_kib "$MPID") KiB)"
	echo "# database file with 1M tokens: $(du -h "$T/m1/keywarden.db" | cut -f1)"
fi
