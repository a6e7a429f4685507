# tests/saml.mk: the saml tests: the python3-saml conformance corpus, Responses signed at test
# time by a real signer (openssl keys, xmlsec1 signatures) with the attack suite made from
# them, and the fuzz target run over its seed corpus.
TESTS += tests/saml/corpus.py tests/saml/attacks.py
EXTRA_DIST += tests/saml/sslib.py tests/saml/idp.py tests/saml/corpus \
	tests/saml/corpus.py tests/saml/attacks.py

# The libFuzzer target, run here without libFuzzer over its seeds and fixed mutations.
check_PROGRAMS += tests/fuzz/fuzz_saml_main
TESTS += tests/fuzz/fuzz_saml_main
tests_fuzz_fuzz_saml_main_SOURCES = tests/fuzz/fuzz_saml.c tests/fuzz/fuzz_saml_main.c
tests_fuzz_fuzz_saml_main_CFLAGS = $(KW_SAML_CFLAGS) \
	-DKW_SAML_CORPUS=\"$(abs_top_srcdir)/tests/saml/corpus/python3-saml\"
tests_fuzz_fuzz_saml_main_LDADD = $(KW_SAML_LIBS)

# `make fuzz-saml`: the real libFuzzer binary (clang), then run it, e.g.
#   tests/fuzz/fuzz_saml -max_total_time=60 $(top_srcdir)/tests/saml/corpus/python3-saml/responses
FUZZ_CC = clang
fuzz-saml: lib/libkwcore.la
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -I$(top_builddir) \
		-I$(top_srcdir)/lib -I$(top_srcdir)/ssod $(XML_CFLAGS) $(XMLSEC_CFLAGS) \
		-DKW_SAML_CORPUS=\"$(abs_top_srcdir)/tests/saml/corpus/python3-saml\" \
		$(top_srcdir)/tests/fuzz/fuzz_saml.c $(top_srcdir)/ssod/saml_verify.c \
		lib/.libs/libkwcore.a $(XMLSEC_LIBS) $(XML_LIBS) $(SQLITE_LIBS) $(CRYPTO_LIBS) \
		$(SYSTEMD_LIBS) -o tests/fuzz/fuzz_saml
.PHONY: fuzz-saml
CLEANFILES += tests/fuzz/fuzz_saml

# The benchmark: built by make check, never run by it (not a timed test); run
#   $(PYTHON3) $(top_srcdir)/tests/bench/bench_saml.py   (see doc/benchmarks.md)
check_PROGRAMS += tests/bench/bench_saml
tests_bench_bench_saml_SOURCES = tests/bench/bench_saml.c
tests_bench_bench_saml_CFLAGS = $(KW_SAML_CFLAGS)
tests_bench_bench_saml_LDADD = $(KW_SAML_LIBS)
EXTRA_DIST += tests/bench/bench_saml.py
