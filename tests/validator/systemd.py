#!/usr/bin/python3
# systemd.py: socket activation (the socket passed as fd 3 by systemd-socket-activate, as
# systemd does) and the Type=notify protocol (READY=1, RELOADING=1, STOPPING=1 on
# $NOTIFY_SOCKET).
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vtest import VALIDATOR, Conn, Env, Tap, wait_for  # noqa: E402

t = Tap()
env = Env()
proc = None
try:
    env.setup_users()
    good = env.token("alice", "good")
    sd_sock = os.path.join(env.tmp, "activated.sock")
    env.write_conf("[validator]\nsocket = %s\n" % sd_sock)
    notify_path = os.path.join(env.tmp, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(10)
    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        t.skip("socket activation", "systemd-socket-activate not installed")
    else:
        envv = dict(os.environ, NOTIFY_SOCKET=notify_path)
        # -E: the environment the program gets (the store's URL on PostgreSQL)
        store_env = ["-E", "KEYWARDEN_STORE_URL"] if "KEYWARDEN_STORE_URL" in envv else []
        proc = subprocess.Popen([activate, "-l", sd_sock, "-E", "NOTIFY_SOCKET"] + store_env + [
                                 VALIDATOR, "--state-dir", env.state, "--foreground"],
                                env=envv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(sd_sock), timeout=5)
        # systemd-socket-activate starts the program on the first connection.
        c = Conn(sd_sock, timeout=10)
        t.ok(c.check(1, good).startswith("OK\t1\t"), "socket-activated: answers on the passed socket")
        msgs = []

        def got(word):
            while not any(word in m for m in msgs):
                msgs.append(notify.recv(4096).decode())
            return True
        t.ok(got("READY=1"), "sd_notify READY=1", msgs)
        proc.send_signal(signal.SIGHUP)
        t.ok(got("RELOADING=1"), "sd_notify RELOADING=1 on SIGHUP", msgs)
        c.close()
        proc.send_signal(signal.SIGTERM)
        t.ok(got("STOPPING=1"), "sd_notify STOPPING=1 on SIGTERM", msgs)
        rc = proc.wait(10)
        out = proc.stdout.read().decode()
        t.eq(rc, 0, "exit 0")
        t.ok("(from systemd)" in out, "it says it took the socket from systemd", out)
        t.ok(os.path.exists(sd_sock), "a socket passed by systemd is left in place")
        proc = None
except Exception:  # noqa: BLE001
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    if proc is not None:
        proc.kill()
    env.close()
sys.exit(t.done())
