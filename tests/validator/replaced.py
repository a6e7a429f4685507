#!/usr/bin/python3
# replaced.py: a database file replaced under the running validator (issue 10, item 8), as an
# administrator restoring a copy does: a consistent copy is changed (a token deleted) and
# renamed over keywarden.db. The CLI sees the new file at once; the validator used to keep
# answering from the old inode until a restart. It now notices (device and inode of the path)
# and reopens; while no database is at the path it answers temp_fail, and it recovers when one
# is put back.
import json
import os
import shutil
import sqlite3
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vtest import Conn, Env, Tap, wait_for  # noqa: E402

t = Tap()
env = Env("[validator]\nlast_use_flush = 60\n")
try:
    env.setup_users()
    good = env.token("alice", "good")
    other = env.token("alice", "other")
    gid = good.split("$")[0]
    env.start()
    c = Conn(env.sock)
    t.ok(c.check(1, good).startswith("OK\t1\t"), "token OK before the file is replaced")
    t.ok(c.check(2, other).startswith("OK\t2\t"), "the other token too")

    # A consistent copy of the state, changed through the real CLI.
    db = os.path.join(env.state, "keywarden.db")
    copy = os.path.join(env.tmp, "copy")
    os.mkdir(copy, 0o700)
    for name in ("keywarden.key", "keywarden.conf"):
        shutil.copy2(os.path.join(env.state, name), os.path.join(copy, name))
    src = sqlite3.connect(db)
    dst = sqlite3.connect(os.path.join(copy, "keywarden.db"))
    src.backup(dst)
    dst.close()
    os.chmod(os.path.join(copy, "keywarden.db"), 0o600)
    p = env.kw("--state-dir", copy, "token", "delete", "--as", "alice", gid)
    t.ok(not os.path.exists(os.path.join(copy, "keywarden.db-wal")), "the copy is one file")
    # Nothing of the old file may linger in the shared WAL, so that the new file reads alone.
    src.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    src.close()
    os.replace(os.path.join(copy, "keywarden.db"), db)

    row = [r for r in json.loads(env.kw("token", "list", "--as", "alice", "--json").stdout)
           if str(r["id"]) == gid]
    t.eq(row and row[0]["status"], "deleted", "the CLI shows the token deleted in the new file")
    t.eq(c.check(3, good), "FAIL\t3\tcode=deleted",
         "the validator answers from the new file at the next CHECK (same connection)")
    t.ok(c.check(4, other).startswith("OK\t4\t"), "other tokens still OK")
    t.ok("was replaced" in env.log() and "reopened" in env.log(), "the reopen is logged")

    # No database at the path: temp_fail, then recovery when one is put back.
    aside = os.path.join(env.tmp, "aside.db")
    os.rename(db, aside)
    t.eq(c.check(5, other), "FAIL\t5\tcode=temp_fail", "database gone: temp_fail")
    t.ok("cannot be reopened" in env.log(), "logged")
    t.eq(c.check(6, other), "FAIL\t6\tcode=temp_fail", "still gone: temp_fail again")
    os.rename(aside, db)
    t.ok(c.check(7, other).startswith("OK\t7\t"), "database back: OK again")
    t.eq(c.check(8, good), "FAIL\t8\tcode=deleted", "and the deleted token still deleted")

    # The last uses gathered meanwhile go to the file now in place (written on SIGTERM).
    t.eq(env.stop(), 0, "SIGTERM: exit 0")
    oid = other.split("$")[0]
    row = [r for r in json.loads(env.kw("token", "list", "--as", "alice", "--json").stdout)
           if str(r["id"]) == oid]
    t.ok(row and row[0].get("last_used"), "last use written to the file in place", row)
except Exception:  # noqa: BLE001
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    env.close()
sys.exit(t.done())
