# validator/: the keywarden-validator daemon.
sbin_PROGRAMS += keywarden-validator
keywarden_validator_SOURCES = \
	validator/daemon.c validator/daemon.h \
	validator/daemon_server.c validator/daemon_conn.h \
	validator/daemon_http.c \
	validator/http.c validator/http.h \
	validator/daemon_check.c \
	validator/daemon_rate.c \
	validator/daemon_peers.c \
	validator/proto.c validator/proto.h
keywarden_validator_CFLAGS = $(KW_CORE_CFLAGS) $(SYSTEMD_CFLAGS)
keywarden_validator_LDADD = $(KW_CORE_LIBS) $(SYSTEMD_LIBS)


# systemd units: socket activation and Type=notify.
systemdsystemunit_DATA += systemd/keywarden-validator.service systemd/keywarden-validator.socket
EXTRA_DIST += systemd/keywarden-validator.service.in systemd/keywarden-validator.socket
CLEANFILES += systemd/keywarden-validator.service
systemd/keywarden-validator.service: $(top_srcdir)/systemd/keywarden-validator.service.in Makefile
	$(AM_V_GEN)mkdir -p systemd && sed -e 's|@sbindir[@]|$(sbindir)|g' \
		$(top_srcdir)/systemd/keywarden-validator.service.in >$@

dist_man_MANS += man/keywarden-validator.8
EXTRA_DIST += doc/http-authz.md
