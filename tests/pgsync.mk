# tests/pgsync.mk: several hosts on one PostgreSQL database (issue 15, items 3 and 4): three
# validators and CLIs on a throwaway server (tests/pg/pgserver.sh), the lease of
# lib/store_lease.c under load, a frozen validator, a database restart, concurrent writers.
PGSYNC_TESTS = tests/pg/multihost.py
TESTS += $(PGSYNC_TESTS)
EXTRA_DIST += $(PGSYNC_TESTS) tests/pg/pgserver.sh tests/bench/bench_pg_sync.py
