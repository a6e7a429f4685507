#!/usr/bin/python3
# debuglog.py: --debug logs a CHECK's service= and remote_ip= escaped (issue 10, item 12):
# a client's value can carry neither terminal controls nor a blank that would start a forged
# key=value field; bytes outside printable ASCII, the blank and the backslash come out as
# \xHH; a long value is cut. The check itself is unaffected.
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vtest import Conn, Env, Tap, wait_for  # noqa: E402

t = Tap()
env = Env()
try:
    env.setup_users()
    good = env.token("alice", "good")
    env.start()
    c = Conn(env.sock)
    service = "api\x1b[31m user=root remote_ip=6.6.6.6 \\ caf\u00e9"
    remote = "1.2.3.4\x07 verdict=OK"
    c.send(("CHECK\t41\tservice=%s\tremote_ip=%s\ttoken=%s\n" % (service, remote, good)).encode())
    t.ok(c.line().startswith("OK\t41\t"), "the CHECK is answered OK")
    c.send("CHECK\t42\tservice=%s\ttoken=%s\n" % ("L" * 1000, good))
    t.ok(c.line().startswith("OK\t42\t"), "a CHECK with a 1000-byte service is answered OK")
    wait_for(lambda: "request 42:" in env.log())
    lines = [l for l in env.log().splitlines() if "request 41:" in l]
    line = lines[0] if lines else ""
    t.ok("service=api\\x1b[31m\\x20user=root\\x20remote_ip=6.6.6.6\\x20\\x5c\\x20caf\\xc3\\xa9 "
         in line, "service= escaped (ESC, blanks, backslash, UTF-8 as \\xHH)", line)
    t.ok(line.endswith("remote_ip=1.2.3.4\\x07\\x20verdict=OK"), "remote_ip= escaped", line)
    t.ok(line.count(" remote_ip=") == 1 and " user=root" not in line,
         "no forged field in the line")
    t.ok("\x1b" not in env.log() and "\x07" not in env.log(), "no control byte in the log")
    long_lines = [l for l in env.log().splitlines() if "request 42:" in l]
    t.ok(long_lines and "service=" + "L" * 128 + "... " in long_lines[0],
         "a long value is cut at 128 bytes", long_lines[:1])
    c.close()
    t.eq(env.stop(), 0, "SIGTERM: exit 0")
except Exception:  # noqa: BLE001
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    env.close()
sys.exit(t.done())
