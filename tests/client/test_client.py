#!/usr/bin/python3
"""libkeywarden against a scripted, misbehaving validator on a Unix socket (TAP).

Each case starts a small server whose connection handler plays one scenario, runs the
tests/client/kwcheck driver (which links libkeywarden) and checks what the library reported and
what the server saw. The identity checks (who may answer) run other uids through setpriv when
the test runs as root.

`test_client.py --fake-validator PATH USER` is a fake validator that answers OK (user USER) to
every CHECK, for the tests that run it under another uid (here and in tests/pam/test_pam.py)."""
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time


def fake_validator(path, user):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(16)
    print("ready", flush=True)
    while True:
        c, _ = srv.accept()
        try:
            c.sendall(b"VERSION\t1\t0\n")
            for line in c.makefile("rb"):
                if line.startswith(b"CHECK\t"):
                    rid = line.split(b"\t")[1]
                    c.sendall(b"OK\t%s\ttoken_id=7711\taccount=acme\tuser=%s\t"
                              b"role=Administrators\texpires=never\n" % (rid, user.encode()))
        except OSError:
            pass
        c.close()


if len(sys.argv) == 4 and sys.argv[1] == "--fake-validator":
    fake_validator(sys.argv[2], sys.argv[3])
    sys.exit(0)

BUILD = os.environ.get("top_builddir", ".")
KWCHECK = os.path.join(BUILD, "tests", "client", "kwcheck")
TMP = tempfile.mkdtemp(prefix="kw-client-")
SOCK = os.path.join(TMP, "v.sock")

count = 0
failed = 0


def ok(cond, name, detail=""):
    global count, failed
    count += 1
    if cond:
        print("ok %d - %s" % (count, name))
    else:
        failed += 1
        print("not ok %d - %s" % (count, name))
        for line in str(detail).splitlines():
            print("# " + line)
    sys.stdout.flush()


class Conn:
    def __init__(self, sock, index, server):
        self.sock = sock
        self.index = index
        self.server = server
        self.buf = b""

    def readline(self):
        while b"\n" not in self.buf:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return None
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        self.server.log.append((self.index, line))
        return line

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            pass

    def hello(self, version=b"VERSION\t1\t0\n"):
        self.send(version)
        return self.readline()


def ok_answer(rid, token):
    return b"OK\t%s\ttoken_id=7711\taccount=acme\tuser=alice\trole=Engineers\texpires=never\n" % rid


def answer(line):
    """The normal answer for a CHECK line: tokens "fail-CODE" fail with CODE, others pass."""
    parts = line.split(b"\t")
    rid = parts[1]
    token = line.split(b"token=", 1)[1]
    if token.startswith(b"fail-"):
        return b"FAIL\t%s\tcode=%s\n" % (rid, token[5:])
    return ok_answer(rid, token)


def serve_normal(c):
    if c.hello() is None:
        return
    while True:
        line = c.readline()
        if line is None:
            return
        c.send(answer(line))


class Server:
    def __init__(self, handler, listen=True, path=SOCK):
        if os.path.exists(path):
            os.unlink(path)
        self.handler = handler
        self.log = []
        self.conns = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.stopped = False
        self.threads = []
        if listen:
            self.sock.listen(64)
            t = threading.Thread(target=self.loop, daemon=True)
            t.start()

    def loop(self):
        while not self.stopped:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            idx = self.conns
            self.conns += 1
            t = threading.Thread(target=self.run_one, args=(s, idx), daemon=True)
            t.start()
            self.threads.append(t)

    def run_one(self, s, idx):
        try:
            self.handler(Conn(s, idx, self))
        finally:
            s.close()

    def checks(self):
        return [(i, l) for (i, l) in self.log if l.startswith(b"CHECK")]

    def stop(self):
        self.stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for t in self.threads:
            t.join(5)


def kwcheck(*args, timeout=30, as_uid=None):
    t0 = time.monotonic()
    cmd = [KWCHECK] + list(args)
    if as_uid is not None:
        cmd = ["setpriv", "--reuid=%d" % as_uid, "--regid=%d" % as_uid, "--clear-groups"] + cmd
    p = subprocess.run(cmd, capture_output=True, timeout=timeout)
    el = time.monotonic() - t0
    out = p.stdout.decode("utf-8", "replace")
    return p.returncode, out.splitlines(), el, out + p.stderr.decode("utf-8", "replace")


OK_LINE = "status=ok token_id=7711 account=acme user=alice role=Engineers expires=never"


def case(name, handler, args, want_lines, listen=True, check=None, path=SOCK):
    srv = Server(handler, listen, path)
    try:
        rc, lines, el, full = kwcheck(*args)
        good = rc == 0 and lines == want_lines
        if good and check is not None:
            good = check(srv, el)
        ok(good, name, "rc=%d\n%s\nserver log: %r" % (rc, full, srv.log[:20]))
    finally:
        srv.stop()
    return srv


# -- reaching the validator --------------------------------------------------------------
if os.path.exists(SOCK):
    os.unlink(SOCK)
rc, lines, el, full = kwcheck(SOCK, "7711$abc")
ok(rc == 0 and lines == ["error=ENOENT status=temp_fail"], "no socket: ENOENT, temp_fail", full)

case("bound but not listening: ECONNREFUSED", None, [SOCK, "7711$abc"],
     ["error=ECONNREFUSED status=temp_fail"], listen=False)

rc, lines, el, full = kwcheck("/" + "x" * 200, "t")
ok(rc == 0 and lines == ["new=ENAMETOOLONG"], "socket path too long refused by kw_client_new", full)

# -- the normal exchange -----------------------------------------------------------------
def exact_request(srv, el):
    want = [(0, b"VERSION\t1\t0"),
            (0, b"CHECK\t1\tservice=sshd\tremote_ip=203.0.113.7\ttoken=APIKey 7711$s3cr3t"),
            (0, b"CHECK\t2\tservice=sshd\tremote_ip=203.0.113.7\ttoken=fail-deleted")]
    return srv.log == want


case("handshake and request lines are exactly the protocol's", serve_normal,
     ["-s", "sshd", "-i", "203.0.113.7", SOCK, "APIKey 7711$s3cr3t", "fail-deleted"],
     [OK_LINE, "status=deleted token_id= account= user= role= expires="], check=exact_request)

codes = ["invalid", "expired", "deleted", "disabled", "rate_limited", "temp_fail"]
case("every FAIL code maps to its status", serve_normal,
     [SOCK] + ["fail-" + c for c in codes],
     ["status=%s token_id= account= user= role= expires=" % c for c in codes])

def serve_newer(c):
    if c.hello(b"VERSION\t1\t7\n") is None:
        return
    line = c.readline()
    rid = line.split(b"\t")[1]
    c.send(b"OK\t%s\tfuture=1\ttoken_id=42\taccount=a b\tuser=bob\trole=Users\t"
           b"expires=2027-01-31T23:59:59Z\tzz_new=x=y\n" % rid)


case("higher minor accepted, unknown answer fields ignored", serve_newer, [SOCK, "t"],
     ["status=ok token_id=42 account=a b user=bob role=Users expires=2027-01-31T23:59:59Z"])

def no_conn(srv, el):
    return srv.conns == 0

case("a token with TAB is invalid without asking", serve_normal, [SOCK, "77\t11"],
     ["status=invalid token_id= account= user= role= expires="], check=no_conn)
case("an overlong token is invalid without asking", serve_normal, [SOCK, "7" * 9000],
     ["status=invalid token_id= account= user= role= expires="], check=no_conn)

# -- timeouts -------------------------------------------------------------------------------
def serve_silent(c):
    time.sleep(3)


def quick(srv, el):
    return 0.4 <= el < 2.5


case("server never speaks: ETIMEDOUT within the timeout", serve_silent, ["-t", "500", SOCK, "t"],
     ["error=ETIMEDOUT status=temp_fail"], check=quick)

def serve_no_answer(c):
    c.hello()
    c.readline()
    time.sleep(3)


case("server never answers the CHECK: ETIMEDOUT", serve_no_answer, ["-t", "500", SOCK, "t"],
     ["error=ETIMEDOUT status=temp_fail"], check=quick)

# -- bad handshakes -------------------------------------------------------------------------
for name, hello, err in [
        ("VERSION 2 0 refused", b"VERSION\t2\t0\n", "EPROTONOSUPPORT"),
        ("ERROR reason=version", b"ERROR\treason=version\n", "EPROTONOSUPPORT"),
        ("ERROR reason=busy", b"ERROR\treason=busy\n", "EBUSY"),
        ("ERROR reason=not_allowed", b"ERROR\treason=not_allowed\n", "EACCES"),
        ("garbage instead of VERSION", b"HELLO world\n", "EPROTO"),
        ("VERSION with a bad minor", b"VERSION\t1\tx\n", "EPROTO"),
        ("VERSION with CRLF", b"VERSION\t1\t0\r\n", "EPROTO")]:
    case("bad handshake: " + name, lambda c, h=hello: (c.send(h), c.readline(), time.sleep(0.5)),
         [SOCK, "t"], ["error=%s status=temp_fail" % err])

# -- garbage answers ------------------------------------------------------------------------
GOOD = b"\ttoken_id=7711\taccount=acme\tuser=alice\trole=Engineers\texpires=never"
garbage = [
    ("unknown verb", b"MAYBE\t%s\n"),
    ("OK without fields", b"OK\t%s\n"),
    ("OK missing expires", b"OK\t%s\ttoken_id=7711\taccount=acme\tuser=alice\trole=Engineers\n"),
    ("non-numeric token_id", b"OK\t%s\ttoken_id=77a\taccount=acme\tuser=alice\trole=R\texpires=never\n"),
    ("token_id with leading zero", b"OK\t%s\ttoken_id=0771\taccount=acme\tuser=alice\trole=R\texpires=never\n"),
    ("bad expires", b"OK\t%s\ttoken_id=7711\taccount=acme\tuser=alice\trole=R\texpires=tomorrow\n"),
    ("expires month 13", b"OK\t%s\ttoken_id=7711\taccount=acme\tuser=alice\trole=R\texpires=2027-13-01T00:00:00Z\n"),
    ("empty user", b"OK\t%s\ttoken_id=7711\taccount=acme\tuser=\trole=R\texpires=never\n"),
    ("overlong role field", b"OK\t%s\ttoken_id=7711\taccount=acme\tuser=u\trole=" + b"R" * 300 + b"\texpires=never\n"),
    ("duplicate user key", b"OK\t%s" + GOOD + b"\tuser=mallory\n"),
    ("field without =", b"OK\t%s" + GOOD + b"\tjunk\n"),
    ("bad key syntax", b"OK\t%s" + GOOD + b"\tBad=1\n"),
    ("CR before LF", b"OK\t%s" + GOOD + b"\r\n"),
    ("NUL inside the line", b"OK\t%s" + GOOD + b"\x00x\n"),
    ("unknown FAIL code", b"FAIL\t%s\tcode=nope\n"),
    ("FAIL without code", b"FAIL\t%s\n"),
    ("overlong line", b"OK\t%s" + GOOD + b"\tpad=" + b"p" * 9000 + b"\n"),
    ("a second, unrequested answer", b"OK\t%s" + GOOD + b"\nOK\t%s" + GOOD + b"\n"),
    ("ERROR reason=protocol", b"ERROR\treason=protocol\n"),
]


def serve_reply(template):
    def h(c):
        if c.hello() is None:
            return
        line = c.readline()
        if line is None:
            return
        rid = line.split(b"\t")[1]
        c.send(template.replace(b"%s", rid))
        time.sleep(0.3)
    return h


for name, tpl in garbage:
    case("garbage answer: %s -> EPROTO" % name, serve_reply(tpl), [SOCK, "t"],
         ["error=EPROTO status=temp_fail"])

case("answer with the wrong id -> EPROTO",
     lambda c: (c.hello(), c.readline(), c.send(b"OK\t999" + GOOD + b"\n"), time.sleep(0.3)),
     [SOCK, "t"], ["error=EPROTO status=temp_fail"])

# -- broken connections ------------------------------------------------------------------------
def one_conn(srv, el):
    return srv.conns == 1


case("disconnect in the middle of an answer: ECONNRESET, no retry",
     lambda c: (c.hello(), c.readline(), c.send(b"OK\t1\ttoken_id=77")),
     [SOCK, "t"], ["error=ECONNRESET status=temp_fail"], check=one_conn)

def serve_one_then_close(c):
    if c.index == 0:
        c.hello()
        line = c.readline()
        c.send(answer(line))
        return  # closes: the client's next send meets EPIPE
    serve_normal(c)


def two_conns_two_checks(srv, el):
    return srv.conns == 2 and [i for i, _ in srv.checks()] == [0, 1]


case("EPIPE on a closed connection: reconnect once and succeed", serve_one_then_close,
     ["-r", "2", "-w", "200", SOCK, "t"], [OK_LINE, OK_LINE], check=two_conns_two_checks)

def serve_idle_error(c):
    if c.index == 0:
        c.hello()
        line = c.readline()
        c.send(answer(line))
        c.send(b"ERROR\treason=idle\n")
        return
    serve_normal(c)


case("idle ERROR then close: reconnect once and succeed", serve_idle_error,
     ["-r", "2", "-w", "200", SOCK, "t"], [OK_LINE, OK_LINE], check=two_conns_two_checks)

def serve_close_at_check(c):
    c.hello()
    c.readline()  # the CHECK: close without an answer, every time


def exactly_two(srv, el):
    return srv.conns == 2


case("a validator that always hangs up: one reconnect only, then ECONNRESET",
     serve_close_at_check, [SOCK, "t"], ["error=ECONNRESET status=temp_fail"], check=exactly_two)

# -- pipelining --------------------------------------------------------------------------------
def serve_wait_all(n):
    def h(c):
        if c.hello() is None:
            return
        lines = []
        for _ in range(n):
            line = c.readline()
            if line is None:
                return
            lines.append(line)
        # every request arrived before any answer: the client pipelines
        c.send(b"".join(answer(l) for l in lines))
        time.sleep(0.3)
    return h


def distinct_ids(srv, el):
    ids = [l.split(b"\t")[1] for _, l in srv.checks()]
    return len(ids) == 5 and len(set(ids)) == 5 and srv.conns == 1


case("pipelined batch: all requests sent before any answer, answers in order",
     serve_wait_all(5), ["-b", SOCK, "a", "fail-expired", "b", "fail-disabled", "c"],
     ["batch=0", OK_LINE, "status=expired token_id= account= user= role= expires=", OK_LINE,
      "status=disabled token_id= account= user= role= expires=", OK_LINE],
     check=distinct_ids)

case("pipelined batch with a locally invalid token in the middle", serve_wait_all(2),
     ["-b", SOCK, "a", "x\ty", "fail-deleted"],
     ["batch=0", OK_LINE, "status=invalid token_id= account= user= role= expires=",
      "status=deleted token_id= account= user= role= expires="])

N = 3000
def big_batch(srv, el):
    return len(srv.checks()) == N and srv.conns == 1


case("pipelined batch of %d on one connection" % N, serve_normal, ["-b", SOCK, "@%d:tok" % N],
     ["batch=0"] + [OK_LINE] * N, check=big_batch)

case("batch whose answers break: every result is temp_fail", serve_reply(b"OK\t%s\n"),
     ["-b", SOCK, "a", "b"], ["batch=-71", "error=EPROTO status=temp_fail",
                             "error=EPROTO status=temp_fail"])

# -- fork ---------------------------------------------------------------------------------------
def fork_conns(srv, el):
    return srv.conns == 2 and [i for i, _ in srv.checks()] == [0, 1, 0]


case("after fork the child opens its own connection; the parent keeps its own",
     serve_normal, ["-f", SOCK, "t"], [OK_LINE, "child " + OK_LINE, OK_LINE], check=fork_conns)

# -- who answers: the folder, the socket and the server's uid -----------------------------------
def untouched(srv, el):
    """Refused before a byte was sent: the server saw no VERSION."""
    return srv.log == []


def sub(name, mode):
    d = os.path.join(TMP, name)
    os.mkdir(d)
    os.chmod(d, mode)
    return d


ME = os.geteuid()
ww = os.path.join(sub("world-writable", 0o777), "v.sock")
def detail_case(name, path, args, want):
    """kwcheck's output (standard error included) holds want, with a server listening."""
    srv = Server(serve_normal, path=path)
    try:
        rc, lines, el, full = kwcheck(*(args + [path, "7711$abc"]))
        ok(rc == 0 and want in full, name, full)
    finally:
        srv.stop()


case("a validator in a world-writable, non-sticky folder: EPERM, nothing sent", serve_normal,
     [ww, "7711$abc"], ["error=EPERM status=temp_fail"], check=untouched, path=ww)
detail_case("kw_client_error() says which folder and why", ww, [],
            "detail=the socket's folder %s (mode 0777, owner uid %d) is writable by group or "
            "others" % (os.path.dirname(ww), ME))
gw = os.path.join(sub("group-writable", 0o770), "v.sock")
case("a group-writable folder: EPERM", serve_normal, [gw, "t"],
     ["error=EPERM status=temp_fail"], check=untouched, path=gw)
st = os.path.join(sub("sticky", 0o1777), "v.sock")
case("a sticky world-writable folder owned by the validator's uid is accepted", serve_normal,
     [st, "t"], [OK_LINE], path=st)
link = os.path.join(TMP, "link.sock")
os.symlink(SOCK, link)
case("a symbolic link at the socket path: EPERM", serve_normal, [link, "t"],
     ["error=EPERM status=temp_fail"], check=untouched)
os.unlink(link)
case("server_uid = the validator's uid: accepted", serve_normal, ["-u", str(ME), SOCK, "t"],
     [OK_LINE])
other = 65534 if ME != 65534 else 65533
case("server_uid = another uid: EPERM, nothing sent", serve_normal,
     ["-u", str(other), SOCK, "t"], ["error=EPERM status=temp_fail"], check=untouched)
detail_case("kw_client_error() names the validator's uid and server_uid", SOCK,
            ["-u", str(other)], "detail=the validator runs as uid %d, server_uid is %d" % (ME, other))
case("a refused validator is asked again, and refused again, by the next call", serve_normal,
     ["-u", str(other), "-r", "2", SOCK, "t"], ["error=EPERM status=temp_fail"] * 2,
     check=untouched)


class Foreign:
    """The fake validator as uid 65534 (setpriv), bound at path."""

    def __init__(self, path, user="alice"):
        if os.path.exists(path):
            os.unlink(path)
        self.p = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                   sys.executable, os.path.abspath(__file__), "--fake-validator",
                                   path, user], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.ready = self.p.stdout.readline().strip() == b"ready"

    def stop(self):
        self.p.kill()
        self.p.wait()


def foreign_case(name, path, args, want, as_uid=None, detail=None):
    f = Foreign(path)
    try:
        rc, lines, el, full = kwcheck(*(args + [path, "7711$abc"]), as_uid=as_uid)
        good = f.ready and rc == 0 and lines == want and (detail is None or detail in full)
        ok(good, name, "ready=%s rc=%d\n%s" % (f.ready, rc, full))
    finally:
        f.stop()


ROOT_TESTS = ["a validator of another uid in a sticky folder owned by root: EPERM",
              "... accepted with server_uid=65534",
              "the socket must belong to the validator's uid, even with server_uid",
              "a folder owned by the validator's uid in a tree others may rearrange: EPERM",
              "a folder owned by the validator's uid in a root-owned tree (/run): accepted",
              "a root validator's socket may belong to another user (SocketUser=)",
              "a client of uid 65534 trusts a root validator (0755 folder in a 0711 one)"]
if os.geteuid() == 0 and shutil.which("setpriv"):
    # A root-owned 0711 base that uid 65534 can traverse.
    base = tempfile.mkdtemp(prefix="kw-client-uid-")
    os.chmod(base, 0o711)
    sticky = os.path.join(base, "sticky")
    os.mkdir(sticky)
    os.chmod(sticky, 0o1777)
    fsock = os.path.join(sticky, "v.sock")
    foreign_case(ROOT_TESTS[0], fsock, [], ["error=EPERM status=temp_fail"],
                 detail="runs as uid 65534: not root")
    foreign_case(ROOT_TESTS[1], fsock, ["-u", "65534"],
                 ["status=ok token_id=7711 account=acme user=alice role=Administrators "
                  "expires=never"])
    f = Foreign(fsock)
    try:
        os.chown(fsock, 0, 0)
        rc, lines, el, full = kwcheck("-u", "65534", fsock, "t")
        ok(f.ready and lines == ["error=EPERM status=temp_fail"] and
           "belongs to uid 0 but the validator runs as uid 65534" in full, ROOT_TESTS[2], full)
    finally:
        f.stop()
    nob = os.path.join(base, "nobody")
    os.mkdir(nob)
    os.chown(nob, 65534, 65534)
    os.chmod(nob, 0o755)
    foreign_case(ROOT_TESTS[3], os.path.join(nob, "v.sock"), [],
                 ["error=EPERM status=temp_fail"], detail="runs as uid 65534")
    run_ok = all(os.stat(d).st_uid == 0 and os.stat(d).st_mode & 0o022 == 0 for d in ("/", "/run"))
    if run_ok and os.access("/run", os.W_OK):
        rbase = tempfile.mkdtemp(prefix="kw-client-test-", dir="/run")
        try:
            os.chmod(rbase, 0o755)
            rdir = os.path.join(rbase, "keywarden")
            os.mkdir(rdir)
            os.chown(rdir, 65534, 65534)
            os.chmod(rdir, 0o755)
            foreign_case(ROOT_TESTS[4], os.path.join(rdir, "v.sock"), [],
                         ["status=ok token_id=7711 account=acme user=alice "
                          "role=Administrators expires=never"])
        finally:
            shutil.rmtree(rbase)
    else:
        print("ok %d - %s # SKIP / or /run not root-owned and writable by root only" %
              (count + 1, ROOT_TESTS[4]))
        count += 1
    sd = os.path.join(base, "sock")
    os.mkdir(sd)
    os.chmod(sd, 0o755)
    rsock = os.path.join(sd, "v.sock")
    srv = Server(serve_normal, path=rsock)
    try:
        os.chmod(rsock, 0o666)
        os.chown(rsock, 65534, 65534)
        rc, lines, el, full = kwcheck(rsock, "t")
        ok(lines == [OK_LINE], ROOT_TESTS[5], full)
        os.chown(rsock, 0, 0)
        rc, lines, el, full = kwcheck(rsock, "t", as_uid=65534)
        ok(lines == [OK_LINE], ROOT_TESTS[6], full)
    finally:
        srv.stop()
    shutil.rmtree(base)
else:
    for name in ROOT_TESTS:
        count += 1
        print("ok %d - %s # SKIP needs root and setpriv" % (count, name))

print("1..%d" % count)
subprocess.run(["rm", "-rf", TMP])
sys.exit(0)
