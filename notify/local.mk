# notify/: keywarden-notify, the expiry emails. What a mail says (mail.c, pure) and the
# settings sit in a convenience library that the unit test links; only the program, through
# the SMTP transport (smtp.c), links libcurl.
noinst_LTLIBRARIES += notify/libkwmail.la
notify_libkwmail_la_SOURCES = \
	notify/mail.c notify/mail.h \
	notify/settings.c notify/settings.h
notify_libkwmail_la_CFLAGS = $(KW_CORE_CFLAGS)
notify_libkwmail_la_LIBADD = $(KW_CORE_LIBS)

sbin_PROGRAMS += keywarden-notify
keywarden_notify_SOURCES = notify/notify.c notify/smtp.c notify/smtp.h
keywarden_notify_CFLAGS = $(KW_CORE_CFLAGS) $(CURL_CFLAGS)
keywarden_notify_LDADD = notify/libkwmail.la $(KW_CORE_LIBS) $(CURL_LIBS)

dist_man_MANS += man/keywarden-notify.8

# The notify service (one run) and its hourly timer.
systemdsystemunit_DATA += systemd/keywarden-notify.service systemd/keywarden-notify.timer
EXTRA_DIST += systemd/keywarden-notify.service.in systemd/keywarden-notify.timer
CLEANFILES += systemd/keywarden-notify.service
systemd/keywarden-notify.service: $(top_srcdir)/systemd/keywarden-notify.service.in Makefile
	$(AM_V_GEN)mkdir -p systemd && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' $(top_srcdir)/systemd/keywarden-notify.service.in > $@.tmp && \
	mv $@.tmp $@

# The pure part, unit-tested.
check_PROGRAMS += tests/unit/test_mail
tests_unit_test_mail_SOURCES = tests/unit/test_mail.c
tests_unit_test_mail_CFLAGS = $(KW_CORE_CFLAGS) $(CMOCKA_CFLAGS) -I$(top_srcdir)/notify
tests_unit_test_mail_LDADD = notify/libkwmail.la $(KW_CORE_LIBS) $(CMOCKA_LIBS)
TESTS += tests/unit/test_mail
