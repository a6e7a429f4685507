#!/usr/bin/python3
# audit.py: failed checks in the audit log. Failing checks of every FAIL kind from two peer uids
# (root, and 65534 through setpriv) come out as exactly one validator.failed_checks event per
# flush interval, with the right counts per peer and per token; the chain still verifies; no
# token secret reaches the audit table or the log; an interval without failures adds no event;
# a flood of random token ids keeps the event bounded (the "other" bucket), written on SIGTERM.
import base64
import calendar
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vtest import Conn, Env, Tap, kwpg, wait_for  # noqa: E402

FLUSH = 5  # last_use_flush, seconds
TOKENS_MAX = 4096  # KW_FAILURES_TOKENS_MAX
EVENT_TOKENS = 256  # KW_FAILURES_EVENT_TOKENS
MSGID = "dbdffa772f3d4cb5a36aaed078e5ad5c"

t = Tap()
env = Env("socket_mode = 0666\nlast_use_flush = %d\nrate_limit_failures = 5\n"
          "rate_limit_window = 60\nrate_limit_block = 2\n" % FLUSH, socket_dir="sock")


def forge(token_id):
    """A well-formed token (valid checksum) for token_id with a random secret."""
    rnd = os.urandom(32)
    chk = hashlib.sha256(b"keywarden-v1" + token_id.to_bytes(8, "big") + rnd).digest()[:4]
    return "%d$%s" % (token_id, base64.urlsafe_b64encode(rnd + chk).decode())


def tid(token):
    return int(token.split("$")[0])


def events():
    out = env.kw("audit", "export", "--format", "jsonl").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def failed_events():
    return [e for e in events() if e["action"] == "validator.failed_checks"]


def used(token_id):
    row = env.token_row(token_id)
    return row is not None and row["last_used"] is not None


def rfc3339(ts):
    return calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))


secrets = []
try:
    env.setup_users()
    env.kw("user", "add", "--account", "acme", "carol", "--role", "Engineers")
    exp_at = int(time.time()) + 2
    et = env.token("alice", "expiring",
                   expires=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp_at)))
    good = env.token("alice", "good")
    dt = env.token("alice", "deleted")
    ct = env.token("carol", "carols")
    sync1 = env.token("alice", "sync1")
    sync2 = env.token("alice", "sync2")
    env.kw("token", "delete", "--as", "alice", str(tid(dt)))
    env.kw("user", "set", "carol", "--disable")
    wrong = forge(tid(good))
    unknown = forge(999999)
    secrets = [x.split("$")[1] for x in (et, good, dt, ct, sync1, sync2, wrong, unknown)]
    while time.time() <= exp_at + 0.2:
        time.sleep(0.1)
    env.start()
    before = len(events())

    # Right after a flush (seen as a last use appearing), so that the failures below all fall
    # in one interval.
    c = Conn(env.sock)
    t.ok(c.check(1, sync1).startswith("OK"), "a good token is OK")
    t.ok(wait_for(lambda: used(tid(sync1)), timeout=FLUSH + 3), "last use written: a flush")
    script = [(good, "OK"), (dt, "deleted"), (dt, "deleted"), (et, "expired"),
              (ct, "disabled"), (wrong, "invalid"), (wrong, "invalid"), ("garbage", "invalid"),
              (unknown, "invalid"), (unknown, "invalid"),  # the 5th invalid starts a block
              (good, "rate_limited"), (good, "rate_limited"), (good, "rate_limited")]
    got = []
    for i, (tok, want) in enumerate(script):
        a = c.check(i + 10, tok)
        ok = a.startswith("OK") if want == "OK" else a == "FAIL\t%d\tcode=%s" % (i + 10, want)
        if not ok:
            got.append((i, want, a))
    t.ok(not got, "root: 12 failing checks of every FAIL kind answered as expected", got)
    other_uid = os.getuid() == 0 and shutil.which("setpriv") is not None
    if other_uid:
        prog = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\n"
                "f=s.makefile('rwb',0)\nf.write(b'VERSION\\t1\\t0\\n')\nf.readline()\n"
                "for i,tok in enumerate(sys.argv[2:]):\n"
                "    f.write(b'CHECK\\t%d\\ttoken=%s\\n' % (i+1, tok.encode()))\n"
                "    print(f.readline().decode().strip())\n")
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            sys.executable, "-c", prog, env.sock, "garbage", wrong, dt],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
        t.eq(p.stdout.split("\n")[:3], ["FAIL\t1\tcode=invalid", "FAIL\t2\tcode=invalid",
                                        "FAIL\t3\tcode=deleted"],
             "uid 65534: 3 failing checks")
    else:
        t.skip("uid 65534: 3 failing checks", "needs root and setpriv")

    evs = wait_for(lambda: failed_events(), timeout=FLUSH + 3)
    t.eq(len(evs), 1, "one validator.failed_checks event after the flush")
    ev = evs[0] if evs else {}
    peers = [{"uid": 0, "failures": 12,
              "codes": {"invalid": 5, "expired": 1, "deleted": 2, "disabled": 1,
                        "rate_limited": 3}}]
    toks = {tid(good): {"invalid": 2}, tid(dt): {"deleted": 2}, tid(et): {"expired": 1},
            tid(ct): {"disabled": 1}, 999999: {"invalid": 2}}
    if other_uid:
        peers.append({"uid": 65534, "failures": 3, "codes": {"invalid": 2, "deleted": 1}})
        toks[tid(good)]["invalid"] += 1
        toks[tid(dt)]["deleted"] += 1
    want = {"failures": sum(p["failures"] for p in peers), "peers": peers,
            "tokens": [{"token_id": k, "codes": toks[k]} for k in sorted(toks)],
            "other": 0, "other_peers": 0}
    t.eq(ev.get("details"), want, "counts per peer (uid) and per token id and code; malformed "
         "and rate_limited under the peer only")
    t.eq((ev.get("actor"), ev.get("action")), ("keywarden-validator", "validator.failed_checks"),
         "actor and action")
    target = ev.get("target", "")
    try:
        start, end = (int(x) for x in target[len("interval:"):].split("-"))
    except ValueError:
        start, end = 0, -1
    t.ok(target.startswith("interval:") and start <= end <= start + FLUSH + 2
         and abs(end - time.time()) < FLUSH + 5 and rfc3339(ev.get("time")) == end,
         "target interval:<start>-<end> in Unix seconds, the event's time is the end", ev)
    t.eq(len(events()), before + 1, "no other event was added")

    # An interval with checks but no failure, then one with nothing at all: no event.
    c2 = Conn(env.sock)  # root's block (2 s) is over by now
    t.ok(c2.check(1, sync2).startswith("OK"), "a good check in the next interval")
    t.ok(wait_for(lambda: used(tid(sync2)), timeout=FLUSH + 3), "its last use was written")
    time.sleep(FLUSH + 1)
    t.eq(len(events()), before + 1, "intervals without failures add no event")
    c.close()
    c2.close()
    t.eq(env.stop(), 0, "SIGTERM: exit 0")
    t.eq(len(events()), before + 1, "SIGTERM without failures adds no event")

    p = env.kw("audit", "verify", check=False)
    t.eq(p.returncode, 0, "keywarden audit verify passes", )
    db = kwpg.connect(env.state)
    rows = " ".join(str(v) for r in db.execute("SELECT * FROM audit") for v in r)
    db.close()
    t.ok(not [s for s in secrets if s in rows], "no token secret in the audit table")
    log = env.log()
    t.ok(not [s for s in secrets if s in log], "no token secret in the log")
    t.ok(any(MSGID in line and "notice" in line and "%d failed checks" % want["failures"] in line
             and "uid=0 (invalid 5, expired 1, deleted 2, disabled 1, rate_limited 3)" in line
             for line in log.splitlines()),
         "the summary is logged at notice level with its message id",
         [line for line in log.splitlines() if MSGID in line])

    # A flood of random well-formed ids, rate limiting off, one long interval: the event
    # counts KW_FAILURES_TOKENS_MAX ids, itemises the KW_FAILURES_EVENT_TOKENS most failing
    # and counts the rest as other; written on SIGTERM.
    env.write_conf("[validator]\nsocket = %s\nsocket_mode = 0666\nlast_use_flush = 60\n"
                   "rate_limit_failures = 0\n" % env.sock)
    env.start()
    n = 5000
    ids = random.sample(range(10 ** 6, 10 ** 12), n)
    c = Conn(env.sock, timeout=20)
    bad = 0
    for b in range(0, n, 250):
        chunk = ids[b:b + 250]
        c.send("".join("CHECK\t%d\ttoken=%s\n" % (i + 1, forge(x)) for i, x in enumerate(chunk)))
        bad += sum(1 for _ in chunk if not c.line().endswith("code=invalid"))
    # One id fails 4 more times: the event must name it among the most failing.
    c.send("".join("CHECK\t%d\ttoken=%s\n" % (i + 1, forge(ids[0])) for i in range(4)))
    bad += sum(1 for _ in range(4) if not c.line().endswith("code=invalid"))
    c.send("CHECK\t1\ttoken=garbage\n")
    t.ok(bad == 0 and c.line() == "FAIL\t1\tcode=invalid", "%d random ids and one malformed "
         "token: invalid" % n)
    c.close()
    time.sleep(0.5)
    t.eq(len(failed_events()), 1, "nothing written before the interval ends")
    t.eq(env.stop(), 0, "SIGTERM: exit 0")
    evs = failed_events()
    d = evs[-1]["details"] if len(evs) == 2 else {}
    t.eq((len(evs), d.get("failures"), d.get("peers"), len(d.get("tokens", [])), d.get("other"),
          d.get("other_peers")),
         (2, n + 5, [{"uid": 0, "failures": n + 5, "codes": {"invalid": n + 5}}], EVENT_TOKENS,
          n - EVENT_TOKENS, 0),
         "SIGTERM writes the flood as one event: %d token ids itemised, the rest in other"
         % EVENT_TOKENS)
    t.ok(all(x["codes"] == ({"invalid": 5} if x["token_id"] == ids[0] else {"invalid": 1})
             for x in d.get("tokens", []))
         and {x["token_id"] for x in d.get("tokens", [])} <= set(ids),
         "each itemised id is one of those sent, with its count")
    t.ok(ids[0] in {x["token_id"] for x in d.get("tokens", [])},
         "the id that failed most is itemised, whatever its place in the table")
    size = len(json.dumps(d))
    t.ok(size < 32 * 1024, "the event stays small (%d bytes of details)" % size)
    t.ok("other token ids (%d)" % (n - TOKENS_MAX) in env.log(), "the log names the overflow")
    t.eq(env.kw("audit", "verify", check=False).returncode, 0, "audit verify still passes")
except Exception:  # noqa: BLE001
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    env.close()
sys.exit(t.done())
