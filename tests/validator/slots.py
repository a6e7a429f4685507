#!/usr/bin/python3
# slots.py: one uid cannot hold every connection slot (issue 10, item 3). A uid gets at most
# max_connections_per_uid connections (then ERROR busy), while another uid is still served;
# a line must be complete within line_timeout of its first byte, however slowly its bytes
# trickle in (one byte per idle period used to keep a slot forever); a line split in two
# writes inside the deadline is still answered.
import os
import shutil
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vtest import Conn, Env, Tap, wait_for  # noqa: E402

t = Tap()
env = Env("[validator]\nsocket_mode = 0666\nmax_connections = 50\nmax_connections_per_uid = 10\n"
          "line_timeout = 1\nidle_timeout = 30\n", socket_dir="sock")
held = []
try:
    env.setup_users()
    good = env.token("alice", "good")
    env.start()

    # Per-uid cap: 10 connections of this uid, the 11th is refused.
    held = [Conn(env.sock) for _ in range(10)]
    t.ok(all(h.server_version == "VERSION\t1\t0" for h in held), "10 connections of one uid accepted")
    cc = Conn(env.sock, handshake=False)
    out = cc.lines()
    t.eq(out, ["VERSION\t1\t0", "ERROR\treason=busy"], "the 11th connection of that uid: ERROR busy")
    cc.close()
    t.ok("max_connections_per_uid" in env.log(), "the refusal is logged, naming the setting")
    for _ in range(200):
        cc = Conn(env.sock, handshake=False)
        cc.lines()
        cc.close()
    n = env.log().count("(max_connections_per_uid")
    t.ok(n <= 2, "200 more refusals: at most one warning per 10 s, not one each", "%d warnings" % n)

    if os.getuid() == 0 and shutil.which("setpriv"):
        script = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\n"
                  "s.sendall(b'VERSION\\t1\\t0\\nCHECK\\t1\\ttoken=' + sys.argv[2].encode() + b'\\n')\n"
                  "f=s.makefile()\nf.readline()\nprint(f.readline().strip())\n")
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            sys.executable, "-c", script, env.sock, good],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
        t.ok(p.stdout.startswith("OK\t1\t"), "meanwhile another uid (65534) is served",
             p.stdout, p.stderr)
    else:
        t.skip("meanwhile another uid is served", "needs root and setpriv")

    held.pop().close()
    t.ok(wait_for(lambda: Conn(env.sock).check(1, good).startswith("OK"), timeout=5),
         "once one of its connections left, the uid may connect again")
    for h in held:
        h.close()
    held = []
    wait_for(lambda: Conn(env.sock).check(1, good).startswith("OK"), timeout=5)

    # Line deadline: one byte every 0.2 s keeps the connection "active" but never ends a line.
    drip = Conn(env.sock, timeout=1)
    drip.send("CHECK\t1\ttoken=")
    t0 = time.time()
    got, closed = [], False
    while time.time() - t0 < 8:
        try:
            drip.send("x")
        except OSError:
            closed = True
            break
        try:
            data = drip.s.recv(4096)
            if not data:
                closed = True
                break
            got.append(data.decode(errors="replace"))
        except TimeoutError:
            pass
        except OSError:
            closed = True
            break
        time.sleep(0.2)
    el = time.time() - t0
    try:  # what the server said before it closed (a failed send does not lose it)
        while True:
            data = drip.s.recv(4096)
            if not data:
                break
            got.append(data.decode(errors="replace"))
    except OSError:
        pass
    t.ok(closed and el < 6, "a line trickled one byte at a time is cut after line_timeout "
         "(idle_timeout is 30 s)", "closed=%s after %.1f s" % (closed, el))
    t.ok("ERROR\treason=idle\n" in "".join(got), "with ERROR idle", got)
    t.ok("line not complete within 1 s" in env.log(), "and logged")
    drip.close()

    # A line in two writes, inside the deadline, is answered.
    cc = Conn(env.sock)
    line = "CHECK\t7\ttoken=" + good + "\n"
    cc.send(line[:10])
    time.sleep(0.3)
    cc.send(line[10:])
    t.ok(cc.line().startswith("OK\t7\t"), "a line split in two writes 0.3 s apart is answered")
    # The deadline is per line: many complete lines over a longer time are fine.
    fine = True
    for i in range(6):
        cc.send(line[:5])
        time.sleep(0.3)
        cc.send(line[5:])
        fine = fine and cc.line().startswith("OK\t7\t")
    t.ok(fine, "6 split lines over 1.8 s on one connection: all answered")
    cc.close()
    t.eq(env.stop(), 0, "SIGTERM: exit 0")
except Exception:  # noqa: BLE001
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    for h in held:
        h.close()
    env.close()
sys.exit(t.done())
