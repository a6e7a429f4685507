#!/usr/bin/env python3
# bench_pg_sync.py: figures for the PostgreSQL store (issue 15, item 5; doc/benchmarks.md,
# "PostgreSQL store"). Not a test: it prints figures, it asserts nothing.
#
#   0. The delete command alone (no validator registered: nothing to wait for).
#   1. Delete to refusal: three validators (separate state folders and processes) on one
#      database, each checked in a tight loop by its own thread; `keywarden token delete` on
#      one host. Per delete: the command's duration (process start to exit), and, from the
#      delete's COMMIT (the server's commit timestamp: track_commit_timestamp is turned on),
#      when the last OK was asked, when the last validator's first FAIL deleted came back,
#      and when the command exited; the goal is that the last refusal comes before the exit.
#      Then three deletes while one validator is frozen (SIGSTOP): they wait for its lease.
#   2. Warm-cache checks/s: one validator on SQLite and one on PostgreSQL, the same number of
#      tokens, driven by the same load generator (tests/bench/bench_validator load val) in
#      interleaved rounds (medians), validators on CPU 0, the generator on CPU 1.
#   3. Cold check latency: every CHECK a cache miss (a distinct token each, right after a
#      write dropped the caches), one connection, one request at a time.
#
# Usage: tests/bench/bench_pg_sync.py [BUILDDIR]   (DELETES=20 TOKENS=200 SECONDS_PER_RUN=2
# ROUNDS=3 LEASE_MS=3000 CONFIGS="1x1 8x1 8x16 64x16": connections x depth of part 2)
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
B = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("top_builddir", "."))
KW = os.path.join(B, "keywarden")
VAL = os.path.join(B, "keywarden-validator")
GEN = os.path.join(B, "tests", "bench", "bench_validator")
PGSERVER = os.path.join(SRC, "tests", "pg", "pgserver.sh")
DELETES = int(os.environ.get("DELETES", "20"))
TOKENS = int(os.environ.get("TOKENS", "200"))
SECS = os.environ.get("SECONDS_PER_RUN", "2")
ROUNDS = int(os.environ.get("ROUNDS", "3"))
LEASE_MS = int(os.environ.get("LEASE_MS", "3000"))


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.connect(path)
        self.buf = b""
        self.s.sendall(b"VERSION\t1\t0\n")
        self.line()

    def line(self):
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise OSError("closed")
            self.buf += d
        l, self.buf = self.buf.split(b"\n", 1)
        return l.decode()

    def check(self, token):
        self.s.sendall(("CHECK\t1\ttoken=%s\n" % token).encode())
        return self.line()


class Host:
    def __init__(self, tmp, name, url, key_from=None, cpu=None):
        self.state = os.path.join(tmp, name)
        self.env = dict(os.environ)
        if url is not None:
            self.env["KEYWARDEN_STORE_URL"] = url
        else:
            self.env.pop("KEYWARDEN_STORE_URL", None)
        self.cpu = cpu
        if key_from is None:
            self.kw("init")
        else:
            os.mkdir(self.state, 0o700)
            shutil.copy(os.path.join(key_from.state, "keywarden.key"), self.state)
        with open(os.path.join(self.state, "keywarden.conf"), "w") as f:
            f.write("[validator]\nlease_ms = %d\nrate_limit_failures = 0\n" % LEASE_MS)
        self.sock = os.path.join(self.state, "validator.sock")
        self.proc = None

    def kw(self, *args):
        return subprocess.run([KW, "--state-dir", self.state] + list(args), env=self.env,
                              capture_output=True, text=True, check=True).stdout.strip()

    def start(self):
        cmd = [VAL, "--state-dir", self.state]
        if self.cpu is not None:
            cmd = ["taskset", "-c", str(self.cpu)] + cmd
        self.proc = subprocess.Popen(cmd, env=self.env, stderr=subprocess.DEVNULL)
        for _ in range(500):
            try:
                Conn(self.sock).s.close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("validator did not start")

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()


PSQL_URL = None


def pg_bindir():
    b = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
    return b if b else "/usr/lib/postgresql/15/bin"


def commit_timestamps(pgdir):
    """track_commit_timestamp = on (a restart): the commit instant of a delete is then read
    from the server (pg_xact_commit_timestamp of the token row's xmin)."""
    su = "postgresql:///postgres?host=%s&user=postgres" % pgdir
    subprocess.run([os.path.join(pg_bindir(), "psql"), "-X", "-q", "-d", su, "-c",
                    "ALTER SYSTEM SET track_commit_timestamp = on"], check=True)
    cmd = [os.path.join(pg_bindir(), "pg_ctl"), "restart", "-D", os.path.join(pgdir, "data"),
           "-l", os.path.join(pgdir, "server.log"), "-w", "-s", "-m", "fast"]
    if os.getuid() == 0:
        with open(os.path.join(pgdir, ".server-user")) as f:
            user = f.read().strip()
        gid = subprocess.run(["id", "-g", user], capture_output=True, text=True).stdout.strip()
        cmd = ["env", "HOME=" + pgdir, "setpriv", "--reuid=" + user, "--regid=" + gid,
               "--clear-groups", "--"] + cmd
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def commit_time(token_id):
    """The wall-clock instant (s) the last change of token token_id committed."""
    out = subprocess.run([os.path.join(pg_bindir(), "psql"), "-X", "-q", "-A", "-t", "-d",
                          PSQL_URL, "-c", "SELECT extract(epoch FROM pg_xact_commit_timestamp("
                          "xmin)) FROM token WHERE id = %d" % token_id],
                         capture_output=True, text=True, check=True).stdout.strip()
    return float(out)


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def make_tokens(host, account, n, path):
    host.kw("account", "add", account, "--token-limit", str(n + 10))
    host.kw("user", "add", "--account", account, account + "-u", "--role", "Engineers")
    with open(path, "w") as f:
        for i in range(n):
            f.write(host.kw("token", "create", "--as", account + "-u", "--name", "b%d" % i,
                            "--role", "Users") + "\n")


def delete_to_refusal(hosts):
    print("\n## 1. delete to refusal: 3 validators on one database (lease %d ms), %d deletes"
          % (LEASE_MS, DELETES))
    h1 = hosts[0]
    durations, refused, last_ok, returned, after = [], [], [], [], 0
    for i in range(DELETES):
        token = h1.kw("token", "create", "--as", "alice", "--name", "d%d" % i, "--role", "Users")
        first_fail = [None] * len(hosts)  # wall clock: each validator's first FAIL deleted back
        ok_sent = [0.0] * len(hosts)      # wall clock: the request of its last OK sent
        stop = threading.Event()

        def spin(k, h):
            c = Conn(h.sock)
            while not stop.is_set():
                sent = time.time()
                ans = c.check(token)
                got = time.time()
                if ans.startswith("OK"):
                    ok_sent[k] = sent
                elif first_fail[k] is None and "deleted" in ans:
                    first_fail[k] = got
                time.sleep(0.0002)
            c.s.close()

        threads = [threading.Thread(target=spin, args=(k, h)) for k, h in enumerate(hosts)]
        for th in threads:
            th.start()
        time.sleep(0.2)
        who = hosts[i % len(hosts)]
        start = time.time()
        subprocess.run([KW, "--state-dir", who.state, "token", "delete", "--as", "alice",
                        token.split("$")[0]], env=who.env, check=True, capture_output=True)
        end = time.time()
        time.sleep(0.1)
        stop.set()
        for th in threads:
            th.join()
        committed = commit_time(int(token.split("$")[0]))
        durations.append((end - start) * 1000)
        refused.append((max(first_fail) - committed) * 1000)
        last_ok.append((max(ok_sent) - committed) * 1000)
        returned.append((end - committed) * 1000)
        if max(ok_sent) > end:
            after += 1
    print("delete command (process start to exit): median %.1f ms, p90 %.1f ms, max %.1f ms"
          % (statistics.median(durations), pct(durations, 90), max(durations)))
    print("from its COMMIT (server's commit timestamp) to:")
    print("  the last OK's request sent, any validator: median %.1f ms, max %.1f ms"
          % (statistics.median(last_ok), max(last_ok)))
    print("  the last of 3 validators' first FAIL deleted received: median %.1f ms, p90 %.1f ms,"
          " max %.1f ms (an upper bound: the client threads' own delays count)"
          % (statistics.median(refused), pct(refused, 90), max(refused)))
    print("  the command's exit: median %.1f ms, p90 %.1f ms, max %.1f ms"
          % (statistics.median(returned), pct(returned, 90), max(returned)))
    print("deletes with an OK to a request sent after the command returned: %d of %d"
          % (after, DELETES))


def load(sock, hot, conns, depth):
    out = subprocess.run(["taskset", "-c", "1", GEN, "load", "val", sock, hot, str(conns),
                          str(depth), SECS], capture_output=True, text=True)
    fields = dict(w.split("=", 1) for w in out.stdout.split() if "=" in w)
    return fields


def warm(lite, pg, hot_lite, hot_pg):
    print("\n## 2. warm-cache checks/s, SQLite store vs PostgreSQL store (%d tokens, %d "
          "interleaved rounds of %s s, medians)" % (TOKENS, ROUNDS, SECS))
    print("%-5s %-5s | %-28s | %-28s | pg/sqlite" % ("conns", "depth", "SQLite checks/s p50/p99 us",
                                                    "PostgreSQL checks/s p50/p99 us"))
    configs = os.environ.get("CONFIGS", "1x1 8x1 8x16 64x16").split()
    for conns, depth in (tuple(int(x) for x in c.split("x")) for c in configs):
        res = {"lite": [], "pg": []}
        for _ in range(ROUNDS):
            res["lite"].append(load(lite.sock, hot_lite, conns, depth))
            res["pg"].append(load(pg.sock, hot_pg, conns, depth))
        med = {}
        for k, rs in res.items():
            rs = sorted(rs, key=lambda f: float(f.get("checks/s", 0)))
            med[k] = rs[(len(rs) - 1) // 2]
        a, b = med["lite"], med["pg"]
        print("%-5d %-5d | %10s %7s/%-7s | %10s %7s/%-7s | %.2f" % (
            conns, depth, a.get("checks/s"), a.get("p50_us"), a.get("p99_us"),
            b.get("checks/s"), b.get("p50_us"), b.get("p99_us"),
            float(b.get("checks/s", 0)) / max(1.0, float(a.get("checks/s", 1)))))


def cold(host, hot, label):
    host.kw("account", "add", "cold-%d" % time.monotonic_ns())  # a write: every cache dropped
    time.sleep(0.05)
    with open(hot) as f:
        tokens = [l.strip() for l in f if l.strip()]
    c = Conn(host.sock)
    lat = []
    for tok in tokens:
        t0 = time.perf_counter()
        ans = c.check(tok)
        lat.append((time.perf_counter() - t0) * 1e6)
        if not ans.startswith("OK"):
            print("# unexpected answer: " + ans)
    warm_lat = []
    for tok in tokens:
        t0 = time.perf_counter()
        c.check(tok)
        warm_lat.append((time.perf_counter() - t0) * 1e6)
    c.s.close()
    print("%-10s cold (cache miss): p50 %6.0f us, p90 %6.0f us, p99 %6.0f us | warm, same "
          "client: p50 %4.0f us" % (label, statistics.median(lat), pct(lat, 90), pct(lat, 99),
                                    statistics.median(warm_lat)))


def main():
    tmp = tempfile.mkdtemp(prefix="kw-pgb.")
    os.chmod(tmp, 0o755)
    pgdir = os.path.join(tmp, "pg")
    hosts = []
    try:
        subprocess.run(["sh", PGSERVER, "start", pgdir, str(os.getpid())], check=True,
                       capture_output=True)
        url = subprocess.run(["sh", PGSERVER, "newdb", pgdir, "bench"], check=True,
                             capture_output=True, text=True).stdout.strip()
        commit_timestamps(pgdir)
        global PSQL_URL
        PSQL_URL = url
        print("# machine: %d CPUs, %s; PostgreSQL %s on a Unix socket (tests/pg/pgserver.sh: "
              "fsync off)" % (os.cpu_count(), os.uname().release,
                              subprocess.run(["pg_config", "--version"], capture_output=True,
                                             text=True).stdout.strip()))
        h1 = Host(tmp, "h1", url, cpu=0)
        h2 = Host(tmp, "h2", url, key_from=h1, cpu=0)
        h3 = Host(tmp, "h3", url, key_from=h1, cpu=0)
        hosts = [h1, h2, h3]
        h1.kw("account", "add", "acme")
        h1.kw("user", "add", "--account", "acme", "alice", "--role", "Administrators")
        hot_pg = os.path.join(tmp, "hot-pg.txt")
        make_tokens(h1, "bench", TOKENS, hot_pg)
        base = []
        for i in range(DELETES):
            token = h1.kw("token", "create", "--as", "alice", "--name", "n%d" % i, "--role",
                          "Users")
            start = time.monotonic()
            h1.kw("token", "delete", "--as", "alice", token.split("$")[0])
            base.append((time.monotonic() - start) * 1000)
        print("\n## 0. the delete command with no validator registered: median %.1f ms, max "
              "%.1f ms" % (statistics.median(base), max(base)))
        for h in hosts:
            h.start()
        delete_to_refusal(hosts)
        frozen = []
        for i in range(3):
            token = h1.kw("token", "create", "--as", "alice", "--name", "f%d" % i, "--role",
                          "Users")
            h3.proc.send_signal(signal.SIGSTOP)
            start = time.monotonic()
            h1.kw("token", "delete", "--as", "alice", token.split("$")[0])
            frozen.append((time.monotonic() - start) * 1000)
            h3.proc.send_signal(signal.SIGCONT)
            c = Conn(h3.sock)
            thawed = c.check(token)
            c.s.close()
            time.sleep(0.5)
        print("one validator frozen (SIGSTOP): the delete waits for its lease: %s ms; the "
              "thawed validator then answers %s" % (", ".join("%.0f" % f for f in frozen),
                                                   thawed.split("\t", 2)[-1]))
        h2.stop()
        h3.stop()
        hosts = [h1]
        lite = Host(tmp, "lite", None, cpu=0)
        hosts.append(lite)
        hot_lite = os.path.join(tmp, "hot-lite.txt")
        make_tokens(lite, "bench", TOKENS, hot_lite)
        lite.start()
        warm(lite, h1, hot_lite, hot_pg)
        print("\n## 3. cold check latency (%d distinct tokens after a write, one connection)"
              % TOKENS)
        cold(lite, hot_lite, "SQLite")
        cold(h1, hot_pg, "PostgreSQL")
    finally:
        for h in hosts:
            h.stop()
        subprocess.run(["sh", PGSERVER, "stop", pgdir], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    main()
