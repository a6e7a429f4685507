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
	tests/validator/wipe.py \
	tests/validator/debuglog.py \
	tests/validator/fuzz.sh
TESTS += $(VALIDATOR_TESTS)
EXTRA_DIST += $(VALIDATOR_TESTS) tests/validator/vtest.py \
	tests/fuzz/fuzz_proto.c tests/fuzz/fuzz_token.c

# The benchmark's load generator, echo server and bulk token writer (built by make check,
# run by tests/bench/run_validator_bench.sh; never a timed test).
check_PROGRAMS += tests/bench/bench_validator
tests_bench_bench_validator_SOURCES = tests/bench/bench_validator.c
tests_bench_bench_validator_CFLAGS = $(KW_CORE_CFLAGS)
tests_bench_bench_validator_LDADD = $(KW_CORE_LIBS)
EXTRA_DIST += tests/bench/run_validator_bench.sh
