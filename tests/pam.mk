# tests/pam.mk: the pam tests, and the tests of libkeywarden.

# libkeywarden against a scripted, misbehaving server.
check_PROGRAMS += tests/client/kwcheck
tests_client_kwcheck_SOURCES = tests/client/kwcheck.c
tests_client_kwcheck_CPPFLAGS = -I$(top_srcdir)/libkeywarden -I$(top_builddir)
tests_client_kwcheck_LDADD = libkeywarden/libkeywarden.la
TESTS += tests/client/test_client.py
EXTRA_DIST += tests/client/test_client.py

# The export lists and library dependencies of pam_keywarden.so and libkeywarden.
check_PROGRAMS += tests/pam/dlsyms
tests_pam_dlsyms_SOURCES = tests/pam/dlsyms.c
tests_pam_dlsyms_LDADD = -ldl
TESTS += tests/pam/exports.sh
EXTRA_DIST += tests/pam/exports.sh

# pam_keywarden.so on a real PAM stack (pam_wrapper + pamtester) against the real validator.
TESTS += tests/pam/test_pam.py
EXTRA_DIST += tests/pam/test_pam.py tests/pam/test_cli_check.py
# `keywarden token check` end to end: enters TESTS once cli/keywarden.c dispatches it.
TESTS += tests/pam/test_cli_check.py
