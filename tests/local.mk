# tests/: unit (cmocka), integration (real daemons in a temporary folder), pam, saml, fuzz,
# bench. Every test prints TAP. Fragments per part: tests/validator.mk, tests/pam.mk,
# tests/saml.mk, tests/notify.mk.

KW_UNIT_CFLAGS = $(KW_CORE_CFLAGS) $(CMOCKA_CFLAGS)
KW_UNIT_LIBS = $(KW_CORE_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += tests/unit/test_token tests/unit/test_core tests/unit/test_text \
	tests/unit/test_secret
tests_unit_test_token_SOURCES = tests/unit/test_token.c
tests_unit_test_token_CFLAGS = $(KW_UNIT_CFLAGS)
tests_unit_test_token_LDADD = $(KW_UNIT_LIBS)
tests_unit_test_core_SOURCES = tests/unit/test_core.c
tests_unit_test_core_CFLAGS = $(KW_UNIT_CFLAGS)
tests_unit_test_core_LDADD = $(KW_UNIT_LIBS)
tests_unit_test_text_SOURCES = tests/unit/test_text.c
tests_unit_test_text_CFLAGS = $(KW_UNIT_CFLAGS)
tests_unit_test_text_LDADD = $(KW_UNIT_LIBS)
tests_unit_test_secret_SOURCES = tests/unit/test_secret.c
tests_unit_test_secret_CFLAGS = $(KW_UNIT_CFLAGS)
tests_unit_test_secret_LDADD = $(KW_UNIT_LIBS)
TESTS += tests/unit/test_token tests/unit/test_core tests/unit/test_text tests/unit/test_secret

check_PROGRAMS += tests/unit/test_sso_rule
tests_unit_test_sso_rule_SOURCES = tests/unit/test_sso_rule.c
tests_unit_test_sso_rule_CFLAGS = $(KW_UNIT_CFLAGS)
tests_unit_test_sso_rule_LDADD = $(KW_UNIT_LIBS)
TESTS += tests/unit/test_sso_rule

TESTS += tests/cli/rules.sh tests/cli/bad_input.sh tests/cli/no_secret_at_rest.sh \
	tests/cli/text.sh tests/cli/state_guard.sh tests/cli/full_disk.sh
EXTRA_DIST += tests/lib.sh tests/cli/rules.sh tests/cli/bad_input.sh \
	tests/cli/no_secret_at_rest.sh tests/cli/text.sh tests/cli/state_guard.sh \
	tests/cli/full_disk.sh
