# lib/: the internal core every program links (not installed).
noinst_LTLIBRARIES += lib/libkwcore.la
lib_libkwcore_la_SOURCES = \
	lib/audit.h lib/store_audit.c \
	lib/conf.c lib/conf.h \
	lib/error.c lib/error.h lib/xalloc.h \
	lib/jsonw.c lib/jsonw.h \
	lib/text.c lib/text.h \
	lib/log.c lib/log.h \
	lib/schema.h \
	lib/secret.c lib/secret.h \
	lib/db.c lib/db.h lib/db_private.h lib/db_pg.c \
	lib/store.c lib/store.h lib/store_private.h lib/store_sql.h lib/store_pg.c \
	lib/store_validator.c lib/store_validator.h lib/store_lease.c lib/store_lease.h \
	lib/store_key.c lib/store_reserve.c \
	lib/timeutil.c lib/timeutil.h \
	lib/token.c lib/token.h lib/siphash.c lib/siphash.h \
	lib/store_token.c lib/store_session.c lib/store_report.c lib/store_notify.c \
	lib/sso.h lib/sso_private.h lib/sso_rule.c lib/sso_rule.h \
	lib/sso_login.c lib/sso_case.c lib/sso_review.c \
	lib/store_sso.c lib/store_sso_case.c lib/store_sso.h \
	lib/store_scim.c lib/store_scim.h
nodist_lib_libkwcore_la_SOURCES = lib/schema.c lib/schema_pg.c
lib_libkwcore_la_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS) $(PQ_CFLAGS) $(CRYPTO_CFLAGS) $(SYSTEMD_CFLAGS)
lib_libkwcore_la_LIBADD = $(SQLITE_LIBS) $(PQ_LIBS) $(CRYPTO_LIBS) $(SYSTEMD_LIBS)

KW_MIGRATIONS = \
	$(top_srcdir)/schema/001_init.sql \
	$(top_srcdir)/schema/002_sso_review.sql \
	$(top_srcdir)/schema/003_replay_without_rowid.sql \
	$(top_srcdir)/schema/004_notify_attempts.sql \
	$(top_srcdir)/schema/005_meta.sql \
	$(top_srcdir)/schema/006_sso_authn_request.sql \
	$(top_srcdir)/schema/007_web_sessions.sql \
	$(top_srcdir)/schema/008_scim_external_id.sql
EXTRA_DIST += schema/embed.sh $(KW_MIGRATIONS)
BUILT_SOURCES += lib/schema.c
CLEANFILES += lib/schema.c
lib/schema.c: $(top_srcdir)/schema/embed.sh $(KW_MIGRATIONS)
	$(AM_V_GEN)mkdir -p lib && $(SHELL) $(top_srcdir)/schema/embed.sh $@ $(KW_MIGRATIONS)

# The PostgreSQL migrations (issue 15), numbered on their own, embedded as kw_pg_migrations[].
KW_PG_MIGRATIONS = \
	$(top_srcdir)/schema/pg/001_init.sql
EXTRA_DIST += $(KW_PG_MIGRATIONS)
BUILT_SOURCES += lib/schema_pg.c
CLEANFILES += lib/schema_pg.c
lib/schema_pg.c: $(top_srcdir)/schema/embed.sh $(KW_PG_MIGRATIONS)
	$(AM_V_GEN)mkdir -p lib && $(SHELL) $(top_srcdir)/schema/embed.sh -n kw_pg_migrations $@ \
		$(KW_PG_MIGRATIONS)

KW_CORE_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS) $(CRYPTO_CFLAGS)
KW_CORE_LIBS = lib/libkwcore.la
