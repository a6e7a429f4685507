# validator/: the keywarden-validator daemon.
sbin_PROGRAMS += keywarden-validator
keywarden_validator_SOURCES = \
	validator/daemon.c validator/daemon.h \
	validator/daemon_server.c \
	validator/daemon_check.c \
	validator/daemon_rate.c \
	validator/proto.c validator/proto.h
keywarden_validator_CFLAGS = $(KW_CORE_CFLAGS) $(SYSTEMD_CFLAGS)
keywarden_validator_LDADD = $(KW_CORE_LIBS) $(SYSTEMD_LIBS)

