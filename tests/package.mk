# tests/package.mk: the Debian packaging (debian/) and its end-to-end check,
# tests/package/check.sh. The check needs root and installs packages, so `make check` does not
# run it: run-tests.sh runs it once per run, after both builds. Shipped in the tarball so that
# packages can be built from it too.
EXTRA_DIST += tests/package/check.sh tests/package/client.c \
	debian/changelog debian/control debian/copyright debian/rules debian/source/format \
	debian/keywarden.install debian/keywarden.postrm debian/keywarden.lintian-overrides \
	debian/keywarden-ssod.install debian/keywarden-ssod.lintian-overrides \
	debian/libkeywarden1.install debian/libkeywarden1.symbols \
	debian/libkeywarden-dev.install \
	debian/libpam-keywarden.install debian/libpam-keywarden.postinst \
	debian/libpam-keywarden.prerm debian/libpam-keywarden.lintian-overrides \
	debian/pam-configs/keywarden
