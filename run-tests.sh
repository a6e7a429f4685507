#!/bin/sh
# run-tests.sh: the whole test suite, as CI runs it. Installs the build dependencies, builds
# with warnings as errors and runs `make check`, then does the same with AddressSanitizer and
# UndefinedBehaviorSanitizer, then (as root) builds, installs and purges the Debian packages
# (tests/package/check.sh), and ends with one line "N passed, N failed" for all tests run.
# Both builds run the browser tests of the API tokens pages (tests/page/browser.py: headless
# Chromium through Selenium, one browser session; about 20 s plain, 30 s with the sanitizers).
# Each build then runs the integration tests of KW_PG_TESTS (tests/pg.mk) once more on
# PostgreSQL (KW_RUN_PG_TESTS=0 skips that round): a throwaway server
# (tests/pg/pgserver.sh, stopped on exit) and `make check TESTS="$(KW_PG_TESTS)" KW_TEST_PG=DIR`;
# their results count in the final line too (the per-test logs of those tests are then the
# PostgreSQL round's; its summary is test-suite-pg.log).
set -e
cd "$(dirname "$0")"
top=$(pwd)
KW_RUN_PG_TESTS=${KW_RUN_PG_TESTS:-1}
pgdir=
pg_stop() {
	if [ -n "$pgdir" ]; then
		sh "$top/tests/pg/pgserver.sh" stop "$pgdir" >/dev/null 2>&1 || true
		rm -rf "$pgdir"
		pgdir=
	fi
}
trap pg_stop EXIT
trap 'exit 1' HUP INT TERM
./install-deps.sh
[ -x configure ] || ./autogen.sh
# House style: every C file as .clang-format says (a checkout only: a tarball has no git).
if git rev-parse --git-dir >/dev/null 2>&1; then
	unformatted=$(git ls-files '*.c' '*.h' | while read -r f; do
		clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || echo "$f"
	done)
	if [ -n "$unformatted" ]; then
		echo "== clang-format: these files are off .clang-format (run clang-format -i):"
		echo "$unformatted"
		exit 1
	fi
fi
jobs=$(nproc 2>/dev/null || echo 2)
status=0
for variant in plain sanitizers; do
	dir="$top/build-$variant"
	mkdir -p "$dir"
	flags=--enable-werror
	[ "$variant" = sanitizers ] && flags="$flags --enable-sanitizers"
	echo "== $variant build: configure $flags"
	(cd "$dir" && "$top/configure" $flags >configure.out 2>&1) || {
		tail -40 "$dir/configure.out"
		exit 1
	}
	(cd "$dir" && make -j"$jobs" >make.out 2>&1) || {
		grep -E 'error|warning' "$dir/make.out" | head -40
		tail -20 "$dir/make.out"
		exit 1
	}
	if ! (cd "$dir" && make -j"$jobs" check >check.out 2>&1); then
		status=1
		grep -E '^(FAIL|ERROR|XPASS)' "$dir/check.out" | head -60 || true
	fi
	grep -E '^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' "$dir/check.out" | sed "s/^/$variant: /" || true
	rm -f "$dir/pgcheck.out"
	[ "$KW_RUN_PG_TESTS" = 1 ] || continue
	echo "== $variant build: the store's tests on PostgreSQL"
	pgdir=$(mktemp -d "${TMPDIR:-/tmp}/kw-pg.XXXXXX")
	chmod 0755 "$pgdir"
	if ! sh "$top/tests/pg/pgserver.sh" start "$pgdir" $$ >"$dir/pgserver.out" 2>&1; then
		cat "$dir/pgserver.out"
		echo "postgresql: the test server did not start" >"$dir/pgcheck.out"
		status=1
		pg_stop
		continue
	fi
	pgtests=$(cd "$dir" && make -s print-pg-tests)
	if ! (cd "$dir" && make -j"$jobs" check TESTS="$pgtests" KW_TEST_PG="$pgdir" \
		TEST_SUITE_LOG=test-suite-pg.log >pgcheck.out 2>&1); then
		status=1
		grep -E '^(FAIL|ERROR|XPASS)' "$dir/pgcheck.out" | head -60 || true
	fi
	grep -E '^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' "$dir/pgcheck.out" |
		sed "s/^/$variant on PostgreSQL: /" || true
	pg_stop
done
passed=0
failed=0
skipped=0
for variant in plain sanitizers plain-pg sanitizers-pg; do
	log="$top/build-$variant/test-suite.log"
	out="$top/build-$variant/check.out"
	case $variant in
	*-pg)
		[ "$KW_RUN_PG_TESTS" = 1 ] || continue
		log="$top/build-${variant%-pg}/test-suite-pg.log"
		out="$top/build-${variant%-pg}/pgcheck.out"
		;;
	esac
	p=$(sed -n 's/^# PASS: *//p' "$out" | tail -1)
	f=$(sed -n 's/^# \(FAIL\|ERROR\|XPASS\): *//p' "$out" | awk '{s+=$1} END {print s+0}')
	[ -n "$p" ] || { p=0; f=$((f + 1)); echo "$variant: no test summary (see $log)"; }
	s=$(sed -n 's/^# SKIP: *//p' "$out" | tail -1)
	skipped=$((skipped + ${s:-0}))
	passed=$((passed + p))
	failed=$((failed + f))
done
# The Debian packages, once per run (not per build variant): built, linted, installed, used
# and purged by tests/package/check.sh, whose TAP results count in the totals. It needs root.
echo "== Debian packages: tests/package/check.sh"
pkgout="$top/build-package/check.out"
mkdir -p "$top/build-package"
if [ "$(id -u)" -ne 0 ]; then
	echo "package check: SKIPPED (counted as 1 skipped): it installs packages and needs root;" \
		"run sudo tests/package/check.sh"
	skipped=$((skipped + 1))
elif [ "${KEYWARDEN_SKIP_PACKAGE_CHECK:-0}" = 1 ]; then
	echo "package check: SKIPPED (counted as 1 skipped): KEYWARDEN_SKIP_PACKAGE_CHECK=1"
	skipped=$((skipped + 1))
else
	prc=0
	t0=$(date +%s)
	sh "$top/tests/package/check.sh" >"$pkgout" 2>&1 || prc=$?
	p=$(grep -c '^ok ' "$pkgout" || true)
	f=$(grep -c '^not ok ' "$pkgout" || true)
	if grep -q '^Bail out!' "$pkgout" || { [ "$prc" -ne 0 ] && [ "$f" -eq 0 ]; }; then
		f=$((f + 1))
	fi
	grep -E '^(not ok|Bail out!)' "$pkgout" | head -20 || true
	echo "packages: $p passed, $f failed in $(($(date +%s) - t0)) s (log: $pkgout)"
	passed=$((passed + p))
	failed=$((failed + f))
fi
[ "$failed" -eq 0 ] || status=1
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
