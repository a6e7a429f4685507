#!/usr/bin/python3
"""tamper.py: keywarden audit verify on an honest log, and on logs edited with the sqlite3
shell (an edit, a deletion, an insertion, a reorder, a cut-off tail against an anchor);
keywarden audit export as JSON Lines."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "notify"))
from kwtest import DAY, State, Tap, kwpg  # noqa: E402

t = Tap()
states = []


def honest():
    """A fresh state folder with a few changes, hence a few audit events."""
    st = State()
    states.append(st)
    st.run("account", "add", "acme")
    st.run("user", "add", "--account", "acme", "alice", "--role", "Administrators",
           "--email", "alice@example.org")
    st.run("user", "add", "--account", "acme", "bob", "--role", "Users")
    tid = st.token("alice", "one", "Users", int(time.time()) + 30 * DAY)
    st.token("bob", "two", "Users")
    st.run("token", "delete", "--as", "alice", str(tid))
    st.run("user", "set", "bob", "--expiry-emails", "off")
    return st


def verify(st, *extra):
    p = st.run("audit", "verify", *extra, check=False)
    return p.returncode, p.stdout, p.stderr


try:
    st = honest()
    n = int(st.sql("SELECT count(*) FROM audit")[0])
    t.ok(n == 7, "the honest log holds one event per change", n)
    code, out, err = verify(st)
    t.eq(code, 0, "audit verify passes on an honest log")
    t.ok(("intact %d events" % n) in out, "it says how many events are intact", out)
    anchor = [line.split()[1] for line in out.splitlines() if line.startswith("anchor ")]
    t.ok(len(anchor) == 1 and anchor[0].startswith("%d:" % n), "it prints an anchor", out)
    code, out, err = verify(st, "--anchor", anchor[0])
    t.eq(code, 0, "verify passes against its own anchor")

    cases = [
        ("an edited details field", "UPDATE audit SET details = replace(details, 'Users', "
         "'Administrators') WHERE seq = 4;", 4),
        ("an edited actor of the first event", "UPDATE audit SET actor = 'unix:mallory' "
         "WHERE seq = 1;", 1),
        ("an edited time", "UPDATE audit SET time = time - 3600 WHERE seq = 6;", 6),
        ("a deleted event", "DELETE FROM audit WHERE seq = 3;", 4),
        ("a deleted first event", "DELETE FROM audit WHERE seq = 1;", 2),
        ("a deleted event with the rest renumbered",
         "DELETE FROM audit WHERE seq = 3; UPDATE audit SET seq = seq + 1000 WHERE seq > 3; "
         "UPDATE audit SET seq = seq - 1001 WHERE seq > 1000;", 3),
        ("an inserted event",
         "UPDATE audit SET seq = seq + 1000 WHERE seq >= 3; "
         "UPDATE audit SET seq = seq - 999 WHERE seq > 1000; "
         "INSERT INTO audit (seq, time, actor, action, target, details, hash) SELECT 3, time, "
         "actor, 'token.delete', 'token:2', details, hash FROM audit WHERE seq = 2;", 3),
        ("an event appended with a made-up hash",
         "INSERT INTO audit (seq, time, actor, action, target, details, hash) VALUES (8, 0, "
         "'unix:root', 'user.add', 'mallory', '{}', %s);" % kwpg.blob(os.urandom(32)), 8),
        ("two events reordered",
         "UPDATE audit SET seq = 100 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3; "
         "UPDATE audit SET seq = 3 WHERE seq = 100;", 2),
        ("a hash replaced by another event's",
         "UPDATE audit SET hash = (SELECT hash FROM audit WHERE seq = 2) WHERE seq = 5;", 5),
    ]
    for what, sql, bad in cases:
        st = honest()
        st.sql(sql)
        code, out, err = verify(st)
        t.eq(code, 9, "verify catches %s (exit 9)" % what)
        t.ok(("broken %d" % bad) in out and ("event %d" % bad) in err,
             "and names event %d as the first bad one" % bad, out + err)

    # Cutting off the newest events: the chain alone cannot see it, the anchor can.
    st = honest()
    code, out, err = verify(st)
    anchor = [line.split()[1] for line in out.splitlines() if line.startswith("anchor ")][0]
    st.sql("DELETE FROM audit WHERE seq >= 6;")
    code, out, err = verify(st)
    t.eq(code, 0, "a cut-off tail alone passes the chain check (documented limit)")
    code, out, err = verify(st, "--anchor", anchor)
    t.ok(code == 9 and "broken 7" in out, "a cut-off tail is caught against an anchor",
         out + err)
    # A chain rewritten from an event on, even if recomputed, differs from the anchor.
    st = honest()
    code, out, err = verify(st)
    anchor = [line.split()[1] for line in out.splitlines() if line.startswith("anchor ")][0]
    st.sql("UPDATE audit SET hash = %s WHERE seq = 7;" % kwpg.blob(os.urandom(32)))
    code, out, err = verify(st, "--anchor", anchor)
    t.eq(code, 9, "an anchor event with another hash is caught")
    code, out, err = verify(st, "--anchor", "7:xyz")
    t.eq(code, 3, "a malformed anchor is a usage error of its own (exit 3)")

    # Export.
    st = honest()
    p = st.run("audit", "export", check=False)
    lines = p.stdout.splitlines()
    t.eq(p.returncode, 0, "audit export succeeds")
    try:
        events = [json.loads(line) for line in lines]
        parsed = True
    except ValueError:
        events, parsed = [], False
    t.ok(parsed and len(events) == 7, "export writes one JSON object per line per event",
         p.stdout)
    t.eq([e.get("seq") for e in events], list(range(1, 8)), "in sequence order")
    t.ok(all(isinstance(e.get("details"), dict) and len(e.get("hash", "")) == 64 and
             e.get("time", "").endswith("Z") for e in events),
         "with details as JSON objects, RFC 3339 times and the chain hash", p.stdout)
    t.eq([e.get("action") for e in events],
         ["account.add", "user.add", "user.add", "token.create", "token.create",
          "token.delete", "user.set"], "every change is there, by action")
    t.ok(all("$" not in line for line in lines), "no token secret in the export")
    p = st.run("audit", "export", "--since", "2999-01-01", check=False)
    t.ok(p.returncode == 0 and p.stdout == "", "--since in the future exports nothing")
    p = st.run("audit", "export", "--since", "1970-01-02", "--format", "jsonl", check=False)
    t.eq(len(p.stdout.splitlines()), 7, "--since in the past exports everything")
    future = int(time.time()) + 3 * DAY
    st.run("user", "set", "alice", "--expiry-emails", "off", offset=3 * DAY)
    p = st.run("audit", "export", "--since",
               time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(future - 60)), check=False)
    t.ok(len(p.stdout.splitlines()) == 1 and '"seq":8' in p.stdout,
         "--since TIME exports the events from that time on", p.stdout)
    p = st.run("audit", "export", "--format", "csv", check=False)
    t.eq(p.returncode, 3, "an unknown --format is refused")
    st.sql("UPDATE audit SET details = 'not json\n{' WHERE seq = 2;")
    p = st.run("audit", "export", check=False)
    lines = p.stdout.splitlines()
    ok = len(lines) == 8
    try:
        ok = ok and json.loads(lines[1])["details"] == "not json\n{"
    except ValueError:
        ok = False
    t.ok(ok, "details that are not a JSON object are exported as a string, one line still",
         p.stdout)
    # Numbers that strtod takes but JSON does not: each line must still parse.
    bad_numbers = ['{"a":0x1p3}', '{"a":-inf}', '{"a":nan}', '{"a":00012}', '{"a":1.}',
                   '{"a":.5}', '{"a":1e}', '{"a":+1}']
    good_numbers = ['{"a":0}', '{"a":-12.5e+3}', '{"a":[1,2.25,-0.0E-2]}']
    lines_ok = True
    for i, details in enumerate(bad_numbers + good_numbers):
        st.sql("UPDATE audit SET details = '%s' WHERE seq = 3;" % details)
        line = st.run("audit", "export", check=False).stdout.splitlines()[2]
        try:
            got = json.loads(line)["details"]
        except ValueError:
            lines_ok = False
            break
        want_object = i >= len(bad_numbers)
        if isinstance(got, dict) != want_object:
            lines_ok = False
            break
    t.ok(lines_ok, "details with JSON-invalid numbers (hex, inf, nan, 00012, 1.) are exported "
         "as strings; valid numbers as objects: every line parses", (details, line))
finally:
    for st in states:
        st.cleanup()
t.done()
