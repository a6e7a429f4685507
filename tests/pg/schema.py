#!/usr/bin/python3
"""schema.py: the PostgreSQL schema (schema/pg/001_init.sql) against the SQLite one (issue 15).

Starts a throwaway PostgreSQL 15 with tests/pg/pgserver.sh (its start, roles, socket reachable
by another uid, password role, newdb, dropdb, watchdog and stop are checked on the way), loads
the PostgreSQL schema with psql -v ON_ERROR_STOP=1 and, as the C code does, in one
multi-statement execute; builds the SQLite schema by applying schema/001 ... 008 with the
sqlite3 shell; then compares them table by table: columns (names, order, types mapped
INTEGER/TEXT/BLOB -> bigint/text/bytea, NOT NULL, defaults, collation), the primary key and its
identity, UNIQUE constraints, foreign keys, the columns of every CHECK, the named indexes
(columns, unique, partial); the role rows; and the two tables PostgreSQL has on top."""
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "notify"))
import kwpg  # noqa: E402
from kwtest import Tap  # noqa: E402

TOP_SRCDIR = kwpg.TOP_SRCDIR
SQLITE_MIGRATIONS = sorted(os.path.join(TOP_SRCDIR, "schema", f)
                           for f in os.listdir(os.path.join(TOP_SRCDIR, "schema"))
                           if re.match(r"^\d{3}_.*\.sql$", f))
PG_SCHEMA = os.path.join(TOP_SRCDIR, "schema", "pg", "001_init.sql")
PG_ONLY = {"keywarden_generation", "keywarden_validator"}
TYPES = {"INTEGER": "bigint", "TEXT": "text", "BLOB": "bytea"}
# Primary keys that are a reference to another table's row, not an id of their own.
t = Tap()


def psql(u, *args, **kw):
    return subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", u]
                          + list(args), capture_output=True, text=True, timeout=60, **kw)


# ---- the SQLite side: its catalog, and the CHECKs and collations parsed from its SQL ----

def top_level(body):
    """BODY (between CREATE TABLE's parentheses) split at its top-level commas."""
    parts, depth, cur = [], 0, ""
    for c in body:
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    parts.append(cur)
    return [re.sub(r"--[^\n]*", "", p).strip() for p in parts]


def checks_of(text):
    """The expressions of the CHECK (...) clauses in TEXT."""
    out = []
    for m in re.finditer(r"\bCHECK\s*\(", text, re.I):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        out.append(text[m.end():i - 1])
    return out


def sqlite_schema(path):
    db = sqlite3.connect(path)
    tables = {}
    for name, sql in db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND "
                                "name NOT LIKE 'sqlite_%' ORDER BY name"):
        cols = [(r[1], r[2].upper(), bool(r[3]) or r[5] > 0, r[4], r[5])
                for r in db.execute("PRAGMA table_info(\"%s\")" % name)]
        colnames = [c[0] for c in cols]
        body = sql[sql.index("(") + 1:sql.rindex(")")]
        collate = {}
        checks = []
        for item in top_level(body):
            first = item.split()[0] if item.split() else ""
            m = re.search(r"\bCOLLATE\s+(\w+)", item, re.I)
            if m and first in colnames:
                collate[first] = m.group(1).lower()
            for expr in checks_of(item):
                idents = set(re.findall(r"[A-Za-z_]\w*", expr)) & set(colnames)
                checks.append(tuple(sorted(idents)))
        pk = tuple(c[0] for c in sorted((c for c in cols if c[4] > 0), key=lambda c: c[4]))
        unique, indexes = set(), {}
        for _, iname, uniq, origin, partial in db.execute("PRAGMA index_list(\"%s\")" % name):
            icols = tuple(r[2] for r in db.execute("PRAGMA index_info(\"%s\")" % iname))
            if origin == "u":
                unique.add(icols)
            elif origin == "pk":
                pk = icols
            else:
                indexes[iname] = (icols, bool(uniq), bool(partial))
        fks = set((r[3], r[2], r[4]) for r in db.execute("PRAGMA foreign_key_list(\"%s\")" % name))
        # A rowid alias (a lone INTEGER PRIMARY KEY) that refers to no other row: an id of its
        # own, which PostgreSQL gives by an identity column.
        fk_cols = set(f[0] for f in fks)
        ident = set()
        if len(pk) == 1 and dict((c[0], c[1]) for c in cols)[pk[0]] == "INTEGER" and \
                pk[0] not in fk_cols:
            ident.add(pk[0])
        tables[name] = {
            "columns": [(c[0], TYPES.get(c[1], "?" + c[1]), c[2], c[3], collate.get(c[0]))
                        for c in cols],
            "pk": pk, "unique": unique, "fks": fks, "checks": sorted(checks),
            "indexes": indexes, "identity": ident,
        }
    roles = db.execute("SELECT id, name, rank FROM role ORDER BY id").fetchall()
    db.close()
    return tables, roles


# ---- the PostgreSQL side, from its catalog ----

def pg_default(d):
    if d is None:
        return None
    return re.sub(r"::[a-z ]+$", "", d)


def pg_schema(conn):
    cur = conn.cursor()
    cur.execute("SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON "
                "n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'")
    tables = {}
    for oid, name in cur.fetchall():
        c2 = conn.cursor()
        c2.execute("SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), "
                   "a.attnotnull, pg_get_expr(d.adbin, d.adrelid), co.collname, a.attidentity "
                   "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND "
                   "d.adnum = a.attnum LEFT JOIN pg_collation co ON co.oid = a.attcollation "
                   "AND a.attcollation <> 100 "
                   "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped "
                   "ORDER BY a.attnum", (oid,))
        rows = c2.fetchall()
        num = {r[0]: r[1] for r in rows}
        cols = [(r[1], r[2], r[3], pg_default(r[4]),
                 r[5] if r[5] not in (None, "default") else None) for r in rows]
        ident = set(r[1] for r in rows if r[6] == "d")
        always = set(r[1] for r in rows if r[6] == "a")
        c2.execute("SELECT contype, conkey, confrelid::regclass::text, confkey, conindid "
                   "FROM pg_constraint WHERE conrelid = %s", (oid,))
        pk, unique, fks, checks, conidx = (), set(), set(), [], set()
        for contype, conkey, confrel, confkey, conindid in c2.fetchall():
            names = tuple(num[k] for k in conkey)
            conidx.add(conindid)
            if contype == "p":
                pk = names
            elif contype == "u":
                unique.add(names)
            elif contype == "f":
                c3 = conn.cursor()
                c3.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
                           "AND attnum = %s", (confrel, confkey[0]))
                fks.add((names[0], confrel.strip('"'), c3.fetchone()[0]))
            elif contype == "c":
                checks.append(tuple(sorted(names)))
        c2.execute("SELECT i.indexrelid, ic.relname, i.indkey::int2[], i.indisunique, "
                   "i.indpred IS NOT NULL FROM pg_index i JOIN pg_class ic ON "
                   "ic.oid = i.indexrelid WHERE i.indrelid = %s", (oid,))
        indexes = {}
        for ioid, iname, keys, uniq, partial in c2.fetchall():
            if ioid not in conidx:
                indexes[iname] = (tuple(num[k] for k in keys), uniq, partial)
        tables[name] = {"columns": cols, "pk": pk, "unique": unique, "fks": fks,
                        "checks": sorted(checks), "indexes": indexes, "identity": ident,
                        "always": always}
    cur.execute('SELECT id, name, rank FROM role ORDER BY id')
    roles = cur.fetchall()
    return tables, roles


def compare(name, lite, pg):
    """Per aspect: a list of differences (empty: equal)."""
    diffs = {}
    lc, pc = lite["columns"], pg["columns"]
    d = []
    if [c[0] for c in lc] != [c[0] for c in pc]:
        d.append("columns: sqlite %s, pg %s" % ([c[0] for c in lc], [c[0] for c in pc]))
    pcd = {c[0]: c for c in pc}
    for col, typ, notnull, dflt, coll in lc:
        p = pcd.get(col)
        if p is None:
            continue
        if typ != p[1]:
            d.append("%s: type %s, pg %s" % (col, typ, p[1]))
        if notnull != p[2]:
            d.append("%s: NOT NULL %s, pg %s" % (col, notnull, p[2]))
        if dflt != p[3] and col not in pg["identity"]:
            d.append("%s: default %r, pg %r" % (col, dflt, p[3]))
        if coll != p[4]:
            d.append("%s: collation %r, pg %r" % (col, coll, p[4]))
    diffs["columns (names, order, types, NOT NULL, defaults, collations)"] = d
    d = []
    if lite["pk"] != pg["pk"]:
        d.append("primary key %s, pg %s" % (lite["pk"], pg["pk"]))
    if lite["identity"] != pg["identity"] or pg["always"]:
        d.append("identity (BY DEFAULT) columns: want %s, pg %s, pg ALWAYS %s"
                 % (sorted(lite["identity"]), sorted(pg["identity"]), sorted(pg["always"])))
    if lite["unique"] != pg["unique"]:
        d.append("UNIQUE %s, pg %s" % (sorted(lite["unique"]), sorted(pg["unique"])))
    diffs["primary key, identity, UNIQUE"] = d
    d = []
    if lite["fks"] != pg["fks"]:
        d.append("sqlite %s\npg     %s" % (sorted(lite["fks"]), sorted(pg["fks"])))
    diffs["foreign keys"] = d
    d = []
    if lite["checks"] != pg["checks"]:
        d.append("columns of the CHECKs: sqlite %s, pg %s" % (lite["checks"], pg["checks"]))
    if lite["indexes"] != pg["indexes"]:
        d.append("indexes: sqlite %s\npg %s" % (lite["indexes"], pg["indexes"]))
    diffs["CHECKs and named indexes"] = d
    return diffs


def wait_for(cond, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def main():
    import psycopg2
    srv = kwpg.Server()
    try:
        su = srv.start()
    except RuntimeError as e:
        t.ok(False, "pgserver.sh start", e)
        t.done()
    t.ok(su == "postgresql:///postgres?host=%s&user=postgres" % srv.dir,
         "pgserver.sh start prints the superuser's URL", su)
    p = psql(su, "-c", "SHOW fsync; SHOW listen_addresses; SHOW max_connections; "
             "SELECT rolname FROM pg_roles WHERE rolname IN ('keywarden', 'kwpass') "
             "ORDER BY 1")
    t.eq(p.stdout.split("\n")[:5], ["off", "", "300", "keywarden", "kwpass"],
         "a test server: fsync off, no TCP, 300 connections, roles keywarden and kwpass")
    st = os.stat(os.path.join(srv.dir, "data"))
    t.ok(st.st_uid != 0 and (st.st_mode & 0o777) == 0o700,
         "the cluster belongs to an unprivileged user, mode 0700", (st.st_uid, oct(st.st_mode)))

    u = srv.newdb("kw_schema")
    t.eq(u, "postgresql:///kw_schema?host=%s&user=keywarden" % srv.dir,
         "pgserver.sh newdb prints the database's URL")
    p = psql(u, "-c", "SELECT current_user, pg_get_userbyid(datdba) FROM pg_database "
             "WHERE datname = current_database()")
    t.eq(p.stdout.strip(), "keywarden|keywarden", "the database belongs to keywarden")
    if os.getuid() == 0:
        q = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "psql", "-X", "-A", "-t", "-d", u, "-c", "SELECT 1"],
                           capture_output=True, text=True, timeout=60, cwd="/")
        t.ok(q.returncode == 0 and q.stdout.strip() == "1",
             "another uid (nobody) reaches the socket", q.stderr)
    else:
        t.ok(os.stat(srv.dir).st_mode & 0o005 == 0o005,
             "the socket's folder is open to other uids")

    # kwpass: its SCRAM password, from a 0600 password file (PGPASSFILE).
    pw = open(os.path.join(srv.dir, "kwpass.password")).read().strip()
    pwdir = tempfile.mkdtemp(prefix="kw-pgpass.")
    try:
        passfile = os.path.join(pwdir, "pgpass")
        kwpass_url = u.replace("user=keywarden", "user=kwpass")
        for word, want in (("wrong", False), (pw, True)):
            fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, ("*:*:*:kwpass:%s\n" % word).encode())
            os.close(fd)
            q = subprocess.run(["psql", "-X", "-A", "-t", "-w", "-d", kwpass_url, "-c",
                                "SELECT current_user"], capture_output=True, text=True,
                               timeout=60, env=dict(os.environ, PGPASSFILE=passfile))
            t.ok((q.returncode == 0 and q.stdout.strip() == "kwpass") == want,
                 "kwpass with %s password from a PGPASSFILE: %s" % (
                     "its" if want else "a wrong", "in" if want else "refused"),
                 q.stdout + q.stderr)
    finally:
        subprocess.run(["rm", "-rf", pwdir])

    p = psql(u, "-f", PG_SCHEMA)
    t.ok(p.returncode == 0 and p.stderr == "", "psql -v ON_ERROR_STOP=1 loads "
         "schema/pg/001_init.sql, silently", p.stderr)
    # As the C code applies a migration: the whole file in one multi-statement execute.
    u2 = srv.newdb("kw_schema_once")
    conn = psycopg2.connect(u2)
    try:
        with conn, conn.cursor() as c:
            c.execute(open(PG_SCHEMA).read())
        once = True
    except psycopg2.Error as e:
        once = str(e)
    t.ok(once is True, "... and in one execute of the whole file", once)
    conn.close()

    # The SQLite schema, as 001 ... 008 make it with the sqlite3 shell.
    work = tempfile.mkdtemp(prefix="kw-pgschema.")
    try:
        lite_db = os.path.join(work, "keywarden.db")
        errs = ""
        for f in SQLITE_MIGRATIONS:
            with open(f) as fh:
                q = subprocess.run(["sqlite3", "-bail", lite_db], stdin=fh, capture_output=True,
                                   text=True, timeout=60)
            errs += q.stderr
        t.ok(len(SQLITE_MIGRATIONS) >= 8 and errs == "",
             "the sqlite3 shell applies the %d SQLite migrations" % len(SQLITE_MIGRATIONS), errs)
        lite, lite_roles = sqlite_schema(lite_db)
    finally:
        subprocess.run(["rm", "-rf", work])

    conn = psycopg2.connect(u)
    pg, pg_roles = pg_schema(conn)
    t.eq(sorted(set(pg) - set(lite)), sorted(PG_ONLY),
         "PostgreSQL has every SQLite table, and on top only " + ", ".join(sorted(PG_ONLY)))
    for name in sorted(lite):
        if name not in pg:
            t.ok(False, "table %s exists in PostgreSQL" % name)
            continue
        for aspect, d in compare(name, lite[name], pg[name]).items():
            t.ok(not d, "%s: %s as in SQLite" % (name, aspect), "\n".join(d))
    t.eq(pg_roles, lite_roles, "the role rows are the same (id, name, rank)")

    cur = conn.cursor()
    cur.execute("SELECT * FROM keywarden_generation")
    gen = cur.fetchall()
    cur.execute("SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_name = 'keywarden_validator' ORDER BY ordinal_position")
    val = cur.fetchall()
    t.ok(gen == [(1, 0)] and val == [("id", "text", "NO"), ("host", "text", "NO"),
                                     ("pid", "bigint", "NO"), ("acked", "bigint", "NO"),
                                     ("lease_until", "bigint", "NO")],
         "keywarden_generation holds (1, 0); keywarden_validator (id, host, pid, acked, "
         "lease_until)", (gen, val))
    cur.execute("SELECT count(*) FROM keywarden_generation")
    try:
        cur.execute("INSERT INTO keywarden_generation VALUES (2, 0)")
        two = "accepted"
    except psycopg2.Error:
        two = "refused"
    conn.rollback()
    t.eq(two, "refused", "keywarden_generation takes no second row")

    # Behaviour the C code relies on, each in a transaction rolled back.
    def attempt(statements):
        try:
            for s in statements:
                cur.execute(s)
            r = cur.fetchall() if cur.description else None
        except psycopg2.Error as e:
            r = "error: " + e.pgcode
        conn.rollback()
        return r
    t.eq(attempt(["INSERT INTO role (name, rank) VALUES ('x', 5) RETURNING id"]), [(6,)],
         "a new role without an id gets 6: the sequence is past the seeded rows")
    setup = ["INSERT INTO account (id, name, created) VALUES (7, 'acme', 1)",
             "INSERT INTO \"user\" (account_id, login, role_id, created) VALUES (7, 'a', 1, 1)"]
    t.eq(attempt(setup + ["INSERT INTO account (name, created) VALUES ('b', 1) RETURNING id",
                          "SELECT id, token_limit, (SELECT enabled || source FROM \"user\") "
                          "FROM account ORDER BY id"]),
         [(1, 50, "1local"), (7, 50, "1local")],
         "an explicit id is accepted, the defaults are SQLite's (limit 50, enabled 1, local)")
    tok = ("INSERT INTO token (account_id, issuer_id, name, role_id, digest, created) "
           "SELECT 7, id, 't', 1, decode(repeat('ab', %d), 'hex'), 1 FROM \"user\"")
    t.eq(attempt(setup + [tok % 31]), "error: 23514", "a digest of 31 bytes is refused (CHECK)")
    ids = []
    for s in setup + [tok % 32 + " RETURNING id", "DELETE FROM token",
                      tok % 32 + " RETURNING id"]:
        cur.execute(s)
        if s.endswith("RETURNING id"):
            ids.append(cur.fetchone()[0])
    conn.rollback()
    t.ok(ids[1] > ids[0], "a token id is never given twice, even after its row is gone", ids)
    t.eq(attempt(setup + [tok % 32, "INSERT INTO notification_attempt VALUES "
                          "((SELECT id FROM token), 7, 'Alice@Example.COM', 1, 1, 1, 'x')",
                          "INSERT INTO notification_attempt VALUES ((SELECT id FROM token), 7, "
                          "'alice@example.com', 1, 2, 2, 'y') ON CONFLICT (token_id, threshold, "
                          "recipient) DO UPDATE SET attempts = notification_attempt.attempts + 1",
                          "SELECT attempts, (SELECT count(*) FROM role WHERE name = "
                          "'engineers' COLLATE NOCASE) FROM notification_attempt"]),
         [(2, 1)], "recipients and COLLATE NOCASE compare without case, as in SQLite")
    t.eq(attempt(setup + ["INSERT INTO sso_case (account_id, user_id, kind, reason, opened, "
                          "updated, closed) SELECT 7, id, 'stale', 'r', 1, 1, 5 FROM \"user\""]),
         "error: 23514", "a case closed without closed_by is refused (table CHECK)")
    conn.close()

    srv.dropdb("kw_schema_once")
    p = psql(su, "-c", "SELECT count(*) FROM pg_database WHERE datname LIKE 'kw_schema%'")
    t.eq(p.stdout.strip(), "1", "pgserver.sh dropdb drops the database")

    # The watchdog: a server whose owner dies is stopped without anyone calling stop.
    orphan = kwpg.Server()
    owner = subprocess.Popen(["sleep", "600"])
    try:
        kwpg.pgserver("start", orphan.dir, str(owner.pid))
        pidfile = os.path.join(orphan.dir, "data", "postmaster.pid")
        up = os.path.exists(pidfile)
        owner.kill()
        owner.wait()
        t.ok(up and wait_for(lambda: not os.path.exists(pidfile)),
             "a server whose owner process died stops by itself (watchdog)")
    finally:
        owner.kill()
        orphan.stop()

    # A failed start leaves nothing behind.
    bad = tempfile.mkdtemp(prefix="kw-pg.")
    try:
        os.mkdir(os.path.join(bad, "srv"))
        os.chmod(bad, 0o755)
        srvdir = os.path.join(bad, "srv")
        os.makedirs(os.path.join(srvdir, "data"))
        q = subprocess.run(["sh", kwpg.PGSERVER, "start", srvdir], capture_output=True,
                           text=True, timeout=60)
        t.ok(q.returncode != 0 and "exists" in q.stderr, "start refuses a used folder",
             q.stderr)
        os.rmdir(os.path.join(srvdir, "data"))
        # An unreachable folder: no server, and no files left (but the caller's folder).
        if os.getuid() == 0:
            os.chmod(bad, 0o700)
            q = subprocess.run(["sh", kwpg.PGSERVER, "start", srvdir], capture_output=True,
                               text=True, timeout=60)
            t.ok(q.returncode != 0 and "cannot reach" in q.stderr and os.listdir(srvdir) == [],
                 "start in a folder the server user cannot reach fails and cleans up",
                 (q.stderr, os.listdir(srvdir)))
    finally:
        subprocess.run(["rm", "-rf", bad])

    sock = os.path.join(srv.dir, ".s.PGSQL.5432")
    d = srv.dir
    srv.stop()
    t.ok(not os.path.exists(sock) and not os.path.exists(d),
         "pgserver.sh stop stops the server (and the test removes its folder)")
    t.done()


if __name__ == "__main__":
    main()
