"""kwtest.py: what the issue-6 tests (notify, audit, report) share: TAP output, a state folder
of their own, and running the keywarden command, optionally under libfaketime."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pg"))
import kwpg  # noqa: E402

TOP_BUILDDIR = os.environ.get("top_builddir", ".")
TOP_SRCDIR = os.environ.get("top_srcdir", ".")
KEYWARDEN = os.environ.get("KEYWARDEN", os.path.join(TOP_BUILDDIR, "keywarden"))
# The mail program; `keywarden notify run` runs the one this variable names.
KEYWARDEN_NOTIFY = os.environ.get("KEYWARDEN_NOTIFY_PROGRAM",
                                  os.path.join(TOP_BUILDDIR, "keywarden-notify"))
DAY = 86400


def _find_libfaketime():
    """libfaketime itself: preloaded straight into keywarden, so that the process we start
    (and may kill) is keywarden and not the faketime wrapper, which forks."""
    for d in ("/usr/lib/x86_64-linux-gnu/faketime", "/usr/lib/aarch64-linux-gnu/faketime",
              "/usr/lib/faketime", "/usr/local/lib/faketime", "/usr/lib64/faketime"):
        p = os.path.join(d, "libfaketime.so.1")
        if os.path.exists(p):
            return p
    return None


LIBFAKETIME = _find_libfaketime()


class Tap:
    """Counts assertions; prints the plan at the end (a crash leaves it missing: an error)."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, diag=None):
        self.n += 1
        if not cond:
            self.failed += 1
        print("%sok %d - %s" % ("" if cond else "not ", self.n, desc), flush=True)
        if not cond and diag is not None:
            for line in str(diag).splitlines():
                print("# " + line, flush=True)
        return cond

    def eq(self, got, want, desc):
        return self.ok(got == want, desc, "got:  %r\nwant: %r" % (got, want))

    def done(self):
        print("1..%d" % self.n, flush=True)
        sys.exit(1 if self.failed else 0)


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class State:
    """A state folder with its own database, key and keywarden.conf (the database: the
    folder's keywarden.db, or with KW_TEST_PG a PostgreSQL database of its own)."""

    def __init__(self, conf=""):
        self.dir = tempfile.mkdtemp(prefix="kw-test-")
        os.chmod(self.dir, 0o700)
        self.db = os.path.join(self.dir, "keywarden.db")
        kwpg.use(self.dir)
        self.write_conf(conf)
        self.run("init")

    def write_conf(self, text):
        with open(os.path.join(self.dir, "keywarden.conf"), "w") as f:
            f.write(text)

    def env(self, offset):
        env = kwpg.env(self.dir)
        env.pop("JOURNAL_STREAM", None)
        env["KEYWARDEN_NOTIFY_PROGRAM"] = KEYWARDEN_NOTIFY
        if offset is not None and LIBFAKETIME is not None:
            env["LD_PRELOAD"] = (LIBFAKETIME + " " + env.get("LD_PRELOAD", "")).strip()
            env["FAKETIME"] = "%+d" % offset
        if offset is not None:
            # libfaketime is preloaded: ASan must not insist on coming first.
            env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
            env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
            env["DONT_FAKE_MONOTONIC"] = "1"
        return env

    def cmd(self, *args, offset=None):
        """keywarden ARGS; ("keywarden-notify", ARGS...) runs the mail program itself."""
        if args and args[0] == "keywarden-notify":
            argv = [KEYWARDEN_NOTIFY, "--state-dir", self.dir] + list(args[1:])
        else:
            argv = [KEYWARDEN, "--state-dir", self.dir] + list(args)
        if offset is not None and LIBFAKETIME is None:
            raise RuntimeError("libfaketime.so.1 not found (Debian package faketime)")
        return argv

    def run(self, *args, offset=None, check=True, timeout=120):
        """Runs keywarden ARGS (offset: seconds added to the clock); returns the result."""
        p = subprocess.run(self.cmd(*args, offset=offset), env=self.env(offset),
                           capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError("keywarden %s: exit %d\n%s%s" % (" ".join(args), p.returncode,
                                                              p.stdout, p.stderr))
        return p

    def popen(self, *args, offset=None, **kw):
        return subprocess.Popen(self.cmd(*args, offset=offset), env=self.env(offset), **kw)

    def sql(self, statement):
        """Runs SQL with the sqlite3 shell (psql with KW_TEST_PG: write portable SQL, the
        table user as "user"); returns its output lines."""
        return kwpg.sql(self.dir, statement)

    def token(self, as_, name, role, expires=None):
        args = ["token", "create", "--as", as_, "--name", name, "--role", role]
        if expires is not None:
            args += ["--expires", rfc3339(expires)]
        out = self.run(*args).stdout.strip()
        return int(out.split("$")[0])

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)
