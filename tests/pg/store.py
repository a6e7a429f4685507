#!/usr/bin/python3
"""store.py: choosing and opening a PostgreSQL store (issue 15), on a throwaway server of its own.

What an administrator meets first: KEYWARDEN_STORE_URL and [store] url, `keywarden init` on an
empty database (and again), what is refused with exit 8 and a clear message (a foreign database,
one that was never initialised, a newer schema, another digest key, an unknown URL scheme, an
unreachable server, a wrong password), that a password never reaches a message, that a
password file works, and that the store's rules hold when several processes write at once
(the token limit, the audit chain)."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "notify"))
import kwpg  # noqa: E402
from kwtest import Tap  # noqa: E402

BUILD = os.environ.get("top_builddir", ".")
KEYWARDEN = os.path.join(BUILD, "keywarden")
EXIT_STATE = 8
t = Tap()
srv = kwpg.Server()
tmp = tempfile.mkdtemp(prefix="kw-pgstore.")


def state(name, url=None, conf=None):
    d = os.path.join(tmp, name)
    os.makedirs(d, mode=0o700, exist_ok=True)
    if conf is not None:
        with open(os.path.join(d, "keywarden.conf"), "w") as f:
            f.write(conf)
    return d


def kw(folder, *args, url=None, stdin=None):
    env = dict(os.environ)
    env.pop("KEYWARDEN_STORE_URL", None)
    if url is not None:
        env["KEYWARDEN_STORE_URL"] = url
    p = subprocess.run([KEYWARDEN, "--state-dir", folder] + list(args), env=env,
                       capture_output=True, text=True, timeout=60, input=stdin)
    return p.returncode, p.stdout, p.stderr


def psql(u, sql):
    return subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", u,
                           "-c", sql], capture_output=True, text=True, timeout=60)


try:
    srv.start()
    d = srv.dir

    # ---- init, and the two ways to name the store ----
    u1 = srv.newdb("one")
    a = state("a")
    rc, out, err = kw(a, "init", url=u1)
    t.ok(rc == 0 and "postgresql:///one" in err, "init on an empty database (URL from "
         "KEYWARDEN_STORE_URL)", [rc, err])
    t.ok(not os.path.exists(os.path.join(a, "keywarden.db")), "no SQLite file is made")
    rc, out, err = kw(a, "init", url=u1)
    t.eq(rc, 0, "init again: nothing to do")
    t.eq(psql(u1, "SELECT value FROM meta WHERE name = 'schema_version'").stdout.strip(), "1",
         "the schema version is recorded in meta")
    rc, _, err = kw(a, "account", "add", "acme", url=u1)
    t.eq(rc, 0, "account add on PostgreSQL")
    b = state("b", conf="[store]\nurl = %s\n" % u1)
    with open(os.path.join(a, "keywarden.key"), "rb") as f:
        key = f.read()
    with open(os.path.join(b, "keywarden.key"), "wb") as f:
        f.write(key)
    os.chmod(os.path.join(b, "keywarden.key"), 0o600)
    rc, out, err = kw(b, "user", "add", "--account", "acme", "alice", "--role",
                      "Administrators")
    t.eq(rc, 0, "[store] url in keywarden.conf: a second host (its own copy of the key) uses "
         "the same database")
    rc, out, _ = kw(a, "user", "list", "--account", "acme", url=u1)
    t.ok(rc == 0 and "alice" in out, "the first host sees the user the second one added")

    # ---- refused, with exit 8 and a message, changing nothing ----
    rc, _, err = kw(a, "account", "add", "x", url="mysql://localhost/kw")
    t.ok(rc == EXIT_STATE and "sqlite: or postgresql:" in err, "an unknown URL scheme is "
         "refused", [rc, err])
    u2 = srv.newdb("foreign")
    psql(u2, "CREATE TABLE payroll (id int)")
    rc, _, err = kw(state("c"), "init", url=u2)
    t.ok(rc == EXIT_STATE and "not a keywarden database" in err, "a database holding other "
         "tables is refused, even by init", [rc, err])
    t.eq(psql(u2, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").stdout.strip(),
         "1", "and nothing was created in it")
    u3 = srv.newdb("empty")
    rc, _, err = kw(state("e"), "account", "add", "x", url=u3)
    t.ok(rc == EXIT_STATE and "only 'keywarden init'" in err, "an empty database is not made "
         "a store by any command but init", [rc, err])
    u4 = srv.newdb("newer")
    f = state("f")
    kw(f, "init", url=u4)
    psql(u4, "UPDATE meta SET value = '99' WHERE name = 'schema_version'")
    rc, _, err = kw(f, "account", "add", "x", url=u4)
    t.ok(rc == EXIT_STATE and "newer than this program" in err, "a newer schema is refused",
         [rc, err])
    g = state("g")
    rc, _, err = kw(g, "init", url=u1)  # a new key of its own, against a's database
    t.ok(rc == EXIT_STATE and "key" in err, "a host with another digest key is refused",
         [rc, err])
    rc, _, err = kw(a, "account", "add", "y", url="postgresql:///one?host=%s/nowhere" % d)
    t.ok(rc == EXIT_STATE and "cannot connect to PostgreSQL" in err, "an unreachable server: "
         "a clear error", [rc, err])

    # ---- passwords: libpq's ways, never in a message ----
    with open(os.path.join(d, "kwpass.password")) as f:
        password = f.read().strip()
    psql(srv.url, "GRANT ALL ON DATABASE one TO kwpass")
    psql(u1, "GRANT ALL ON ALL TABLES IN SCHEMA public TO kwpass; "
         "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO kwpass")
    wrong = "postgresql://kwpass:not-%s@/one?host=%s" % (password, d)
    rc, _, err = kw(a, "account", "add", "z", url=wrong)
    t.ok(rc == EXIT_STATE and "authentication failed" in err and password not in err,
         "a wrong password: refused, and the message holds no password", [rc, err])
    right = "postgresql://kwpass:%s@/one?host=%s" % (password, d)
    rc, _, err = kw(a, "init", url=right)
    t.ok(rc == 0 and password not in err and "user=kwpass" in err,
         "a password in the URL works, and init's message names the user, not the password",
         [rc, err])
    rc, _, err = kw(a, "init", url="postgresql:///one?host=%s&user=kwpass&password=%s" %
                    (d, password))
    t.ok(rc == 0 and password not in err, "password= in the query works too, unseen", [rc, err])
    # URIs that libpq cannot parse: its message would quote them, password and all
    for bad in ("postgresql://u:secretXYZ@[::1/db", "postgresql://u:sec%zzretXYZ@/db",
                "postgresql://u:PASS?secretXYZ@[/db"):
        rc, _, err = kw(a, "account", "add", "q", url=bad)
        t.ok(rc == EXIT_STATE and "not a valid PostgreSQL URI" in err and "secretXYZ" not in err,
             "a malformed URI is refused without being quoted: %s" % bad.split("@")[0][:14],
             [rc, err])
    # the network: TLS that checks the server, or an explicit opt-out
    rc, _, err = kw(a, "account", "add", "q", url="postgresql://u:pwXYZ@db.invalid/kw")
    t.ok(rc == EXIT_STATE and "sslmode=verify-full" in err and "pwXYZ" not in err,
         "a server over the network without sslmode=verify-full is refused", [rc, err])
    h = state("h", conf="[store]\nunverified_tls = yes\n")
    rc, _, err = kw(h, "account", "add", "q", url="postgresql://u:pwXYZ@db.invalid/kw")
    t.ok(rc == EXIT_STATE and "cannot connect to PostgreSQL" in err and "pwXYZ" not in err,
         "unverified_tls = yes accepts it (here: no such host, a clear error)", [rc, err])
    rc, _, err = kw(a, "account", "add", "q",
                    url="postgresql://u:pwXYZ@127.0.0.1:1/kw?sslmode=disable")
    t.ok(rc == EXIT_STATE and "cannot connect to PostgreSQL" in err and "pwXYZ" not in err,
         "loopback TCP needs no TLS (here: nothing listens, a clear error)", [rc, err])
    passfile = os.path.join(a, "pgpass")
    with open(passfile, "w") as f:
        f.write("*:*:*:kwpass:%s\n" % password)
    os.chmod(passfile, 0o600)
    rc, out, err = kw(a, "user", "list", "--account", "acme",
                      url="postgresql:///one?host=%s&user=kwpass&passfile=%s" % (d, passfile))
    t.ok(rc == 0 and "alice" in out, "a password file (passfile=, 0600) works", [rc, err])

    # ---- no secret at rest: the whole database, dumped, holds none ----
    rc, out, err = kw(a, "token", "create", "--as", "alice", "--name", "atrest", "--role",
                      "Engineers", url=u1)
    token = out.strip()
    secret = token.split("$", 1)[1] if "$" in token else None
    dump = subprocess.run(["pg_dump", "-d", u1], capture_output=True, text=True, timeout=60)
    t.ok(rc == 0 and secret and dump.returncode == 0 and "atrest" in dump.stdout and
         secret not in dump.stdout and secret[:16] not in dump.stdout,
         "a created token's secret is nowhere in pg_dump of the database (its name is)",
         [rc, err, dump.stderr[:200]])

    # ---- the rules under concurrent writers ----
    kw(a, "account", "add", "small", "--token-limit", "5", url=u1)
    kw(a, "user", "add", "--account", "small", "sam", "--role", "Engineers", url=u1)
    env = dict(os.environ, KEYWARDEN_STORE_URL=u1)
    procs = [subprocess.Popen([KEYWARDEN, "--state-dir", a if i % 2 else b, "token", "create",
                               "--as", "sam", "--name", "t%d" % i, "--role", "Engineers"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(12)]
    codes = [p.wait(timeout=60) for p in procs]
    t.eq(sorted(codes).count(0), 5, "12 concurrent creates against a limit of 5 on two "
         "hosts: exactly 5 succeed")
    t.eq(psql(u1, "SELECT count(*) FROM token t JOIN account a ON a.id = t.account_id "
              "WHERE a.name = 'small' AND t.deleted IS NULL").stdout.strip(), "5",
         "and 5 live tokens are stored")
    rc, out, err = kw(a, "audit", "verify", url=u1)
    t.ok(rc == 0 and out.startswith("intact"), "the audit chain verifies after concurrent "
         "writers", [rc, out, err])
    t.eq(psql(u1, "SELECT count(*) = count(DISTINCT seq) AND max(seq) = count(*) FROM audit")
         .stdout.strip(), "t", "one chain: no fork, no gap")
    gen = int(psql(u1, "SELECT gen FROM keywarden_generation").stdout.strip())
    rc, out, err = kw(a, "token", "list", "--as", "sam", url=u1)
    t.eq(int(psql(u1, "SELECT gen FROM keywarden_generation").stdout.strip()), gen,
         "a read moves no generation")
    tid = psql(u1, "SELECT min(t.id) FROM token t JOIN account a ON a.id = t.account_id "
               "WHERE a.name = 'small'").stdout.strip()
    rc, _, err = kw(a, "token", "delete", "--as", "sam", tid, url=u1)
    t.eq(rc, 0, "sam deletes one of his tokens")
    t.ok(int(psql(u1, "SELECT gen FROM keywarden_generation").stdout.strip()) > gen,
         "a delete moves the generation")
except Exception:
    import traceback
    t.ok(False, "no unexpected exception", traceback.format_exc().splitlines())
finally:
    srv.stop()
    subprocess.run(["rm", "-rf", tmp])
t.done()
