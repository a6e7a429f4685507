# tests/notify.mk: issue 6 — expiry emails, the audit log, reports: their tests (the notify
# service and timer are installed by notify/local.mk, the unit test of the mail's text is
# there too).

# Tests: python3 with python3-aiosmtpd (a real SMTP server on loopback), libfaketime
# (faketime) to move the clock, and the sqlite3 shell to tamper with the audit log.
KW_ISSUE6_TESTS = \
	tests/notify/smtp.py \
	tests/audit/tamper.py \
	tests/audit/sigkill.py \
	tests/report/report.py
TESTS += $(KW_ISSUE6_TESTS)
EXTRA_DIST += $(KW_ISSUE6_TESTS) tests/notify/kwtest.py

# The store's queries for reports, the audit log and the notify ledger, through store.h.
check_PROGRAMS += tests/unit/test_store_queries
tests_unit_test_store_queries_SOURCES = tests/unit/test_store_queries.c
tests_unit_test_store_queries_CFLAGS = $(KW_CORE_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_store_queries_LDADD = $(KW_CORE_LIBS) $(CMOCKA_LIBS)
TESTS += tests/unit/test_store_queries
