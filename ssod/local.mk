# ssod/: keywarden-ssod. The SAML checks live in a convenience library so that the tests,
# the fuzz target and the benchmark link the very code the daemon runs.
noinst_LTLIBRARIES += ssod/libkwsaml.la
ssod_libkwsaml_la_SOURCES = \
	ssod/saml_verify.c ssod/saml_verify.h \
	ssod/sso_config.c ssod/sso_config.h \
	ssod/sso_store.c ssod/sso_store.h
ssod_libkwsaml_la_CFLAGS = $(KW_CORE_CFLAGS) $(XML_CFLAGS) $(XMLSEC_CFLAGS)
ssod_libkwsaml_la_LIBADD = $(KW_CORE_LIBS) $(XMLSEC_LIBS) $(XML_LIBS)

sbin_PROGRAMS += keywarden-ssod
keywarden_ssod_SOURCES = ssod/ssod.c
keywarden_ssod_CFLAGS = $(KW_CORE_CFLAGS) $(XML_CFLAGS) $(XMLSEC_CFLAGS)
keywarden_ssod_LDADD = ssod/libkwsaml.la $(KW_CORE_LIBS) $(XMLSEC_LIBS) $(XML_LIBS)

KW_SAML_CFLAGS = $(KW_CORE_CFLAGS) $(XML_CFLAGS) $(XMLSEC_CFLAGS) -I$(top_srcdir)/ssod
KW_SAML_LIBS = ssod/libkwsaml.la $(KW_CORE_LIBS) $(XMLSEC_LIBS) $(XML_LIBS)

dist_man_MANS += man/keywarden-ssod.8
