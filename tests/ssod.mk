# tests/ssod.mk: keywarden-ssod over HTTP (issue 5): a real IdP (Debian's python3-lasso) posting
# signed Responses and LogoutRequests to the daemon, the rule "SSO revocation does not revoke
# API tokens" end to end through HTTP and the real validator, the listener's hardening, and
# floods of cheap requests meant to stall it (issue 10); python3-pysaml2 and SimpleSAMLphp (run by
# PHP's built-in server) as two more real IdPs, SP-initiated sign-in included (issue 17).
TESTS += tests/ssod/idp.py tests/ssod/rule.py tests/ssod/hardening.py tests/ssod/text.py \
	tests/ssod/flood.py tests/ssod/pysaml2_idp.py tests/ssod/simplesamlphp_idp.py
EXTRA_DIST += tests/ssod/ssodtest.py tests/ssod/idp.py tests/ssod/rule.py \
	tests/ssod/hardening.py tests/ssod/text.py tests/ssod/flood.py tests/ssod/pysaml2_idp.py \
	tests/ssod/simplesamlphp_idp.py tests/ssod/simplesaml.py

# The HTTP benchmark: built by make check, never run by it (not a timed test); run
#   $(PYTHON3) $(top_srcdir)/tests/bench/bench_acs.py   (see doc/benchmarks.md)
check_PROGRAMS += tests/bench/bench_acs
tests_bench_bench_acs_SOURCES = tests/bench/bench_acs.c
EXTRA_DIST += tests/bench/bench_acs.py
# and, likewise never run by make check, the hostile-XML figures (issue 10):
#   $(PYTHON3) $(top_srcdir)/tests/bench/bench_hostile.py
EXTRA_DIST += tests/bench/bench_hostile.py
tests_bench_bench_acs_LDADD = -lpthread

# The scan of raw XML before libxml2 parses it (ssod/xml_prescan.h), in C.
check_PROGRAMS += tests/unit/test_xml_prescan
TESTS += tests/unit/test_xml_prescan
tests_unit_test_xml_prescan_SOURCES = tests/unit/test_xml_prescan.c
tests_unit_test_xml_prescan_CFLAGS = $(KW_SAML_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_xml_prescan_LDADD = $(KW_SAML_LIBS) $(CMOCKA_LIBS)

# SP-initiated sign-in (issue 17): where `next` may lead, and the AuthnRequest list.
check_PROGRAMS += tests/unit/test_login
TESTS += tests/unit/test_login
tests_unit_test_login_SOURCES = tests/unit/test_login.c
tests_unit_test_login_CFLAGS = $(KW_SAML_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_login_LDADD = $(KW_SAML_LIBS) $(CMOCKA_LIBS)
