# vtest.py: helpers for the validator tests: TAP output, a state folder made with the real
# CLI, the real daemon started on it, and raw protocol lines over its socket. Stdlib only.
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pg"))
import kwpg  # noqa: E402

TOP_BUILDDIR = os.environ.get("top_builddir", ".")
TOP_SRCDIR = os.environ.get("top_srcdir", ".")
KEYWARDEN = os.path.join(TOP_BUILDDIR, "keywarden")
VALIDATOR = os.path.join(TOP_BUILDDIR, "keywarden-validator")


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, *diag):
        self.n += 1
        if cond:
            print("ok %d - %s" % (self.n, desc))
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, desc))
            for d in diag:
                for line in str(d).splitlines():
                    print("# " + line)
        sys.stdout.flush()
        return cond

    def eq(self, got, want, desc):
        return self.ok(got == want, desc, "got:  %r" % (got,), "want: %r" % (want,))

    def skip(self, desc, why):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, desc, why))

    def done(self):
        print("1..%d" % self.n)
        sys.stdout.flush()
        return 0 if self.failed == 0 else 1


class Env:
    """A state folder with an account, users and the CLI; the daemon on it."""

    def __init__(self, conf="", socket_dir=None):
        self.tmp = tempfile.mkdtemp(prefix="kw-val.")
        self.state = os.path.join(self.tmp, "state")
        self.daemon = None
        self.log_path = os.path.join(self.tmp, "validator.log")
        kwpg.use(self.state)  # with KW_TEST_PG: a database of its own
        self.kw("init")
        if socket_dir is not None:
            # A socket outside the 0700 state folder, reachable by other uids.
            os.chmod(self.tmp, 0o711)
            sd = os.path.join(self.tmp, socket_dir)
            os.mkdir(sd)
            os.chmod(sd, 0o755)
            self.sock = os.path.join(sd, "validator.sock")
            conf = "[validator]\nsocket = %s\n%s" % (self.sock, conf.replace("[validator]\n", ""))
        else:
            self.sock = os.path.join(self.state, "validator.sock")
        self.write_conf(conf)

    def write_conf(self, conf):
        with open(os.path.join(self.state, "keywarden.conf"), "w") as f:
            f.write(conf)

    def kw(self, *args, check=True):
        p = subprocess.run([KEYWARDEN, "--state-dir", self.state] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=kwpg.env(self.state))
        if check and p.returncode != 0:
            raise RuntimeError("keywarden %s: exit %d: %s" % (" ".join(args), p.returncode,
                                                             p.stderr.strip()))
        return p

    def setup_users(self):
        self.kw("account", "add", "acme")
        self.kw("user", "add", "--account", "acme", "alice", "--role", "Engineers")
        self.kw("user", "add", "--account", "acme", "bob", "--role", "Users")

    def token(self, login="alice", name=None, role="Engineers", expires=None):
        args = ["token", "create", "--as", login, "--name", name or ("t%f" % time.time()),
                "--role", role]
        if expires is not None:
            args += ["--expires", expires]
        return self.kw(*args).stdout.strip()

    def start(self, *extra):
        self.logf = open(self.log_path, "a")
        self.daemon = subprocess.Popen([VALIDATOR, "--state-dir", self.state, "--debug"]
                                       + list(extra), stdout=self.logf, stderr=self.logf,
                                       env=kwpg.env(self.state))
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.daemon.poll() is not None:
                raise RuntimeError("validator exited %d: %s" % (self.daemon.returncode,
                                                               self.log()))
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock)
                s.close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("validator did not start: " + self.log())

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.daemon is None:
            return None
        self.daemon.send_signal(sig)
        try:
            rc = self.daemon.wait(timeout)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            rc = self.daemon.wait()
        self.daemon = None
        self.logf.close()
        return rc

    def alive(self):
        return self.daemon is not None and self.daemon.poll() is None

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def token_row(self, token_id, login="alice"):
        rows = json.loads(self.kw("token", "list", "--as", login, "--json").stdout)
        for r in rows:
            if r["id"] == token_id:
                return r
        return None

    def close(self):
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.tmp, ignore_errors=True)


class Conn:
    """A raw protocol connection."""

    def __init__(self, path, handshake=True, timeout=5):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        if handshake:
            self.send("VERSION\t1\t0\n")
            self.server_version = self.line()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def line(self):
        """The next line, without LF; None at EOF."""
        while b"\n" not in self.buf:
            try:
                d = self.s.recv(65536)
            except ConnectionResetError:
                d = b""
            if not d:
                if self.buf:
                    b, self.buf = self.buf, b""
                    return b.decode(errors="replace")
                return None
            self.buf += d
        l, self.buf = self.buf.split(b"\n", 1)
        return l.decode(errors="replace")

    def lines(self):
        out = []
        while True:
            l = self.line()
            if l is None:
                return out
            out.append(l)

    def check(self, rid, token, **fields):
        extra = "".join("%s=%s\t" % (k, v) for k, v in fields.items())
        self.send("CHECK\t%d\t%stoken=%s\n" % (rid, extra, token))
        return self.line()

    def close(self):
        self.s.close()


def fields(answer):
    """{'verb':..., 'id':..., key: value} of an answer line."""
    parts = answer.split("\t")
    d = {"verb": parts[0]}
    rest = parts[1:]
    if parts[0] in ("OK", "FAIL") and rest:
        d["id"] = rest[0]
        rest = rest[1:]
    for p in rest:
        k, _, v = p.partition("=")
        d[k] = v
    return d


def cpu_seconds(pid):
    """User + system CPU time used so far by process pid (from /proc/PID/stat), seconds."""
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def wait_for(pred, timeout=10, step=0.05):
    """Polls pred until true; exceptions count as false until the deadline."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            v = pred()
        except Exception:  # noqa: BLE001
            v = None
        if v:
            return v
        time.sleep(step)
    return pred()
