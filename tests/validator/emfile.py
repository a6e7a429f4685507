#!/usr/bin/python3
# emfile.py: running out of file descriptors (issue 10, item 2). Started with an open files
# limit of 128 and the default max_connections (1024), the validator lowers max_connections to
# fit and says so; holding 200 idle connections then costs it no CPU and no log flood (it
# used to spin on accept() failing with EMFILE: 737,516 warnings in 3 s). When the limit
# shrinks under it anyway, accept() failures back off (one warning per 10 s, no spinning), and
# it accepts again once descriptors are free.
#
# "No CPU" is checked with a wide margin (under a quarter of the wall time, where spinning
# takes all of it), and the log by its line count: neither depends on the machine's speed.
import os
import resource
import socket
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vtest import VALIDATOR, Conn, Env, Tap, cpu_seconds, wait_for  # noqa: E402


def raw_connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s


def hold(env, n, seconds):
    """Opens n raw connections (no handshake: beyond what is accepted they wait in the
    backlog), holds them for `seconds`; returns (sockets, daemon CPU seconds used, log lines
    added)."""
    lines0 = env.log().count("\n")
    socks = [raw_connect(env.sock) for _ in range(n)]
    cpu0 = cpu_seconds(env.daemon.pid)
    time.sleep(seconds)
    return socks, cpu_seconds(env.daemon.pid) - cpu0, env.log().count("\n") - lines0


t = Tap()
socks = []
env = Env("[validator]\nmax_connections_per_uid = 1000\n")
try:
    env.setup_users()
    good = env.token("alice", "good")

    # 1. Started with 128 files: max_connections is fitted to the limit.
    lim = (128, 128)
    env.logf = open(env.log_path, "a")
    env.daemon = subprocess.Popen([VALIDATOR, "--state-dir", env.state, "--debug"],
                                  stdout=env.logf, stderr=env.logf,
                                  preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, lim))
    t.ok(wait_for(lambda: Conn(env.sock).check(1, good).startswith("OK"), timeout=10),
         "started with an open files limit of 128")
    t.ok("max_connections 1024 does not fit the open files limit 128: using 96" in env.log(),
         "max_connections lowered to fit the limit, and said so", env.log()[-2000:])
    socks, cpu, lines = hold(env, 200, 2.0)
    t.ok(cpu < 0.5, "200 idle connections held 2 s: the daemon does not spin", "CPU %.2f s" % cpu)
    t.ok(lines < 300, "and does not flood its log", "%d lines" % lines)
    t.ok("Too many open files" not in env.log(), "accept() never ran out of files")
    for s in socks:
        s.close()
    socks = []
    t.ok(wait_for(lambda: Conn(env.sock).check(2, good).startswith("OK"), timeout=5),
         "and answers once they left")
    env.stop()

    # 2. The limit shrinks under a running daemon (prlimit): accept() fails with EMFILE.
    env.start()
    pid = env.daemon.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (48, hard))
    socks, cpu, lines = hold(env, 100, 2.0)
    log = env.log()
    t.ok("Too many open files" in log, "accept() ran out of files (EMFILE)", log[-1500:])
    t.ok(cpu < 0.5, "EMFILE for 2 s: the daemon does not spin", "CPU %.2f s" % cpu)
    warned = log.count("accept: Too many open files")
    t.ok(1 <= warned <= 2, "the accept() failure is logged once per 10 s, not per wakeup",
         "%d warnings, %d lines" % (warned, lines))
    for s in socks:
        s.close()
    socks = []
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    t.ok(wait_for(lambda: Conn(env.sock).check(3, good).startswith("OK"), timeout=5),
         "accepting again once descriptors are free")
    t.eq(env.stop(), 0, "SIGTERM: exit 0")
except Exception:  # noqa: BLE001
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    for s in socks:
        s.close()
    env.close()
sys.exit(t.done())
