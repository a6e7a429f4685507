# tests/sso.mk: the SSO sync and the rule "SSO revocation does not revoke API tokens"
# (lib/sso_*.c, keywarden sso ...). tests/sso/sso_driver stands in for ssod's SAML path until the
# HTTP listener feeds lib/sso.h with real Responses. The rule's decision alone is unit tested in
# tests/unit/test_sso_rule.c.
check_PROGRAMS += tests/sso/sso_driver
tests_sso_sso_driver_SOURCES = tests/sso/sso_driver.c
tests_sso_sso_driver_CFLAGS = $(KW_CORE_CFLAGS)
tests_sso_sso_driver_LDADD = $(KW_CORE_LIBS)

TESTS += tests/sso/sync.sh tests/sso/rule.sh
EXTRA_DIST += tests/sso/sso_lib.sh tests/sso/sync.sh tests/sso/rule.sh
