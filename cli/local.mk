# cli/: the keywarden admin command.
bin_PROGRAMS += keywarden
keywarden_SOURCES = cli/keywarden.c cli/cli.h cli/cmd_token.c cli/cmd_admin.c
keywarden_CFLAGS = $(KW_CORE_CFLAGS)
keywarden_LDADD = $(KW_CORE_LIBS)
keywarden_SOURCES += cli/cmd_sso.c
keywarden_SOURCES += cli/cmd_audit.c cli/cmd_notify.c cli/cmd_report.c
keywarden_SOURCES += cli/cmd_check.c
keywarden_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/libkeywarden
# `keywarden notify run` runs the mail program (notify/), which alone links libcurl.
keywarden_CPPFLAGS += -DKW_NOTIFY_PROGRAM=\"$(sbindir)/keywarden-notify\"
keywarden_LDADD += libkeywarden/libkwclient.la
