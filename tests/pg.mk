# tests/pg.mk: the PostgreSQL store (issue 15): the throwaway server of the tests
# (tests/pg/pgserver.sh), the Python side of the switch (tests/pg/kwpg.py), and the schema of
# schema/pg/ compared with the SQLite one (tests/pg/schema.py, which starts its own server).
TESTS += tests/pg/schema.py
EXTRA_DIST += tests/pg/pgserver.sh tests/pg/kwpg.py tests/pg/schema.py

# KW_TEST_PG=DIR (a server started with `tests/pg/pgserver.sh start DIR`) runs the tests on
# PostgreSQL: each test's state folders get a fresh database there, and the programs use it
# through KEYWARDEN_STORE_URL. run-tests.sh does
#   make check TESTS="$(KW_PG_TESTS)" KW_TEST_PG=DIR
AM_TESTS_ENVIRONMENT += KW_TEST_PG='$(KW_TEST_PG)'; export KW_TEST_PG;
