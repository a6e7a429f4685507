# ssod/: keywarden-ssod. The SAML checks and the path from a verified message to the store
# live in a convenience library so that the tests, the fuzz target and the benchmarks link the
# very code the daemon runs.
noinst_LTLIBRARIES += ssod/libkwsaml.la
ssod_libkwsaml_la_SOURCES = \
	ssod/saml_verify.c ssod/saml_verify.h \
	ssod/xml_prescan.c ssod/xml_prescan.h \
	ssod/sso_config.c ssod/sso_config.h \
	ssod/sso_apply.c ssod/sso_apply.h \
	ssod/login.c ssod/login.h \
	ssod/metadata.c ssod/metadata.h
ssod_libkwsaml_la_CFLAGS = $(KW_CORE_CFLAGS) $(XML_CFLAGS) $(XMLSEC_CFLAGS) $(ZLIB_CFLAGS)
ssod_libkwsaml_la_LIBADD = $(KW_CORE_LIBS) $(XMLSEC_LIBS) $(XML_LIBS) $(ZLIB_LIBS)

sbin_PROGRAMS += keywarden-ssod
keywarden_ssod_SOURCES = ssod/ssod.c \
	ssod/http.c ssod/http.h \
	ssod/api.c ssod/api_json.c ssod/api.h ssod/api_http.c ssod/api_http.h \
	ssod/page.c ssod/page_html.c ssod/page.h \
	ssod/scim.c ssod/scim_json.c ssod/scim.h
keywarden_ssod_CFLAGS = $(KW_CORE_CFLAGS) $(XML_CFLAGS) $(XMLSEC_CFLAGS) $(MHD_CFLAGS) \
	$(SYSTEMD_CFLAGS) $(JSONC_CFLAGS)
keywarden_ssod_LDADD = ssod/libkwsaml.la $(KW_CORE_LIBS) $(XMLSEC_LIBS) $(XML_LIBS) \
	$(MHD_LIBS) $(SYSTEMD_LIBS) $(JSONC_LIBS)

KW_SAML_CFLAGS = $(KW_CORE_CFLAGS) $(XML_CFLAGS) $(XMLSEC_CFLAGS) -I$(top_srcdir)/ssod
KW_SAML_LIBS = ssod/libkwsaml.la $(KW_CORE_LIBS) $(XMLSEC_LIBS) $(XML_LIBS) $(ZLIB_LIBS)

dist_man_MANS += man/keywarden-ssod.8

systemdsystemunit_DATA += systemd/keywarden-ssod.service
EXTRA_DIST += systemd/keywarden-ssod.service.in
CLEANFILES += systemd/keywarden-ssod.service
systemd/keywarden-ssod.service: $(top_srcdir)/systemd/keywarden-ssod.service.in Makefile
	$(AM_V_GEN)mkdir -p systemd && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' $(top_srcdir)/systemd/keywarden-ssod.service.in > $@.tmp && \
	mv $@.tmp $@
