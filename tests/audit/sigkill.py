#!/usr/bin/python3
"""sigkill.py: a keywarden process killed with SIGKILL in the middle of a change leaves the
change and its audit event both present or both absent, and the chain intact."""
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "notify"))
from kwtest import State, Tap  # noqa: E402

ROUNDS = int(os.environ.get("KW_SIGKILL_ROUNDS", "60"))
t = Tap()
st = State()


SEED = int(os.environ.get("KW_SIGKILL_SEED", str(os.getpid())))
rng = random.Random(SEED)
print("# KW_SIGKILL_SEED=%d KW_SIGKILL_ROUNDS=%d" % (SEED, ROUNDS), flush=True)
try:
    st.run("account", "add", "acme", "--token-limit", "100000")
    st.run("user", "add", "--account", "acme", "alice", "--role", "Administrators")
    # Kill at moments spread over how long one change takes on this build (sanitizers
    # make it several times slower), so that some die midway and some finish.
    t0 = time.monotonic()
    st.token("alice", "timing", "Users")
    span = max(0.005, 1.5 * (time.monotonic() - t0))
    print("# one token create takes %.1f ms" % (1000 * span / 1.5), flush=True)
    killed = finished = 0
    for i in range(ROUNDS):
        procs = []
        for j in range(3):
            if j == 2 and i > 0:
                # Also deletes, of a token that may or may not exist yet.
                args = ("token", "delete", "--as", "alice", str(rng.randint(1, 3 * i)))
            else:
                args = ("token", "create", "--as", "alice", "--name", "k%d-%d" % (i, j),
                        "--role", "Users")
            procs.append(st.popen(*args, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL))
        time.sleep(rng.uniform(0, span))
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
        for p in procs:
            rc = p.wait()
            if rc == -signal.SIGKILL:
                killed += 1
            else:
                finished += 1
    print("# %d processes killed, %d finished" % (killed, finished), flush=True)
    t.ok(killed > 0, "some processes were killed (%d)" % killed)
    t.ok(finished > 0, "some processes finished (%d)" % finished)

    tokens = set(st.sql("SELECT 'token:' || id FROM token"))
    created = st.sql("SELECT target FROM audit WHERE action = 'token.create'")
    t.ok(len(tokens) > 0, "tokens were created (%d)" % len(tokens))
    t.eq(sorted(set(created)), sorted(tokens),
         "every token row has its token.create event and every event its row")
    t.eq(len(created), len(set(created)), "no token.create event is there twice")
    deleted = set(st.sql("SELECT 'token:' || id FROM token WHERE deleted IS NOT NULL"))
    delete_events = st.sql("SELECT target FROM audit WHERE action = 'token.delete'")
    t.eq(sorted(set(delete_events)), sorted(deleted),
         "every deleted token has its token.delete event and every event its deletion")
    t.eq(st.sql("SELECT count(*) FROM token WHERE digest = zeroblob(32)"), ["0"],
         "no token row was left half-made (without its digest)")
    p = st.run("audit", "verify", check=False)
    t.eq(p.returncode, 0, "the audit chain is intact after the kills")

    # The same at chosen moments, not by chance: stop the process under gdb at a function
    # that runs inside the change's transaction and kill it there.
    victim = str(st.token("alice", "victim", "Users"))
    before_tokens = st.sql("SELECT count(*) FROM token")
    before_events = st.sql("SELECT count(*) FROM audit")
    for where, args in (
            ("kw_token_digest", ("token", "create", "--as", "alice", "--name", "g1",
                                 "--role", "Users")),
            ("kw_audit_append", ("token", "create", "--as", "alice", "--name", "g2",
                                 "--role", "Users")),
            ("kw_audit_append", ("token", "delete", "--as", "alice", victim)),
            ("sqlite3_wal_hook", ("user", "set", "alice", "--email", "a@example.org"))):
        g = subprocess.run(["gdb", "-nx", "-batch", "-ex", "set breakpoint pending on",
                            "-ex", "break " + where, "-ex", "run", "-ex", "signal SIGKILL",
                            "--args"] + st.cmd(*args),
                           env=st.env(None), capture_output=True, text=True, timeout=120)
        stopped = "Breakpoint 1, " in g.stdout and "terminated with signal SIGKILL" in g.stdout
        t.ok(stopped, "killed inside the transaction of '%s', at %s" % (" ".join(args[:2]), where),
             g.stdout[-1500:] + g.stderr[-800:])
    t.eq((st.sql("SELECT count(*) FROM token"), st.sql("SELECT count(*) FROM audit"),
          st.sql("SELECT count(*) FROM token WHERE id = %s AND deleted IS NOT NULL" % victim),
          st.sql("SELECT count(*) FROM user WHERE email = 'a@example.org'")),
         (before_tokens, before_events, ["0"], ["0"]),
         "none of those changes nor their events is there")
    p = st.run("audit", "verify", check=False)
    t.eq(p.returncode, 0, "and the chain is intact")
finally:
    st.cleanup()
t.done()
