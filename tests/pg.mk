# tests/pg.mk: the PostgreSQL store (issue 15): the throwaway server of the tests
# (tests/pg/pgserver.sh), the Python side of the switch (tests/pg/kwpg.py), and the schema of
# schema/pg/ compared with the SQLite one (tests/pg/schema.py, which starts its own server).
# tests/pg/multihost.py: several hosts on one database (three validators and CLIs under load,
# the lease of lib/store_lease.c, a frozen validator, a database restart, concurrent writers,
# a batch that outlasts the lease, a delete of a token already deleted, the SSO review's snapshot).
TESTS += tests/pg/schema.py tests/pg/store.py tests/pg/multihost.py tests/pg/ssod_reconnect.py
EXTRA_DIST += tests/pg/pgserver.sh tests/pg/kwpg.py tests/pg/schema.py tests/pg/store.py \
	tests/pg/multihost.py tests/pg/ssod_reconnect.py tests/bench/bench_pg_sync.py

# KW_TEST_PG=DIR (a server started with `tests/pg/pgserver.sh start DIR`) runs the tests on
# PostgreSQL: each test's state folders get a fresh database there, and the programs use it
# through KEYWARDEN_STORE_URL (never inherited from the caller: a test sets it or has none).
# run-tests.sh (KW_RUN_PG_TESTS=1) does
#   make check TESTS="$(KW_PG_TESTS)" KW_TEST_PG=DIR
AM_TESTS_ENVIRONMENT += KW_TEST_PG='$(KW_TEST_PG)'; export KW_TEST_PG; unset KEYWARDEN_STORE_URL;

# The integration tests that must pass on PostgreSQL as they do on SQLite: every one that
# keeps state in the store (CLI rules, the SSO rule, the validator's protocol, PAM, SAML,
# ssod, the API, SCIM, the pages, notify, audit, reports, the units' system calls).
KW_PG_TESTS = \
	tests/cli/rules.sh tests/cli/bad_input.sh \
	tests/sso/sync.sh tests/sso/rule.sh \
	tests/systemd_units.sh \
	tests/validator/protocol.py tests/validator/audit.py tests/validator/peergroups.py \
	tests/validator/stale.py tests/validator/clients.py tests/validator/spec.py \
	tests/validator/systemd.py tests/validator/emfile.py tests/validator/slots.py \
	tests/validator/wipe.py tests/validator/debuglog.py tests/validator/http.py \
	tests/validator/memo.py tests/validator/busypoll.py $(KW_PG_ONLY_TESTS) \
	tests/nginx/nginx.py \
	tests/pam/test_pam.py tests/pam/test_cli_check.py \
	tests/saml/corpus.py tests/saml/attacks.py \
	tests/notify/smtp.py tests/audit/tamper.py tests/report/report.py \
	tests/ssod/idp.py tests/ssod/rule.py tests/ssod/hardening.py tests/ssod/text.py \
	tests/ssod/pysaml2_idp.py tests/ssod/simplesamlphp_idp.py \
	tests/api/rules.py tests/api/errors.py tests/api/openapi.py tests/api/session.py \
	tests/api/tokens.py \
	tests/scim/deprovision.py tests/scim/protocol.py tests/scim/roles.py tests/scim/config.py \
	tests/page/browser.py

# The complement: integration tests about SQLite itself, run on SQLite only.
#   tests/cli/no_secret_at_rest.sh  scans the state folder's database, WAL and journal files
#   tests/cli/text.sh            stores invalid UTF-8 (CAST(X'..' AS TEXT)), which PostgreSQL's
#                                text refuses at the door
#   tests/cli/state_guard.sh     the database file: empty, replaced, foreign, unreadable
#   tests/cli/full_disk.sh       a full file system under the database file, its reserve file
#   tests/validator/replaced.py  the database file replaced under a running validator
#   tests/audit/sigkill.py       kills inside SQLite's commit (a breakpoint on sqlite3_wal_hook)
#   tests/ssod/flood.py          holds SQLite's write lock (BEGIN IMMEDIATE) to stall the store
# The others use no store (unit tests, fuzzing, libkeywarden against fake servers, exports,
# tests/pg/schema.py with a server of its own) and run once.
KW_SQLITE_ONLY_TESTS = \
	tests/cli/no_secret_at_rest.sh tests/cli/text.sh \
	tests/cli/state_guard.sh tests/cli/full_disk.sh tests/validator/replaced.py \
	tests/audit/sigkill.py tests/ssod/flood.py

# Tests of what only a database server has (the validator's lease): in the PostgreSQL round
# alone, not in TESTS.
KW_PG_ONLY_TESTS = tests/validator/memo_lease.py
EXTRA_DIST += $(KW_PG_ONLY_TESTS)

# `make print-pg-tests`: the list, for run-tests.sh.
print-pg-tests:
	@echo $(KW_PG_TESTS)
.PHONY: print-pg-tests
