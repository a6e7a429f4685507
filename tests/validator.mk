# tests/validator.mk: the validator tests (raw protocol lines against the real daemon, started
# on a temporary state folder made with the real CLI), its fuzz targets and its benchmark tools.
VALIDATOR_TESTS = \
	tests/validator/protocol.py \
	tests/validator/audit.py \
	tests/validator/peergroups.py \
	tests/validator/stale.py \
	tests/validator/clients.py \
	tests/validator/spec.py \
	tests/validator/systemd.py \
	tests/validator/emfile.py \
	tests/validator/slots.py \
	tests/validator/replaced.py \
	tests/validator/commits.py \
	tests/validator/wipe.py \
	tests/validator/memo.py \
	tests/validator/busypoll.py \
	tests/validator/busypoll_trickle.py \
	tests/validator/debuglog.py \
	tests/validator/http.py \
	tests/nginx/nginx.py \
	tests/validator/fuzz.sh
TESTS += $(VALIDATOR_TESTS)
EXTRA_DIST += $(VALIDATOR_TESTS) tests/validator/vtest.py tests/validator/httptest.py \
	tests/fuzz/fuzz_proto.c tests/fuzz/fuzz_token.c tests/fuzz/fuzz_http.c

# The benchmark's load generator, echo server and bulk token writer (built by make check,
# run by tests/bench/run_validator_bench.sh; never a timed test).
check_PROGRAMS += tests/bench/bench_validator
tests_bench_bench_validator_SOURCES = tests/bench/bench_validator.c
tests_bench_bench_validator_CFLAGS = $(KW_CORE_CFLAGS)
tests_bench_bench_validator_LDADD = $(KW_CORE_LIBS)
EXTRA_DIST += tests/bench/run_validator_bench.sh

# A CHECK does the same secret work whatever the token id (issue 10, item 5): the checker
# linked with --wrap of the digest and the compare, which the test counts.
KW_CHECKER_SOURCES = validator/daemon_check.c validator/daemon_rate.c validator/daemon_peers.c \
	validator/proto.c validator/daemon.h validator/proto.h
check_PROGRAMS += tests/unit/test_check_paths
tests_unit_test_check_paths_SOURCES = tests/unit/test_check_paths.c $(KW_CHECKER_SOURCES)
tests_unit_test_check_paths_CFLAGS = $(KW_UNIT_CFLAGS) -I$(top_srcdir)/validator
tests_unit_test_check_paths_LDFLAGS = -Wl,--wrap=kw_token_digest -Wl,--wrap=kw_digest_equal \
	-Wl,--wrap=kw_siphash128 -Wl,--wrap=kw_siphash_equal
tests_unit_test_check_paths_LDADD = $(KW_UNIT_LIBS)
TESTS += tests/unit/test_check_paths

# The time of a CHECK by path (right secret, wrong secret, unknown id, malformed): figures for
# doc/benchmarks.md, never a timed test.
check_PROGRAMS += tests/bench/bench_check
tests_bench_bench_check_SOURCES = tests/bench/bench_check.c $(KW_CHECKER_SOURCES)
tests_bench_bench_check_CFLAGS = $(KW_CORE_CFLAGS) -I$(top_srcdir)/validator
tests_bench_bench_check_LDADD = $(KW_CORE_LIBS)

# The count of connections per peer uid (max_connections_per_uid).
check_PROGRAMS += tests/unit/test_peers
tests_unit_test_peers_SOURCES = tests/unit/test_peers.c validator/daemon_peers.c validator/daemon.h
tests_unit_test_peers_CFLAGS = $(KW_UNIT_CFLAGS) -I$(top_srcdir)/validator
tests_unit_test_peers_LDADD = $(KW_UNIT_LIBS)
TESTS += tests/unit/test_peers

# The HTTP check endpoint's request head parser (validator/http.c, pure; fuzzed by fuzz.sh).
check_PROGRAMS += tests/unit/test_http
tests_unit_test_http_SOURCES = tests/unit/test_http.c validator/http.c validator/http.h \
	validator/proto.h
tests_unit_test_http_CFLAGS = $(KW_UNIT_CFLAGS) -I$(top_srcdir)/validator
tests_unit_test_http_LDADD = $(KW_UNIT_LIBS)
TESTS += tests/unit/test_http

# kw_token_digest() (the validator's fast HMAC path) against OpenSSL's HMAC.
check_PROGRAMS += tests/unit/test_digest
tests_unit_test_digest_SOURCES = tests/unit/test_digest.c
tests_unit_test_digest_CFLAGS = $(KW_UNIT_CFLAGS)
tests_unit_test_digest_LDADD = $(KW_UNIT_LIBS)
TESTS += tests/unit/test_digest

# kw_siphash128() (the validator's memo of verified tokens) against OpenSSL's SIPHASH.
check_PROGRAMS += tests/unit/test_siphash
tests_unit_test_siphash_SOURCES = tests/unit/test_siphash.c
tests_unit_test_siphash_CFLAGS = $(KW_UNIT_CFLAGS)
tests_unit_test_siphash_LDADD = $(KW_UNIT_LIBS)
TESTS += tests/unit/test_siphash
