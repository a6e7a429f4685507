#!/usr/bin/python3
# clients.py: many clients at once; slow, stuck and hostile clients do not stall the others;
# rate limiting per peer uid (a second uid, via setpriv, is unaffected).
import os
import shutil
import socket
import subprocess
import sys
import traceback
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vtest import Conn, Env, Tap, wait_for  # noqa: E402

t = Tap()
env = Env("socket_mode = 0666\nrate_limit_failures = 20\nrate_limit_window = 10\n"
          "rate_limit_block = 3\nidle_timeout = 30\n", socket_dir="sock")
try:
    env.setup_users()
    good = env.token("alice", "good")
    env.start()

    # 200 concurrent connections, each pipelining, threads interleaving.
    errors = []

    # the same token with its last character changed (it may have been an "x" already)
    bad = good[:-1] + ("y" if good.endswith("x") else "x")

    def worker(n):
        try:
            cc = Conn(env.sock, timeout=20)
            for r in range(20):
                cc.send("CHECK\t%d\ttoken=%s\nCHECK\t%d\ttoken=%s\n" % (2 * r + 1, good, 2 * r + 2,
                                                                      bad))
                a, b = cc.line(), cc.line()
                if not a.startswith("OK\t%d\t" % (2 * r + 1)) or b != "FAIL\t%d\tcode=invalid" % (2 * r + 2):
                    errors.append((n, a, b))
                    break
            cc.close()
        except Exception as e:  # noqa: BLE001
            errors.append((n, repr(e)))

    # (invalid answers count toward rate limiting: this uid gets a fresh window afterwards)
    env.write_conf("[validator]\nsocket = %s\nsocket_mode = 0666\nrate_limit_failures = 0\n" % env.sock)
    env.daemon.send_signal(1)
    time.sleep(0.3)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(200)]
    t0 = time.time()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t.ok(not errors, "200 concurrent clients x 40 pipelined checks: every answer right "
         "(%.1f s)" % (time.time() - t0), errors[:3])

    # Stuck clients: half a line, no line at all, and one that never reads its answers.
    stuck = []
    for _ in range(20):
        s = Conn(env.sock)
        s.send("CHECK\t1\ttoken=" + good[:20])
        stuck.append(s)
    hog = Conn(env.sock)
    hog.s.setblocking(False)
    req = ("CHECK\t1\ttoken=%s\n" % good).encode() * 2000
    sent = 0
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            sent += hog.s.send(req)
        except BlockingIOError:
            break
    t.ok(sent > 100000, "a client that never reads its answers is left unread: %d KB queued" % (sent // 1024))
    lat = []
    c = Conn(env.sock)
    for i in range(200):
        t1 = time.time()
        a = c.check(i + 1, good)
        lat.append(time.time() - t1)
        if not a.startswith("OK"):
            break
    lat.sort()
    t.ok(len(lat) == 200 and lat[-1] < 0.5, "others are served meanwhile (200 checks, "
         "max latency %.1f ms)" % (lat[-1] * 1000))
    rss = 0
    with open("/proc/%d/status" % env.daemon.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    t.ok(rss < 64 * 1024, "memory stays bounded with stuck and hostile clients (RSS %d KiB)" % rss)
    for s in stuck:
        s.close()
    hog.close()
    c.close()

    # Rate limiting: this uid sends many failing checks; a second uid is unaffected.
    env.write_conf("[validator]\nsocket = %s\nsocket_mode = 0666\nrate_limit_failures = 20\n"
                   "rate_limit_window = 10\nrate_limit_block = 3\n" % env.sock)
    env.daemon.send_signal(1)
    time.sleep(0.3)
    c = Conn(env.sock)
    codes = [c.check(i + 1, "1$" + "A" * 48) for i in range(25)]
    t.ok(all(a.endswith("code=invalid") for a in codes[:19]) and codes[19].endswith("code=invalid")
         and all(a.endswith("code=rate_limited") for a in codes[20:]),
         "after 20 failing checks within the window: rate_limited", codes[17:22])
    t.eq(c.check(50, good), "FAIL\t50\tcode=rate_limited", "while blocked, a good token too is rate_limited")
    c2 = Conn(env.sock)
    t.eq(c2.check(51, good), "FAIL\t51\tcode=rate_limited", "the block is per uid, not per connection")
    c2.close()
    if os.getuid() == 0 and shutil.which("setpriv"):
        script = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\n"
                  "s.sendall(b'VERSION\\t1\\t0\\nCHECK\\t1\\ttoken=' + sys.argv[2].encode() + b'\\n')\n"
                  "f=s.makefile()\nf.readline()\nprint(f.readline().strip())\n")
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            sys.executable, "-c", script, env.sock, good],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
        t.ok(p.stdout.startswith("OK\t1\t"), "another uid (65534) is unaffected by the block",
             p.stdout, p.stderr)
        t.ok("peer uid=65534" in env.log(), "its decision is logged with its uid")
    else:
        t.skip("another uid is unaffected by the block", "needs root and setpriv")
        t.skip("its decision is logged with its uid", "needs root and setpriv")
    t.ok(wait_for(lambda: c.check(60, good).startswith("OK"), timeout=6),
         "after rate_limit_block (3 s) the peer is served again")
    t.ok("rate limited for 3 s" in env.log(), "the block is logged")
    c.close()
    t.eq(env.stop(), 0, "SIGTERM: exit 0")
except Exception:  # noqa: BLE001
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    env.close()
sys.exit(t.done())
