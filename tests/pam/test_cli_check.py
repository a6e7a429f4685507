#!/usr/bin/python3
"""`keywarden token check` against the real keywarden-validator (TAP): the end-to-end story
create -> check OK -> delete -> check FAIL deleted, one exit code per FAIL code (but temp_fail,
which a healthy validator does not give: 15 is checked with the validator down), --json, the
token from standard input, and the validator down (exit 15)."""
import calendar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

B = os.environ.get("top_builddir", ".")
KEYWARDEN = os.path.join(B, "keywarden")
VALIDATOR = os.path.join(B, "keywarden-validator")
TMP = tempfile.mkdtemp(prefix="kw-check-")
STATE = os.path.join(TMP, "state")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pg"))
import kwpg  # noqa: E402
kwpg.use(STATE)  # with KW_TEST_PG: a PostgreSQL database of its own, for every program below
SOCK = os.path.join(STATE, "validator.sock")
count = 0


def ok(cond, name, detail=""):
    global count
    count += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (count, name))
    if not cond:
        for line in str(detail).splitlines()[-30:]:
            print("# " + line)
    sys.stdout.flush()


def kw(*args, stdin=None):
    p = subprocess.run([KEYWARDEN, "--state-dir", STATE] + list(args), input=stdin,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def must(*args):
    rc, out, err = kw(*args)
    if rc != 0:
        print("Bail out! keywarden %s failed (%d): %s" % (" ".join(args), rc, err))
        sys.exit(1)
    return out


def tid(t):
    return re.split(r"[$_]", t, 1)[0]


must("init")
must("account", "add", "acme")
must("user", "add", "--account", "acme", "alice", "--role", "Administrators")
must("user", "add", "--account", "acme", "carol", "--role", "Engineers")
t_story = must("token", "create", "--as", "alice", "--name", "story", "--role", "Engineers").strip()
t_carol = must("token", "create", "--as", "carol", "--name", "c", "--role", "Users").strip()
must("user", "set", "carol", "--disable")
soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3))
t_soon = must("token", "create", "--as", "alice", "--name", "soon", "--role", "Users",
              "--expires", soon).strip()
# Few failures before a peer is throttled, so that the test can reach rate_limited.
with open(os.path.join(STATE, "keywarden.conf"), "w") as f:
    f.write("[validator]\nrate_limit_failures = 5\nrate_limit_window = 60\n"
            "rate_limit_block = 60\n")

log = open(os.path.join(TMP, "validator.log"), "ab")
v = subprocess.Popen([VALIDATOR, "--state-dir", STATE], stdout=log, stderr=subprocess.STDOUT)
# Ready when it accepts a connection (the socket file exists a moment before listen()).
for _ in range(400):
    if v.poll() is not None:
        break
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(SOCK)
        break
    except OSError:
        time.sleep(0.05)
try:
    rc, out, err = kw("token", "check", "-", stdin=t_story + "\n")
    want = ("status: ok\ntoken_id: %s\naccount: acme\nuser: alice\nrole: Engineers\n"
            "expires: never\n" % tid(t_story))
    ok(rc == 0 and out == want, "story: token check - (stdin) says valid, exit 0",
       "%d %r %s" % (rc, out, err))
    rc, out, err = kw("token", "check", "--json", "APIKey " + t_story)
    try:
        j = json.loads(out)
    except ValueError:
        j = None
    ok(rc == 0 and j == {"status": "ok", "token_id": int(tid(t_story)), "account": "acme",
                         "user": "alice", "role": "Engineers", "expires": "never"},
       "--json with a header value: one JSON object, exit 0", "%d %r %s" % (rc, out, err))
    must("token", "delete", "--as", "alice", tid(t_story))
    rc, out, err = kw("token", "check", t_story)
    ok(rc == 12 and out == "status: deleted\n",
       "story: right after delete, exit 12 and status: deleted", "%d %r %s" % (rc, out, err))
    rc, out, err = kw("token", "check", "--json", t_story)
    ok(rc == 12 and out == '{"status":"deleted"}\n', "--json of a deleted token",
       "%d %r %s" % (rc, out, err))
    # the secret's last two characters changed (never to what they were)
    def wrong(tok, tail):
        return tok[:-2] + (tail if not tok.endswith(tail) else "zz")

    rc, out, err = kw("token", "check", wrong(t_story, "xx"))
    ok(rc == 10 and out == "status: invalid\n", "wrong secret: exit 10, status: invalid",
       "%d %r %s" % (rc, out, err))
    rc, out, err = kw("token", "check", t_carol)
    ok(rc == 13 and out == "status: disabled\n", "disabled issuer: exit 13, status: disabled",
       "%d %r %s" % (rc, out, err))
    while time.time() < calendar.timegm(time.strptime(soon, "%Y-%m-%dT%H:%M:%SZ")) + 1:
        time.sleep(0.2)
    rc, out, err = kw("token", "check", t_soon)
    ok(rc == 11 and out == "status: expired\n", "past its expiry: exit 11, status: expired",
       "%d %r %s" % (rc, out, err))
    codes = [kw("token", "check", wrong(t_story, "yy"))[0] for _ in range(8)]
    rc, out, err = kw("token", "check", wrong(t_story, "yy"))
    ok(rc == 14 and out == "status: rate_limited\n" and 14 in codes and codes[0] == 10,
       "a peer that keeps failing: exit 14, status: rate_limited", "%r %d %r %s"
       % (codes, rc, out, err))
    rc, out, err = kw("token", "check")
    ok(rc == 2, "no TOKEN: usage error, exit 2", "%d %r %s" % (rc, out, err))
    rc, out, err = kw("token", "check", "-", stdin="")
    ok(rc == 2, "- with nothing on standard input: usage error, exit 2",
       "%d %r %s" % (rc, out, err))
finally:
    if v.poll() is None:
        v.send_signal(signal.SIGTERM)
        v.wait(10)
rc, out, err = kw("token", "check", "-", stdin=t_story + "\n")
ok(rc == 15 and "validator" in err and out == "",
   "validator down: exit 15 and a message on stderr", "%d %r %s" % (rc, out, err))
print("1..%d" % count)
subprocess.run(["rm", "-rf", TMP])
