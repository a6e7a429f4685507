#!/usr/bin/python3
# memo_lease.py (from an attacker's review): on PostgreSQL, the memo of a verified token text must not outlive
# the lease. The token is checked twice (the second time from the memo); the validator is
# frozen (SIGSTOP) past its lease while another process disables the user, then deletes the
# token; thawed, a CHECK that waited in its socket must see each commit (from the memo's row or
# a fresh one), never a stale OK. The lease exists on PostgreSQL only: tests/pg.mk runs this
# file in the PostgreSQL round alone (KW_PG_ONLY_TESTS), never on SQLite.
import os
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vtest import kwpg  # noqa: E402
from vtest import Conn, Env, Tap, fields  # noqa: E402


def verdict(line):
    a = fields(line)
    return "ok" if a["verb"] == "OK" else a.get("code", a["verb"])


t = Tap()
if kwpg.server() is None:
    t.skip("memo and the lease", "PostgreSQL only (KW_TEST_PG)")
    sys.exit(t.done())
env = Env("[validator]\nlease_ms = 300\n")
try:
    env.setup_users()
    good = env.token("alice", "good")
    tid = int(good.split("$")[0])
    env.start()
    c = Conn(env.sock)
    t.ok(verdict(c.check(1, good)) == "ok" and verdict(c.check(2, good)) == "ok",
         "OK twice (the second from the memo)")
    for step, args, want in (("disable", ("user", "set", "alice", "--disable"), "disabled"),
                             ("enable", ("user", "set", "alice", "--enable"), "ok"),
                             ("delete", ("token", "delete", "--as", "alice", str(tid)),
                              "deleted")):
        t.ok(verdict(c.check(3, good)) in ("ok", "disabled"), "%s: memo warm" % step)
        env.daemon.send_signal(signal.SIGSTOP)
        q = Conn(env.sock, handshake=False, timeout=30)
        q.send("VERSION\t1\t0\nCHECK\t7\ttoken=%s\n" % good)
        env.kw(*args)
        time.sleep(0.1)
        env.daemon.send_signal(signal.SIGCONT)
        q.line()
        got = verdict(q.line())
        t.ok(got == want, "%s while frozen past the lease: thawed, the waiting CHECK is %s"
             % (step, want), "got %s" % got)
        t.ok(verdict(c.check(4, good)) == want and verdict(c.check(5, good)) == want,
             "%s: and twice more" % step)
        q.close()
    t.ok(env.alive(), "the daemon is still running")
except Exception:  # noqa: BLE001
    t.ok(False, "no exception", traceback.format_exc())
finally:
    env.close()
sys.exit(t.done())
