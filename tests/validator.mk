# tests/validator.mk: the validator tests.

# The benchmark's load generator, echo server and bulk token writer (built by make check,
# run by tests/bench/run_validator_bench.sh; never a timed test).
check_PROGRAMS += tests/bench/bench_validator
tests_bench_bench_validator_SOURCES = tests/bench/bench_validator.c
tests_bench_bench_validator_CFLAGS = $(KW_CORE_CFLAGS)
tests_bench_bench_validator_LDADD = $(KW_CORE_LIBS)
