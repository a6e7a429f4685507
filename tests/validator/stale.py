#!/usr/bin/python3
# stale.py: the no-stale-answer rule and last use. Once `keywarden token delete` or
# `user set --disable` returns, the very next CHECK fails with the matching code (the daemon's
# cache must not answer from before the commit); `expired` from the expiry instant on; last
# use visible in `token list --json` within 5 s and written on SIGTERM.
import calendar
import os
import sys
import traceback
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vtest import Conn, Env, Tap, fields, wait_for  # noqa: E402

t = Tap()
env = Env("[validator]\nrate_limit_failures = 0\n")
try:
    env.setup_users()
    env.start()
    c = Conn(env.sock)

    # Delete: many rounds, each with the row hot in the cache right before the delete.
    bad = []
    for i in range(15):
        tok = env.token("alice", "d%d" % i)
        for j in range(3):
            a = c.check(j + 1, tok)
            if not a.startswith("OK"):
                bad.append(("before", i, a))
        env.kw("token", "delete", "--as", "alice", tok.split("$")[0])
        a = c.check(99, tok)
        if a != "FAIL\t99\tcode=deleted":
            bad.append(("after", i, a))
    t.ok(not bad, "15 cached tokens: the first CHECK after `token delete` returns says deleted", bad)

    # The same, with the CHECK sent on a fresh connection and on a pipelining one.
    tok = env.token("alice", "pipe")
    c2 = Conn(env.sock)
    c2.check(1, tok)
    env.kw("token", "delete", "--as", "alice", tok.split("$")[0])
    c2.send("CHECK\t2\ttoken=%s\nCHECK\t3\ttoken=%s\n" % (tok, tok))
    t.eq([c2.line(), c2.line()], ["FAIL\t2\tcode=deleted", "FAIL\t3\tcode=deleted"],
         "pipelined CHECKs after a delete: deleted")
    c2.close()

    # Disable and enable the issuer.
    env.kw("user", "add", "--account", "acme", "carol", "--role", "Engineers")
    ct = env.token("carol", "c1")
    bad = []
    for i in range(5):
        if not c.check(1, ct).startswith("OK"):
            bad.append(("enabled", i))
        env.kw("user", "set", "carol", "--disable")
        a = c.check(2, ct)
        if a != "FAIL\t2\tcode=disabled":
            bad.append(("disabled", i, a))
        env.kw("user", "set", "carol", "--enable")
    t.ok(not bad, "the first CHECK after `user set --disable` says disabled (5 rounds), "
         "after --enable OK again", bad)

    # Expiry: a token expiring a couple of seconds ahead, checked continuously.
    exp_at = int(time.time()) + 3
    et = env.token("alice", "exp", expires=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp_at)))
    f = fields(c.check(1, et))
    t.eq(calendar.timegm(time.strptime(f.get("expires", ""), "%Y-%m-%dT%H:%M:%SZ")), exp_at,
         "OK answers the expiry instant")
    early_fail, late_ok, seen_expired = [], [], False
    while time.time() < exp_at + 1.5:
        before = time.time()
        a = c.check(2, et)
        after = time.time()
        if a.startswith("FAIL"):
            seen_expired = True
            if a != "FAIL\t2\tcode=expired" or after < exp_at:
                early_fail.append((a, after))
        elif before >= exp_at:
            late_ok.append(before)
        time.sleep(0.01)
    t.ok(seen_expired and not early_fail and not late_ok,
         "expired exactly from the expiry instant on (never before, never OK after)",
         "early: %r" % early_fail[:3], "late OK: %r" % late_ok[:3])

    # Last use within 5 s, with remote_ip.
    lt = env.token("alice", "lastuse")
    lid = int(lt.split("$")[0])
    t.ok(env.token_row(lid)["last_used"] is None, "a new token was never used")
    t0 = time.time()
    c.check(5, lt, service="api", remote_ip="203.0.113.7")
    row = wait_for(lambda: (lambda r: r if r["last_used"] else None)(env.token_row(lid)), timeout=6)
    el = time.time() - t0
    t.ok(row is not None and el <= 5, "last use visible in `token list --json` within 5 s",
         "after %.1f s: %r" % (el, row))
    t.eq(row and row["last_ip"], "203.0.113.7", "remote_ip recorded as the last address")
    c.check(6, lt, remote_ip="not an address")
    time.sleep(3)
    t.eq(env.token_row(lid)["last_ip"], "203.0.113.7", "a malformed remote_ip is not recorded")
    c.close()
    t.eq(env.stop(), 0, "SIGTERM: exit 0")

    # Flushed on SIGTERM: a long flush period, then stop right after a check.
    env.write_conf("[validator]\nlast_use_flush = 60\n")
    env.start()
    ft = env.token("alice", "flush")
    fid = int(ft.split("$")[0])
    c = Conn(env.sock)
    t.ok(c.check(1, ft, remote_ip="2001:db8::1").startswith("OK"), "checked with last_use_flush = 60")
    time.sleep(0.3)
    t.ok(env.token_row(fid)["last_used"] is None, "not yet written (coalesced in memory)")
    rc = env.stop()
    row = env.token_row(fid)
    t.ok(rc == 0 and row["last_used"] is not None and row["last_ip"] == "2001:db8::1",
         "SIGTERM writes the pending last use, exit 0", "rc=%r row=%r" % (rc, row))
    c.close()
except Exception:  # noqa: BLE001
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    env.close()
sys.exit(t.done())
