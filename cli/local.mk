# cli/: the keywarden admin command.
bin_PROGRAMS += keywarden
keywarden_SOURCES = cli/keywarden.c cli/cli.h cli/cmd_token.c cli/cmd_admin.c
keywarden_CFLAGS = $(KW_CORE_CFLAGS)
keywarden_LDADD = $(KW_CORE_LIBS)
