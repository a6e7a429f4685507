#!/usr/bin/env python3
# multihost.py: several hosts on one PostgreSQL database (issue 15, items 3 and 4): three
# validators (separate processes, state folders and caches, copies of one key) and CLIs on a
# throwaway server (tests/pg/pgserver.sh). Under load (a thread per validator checking
# continuously, every answer recorded with the monotonic times of its request and answer) it
# asserts the promise of lib/store_lease.c: no validator answers OK for a token in a request
# sent after the command that deleted it (or disabled its user) returned; a frozen validator
# makes a delete wait for its lease and answers no stale OK when it thaws; a stopped database
# gives temp_fail (never OK past the lease, never OK for what the cache cannot prove) and the
# validators recover by themselves; concurrent creates never pass the 50-token limit; the
# audit chain verifies after concurrent writers on every host. The security review's items:
# a batch of cache misses that outlasts the lease (lookups held up by a lock another session
# holds) gives no OK after a writer's wait returned; a second delete of the same token
# ("already deleted") waits like the first; the SSO review reads one snapshot. No timed
# assertion: waits are loops with a timeout.
import base64
import json
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

TOP_SRCDIR = os.environ.get("top_srcdir", ".")
sys.path.insert(0, os.path.join(TOP_SRCDIR, "tests", "validator"))
import vtest  # noqa: E402

PGSERVER = os.path.join(TOP_SRCDIR, "tests", "pg", "pgserver.sh")
LEASE_MS = 1500
t = vtest.Tap()


def pg_bindir():
    try:
        b = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout
        b = b.strip()
        if b and os.path.exists(os.path.join(b, "pg_ctl")):
            return b
    except OSError:
        pass
    return "/usr/lib/postgresql/15/bin"


BIN = pg_bindir()


class Server:
    """A throwaway server in its own folder, which the test may stop and start again."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "pg")
        self.watchdog = None
        out = subprocess.run(["sh", PGSERVER, "start", self.dir, str(os.getpid())],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError("pgserver.sh start: " + out.stderr)
        out = subprocess.run(["sh", PGSERVER, "newdb", self.dir, "multihost"],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError("pgserver.sh newdb: " + out.stderr)
        self.url = out.stdout.strip()

    def as_server(self, cmd):
        if os.getuid() != 0:
            return cmd
        with open(os.path.join(self.dir, ".server-user")) as f:
            user = f.read().strip()
        gid = subprocess.run(["id", "-g", user], capture_output=True, text=True).stdout.strip()
        return ["env", "HOME=" + self.dir, "setpriv", "--reuid=" + user, "--regid=" + gid,
                "--clear-groups", "--"] + cmd

    def stop_fast(self):
        """pg_ctl stop -m fast: every connection is ended, the server goes down cleanly."""
        subprocess.run(self.as_server([os.path.join(BIN, "pg_ctl"), "stop", "-D",
                                       os.path.join(self.dir, "data"), "-m", "fast", "-w",
                                       "-t", "60", "-s"]), check=True, timeout=90)

    def start(self):
        """Starts the stopped server again, and a watchdog of our own (pgserver.sh's ended
        with the server) that stops it if this process dies."""
        subprocess.run(self.as_server([os.path.join(BIN, "pg_ctl"), "start", "-D",
                                       os.path.join(self.dir, "data"), "-l",
                                       os.path.join(self.dir, "server.log"), "-w", "-t", "60",
                                       "-s"]), check=True, timeout=90)
        pidfile = os.path.join(self.dir, "data", "postmaster.pid")
        stop = " ".join(self.as_server([os.path.join(BIN, "pg_ctl"), "stop", "-D",
                                        os.path.join(self.dir, "data"), "-m", "immediate",
                                        "-w", "-s"]))
        script = ('trap "" HUP INT; while kill -0 %d 2>/dev/null && [ -f %s ]; do sleep 1; '
                  'done; [ -f %s ] && %s' % (os.getpid(), pidfile, pidfile, stop))
        self.watchdog = subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)

    def sql(self, query):
        out = subprocess.run([os.path.join(BIN, "psql"), "-X", "-q", "-A", "-t", "-d", self.url,
                              "-c", query], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError("psql: " + out.stderr)
        return [l.split("|") for l in out.stdout.splitlines() if l]

    def close(self):
        subprocess.run(["sh", PGSERVER, "stop", self.dir], capture_output=True, timeout=120)
        if self.watchdog is not None:
            self.watchdog.kill()
            self.watchdog.wait()


class Host:
    """A state folder (a copy of the key) and its validator, on the shared database."""

    def __init__(self, tmp, name, key_from=None):
        self.name = name
        self.state = os.path.join(tmp, name)
        self.sock = os.path.join(self.state, "validator.sock")
        self.log_path = os.path.join(tmp, name + ".log")
        self.daemon = None
        self.rc = None
        if key_from is None:
            self.kw("init")
        else:
            os.mkdir(self.state, 0o700)
            shutil.copy(os.path.join(key_from.state, "keywarden.key"),
                        os.path.join(self.state, "keywarden.key"))
            os.chmod(os.path.join(self.state, "keywarden.key"), 0o600)
        with open(os.path.join(self.state, "keywarden.conf"), "w") as f:
            f.write("[validator]\nlease_ms = %d\nlast_use_flush = 1\n"
                    "rate_limit_failures = 0\n" % LEASE_MS)

    def kw(self, *args, check=True):
        p = subprocess.run([vtest.KEYWARDEN, "--state-dir", self.state] + list(args),
                           capture_output=True, text=True, timeout=300)
        if check and p.returncode != 0:
            raise RuntimeError("%s: keywarden %s: exit %d: %s" % (
                self.name, " ".join(args), p.returncode, p.stderr.strip()))
        return p

    def start(self):
        self.logf = open(self.log_path, "a")
        self.daemon = subprocess.Popen([vtest.VALIDATOR, "--state-dir", self.state, "--debug"],
                                       stdout=self.logf, stderr=self.logf)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise RuntimeError("%s: validator exited: %s" % (self.name, self.log()))
            try:
                c = vtest.Conn(self.sock)
                c.close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("%s: validator did not start: %s" % (self.name, self.log()))

    def stop(self):
        if self.daemon is None:
            return
        if self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGCONT)
            self.daemon.terminate()
            try:
                self.daemon.wait(20)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        self.rc = self.daemon.returncode
        self.daemon = None
        self.logf.close()

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def check(self, token):
        """One CHECK on a new connection: (verb, code)."""
        c = vtest.Conn(self.sock, timeout=30)
        try:
            return verdict(c.check(1, token))
        finally:
            c.close()


def verdict(line):
    if line is None:
        return ("EOF", None)
    f = vtest.fields(line)
    return (f.get("verb"), f.get("code"))


class Load(threading.Thread):
    """Checks the tokens of self.tokens (name -> token) on one validator, round and round,
    recording (name, sent, answered, verb, code) with monotonic times."""

    def __init__(self, host):
        super().__init__(daemon=True)
        self.host = host
        self.tokens = {}
        self.records = []
        self.errors = []
        self.stop_flag = False
        self.pause_req = threading.Event()
        self.idle = threading.Event()
        self.conn = None

    def run(self):
        rid = 0
        while not self.stop_flag:
            if self.pause_req.is_set():
                self.idle.set()
                time.sleep(0.005)
                continue
            self.idle.clear()
            try:
                if self.conn is None:
                    self.conn = vtest.Conn(self.host.sock, timeout=30)
                for name, token in list(self.tokens.items()):
                    rid += 1
                    sent = time.monotonic()
                    line = self.conn.check(rid, token)
                    got = time.monotonic()
                    v, code = verdict(line)
                    self.records.append((name, sent, got, v, code))
                    if v == "EOF":
                        raise OSError("connection closed")
                if not self.tokens:
                    time.sleep(0.005)
            except OSError as e:
                self.errors.append(str(e))
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                time.sleep(0.01)
        if self.conn is not None:
            self.conn.close()

    def pause(self):
        self.pause_req.set()
        self.idle.wait(60)

    def resume(self):
        self.idle.clear()
        self.pause_req.clear()

    def after(self, name, since):
        return [r for r in self.records if r[0] == name and r[1] > since]

    def between(self, name, since, until):
        return [r for r in self.records if r[0] == name and since < r[1] and r[2] < until]


def wait_for(cond, timeout=30, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def summary(records, n=8):
    return ["%s sent=%.3f answered=%.3f %s %s" % r for r in records[:n]]


def token_id(token):
    return int(token.split("$")[0])


def forge(token_id):
    """A well-formed token (its checksum right, lib/token.c) for token_id, with a random
    secret: unknown to the database unless that id exists, and then its secret is wrong."""
    rnd = os.urandom(32)
    check = hashlib.sha256(b"keywarden-v1" + token_id.to_bytes(8, "big") + rnd).digest()[:4]
    return "%d$%s" % (token_id, base64.urlsafe_b64encode(rnd + check).decode())


def main():
    tmp = tempfile.mkdtemp(prefix="kw-mh.")
    os.chmod(tmp, 0o755)  # the server's user (root runs it as kwpgtest) reaches its folder
    server = None
    hosts = []
    loads = []
    try:
        server = Server(tmp)
        os.environ["KEYWARDEN_STORE_URL"] = server.url
        h1 = Host(tmp, "h1")
        h2 = Host(tmp, "h2", key_from=h1)
        h3 = Host(tmp, "h3", key_from=h1)
        hosts = [h1, h2, h3]
        h1.kw("account", "add", "acme")
        h1.kw("user", "add", "--account", "acme", "alice", "--role", "Administrators")
        h2.kw("user", "add", "--account", "acme", "bob", "--role", "Engineers")
        for h in hosts:
            h.start()
        run(t, server, hosts, loads)
    finally:
        for ld in loads:
            ld.stop_flag = True
        for h in hosts:
            h.stop()
        for ld in loads:
            ld.join(5)
        if server is not None:
            server.close()
        if t.failed:
            for h in hosts:
                print("# ---- %s log (tail) ----" % h.name)
                lines = [l for l in h.log().splitlines()
                         if " request " not in l and "debug: connection" not in l]
                for line in lines[-40:]:
                    print("# " + line)
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


def run(t, server, hosts, loads):
    h1, h2, h3 = hosts

    # ---- registration ----
    rows = server.sql("SELECT pid FROM keywarden_validator ORDER BY pid")
    t.eq(sorted(int(r[0]) for r in rows), sorted(h.daemon.pid for h in hosts),
         "each validator registered one row (keywarden_validator)")

    # ---- created on one: OK on all, at once (negative cache entries dropped too) ----
    a = h1.kw("token", "create", "--as", "alice", "--name", "a", "--role", "Users").stdout.strip()
    next_id = token_id(a) + 1
    ghost = forge(next_id)
    first = [h.check(ghost) for h in hosts]
    t.eq(first, [("FAIL", "invalid")] * 3,
         "an id not created yet is invalid on every validator (cached as unknown)")
    b = h2.kw("token", "create", "--as", "bob", "--name", "b", "--role", "Users").stdout.strip()
    t.eq(token_id(b), next_id, "the next token has that id")
    t.eq([h.check(b) for h in hosts], [("OK", None)] * 3,
         "a token created on h2 is OK on all three validators as soon as the create returned")
    t.eq([h.check(a) for h in hosts], [("OK", None)] * 3,
         "a token created on h1 is OK on all three validators")

    # ---- load ----
    tokens = {}
    for name, login in (("del", "alice"), ("dis", "bob"), ("keep", "alice"), ("stop", "alice"),
                        ("out", "alice"), ("lock", "alice")):
        role = "Users"
        tokens[name] = h1.kw("token", "create", "--as", login, "--name", name, "--role",
                             role).stdout.strip()
    tokens["unknown"] = forge(999999)
    for h in hosts:
        ld = Load(h)
        ld.tokens = dict((k, v) for k, v in tokens.items() if k != "unknown")
        loads.append(ld)
        ld.start()
    t.ok(wait_for(lambda: all(sum(1 for r in ld.records if r[0] == "del" and r[3] == "OK") >= 20
                              for ld in loads)),
         "under load, every validator answers OK for the live tokens")

    # ---- delete on one host: FAIL deleted on all, from the next CHECK on ----
    start = time.monotonic()
    h3.kw("token", "delete", "--as", "alice", str(token_id(tokens["del"])))
    returned = time.monotonic()
    took = returned - start
    t.ok(wait_for(lambda: all(len(ld.after("del", returned)) >= 20 for ld in loads)),
         "the load kept checking the deleted token on every validator")
    for ld in loads:
        late = ld.after("del", returned)
        bad = [r for r in late if r[3] != "FAIL" or r[4] != "deleted"]
        t.ok(late and not bad, "%s: every CHECK sent after the delete (on h3) returned is FAIL "
             "deleted (%d answers)" % (ld.host.name, len(late)), *summary(bad))
    t.eq([h.check(tokens["del"]) for h in hosts], [("FAIL", "deleted")] * 3,
         "a new connection to each validator: FAIL deleted")
    print("# delete command took %.1f ms with 3 validators under load" % (took * 1000))

    # ---- disable the user on one host, enable on another ----
    h2.kw("user", "set", "bob", "--disable")
    returned = time.monotonic()
    t.ok(wait_for(lambda: all(len(ld.after("dis", returned)) >= 20 for ld in loads)),
         "the load kept checking bob's token")
    for ld in loads:
        late = ld.after("dis", returned)
        bad = [r for r in late if r[3] != "FAIL" or r[4] != "disabled"]
        t.ok(late and not bad, "%s: every CHECK sent after 'user set --disable' (on h2) "
             "returned is FAIL disabled" % ld.host.name, *summary(bad))
    h1.kw("user", "set", "bob", "--enable")
    returned = time.monotonic()
    t.ok(wait_for(lambda: all(len(ld.after("dis", returned)) >= 20 for ld in loads)),
         "the load kept checking bob's token after the enable")
    for ld in loads:
        late = ld.after("dis", returned)
        bad = [r for r in late if r[3] != "OK"]
        t.ok(late and not bad, "%s: every CHECK sent after 'user set --enable' (on h1) "
             "returned is OK again (no stale FAIL either)" % ld.host.name, *summary(bad))

    # ---- a role change: a writing commit like any other, answers follow the token's role ----
    h3.kw("user", "set", "bob", "--role", "Users")
    returned = time.monotonic()
    t.ok(wait_for(lambda: all(len(ld.after("dis", returned)) >= 20 for ld in loads)),
         "the load kept checking after the role change")
    for ld in loads:
        late = ld.after("dis", returned)
        bad = [r for r in late if r[3] != "OK"]
        t.ok(late and not bad, "%s: a role change of the issuer (no higher than the token's "
             "role) leaves the token OK" % ld.host.name, *summary(bad))

    # ---- the writers' lock held past the validators' lock wait (100 ms) by another session:
    # their last-use writes give up, and nothing stays broken (no transaction left open) ----
    marks = [h.log().count("last use: cannot write") for h in hosts]
    holder = subprocess.Popen(
        [os.path.join(BIN, "psql"), "-X", "-q", "-d", server.url, "-c",
         "BEGIN; SELECT pg_advisory_xact_lock(1802960897); SELECT pg_sleep(3); COMMIT;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t.ok(wait_for(lambda: all(h.log().count("last use: cannot write") > m
                              for h, m in zip(hosts, marks))),
         "writers' lock held elsewhere: each validator's last-use write gave up")
    holder.wait(60)
    h2.kw("token", "delete", "--as", "alice", str(token_id(tokens["lock"])))
    returned = time.monotonic()
    t.ok(wait_for(lambda: all(len(ld.after("lock", returned)) >= 10 for ld in loads)),
         "the load kept checking after the lock was released")
    for ld in loads:
        late = ld.after("lock", returned)
        bad = [r for r in late if r[4] != "deleted"]
        t.ok(late and not bad, "%s: after a failed last-use write, a delete is still seen at "
             "the next CHECK (not temp_fail)" % ld.host.name, *summary(bad))
    marks = [h.log().count("last use: wrote") for h in hosts]
    t.ok(wait_for(lambda: all(h.log().count("last use: wrote") > m
                              for h, m in zip(hosts, marks))),
         "and every validator writes its last uses again")

    # ---- a frozen validator: the delete waits for its lease; thawed, it refuses ----
    v3 = h3.daemon.pid
    loads[2].pause()
    h3.daemon.send_signal(signal.SIGSTOP)
    queued = vtest.Conn(h3.sock, handshake=False, timeout=60)
    queued.send("VERSION\t1\t0\nCHECK\t7\ttoken=%s\n" % tokens["stop"])
    h1.kw("token", "delete", "--as", "alice", str(token_id(tokens["stop"])))
    returned = time.monotonic()
    rows = server.sql("SELECT v.acked, g.gen, v.lease_until <= (extract(epoch FROM "
                      "clock_timestamp()) * 1000)::bigint FROM keywarden_validator v, "
                      "keywarden_generation g WHERE v.pid = %d" % v3)
    t.ok(len(rows) == 1 and int(rows[0][0]) < int(rows[0][1]) and rows[0][2] == "t",
         "the delete returned while h3 was frozen only once h3's lease had lapsed "
         "(its row: acked below the generation, lease_until past)", "row: %r" % (rows,))
    for ld in loads[:2]:
        ok = wait_for(lambda: len(ld.after("stop", returned)) >= 10)
        late = ld.after("stop", returned)
        bad = [r for r in late if r[4] != "deleted"]
        t.ok(ok and not bad, "%s: FAIL deleted after the delete returned, while h3 is frozen"
             % ld.host.name, *summary(bad))
    h3.daemon.send_signal(signal.SIGCONT)
    queued.line()  # VERSION
    t.eq(verdict(queued.line()), ("FAIL", "deleted"),
         "h3 thawed: the CHECK that waited in its socket is FAIL deleted, not a stale OK")
    queued.close()
    loads[2].resume()
    t.ok(wait_for(lambda: len(loads[2].after("stop", returned)) >= 10),
         "h3 answers the load again")
    bad = [r for r in loads[2].after("stop", returned) if r[4] != "deleted"]
    t.ok(not bad, "h3: every answer after the thaw is FAIL deleted", *summary(bad))

    # ---- the database stopped and started again, under load ----
    for ld in loads:
        ld.tokens = {"keep": tokens["keep"], "del": tokens["del"], "unknown": tokens["unknown"]}
    t.ok(wait_for(lambda: all(len(ld.after("unknown", time.monotonic() - 0.2)) > 0
                              for ld in loads)), "load on the tokens of the outage")
    down = time.monotonic()
    server.stop_fast()
    stopped = time.monotonic()
    fresh = forge(next_id + 100)
    t.ok(wait_for(lambda: all(any(r[3] == "FAIL" and r[4] == "temp_fail"
                                  for r in ld.after("keep", stopped)) for ld in loads)),
         "database down: every validator answers temp_fail for a live token once its lease "
         "ended")
    t.eq([h.check(fresh) for h in hosts], [("FAIL", "temp_fail")] * 3,
         "database down: an id no validator has seen is temp_fail (not invalid)")
    t.ok(all(h.daemon.poll() is None for h in hosts), "the validators keep running")
    time.sleep(LEASE_MS / 1000.0)
    restart = time.monotonic()
    server.start()
    for ld in loads:
        recs = ld.between("keep", down, restart)
        first_tf = next((r[1] for r in recs if r[4] == "temp_fail"), None)
        bad = [r for r in recs if r[3] == "OK" and first_tf is not None and r[1] > first_tf]
        t.ok(first_tf is not None and not bad,
             "%s: once its lease ended it gave no OK until the database was back (%d "
             "answers during the outage)" % (ld.host.name, len(recs)), *summary(bad))
        bad = [r for r in ld.between("del", down, restart + 3600)
               if r[3] == "OK" or r[4] not in ("deleted", "temp_fail")]
        t.ok(not bad, "%s: the deleted token: FAIL deleted or temp_fail throughout, never OK"
             % ld.host.name, *summary(bad))
        bad = [r for r in ld.between("unknown", down, restart + 3600)
               if r[3] == "OK" or r[4] not in ("invalid", "temp_fail")]
        t.ok(not bad, "%s: an unknown id: invalid or temp_fail, never OK" % ld.host.name,
             *summary(bad))
    back = time.monotonic()
    for ld in loads:
        t.ok(wait_for(lambda: any(r[3] == "OK" for r in ld.after("keep", back)), timeout=60),
             "%s: recovers by itself after the restart (OK again)" % ld.host.name)
    t.eq([h.check(tokens["del"]) for h in hosts], [("FAIL", "deleted")] * 3,
         "after the restart: FAIL deleted on all")
    rows = server.sql("SELECT count(*) FROM keywarden_validator WHERE lease_until > "
                      "(extract(epoch FROM clock_timestamp()) * 1000)::bigint")
    t.eq(rows, [["3"]], "each validator registered again (three live rows)")
    h2.kw("token", "delete", "--as", "alice", str(token_id(tokens["keep"])))
    returned = time.monotonic()
    t.ok(wait_for(lambda: all(len(ld.after("keep", returned)) >= 10 for ld in loads)),
         "load after the restart")
    for ld in loads:
        bad = [r for r in ld.after("keep", returned) if r[4] != "deleted"]
        t.ok(not bad, "%s: after the restart, a delete on h2 is seen at the next CHECK"
             % ld.host.name, *summary(bad))
    for ld in loads:
        ld.stop_flag = True
    for ld in loads:
        ld.join(10)

    # ---- last use: written by every host, never backwards ----
    rows = server.sql("SELECT last_used FROM token WHERE id = %d" % token_id(tokens["out"]))
    t.ok(rows and rows[0][0] != "", "the load's uses were written as last use", rows)
    before = int(rows[0][0]) if rows and rows[0][0] else 0
    server.sql("UPDATE token SET last_used = last_used + 100000 WHERE id = %d"
               % token_id(tokens["out"]))
    marks = [h.log().count("last use: wrote") for h in hosts]
    for h in hosts:
        h.check(tokens["out"])
    t.ok(wait_for(lambda: all(h.log().count("last use: wrote") > m
                              for h, m in zip(hosts, marks))),
         "every host wrote its batch of last uses")
    rows = server.sql("SELECT last_used FROM token WHERE id = %d" % token_id(tokens["out"]))
    t.eq(int(rows[0][0]), before + 100000,
         "a host's batch never moves last use back (a later time stays)")

    # ---- concurrent creates at the 50-token limit, from every host ----
    h1.kw("account", "add", "lim")
    h1.kw("user", "add", "--account", "lim", "carol", "--role", "Administrators")
    for i in range(45):
        hosts[i % 3].kw("token", "create", "--as", "carol", "--name", "p%d" % i, "--role",
                        "Users")
    procs = []
    for i in range(24):
        h = hosts[i % 3]
        procs.append(subprocess.Popen(
            [vtest.KEYWARDEN, "--state-dir", h.state, "token", "create", "--as", "carol",
             "--name", "c%d" % i, "--role", "Users"], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    results = [(p.wait(120), p.stdout.read(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    made = sum(1 for r in results if r[0] == 0)
    t.eq(made, 5, "24 concurrent creates from 3 hosts with 5 slots left: exactly 5 succeed")
    refused = [r for r in results if r[0] != 0]
    t.ok(all("limit" in r[2] for r in refused), "the others are refused by the limit",
         *[r[2] for r in refused if "limit" not in r[2]][:3])
    rows = server.sql("SELECT count(*) FROM token t JOIN account a ON a.id = t.account_id "
                      "WHERE a.name = 'lim' AND t.deleted IS NULL")
    t.eq(rows, [["50"]], "the account holds exactly 50 tokens")

    # ---- concurrent writers on every host: one audit chain ----
    procs = []
    for i in range(18):
        h = hosts[i % 3]
        if i % 3 == 0:
            args = ["user", "add", "--account", "acme", "u%d" % i, "--role", "Users"]
        elif i % 3 == 1:
            args = ["token", "create", "--as", "alice", "--name", "w%d" % i, "--role", "Users"]
        else:
            args = ["user", "set", "bob", "--email", "bob%d@example.com" % i]
        procs.append(subprocess.Popen([vtest.KEYWARDEN, "--state-dir", h.state] + args,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True))
    errs = [(p.wait(120), p.stderr.read()) for p in procs]
    for p in procs:
        p.stderr.close()
    t.ok(all(e[0] == 0 for e in errs), "18 concurrent writers on 3 hosts all succeed",
         *[e[1] for e in errs if e[0] != 0][:3])
    for h in hosts:
        p = h.kw("audit", "verify", check=False)
        t.eq(p.returncode, 0, "%s: keywarden audit verify: the chain holds" % h.name)

    batch_outlasts_lease(t, server, h1, h2, False)
    batch_outlasts_lease(t, server, h1, h2, True)
    already_deleted_waits(t, server, hosts)
    review_one_snapshot(t, server, h1)

    # ---- a validator that stops removes its row ----
    pid = h2.daemon.pid
    h2.stop()
    rows = server.sql("SELECT count(*) FROM keywarden_validator WHERE pid = %d" % pid)
    t.eq(rows, [["0"]], "a validator stopped by SIGTERM removed its registration")
    for h in (h1, h3):
        h.stop()
    for h in hosts:
        t.ok(h.rc == 0 and "Sanitizer" not in h.log(),
             "%s: the validator exited cleanly (status %r)" % (h.name, h.rc))


NOW_MS = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"


def lagging(server, gen):
    """How many validators may still answer from a cache older than generation gen (the
    writer's wait in lib/store_pg.c)."""
    return int(server.sql("SELECT count(*) FROM keywarden_validator WHERE acked < %d AND "
                          "lease_until > %s" % (gen, NOW_MS))[0][0])


def recv_now(conn):
    """The complete answer lines already in conn's socket, without waiting."""
    conn.s.setblocking(False)
    try:
        while True:
            d = conn.s.recv(65536)
            if not d:
                break
            conn.buf += d
    except BlockingIOError:
        pass
    finally:
        conn.s.setblocking(True)
        conn.s.settimeout(60)
    out = []
    while b"\n" in conn.buf:
        l, conn.buf = conn.buf.split(b"\n", 1)
        out.append(l.decode(errors="replace"))
    return out


def batch_outlasts_lease(t, server, h1, h2, cached_first):
    """Issue 15, review item 1: one wakeup's batch of cache misses, each a round trip that
    waits for a lock another session holds (on table role, which the validator's lookup
    reads and a deletion does not), lasts far longer than the lease. Meanwhile, once h1's
    lease lapsed or h1 renewed it within the batch, a deletion of a token h1 has cached
    commits (raw SQL, as a writer commits: the change and the generation in one
    transaction), and the test waits as the writer does (until no live validator's row is
    below that generation). Then the lock is released and the batch ends. The promise: no OK
    for the deleted token written after that wait returned. Before the fix h1 decided the
    whole batch on the lease it held when the batch started, and answered OK from its cache
    after the wait returned. cached_first: the cached token is checked first, the misses
    after it: its OK, decided on a lease that held, must be written before h1 renews (a
    renewal lets a writer return), not at the end of the batch."""
    what = "batch (the cached token %s)" % ("first" if cached_first else "last")
    tok = h2.kw("token", "create", "--as", "alice", "--name", "batch", "--role",
                "Users").stdout.strip()
    tid = token_id(tok)
    t.eq(h1.check(tok), ("OK", None), what + ": the token is OK on h1 (and cached there)")
    holder = subprocess.Popen([os.path.join(BIN, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                               "-d", server.url], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    holder.stdin.write("BEGIN;\nLOCK TABLE role IN ACCESS EXCLUSIVE MODE;\n")
    holder.stdin.flush()
    locked = "SELECT count(*) FROM pg_locks WHERE relation = 'role'::regclass AND mode = " \
             "'AccessExclusiveLock' AND granted"
    t.ok(wait_for(lambda: server.sql(locked) == [["1"]]),
         what + ": another session holds table role's lock")
    row = "SELECT lease_until, %s FROM keywarden_validator WHERE pid = %d" % (NOW_MS,
                                                                             h1.daemon.pid)
    conn = vtest.Conn(h1.sock, timeout=60)
    # Each waits for the lock until the validator's lock wait (100 ms) ends: 10 s in all.
    # One read takes the lot (the validator reads up to max_line, 8192 bytes, at a time).
    misses = 100
    tid_line = 1 if cached_first else misses + 1
    lines = ["CHECK\t%d\ttoken=%s\n" % (i + (2 if cached_first else 1),
                                         forge(200000 + i + (1000 if cached_first else 0)))
             for i in range(misses)]
    lines.insert(0 if cached_first else misses, "CHECK\t%d\ttoken=%s\n" % (tid_line, tok))
    conn.send("".join(lines))
    t.ok(wait_for(lambda: server.sql("SELECT count(*) FROM pg_locks WHERE relation = "
                                     "'role'::regclass AND NOT granted") != [["0"]]),
         what + ": h1's lookups wait for the lock")
    start = int(server.sql(row)[0][0])
    # h1's lease lapses (no fix) or h1 renewed it within the batch (its lease_until moved on)
    t.ok(wait_for(lambda: (lambda r: int(r[0]) <= int(r[1]) or
                           int(r[0]) > start + LEASE_MS // 2)(server.sql(row)[0])),
         what + ": h1's lease lapsed, or h1 renewed it, while its batch waited")
    gen = int(server.sql(
        "BEGIN; UPDATE token SET deleted = created + 1, deleted_by = issuer_id WHERE id = %d; "
        "WITH g AS (UPDATE keywarden_generation SET gen = gen + 1 WHERE id = 1 RETURNING gen) "
        "SELECT gen FROM g, pg_notify('keywarden', (SELECT gen FROM g)::text); COMMIT"
        % tid)[0][0])
    t.ok(wait_for(lambda: lagging(server, gen) == 0, timeout=60),
         what + ": the writer's wait returns (no live validator below the generation)")
    before = recv_now(conn)
    t.ok(len(before) < misses + 1, what + ": the batch was still running when the wait "
         "returned", *before[-3:])
    holder.stdin.write("ROLLBACK;\n")
    holder.stdin.close()
    rc = holder.wait(60)
    t.ok(rc == 0, what + ": the lock is released", holder.stderr.read())
    holder.stderr.close()
    after = []
    while len(before) + len(after) < misses + 1:
        l = conn.line()
        if l is None:
            break
        after.append(l)
    conn.close()
    last = [l for l in before + after if vtest.fields(l).get("id") == str(tid_line)]
    bad = [l for l in after if vtest.fields(l).get("verb") == "OK"]
    t.ok(len(last) == 1 and not bad, what + ": no OK for the deleted token once the writer's "
         "wait returned (the lease is checked before each answer, not once per batch)",
         *(last + bad))
    t.eq(h1.check(tok), ("FAIL", "deleted"), what + ": and h1 answers FAIL deleted then")


def already_deleted_waits(t, server, hosts):
    """Review item 2b: a second 'token delete' of a token another delete has just committed
    (and is waiting for the validators) reports "already deleted": it must not return before
    the first could, i.e. while a validator may still answer OK from its cache."""
    h1, h2, h3 = hosts
    tok = h1.kw("token", "create", "--as", "alice", "--name", "twice", "--role",
                "Users").stdout.strip()
    tid = token_id(tok)
    t.eq([h.check(tok) for h in hosts], [("OK", None)] * 3, "twice: OK on all three")
    h3.daemon.send_signal(signal.SIGSTOP)
    try:
        first = subprocess.Popen([vtest.KEYWARDEN, "--state-dir", h1.state, "token", "delete",
                                  "--as", "alice", str(tid)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
        t.ok(wait_for(lambda: server.sql("SELECT deleted IS NOT NULL FROM token WHERE id = %d"
                                         % tid) == [["t"]]),
             "twice: the first delete committed (and waits for the frozen h3)")
        gen = int(server.sql("SELECT gen FROM keywarden_generation")[0][0])
        second = h2.kw("token", "delete", "--as", "alice", str(tid), check=False)
        n = lagging(server, gen)
        t.ok(second.returncode != 0 and "already deleted" in second.stderr,
             "twice: the second delete reports it already deleted", second.stderr)
        t.eq(n, 0, "twice: it returned only once no validator may still answer from a cache "
             "older than the deletion (h3 frozen: its lease had lapsed)")
    finally:
        h3.daemon.send_signal(signal.SIGCONT)
    rc = first.wait(60)
    t.ok(rc == 0, "twice: the first delete succeeded", first.stderr.read())
    first.stderr.close()
    t.eq([h.check(tok) for h in hosts], [("FAIL", "deleted")] * 3, "twice: FAIL deleted on all")


def psql_session(server):
    """A psql reading statements from a pipe, one at a time, as they are written."""
    return subprocess.Popen([os.path.join(BIN, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                             "-d", server.url], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def waiting(server, table, mode):
    return server.sql("SELECT count(*) FROM pg_locks WHERE relation = '%s'::regclass AND "
                      "mode = '%s' AND NOT granted" % (table, mode)) != [["0"]]


def review_one_snapshot(t, server, h1):
    """Review item 3: 'keywarden sso review' reads its cases, then each case's tokens, in one
    read transaction "so that they agree"; on PostgreSQL that must be one snapshot (REPEATABLE
    READ), not one per statement. Session A holds keywarden_generation so that the review's
    sweep (a writer's transaction, before the read) waits at its commit; session B then asks
    for table token's lock, which it gets once the sweep ended: the review's read takes its
    cases and waits at their tokens. B deletes the token, closes the case and commits. With
    one snapshot the review shows the case with its token; with a snapshot per statement, the
    open case without its token."""
    h1.kw("user", "add", "--account", "acme", "sue", "--role", "Users")
    server.sql("UPDATE \"user\" SET source = 'sso', sso_idp = 'https://idp.example', "
               "sso_name_id = 'sue', sso_state = 'active' WHERE login = 'sue'")
    tok = h1.kw("token", "create", "--as", "sue", "--name", "snap", "--role",
                "Users").stdout.strip()
    tid = token_id(tok)
    h1.kw("sso", "revoke", "sue", "--reason", "left")
    a = psql_session(server)
    a.stdin.write("BEGIN;\nLOCK TABLE keywarden_generation IN EXCLUSIVE MODE;\n")
    a.stdin.flush()
    t.ok(wait_for(lambda: server.sql("SELECT count(*) FROM pg_locks WHERE relation = "
                                     "'keywarden_generation'::regclass AND granted AND mode = "
                                     "'ExclusiveLock'") == [["1"]]),
         "review: session A holds keywarden_generation")
    review = subprocess.Popen([vtest.KEYWARDEN, "--state-dir", h1.state, "sso", "review",
                               "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    t.ok(wait_for(lambda: waiting(server, "keywarden_generation", "RowExclusiveLock")),
         "review: its sweep waits at its commit")
    b = psql_session(server)
    b.stdin.write("BEGIN;\nLOCK TABLE token IN ACCESS EXCLUSIVE MODE;\n"
                  "UPDATE token SET deleted = created + 1, deleted_by = issuer_id WHERE "
                  "id = %d;\nUPDATE sso_case SET closed = opened, closed_by = 'keywarden', "
                  "close_reason = 'test' WHERE closed IS NULL;\n" % tid)
    b.stdin.flush()
    t.ok(wait_for(lambda: server.sql("SELECT count(*) FROM pg_locks WHERE relation = "
                                     "'token'::regclass AND mode = 'AccessExclusiveLock'")
                  == [["1"]]), "review: session B asks for table token's lock")
    a.stdin.write("COMMIT;\n")
    a.stdin.close()
    t.ok(a.wait(60) == 0, "review: session A let the sweep go", a.stderr.read())
    a.stderr.close()
    t.ok(wait_for(lambda: waiting(server, "token", "AccessShareLock")),
         "review: the read took its cases and waits for the tokens")
    b.stdin.write("COMMIT;\n")
    b.stdin.close()
    t.ok(b.wait(60) == 0, "review: session B deleted the token, closed the case, committed",
         b.stderr.read())
    b.stderr.close()
    out, err = review.communicate(timeout=60)
    cases = []
    try:
        cases = [(c["user"], [x["id"] for x in c["tokens"]]) for c in json.loads(out)["cases"]]
    except (ValueError, KeyError, TypeError):
        pass
    t.ok(review.returncode == 0 and cases == [("sue", [tid])],
         "review: cases and their tokens come from one snapshot (the case with its token)",
         "cases: %r" % (cases,), err)


if __name__ == "__main__":
    sys.exit(main())
