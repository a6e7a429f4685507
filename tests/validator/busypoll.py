#!/usr/bin/python3
# busypoll.py: [validator] busy_poll_us (validator/daemon_server.c, wait_events()). After a
# wakeup that answered requests the daemon polls without sleeping for up to busy_poll_us;
# it must never keep spinning once the requests stop (an idle validator sleeps), must answer
# the same with it off or at its largest value, and a value out of range is refused at start
# with the key named. CPU time is read from /proc/PID/stat (not a timed test: the bound is a
# hundredth of what a validator that kept spinning would use).
import os
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vtest import VALIDATOR, Conn, Env, Tap, cpu_seconds, fields  # noqa: E402


def burst(env, tok, n=2000):
    """n CHECKs over 4 connections, pipelined 50 at a time; the number answered OK."""
    conns = [Conn(env.sock) for _ in range(4)]
    ok = 0
    for i in range(n // 200):
        for c in conns:
            c.send("".join("CHECK\t%d\ttoken=%s\n" % (j + 1, tok) for j in range(50)))
        for c in conns:
            ok += sum(1 for _ in range(50) if fields(c.line())["verb"] == "OK")
    for c in conns:
        c.close()
    return ok


t = Tap()
env = Env()
try:
    env.setup_users()
    tok = env.token("alice", "busy")
    for value in ("0", "1000", None):
        env.write_conf("" if value is None else "[validator]\nbusy_poll_us = %s\n" % value)
        env.start()
        name = "the default (50)" if value is None else "busy_poll_us = %s" % value
        t.ok(burst(env, tok) == 2000, "%s: 2000 CHECKs over 4 connections, all OK" % name)
        # Idle now: a daemon that kept polling would use the whole 2 s of CPU.
        time.sleep(0.2)
        before = cpu_seconds(env.daemon.pid)
        time.sleep(2.0)
        used = cpu_seconds(env.daemon.pid) - before
        t.ok(used <= 0.1, "%s: idle for 2 s after the burst, the daemon used %.2f s of CPU "
             "(at most 0.1)" % (name, used))
        t.ok(env.stop() == 0, "%s: stops cleanly" % name, env.log()[-1500:])
    for value in ("1001", "-1", "fast"):
        env.write_conf("[validator]\nbusy_poll_us = %s\n" % value)
        p = subprocess.run([VALIDATOR, "--state-dir", env.state], capture_output=True,
                           text=True, timeout=10)
        t.ok(p.returncode != 0 and "busy_poll_us" in p.stderr,
             "busy_poll_us = %s is refused at start, naming the key" % value,
             p.returncode, p.stderr)
except Exception:  # noqa: BLE001
    t.ok(False, "no exception", traceback.format_exc())
finally:
    env.close()
t.done()
