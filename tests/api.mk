# tests/api.mk: the REST API of keywarden-ssod (issue 11): every role rule of tests/cli/rules.sh
# through HTTP, the error answers, the throttle, and every answer body checked against
# doc/openapi.yaml (python3-jsonschema).
TESTS += tests/api/rules.py tests/api/errors.py tests/api/openapi.py tests/api/session.py \
	tests/api/tokens.py
EXTRA_DIST += tests/api/apitest.py tests/api/rules.py tests/api/errors.py tests/api/openapi.py \
	tests/api/session.py tests/api/tokens.py \
	doc/openapi.yaml

# The REST API benchmark: built by make check, never run by it (not a timed test); run
#   $(PYTHON3) $(top_srcdir)/tests/bench/bench_api.py   (see doc/benchmarks.md)
check_PROGRAMS += tests/bench/bench_api
tests_bench_bench_api_SOURCES = tests/bench/bench_api.c
tests_bench_bench_api_LDADD = -lpthread
EXTRA_DIST += tests/bench/bench_api.py

# The pure parts of the API (RelayState, the throttle, the strict JSON), in C.
check_PROGRAMS += tests/unit/test_api
TESTS += tests/unit/test_api
tests_unit_test_api_SOURCES = tests/unit/test_api.c ssod/api.c ssod/api_json.c
tests_unit_test_api_CFLAGS = $(KW_CORE_CFLAGS) $(JSONC_CFLAGS) $(CMOCKA_CFLAGS) \
	-I$(top_srcdir)/ssod
tests_unit_test_api_LDADD = $(KW_CORE_LIBS) $(JSONC_LIBS) $(CMOCKA_LIBS)
