# validator/: libkeywarden (libc only) and pam_keywarden.so.
pkgconfig_DATA += validator/keywarden.pc

# The client code is built once, as a private convenience library that both the installed
# libkeywarden and the PAM module link (the module carries its own copy, hidden).
noinst_LTLIBRARIES += validator/libkwclient.la
validator_libkwclient_la_SOURCES = validator/client.c validator/keywarden.h
validator_libkwclient_la_CFLAGS = $(AM_CFLAGS)

# libkeywarden.so: exports kw_* only; libtool turns the regex into a version script.
lib_LTLIBRARIES += validator/libkeywarden.la
include_HEADERS += validator/keywarden.h
validator_libkeywarden_la_SOURCES =
validator_libkeywarden_la_LIBADD = validator/libkwclient.la
validator_libkeywarden_la_LDFLAGS = $(AM_LDFLAGS) -version-info 0:0:0 \
	-export-symbols-regex '^kw_' -no-undefined

# pam_keywarden.so: libc and libpam only; exports pam_sm_* only.
pam_LTLIBRARIES += validator/pam_keywarden.la
validator_pam_keywarden_la_SOURCES = validator/pam_keywarden.c validator/keywarden.h
validator_pam_keywarden_la_CFLAGS = $(AM_CFLAGS)
validator_pam_keywarden_la_LIBADD = validator/libkwclient.la -lpam
validator_pam_keywarden_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared \
	-no-undefined -export-symbols-regex '^pam_sm_'

dist_man_MANS += man/libkeywarden.3 man/pam_keywarden.8
