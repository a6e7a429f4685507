#!/usr/bin/python3
# commits.py: a commit by another process is seen at the very next CHECK, however it was made
# (issue 14). The validator skips its database query while the WAL-index header in the -shm
# file shows that nobody committed (lib/store_validator.c); this drives that skip with commits
# made straight through SQLite by this process (not the CLI): hundreds of rounds of delete and
# undelete of a token hot in the cache, with checkpoints (PASSIVE, RESTART, TRUNCATE: the last
# two restart the WAL from its first frame) by another connection before or after the commit,
# from a connection held open and from short-lived ones, with the validator's own last-use
# writes in between and a third process committing unrelated changes all the time; an
# attempt to take the database out of WAL mode while the validator holds it open; and commits
# by lone short-lived connections, with a check that the validator still holds SQLite's lock
# on the WAL index (a second descriptor of the -shm file, once closed, would drop it: POSIX
# locks belong to the process, and another process would then start the WAL index again).
import fcntl
import os
import sqlite3
import struct
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vtest import Conn, Env, Tap  # noqa: E402

ROUNDS = 120
# A third process: commits to an unrelated row every millisecond until its stdin closes.
NOISE = r"""
import sqlite3, sys, select
db = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
db.execute("PRAGMA synchronous = OFF")
n = 0
while not select.select([sys.stdin], [], [], 0.001)[0]:
    db.execute("BEGIN IMMEDIATE")
    db.execute("UPDATE token SET description = ? WHERE id = ?", (str(n), int(sys.argv[2])))
    db.execute("COMMIT")
    n += 1
print(n)
"""


def dms_holder(shm):
    """The pid holding a lock on SQLite's DMS byte of the -shm file (offset 128 in its unix
    VFS), as F_GETLK reports it to a process that holds none, or None."""
    fd = os.open(shm, os.O_RDWR)
    try:
        req = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 128, 1, 0)
        typ, _, _, _, pid = struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, req))
    finally:
        os.close(fd)  # we held no lock: closing drops nobody's
    return pid if typ != fcntl.F_UNLCK else None


def connect(path):
    db = sqlite3.connect(path, timeout=10, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")  # the test is about visibility, not durability
    return db


t = Tap()
env = Env("[validator]\nlast_use_flush = 1\nrate_limit_failures = 0\n")
noise = None
try:
    env.setup_users()
    toks = [env.token("alice", "c%d" % i) for i in range(8)]
    quiet = env.token("alice", "noise")
    env.start()
    c = Conn(env.sock)
    db_path = os.path.join(env.state, "keywarden.db")
    writer = connect(db_path)
    ckpt = connect(db_path)
    t.eq(writer.execute("PRAGMA journal_mode").fetchone()[0], "wal", "the database is in WAL mode")

    def set_deleted(tid, deleted, fresh=False):
        db = connect(db_path) if fresh else writer
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE token SET deleted = ? WHERE id = ?",
                   (int(time.time()) if deleted else None, tid))
        db.execute("COMMIT")
        if fresh:
            db.close()

    def checkpoint(mode):
        ckpt.execute("PRAGMA wal_checkpoint(%s)" % mode).fetchall()

    def rounds(n, label, pause_every=0):
        bad = []
        for i in range(n):
            tok = toks[i % len(toks)]
            tid = int(tok.split("$")[0])
            kind = i % 6
            for j in range(2):  # hot in the cache
                a = c.check(j + 1, tok)
                if not a.startswith("OK"):
                    bad.append((i, "before", a))
            if kind == 1:
                checkpoint("TRUNCATE")
            elif kind == 3:
                checkpoint("RESTART")
            set_deleted(tid, True, fresh=kind == 4)
            if kind == 2:
                checkpoint("TRUNCATE")
            elif kind == 5:
                checkpoint("PASSIVE")
            a = c.check(10, tok)
            if a != "FAIL\t10\tcode=deleted":
                bad.append((i, kind, "after delete", a))
            a = c.check(11, tok)  # the deleted row is now the cached one
            if a != "FAIL\t11\tcode=deleted":
                bad.append((i, kind, "again", a))
            if kind == 0:
                checkpoint("TRUNCATE")
            set_deleted(tid, False, fresh=kind == 3)
            a = c.check(12, tok)
            if not a.startswith("OK\t12\t"):
                bad.append((i, kind, "after undelete", a))
            if pause_every and i % pause_every == pause_every - 1:
                time.sleep(1.2)  # the validator writes its last uses: its own commit
        t.ok(not bad, "%d rounds %s: every CHECK after a commit saw it" % (n, label), bad[:5])

    rounds(ROUNDS, "(delete, undelete; checkpoints before and after)")
    rounds(12, "with the validator's own last-use writes in between", pause_every=3)

    noise = subprocess.Popen([sys.executable, "-c", NOISE, db_path, quiet.split("$")[0]],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    time.sleep(0.2)
    rounds(ROUNDS, "while another process commits all the time")
    noise.stdin.close()
    n_noise = int(noise.stdout.read().strip() or "0")
    noise.wait()
    noise = None
    t.ok(n_noise > 0, "the other process committed meanwhile", n_noise)

    # Out of WAL mode: impossible while the validator holds the database open (what the skip
    # relies on); whatever SQLite answers, a commit is still seen next.
    try:
        mode = ckpt.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
    except sqlite3.OperationalError as e:
        mode = str(e)
    t.ok(mode != "delete", "another connection cannot leave WAL mode meanwhile", mode)
    tid = int(toks[0].split("$")[0])
    t.ok(c.check(20, toks[0]).startswith("OK\t20\t"), "token OK")
    set_deleted(tid, True, fresh=True)
    t.eq(c.check(21, toks[0]), "FAIL\t21\tcode=deleted", "and a commit after that is seen")

    # Alone with the validator: each commit from a connection that is the only other one
    # (it finds the WAL index in use by the validator, and must not start it again).
    writer.close()
    ckpt.close()
    t.eq(dms_holder(db_path + "-shm"), env.daemon.pid,
         "the validator holds SQLite's lock on the WAL index (nothing of ours dropped it)")
    bad = []
    for i in range(20):
        tok = toks[1 + i % (len(toks) - 1)]  # toks[0] stays deleted
        tid = int(tok.split("$")[0])
        if not c.check(30, tok).startswith("OK\t30\t"):
            bad.append((i, "before"))
        set_deleted(tid, True, fresh=True)
        a = c.check(31, tok)
        if a != "FAIL\t31\tcode=deleted":
            bad.append((i, "after delete", a))
        set_deleted(tid, False, fresh=True)
    t.ok(not bad, "20 rounds by lone short-lived connections: every commit seen", bad[:5])
    t.ok(env.alive(), "the validator is still running")
    t.eq(dms_holder(db_path + "-shm"), env.daemon.pid, "and still holds that lock")
    t.eq(env.stop(), 0, "SIGTERM: exit 0")
except Exception:  # noqa: BLE001
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    if noise is not None:
        noise.kill()
        noise.wait()
    env.close()
sys.exit(t.done())
