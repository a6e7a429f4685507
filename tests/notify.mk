# tests/notify.mk: issue 6 — expiry emails, the audit log, reports: their tests, and the
# notify service and timer.

# The notify service and its hourly timer.
systemdsystemunit_DATA += systemd/keywarden-notify.service systemd/keywarden-notify.timer
EXTRA_DIST += systemd/keywarden-notify.service.in systemd/keywarden-notify.timer
CLEANFILES += systemd/keywarden-notify.service
systemd/keywarden-notify.service: $(top_srcdir)/systemd/keywarden-notify.service.in Makefile
	$(AM_V_GEN)mkdir -p systemd && \
	sed -e 's|@bindir[@]|$(bindir)|g' $(top_srcdir)/systemd/keywarden-notify.service.in > $@.tmp && \
	mv $@.tmp $@

# Tests: python3 with python3-aiosmtpd (a real SMTP server on loopback), libfaketime
# (faketime) to move the clock, and the sqlite3 shell to tamper with the audit log.
KW_ISSUE6_TESTS = \
	tests/notify/smtp.py \
	tests/audit/tamper.py \
	tests/audit/sigkill.py \
	tests/report/report.py
TESTS += $(KW_ISSUE6_TESTS)
EXTRA_DIST += $(KW_ISSUE6_TESTS) tests/notify/kwtest.py
