#!/usr/bin/python3
# wipe.py: no token secret stays in the validator's memory after its CHECK was answered
# (issue 10, item 11). A CHECK whose line arrives in two writes, behind a long line in the
# first write, is moved to the start of the connection's buffer; the bytes it was moved from
# used to stay there for as long as the connection lived. With the connection still open, the
# daemon's writable memory is read through /proc/PID/mem (our child: same uid, no ptrace
# restriction on a parent) and searched for any 16-character piece of the secret.
#
# Deterministic: each write is followed by reading its answer, so the daemon has processed
# it (and moved the partial line) before the next.
import os
import re
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vtest import Conn, Env, Tap, wait_for  # noqa: E402


def writable_memory(pid):
    """The bytes of every readable, writable mapping of pid (heap, stacks, anonymous), but
    mappings over 1 GiB (AddressSanitizer's shadow)."""
    out = []
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if not m or not m.group(3).startswith("rw"):
                continue
            if line.rstrip().endswith(("[vvar]", "[vsyscall]", "[vvar_vclock]")):
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            if end - start > 1 << 30:
                continue  # a sanitizer's shadow memory (reserved, terabytes): no heap there
            try:
                mem.seek(start)
                out.append(mem.read(end - start))
            except OSError:
                pass
    return b"".join(out)


def pieces(secret, n=16):
    return [secret[i:i + n] for i in range(0, len(secret) - n + 1)]


t = Tap()
env = Env()
try:
    env.setup_users()
    good = env.token("alice", "good")
    secret = good.split("$", 1)[1].encode()
    env.start()
    c = Conn(env.sock)

    # Write 1: a long complete line, then the CHECK up to its end (no LF).
    first = "CHECK\t1\tservice=" + "s" * 300 + "\ttoken=" + good + "\n"
    c.send(first + "CHECK\t2\ttoken=" + good)
    a1 = c.line()
    mem_mid = writable_memory(env.daemon.pid)
    # Write 2: the LF that completes it.
    c.send("\n")
    a2 = c.line()
    t.ok(a1.startswith("OK\t1\t") and a2.startswith("OK\t2\t"), "both CHECKs answered OK", a1, a2)
    t.ok(any(p in mem_mid for p in pieces(secret)),
         "the search works: while the CHECK waits for its LF, the secret is in memory")
    mem = writable_memory(env.daemon.pid)
    found = [p.decode() for p in pieces(secret) if p in mem]
    t.ok(len(mem) > 100000 and not found,
         "after the answers, with the connection open: no 16-byte piece of the secret in the "
         "daemon's memory (%d KiB read)" % (len(mem) // 1024), found[:3])

    # The same with a line that is given up: the peer closes in the middle of it.
    c2 = Conn(env.sock)
    other = env.token("alice", "other")
    secret2 = other.split("$", 1)[1].encode()
    c2.send(first + "CHECK\t3\ttoken=" + other)
    c2.line()
    c2.close()
    wait_for(lambda: "peer closed in the middle of a line" in env.log())
    mem = writable_memory(env.daemon.pid)
    found = [p.decode() for p in pieces(secret2) if p in mem]
    t.ok(not found, "a partial CHECK dropped at close leaves no piece of its secret", found[:3])
    c.close()
    t.eq(env.stop(), 0, "SIGTERM: exit 0")
except Exception:  # noqa: BLE001
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    env.close()
sys.exit(t.done())
