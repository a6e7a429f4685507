# libkeywarden/: the client side of the validator socket, libc only: libkeywarden (keywarden.h
# and keywarden_protocol.h, pkg-config keywarden) and pam_keywarden.so. The daemon in
# validator/ includes keywarden_protocol.h too: the protocol's words are written once.
pkgconfig_DATA += libkeywarden/keywarden.pc

# The client code is built once, as a private convenience library that both the installed
# libkeywarden and the PAM module link (the module carries its own copy, hidden). Its include
# path holds this folder and config.h only, not lib/: the client cannot reach the core.
KW_CLIENT_CPPFLAGS = -I$(top_builddir) -I$(top_srcdir)/libkeywarden
noinst_LTLIBRARIES += libkeywarden/libkwclient.la
libkeywarden_libkwclient_la_SOURCES = libkeywarden/client.c libkeywarden/keywarden.h \
	libkeywarden/keywarden_protocol.h
libkeywarden_libkwclient_la_CPPFLAGS = $(KW_CLIENT_CPPFLAGS)
libkeywarden_libkwclient_la_CFLAGS = $(AM_CFLAGS)

# libkeywarden.so: exports kw_* only; libtool turns the regex into a version script.
# -version-info C:R:A gives the SONAME libkeywarden.so.(C-A) (Debian package libkeywarden1,
# whose debian/libkeywarden1.symbols lists every export): a new export bumps C and A, a
# removed or changed one bumps C and sets A to 0 (and renames the package).
# keywarden.h includes keywarden_protocol.h (for KW_DEFAULT_SOCKET_PATH): both are installed.
lib_LTLIBRARIES += libkeywarden/libkeywarden.la
include_HEADERS += libkeywarden/keywarden.h libkeywarden/keywarden_protocol.h
libkeywarden_libkeywarden_la_SOURCES =
libkeywarden_libkeywarden_la_LIBADD = libkeywarden/libkwclient.la
libkeywarden_libkeywarden_la_LDFLAGS = $(AM_LDFLAGS) -version-info 1:0:0 \
	-export-symbols-regex '^kw_' -no-undefined

# pam_keywarden.so: libc and libpam only; exports pam_sm_* only.
pam_LTLIBRARIES += libkeywarden/pam_keywarden.la
libkeywarden_pam_keywarden_la_SOURCES = libkeywarden/pam_keywarden.c libkeywarden/keywarden.h \
	libkeywarden/keywarden_protocol.h
libkeywarden_pam_keywarden_la_CPPFLAGS = $(KW_CLIENT_CPPFLAGS)
libkeywarden_pam_keywarden_la_CFLAGS = $(AM_CFLAGS)
libkeywarden_pam_keywarden_la_LIBADD = libkeywarden/libkwclient.la -lpam
libkeywarden_pam_keywarden_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared \
	-no-undefined -export-symbols-regex '^pam_sm_'

dist_man_MANS += man/libkeywarden.3 man/pam_keywarden.8
