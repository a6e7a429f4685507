"""kwpg.py: the tests' side of the PostgreSQL store (issue 15), for the Python tests.

When the environment variable KW_TEST_PG names a server folder (tests/pg/pgserver.sh start DIR;
run-tests.sh and `make check KW_TEST_PG=DIR` set it), every state folder a test helper makes
gets a fresh database of its own on that server (use()), and the programs run on it through
KEYWARDEN_STORE_URL (env()); the databases are dropped when the test ends. Without KW_TEST_PG
nothing changes: the programs use the state folder's SQLite file, keywarden.db.

Tests that read or change the database themselves go through connect() (a DB-API connection:
Python's sqlite3 or, on PostgreSQL, psycopg2 behind the same calls, `?` placeholders
included) or sql() (the sqlite3 shell or psql; output lines as the sqlite3 shell prints
them, '|' between columns). The SQL must be portable: the table user is written "user".

Server (start/stop of a throwaway server, for tests/pg/schema.py and run-tests.sh's kind of
use) stops the server at exit; pgserver.sh's watchdog stops it even if this process is
killed."""
import atexit
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.environ.get("top_srcdir", os.path.join(HERE, "..", ".."))
PGSERVER = os.path.join(TOP_SRCDIR, "tests", "pg", "pgserver.sh")
PSQL = "psql"

_dbs = {}  # state folder (absolute) -> (database name, URL)


def server():
    """The server folder of KW_TEST_PG, or None (the tests run on SQLite)."""
    return os.environ.get("KW_TEST_PG") or None


def pgserver(*args):
    """Runs tests/pg/pgserver.sh ARGS; returns its output (one line)."""
    p = subprocess.run(["sh", PGSERVER] + list(args), capture_output=True, text=True,
                       timeout=120)
    if p.returncode != 0:
        raise RuntimeError("pgserver.sh %s: exit %d: %s" % (" ".join(args), p.returncode,
                                                           p.stderr.strip()))
    return p.stdout.strip()


def db_name(folder):
    """A database name made from FOLDER's path below the temporary folder (unique as that
    path is): /tmp/kw-val.ab_12/state gives kw_kw_val_ab_12_state."""
    folder = os.path.abspath(folder)
    tmp = os.path.abspath(tempfile.gettempdir())
    rel = os.path.relpath(folder, tmp) if folder.startswith(tmp + os.sep) else folder
    name = "kw_" + re.sub(r"[^A-Za-z0-9_]", "_", rel).strip("_")
    return name if len(name) <= 63 else "kw_" + name[-60:]


def use(folder):
    """When KW_TEST_PG is set: makes FOLDER's database (once), exports its URL in
    os.environ["KEYWARDEN_STORE_URL"] (the programs this process starts from now on inherit
    it) and returns it. None, and nothing done, otherwise."""
    if server() is None:
        return None
    folder = os.path.abspath(folder)
    if folder not in _dbs:
        if not _dbs:
            atexit.register(_drop_all)
        name = db_name(folder)
        _dbs[folder] = (name, pgserver("newdb", server(), name))
    url = _dbs[folder][1]
    os.environ["KEYWARDEN_STORE_URL"] = url
    return url


def url(folder):
    """FOLDER's database URL (made when missing), or None on SQLite."""
    if server() is None:
        return None
    folder = os.path.abspath(folder)
    if folder not in _dbs:
        saved = os.environ.get("KEYWARDEN_STORE_URL")
        use(folder)
        if saved is not None:
            os.environ["KEYWARDEN_STORE_URL"] = saved
    return _dbs[folder][1]


def env(folder, base=None):
    """BASE (default: a copy of os.environ) with KEYWARDEN_STORE_URL for FOLDER's database
    when KW_TEST_PG is set; a plain copy otherwise."""
    e = dict(os.environ if base is None else base)
    u = url(folder)
    if u is not None:
        e["KEYWARDEN_STORE_URL"] = u
    return e


def _drop_all():
    d = server()
    for name, _ in list(_dbs.values()):
        try:
            pgserver("dropdb", d, name)
        except (RuntimeError, OSError, subprocess.SubprocessError):
            pass
    _dbs.clear()


def sql(folder, statement):
    """Runs STATEMENT (one or more, portable SQL) on FOLDER's store with the sqlite3 shell or
    psql; returns the output lines (columns joined by '|'). Raises RuntimeError on an error."""
    u = url(folder)
    if u is None:
        argv = ["sqlite3", "-bail", os.path.join(folder, "keywarden.db")]
    else:
        argv = [PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", u]
    p = subprocess.run(argv, input=statement, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (argv[0], p.stderr))
    return p.stdout.splitlines()


def blob(data):
    """DATA (bytes) as an SQL literal of the backend: X'..' for SQLite, '\\x..'::bytea for
    PostgreSQL (each backend reads the other's as something else)."""
    if server() is None:
        return "X'%s'" % data.hex()
    return "'\\x%s'::bytea" % data.hex()


def _placeholders(statement):
    """sqlite3's `?` placeholders as psycopg2's %s (and a literal % doubled), outside quotes."""
    out, quote = [], None
    for c in statement:
        if quote is not None:
            if c == quote:
                quote = None
        elif c in ("'", '"'):
            quote = c
        elif c == "?":
            out.append("%s")
            continue
        if c == "%":
            out.append("%%")
            continue
        out.append(c)
    return "".join(out)


def _row(r):
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)


class _Cursor:
    def __init__(self, cur):
        self.cur = cur
        self.rowcount = cur.rowcount

    def fetchone(self):
        # a statement without rows (UPDATE...) fetches nothing, as in sqlite3
        r = self.cur.fetchone() if self.cur.description is not None else None
        return None if r is None else _row(r)

    def fetchall(self):
        if self.cur.description is None:
            return []
        return [_row(r) for r in self.cur.fetchall()]

    def __iter__(self):
        return iter(self.fetchall())


class PgConnection:
    """The calls of a sqlite3.Connection that the tests use, on psycopg2."""

    def __init__(self, u):
        import psycopg2  # Debian's python3-psycopg2, needed only with KW_TEST_PG
        self.conn = psycopg2.connect(u)

    def execute(self, statement, args=()):
        cur = self.conn.cursor()
        if args:
            cur.execute(_placeholders(statement), tuple(args))
        else:
            cur.execute(statement)
        return _Cursor(cur)

    def commit(self):
        gen = self._bump()
        self.conn.commit()
        if gen is not None:
            self._wait_acks(gen)

    def _bump(self):
        """A test's direct write counts as a change for the validators, as any commit does on
        SQLite (PRAGMA data_version): the generation moves, as keywarden's writers move it
        (lib/store_pg.c), when the transaction wrote anything. Returns it (None: no write)."""
        cur = self.conn.cursor()
        cur.execute("WITH g AS (UPDATE keywarden_generation SET gen = gen + 1 WHERE "
                    "txid_current_if_assigned() IS NOT NULL RETURNING gen) "
                    "SELECT gen, pg_notify('keywarden', gen::text) FROM g")
        row = cur.fetchone()
        return row[0] if row else None

    def _wait_acks(self, gen):
        """As keywarden's writers do after COMMIT: until every validator whose lease holds has
        acknowledged GEN (dropped what it cached), so that the next CHECK sees the write."""
        import time
        delay, deadline = 0.001, time.monotonic() + 70
        while time.monotonic() < deadline:
            cur = self.conn.cursor()
            cur.execute("SELECT count(*) FROM keywarden_validator WHERE acked < %s AND "
                        "lease_until > (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
                        (gen,))
            waiting = cur.fetchone()[0]
            self.conn.commit()
            if waiting == 0:
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.01)

    def rollback(self):
        self.conn.rollback()

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is None:
            self.commit()
        else:
            self.conn.rollback()
        return False


def connect(folder, **sqlite_args):
    """A connection to FOLDER's store: sqlite3.connect(FOLDER/keywarden.db, **sqlite_args),
    or a PgConnection on FOLDER's database when KW_TEST_PG is set."""
    u = url(folder)
    if u is None:
        return sqlite3.connect(os.path.join(folder, "keywarden.db"), **sqlite_args)
    return PgConnection(u)


class Server:
    """A throwaway server of tests/pg/pgserver.sh in a temporary folder of its own."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kw-pg.")
        os.chmod(self.dir, 0o755)
        self.url = None

    def start(self):
        """Starts it (a watchdog stops it if this process dies); returns the superuser URL."""
        atexit.register(self.stop)
        self.url = pgserver("start", self.dir, str(os.getpid()))
        return self.url

    def newdb(self, name):
        return pgserver("newdb", self.dir, name)

    def dropdb(self, name):
        pgserver("dropdb", self.dir, name)

    def stop(self):
        if self.dir is None:
            return
        try:
            pgserver("stop", self.dir)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
