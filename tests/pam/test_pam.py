#!/usr/bin/python3
"""pam_keywarden.so on a real PAM stack without root (TAP).

pamtester runs under pam_wrapper with service files in a temporary folder; the module asks the
real keywarden-validator, started on a state folder that the keywarden CLI fills. In a
sanitizer build the ASan runtime is preloaded into pamtester first (leak checks off: pamtester
is not ours)."""
import datetime
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

B = os.environ.get("top_builddir", ".")
KEYWARDEN = os.path.join(B, "keywarden")
VALIDATOR = os.path.join(B, "keywarden-validator")
MODULE = os.path.abspath(os.path.join(B, "libkeywarden", ".libs", "pam_keywarden.so"))
KWCHECK = os.path.join(B, "tests", "client", "kwcheck")
PAM_EXEC = "/lib/x86_64-linux-gnu/security/pam_exec.so"
# A fake validator that answers OK (user alice) to everything: the impostor the module must
# not believe.
FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "client", "test_client.py")
TMP = tempfile.mkdtemp(prefix="kw-pam-")
STATE = os.path.join(TMP, "state")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pg"))
import kwpg  # noqa: E402
kwpg.use(STATE)  # with KW_TEST_PG: a PostgreSQL database of its own, for every program below
PAMD = os.path.join(TMP, "pam.d")
SOCK = os.path.join(STATE, "validator.sock")

count = 0
logs = []       # everything the module logged (pam_wrapper shows pam_syslog lines)
secrets = []    # every token created: none may appear in a log


def ok(cond, name, detail=""):
    global count
    count += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (count, name))
    if not cond:
        for line in str(detail).splitlines()[-40:]:
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


def token(login, name, role, expires=None):
    args = ["token", "create", "--as", login, "--name", name, "--role", role]
    if expires:
        args += ["--expires", expires]
    t = must(*args).strip()
    secrets.append(t.replace("_", "$").split("$", 1)[1])
    return t


def token_id(t):
    return re.split(r"[$_]", t, 1)[0]


def preload():
    """pam_wrapper, behind the ASan runtime when the module was built with sanitizers."""
    libs = []
    ldd = subprocess.run(["ldd", MODULE], capture_output=True, text=True).stdout
    m = re.search(r"libasan\.so\S*\s+=>\s+(\S+)", ldd)
    if m:
        libs.append(m.group(1))
    libs.append("libpam_wrapper.so")
    return " ".join(libs), bool(m)


PRELOAD, SANITIZED = preload()


def pam(service, user, secret, ops=("authenticate", "acct_mgmt"), rhost=None):
    """Runs pamtester; returns (exit code, output)."""
    env = dict(os.environ, PAM_WRAPPER="1", PAM_WRAPPER_SERVICE_DIR=PAMD,
               PAM_WRAPPER_DEBUGLEVEL="2", LD_PRELOAD=PRELOAD)
    if SANITIZED:
        env["ASAN_OPTIONS"] = "detect_leaks=0"
    cmd = ["pamtester", "-v"]
    if rhost:
        cmd += ["-I", "rhost=" + rhost]
    cmd += [service, user] + list(ops)
    p = subprocess.run(cmd, input=secret + "\n", capture_output=True, text=True, timeout=60,
                       env=env)
    out = p.stdout + p.stderr
    logs.append(out)
    return p.returncode, out


AUTH_OK = "successfully authenticated"
ACCT_OK = "account management done"
AUTH_ERR = "Authentication failure"
UNAVAIL = "Authentication service cannot retrieve authentication info"
PERM_DENIED = "Permission denied"
SERVICE_ERR = "Error in service module"


PROMPT = "API token: "


def passes(name, service, user, secret, **kw_args):
    rc, out = pam(service, user, secret, **kw_args)
    ok(rc == 0 and PROMPT in out and AUTH_OK in out and ACCT_OK in out and
       "accepted for %s" % user in out, name, out)


def fails(name, service, user, secret, why, log):
    """Fails with the PAM error why, and the module said log (so it was our module)."""
    rc, out = pam(service, user, secret)
    ok(rc != 0 and AUTH_OK not in out and why in out and log in out, name, out)


def service(name, args, extra_auth="", sock=SOCK):
    line = "%s socket=%s %s" % (MODULE, sock, args)
    with open(os.path.join(PAMD, name), "w") as f:
        f.write("auth required %s\n" % line)
        if extra_auth:
            f.write("auth required %s\n" % extra_auth)
        f.write("account required %s\n" % line)


class Fake:
    """The fake validator at path, as uid (setpriv) when given."""

    def __init__(self, path, uid=None):
        cmd = [sys.executable, FAKE, "--fake-validator", path, "alice"]
        if uid is not None:
            cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"] + cmd
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.ready = self.p.stdout.readline().strip() == b"ready"

    def stop(self):
        self.p.kill()
        self.p.wait()


class Validator:
    def __init__(self):
        self.log = open(os.path.join(TMP, "validator.log"), "ab")
        self.p = subprocess.Popen([VALIDATOR, "--state-dir", STATE], stdout=self.log,
                                  stderr=subprocess.STDOUT)
        # Ready when it accepts a connection (the file exists a moment before listen()).
        for _ in range(400):
            if self.p.poll() is not None:
                break
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(SOCK)
                break
            except OSError:
                time.sleep(0.05)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


# -- the state folder ------------------------------------------------------------------------
os.makedirs(PAMD)
must("init")
must("account", "add", "acme")
must("user", "add", "--account", "acme", "alice", "--role", "Administrators")
must("user", "add", "--account", "acme", "bob", "--role", "Users")
must("user", "add", "--account", "acme", "carol", "--role", "Engineers")

t_eng = token("alice", "eng", "Engineers")
t_admin = token("alice", "admin", "Administrators")
t_bob = token("bob", "bob", "Users")
t_carol = token("carol", "carol", "Engineers")
t_deleted = token("alice", "deleted", "Engineers")
soon = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3))
t_expired = token("alice", "expired", "Engineers", soon.strftime("%Y-%m-%dT%H:%M:%SZ"))
must("token", "delete", "--as", "alice", token_id(t_deleted))
must("user", "set", "carol", "--disable")

service("kw", "")
service("kw_debug", "debug")
service("kw_any", "any_user")
service("kw_eng", "min_role=Engineers")
service("kw_admin", "min_role=Administrators")
service("kw_pp", "[min_role=Purge and Prefetch only (API)] service=ftp")
service("kw_badrole", "min_role=Root")
service("kw_badarg", "min_rol=Users")
ME = os.geteuid()
OTHER = 65534 if ME != 65534 else 65533
service("kw_uid_self", "server_uid=%d" % ME)
service("kw_uid_name", "server_uid=%s" % pwd.getpwuid(ME).pw_name)
service("kw_uid_other", "server_uid=%d" % OTHER)
service("kw_uid_unknown", "server_uid=no-such-user-kw")
service("kw_uid_bad", "server_uid=12x")
WW = os.path.join(TMP, "world-writable")
os.mkdir(WW)
os.chmod(WW, 0o777)
service("kw_ww", "", sock=os.path.join(WW, "v.sock"))
with open(os.path.join(PAMD, "kw_down"), "w") as f:
    f.write("auth required %s socket=%s\n" % (MODULE, os.path.join(TMP, "no.sock")))
    f.write("account required %s socket=%s\n" % (MODULE, os.path.join(TMP, "no.sock")))

v = Validator()
ok(v.p.poll() is None and os.path.exists(SOCK), "keywarden-validator is running")
try:
    # -- right and wrong tokens ------------------------------------------------------------
    passes("right token: auth and account pass", "kw", "alice", t_eng)
    passes("right token as an Authorization header value passes", "kw_debug", "alice",
           "APIKey " + t_eng, rhost="203.0.113.7")
    fails("wrong secret fails", "kw", "alice", t_eng[:-3] + "AAA", AUTH_ERR, "refused (invalid)")
    fails("made-up token fails", "kw", "alice", "7711$nope", AUTH_ERR, "refused (invalid)")
    fails("empty token fails", "kw", "alice", "", AUTH_ERR, "refused (invalid)")
    fails("deleted token fails", "kw", "alice", t_deleted, AUTH_ERR, "refused (deleted)")
    fails("token of a disabled issuer fails", "kw_any", "carol", t_carol, AUTH_ERR,
          "refused (disabled)")
    while datetime.datetime.now(datetime.timezone.utc) < soon + datetime.timedelta(seconds=1):
        time.sleep(0.2)
    fails("expired token fails", "kw", "alice", t_expired, AUTH_ERR, "refused (expired)")

    # -- issuer and role --------------------------------------------------------------------
    fails("token of alice presented for bob fails", "kw", "bob", t_eng, AUTH_ERR,
          "belongs to alice, not to bob")
    passes("... unless any_user", "kw_any", "bob", t_eng)
    fails("min_role=Engineers: a Users token fails", "kw_eng", "bob", t_bob, AUTH_ERR,
          "below min_role Engineers")
    passes("min_role=Engineers: an Engineers token passes", "kw_eng", "alice", t_eng)
    passes("min_role=Engineers: an Administrators token passes", "kw_eng", "alice", t_admin)
    fails("min_role=Administrators: an Engineers token fails", "kw_admin", "alice", t_eng,
          AUTH_ERR, "below min_role Administrators")
    passes("[min_role=NAME with spaces]: an Engineers token passes", "kw_pp", "alice", t_eng)
    fails("[min_role=NAME with spaces]: a Users token fails", "kw_pp", "bob", t_bob, AUTH_ERR,
          "below min_role Purge and Prefetch only (API)")
    fails("unknown min_role: configuration error, fails closed", "kw_badrole", "alice", t_eng,
          SERVICE_ERR, "min_role=Root is not a role")
    fails("unknown argument: configuration error, fails closed", "kw_badarg", "alice", t_eng,
          SERVICE_ERR, 'unknown argument "min_rol=Users"')

    # -- account re-checks --------------------------------------------------------------------
    t_gone = token("alice", "gone", "Engineers")
    deleter = os.path.join(TMP, "delete.sh")
    with open(deleter, "w") as f:
        # pam_exec gives the command PAM's environment only: the store's URL goes in here.
        f.write("#!/bin/sh\n%sexec %s --state-dir %s token delete --as alice %s\n"
                % ("KEYWARDEN_STORE_URL='%s' " % kwpg.url(STATE) if kwpg.url(STATE) else "",
                   os.path.abspath(KEYWARDEN), STATE, token_id(t_gone)))
    os.chmod(deleter, 0o755)
    service("kw_recheck", "", extra_auth="%s quiet %s" % (PAM_EXEC, deleter))
    rc, out = pam("kw_recheck", "alice", t_gone)
    ok(rc != 0 and AUTH_OK in out and PERM_DENIED in out and "account: token refused (deleted)" in out,
       "account re-checks: a token deleted after auth is refused by account", out)
    with open(os.path.join(PAMD, "kw_acct_only"), "w") as f:
        f.write("auth required /lib/x86_64-linux-gnu/security/pam_permit.so\n")
        # sufficient: a PAM_SUCCESS from our module would end the stack with success, so
        # only its PAM_IGNORE lets pam_deny refuse.
        f.write("account sufficient %s socket=%s debug\n" % (MODULE, SOCK))
        f.write("account required /lib/x86_64-linux-gnu/security/pam_deny.so\n")
    rc, out = pam("kw_acct_only", "alice", "x")
    ok(rc != 0 and ACCT_OK not in out and "account: no token from auth" in out,
       "account without our auth never grants on its own (the module ignores, pam_deny refuses)",
       out)

    # -- who answers ----------------------------------------------------------------------------
    passes("server_uid = the validator's uid passes", "kw_uid_self", "alice", t_eng)
    passes("server_uid = the validator's user name passes", "kw_uid_name", "alice", t_eng)
    fails("server_uid = another uid: not trusted, fails closed (AUTHINFO_UNAVAIL)",
          "kw_uid_other", "alice", t_eng, UNAVAIL,
          "is not trusted (EPERM: the validator runs as uid %d, server_uid is %d)" % (ME, OTHER))
    fails("server_uid = an unknown user: configuration error, fails closed", "kw_uid_unknown",
          "alice", t_eng, SERVICE_ERR, "server_uid=no-such-user-kw is not a uid or a user")
    fails("server_uid = not a number: configuration error, fails closed", "kw_uid_bad", "alice",
          t_eng, SERVICE_ERR, "server_uid=12x is not a uid or a user")

    # -- end-to-end story (with `keywarden token check`: tests/pam/test_cli_check.py) ---------------------------------------------------------------------
    t_story = token("alice", "story", "Engineers")
    passes("story: a new token passes PAM", "kw", "alice", t_story)
    lib = subprocess.run([KWCHECK, SOCK, t_story], capture_output=True, text=True).stdout
    ok(lib.startswith("status=ok token_id=%s " % token_id(t_story)),
       "story: libkeywarden says ok", lib)
    must("token", "delete", "--as", "alice", token_id(t_story))
    fails("story: right after delete, PAM fails", "kw", "alice", t_story, AUTH_ERR,
          "refused (deleted)")
    lib = subprocess.run([KWCHECK, SOCK, t_story], capture_output=True, text=True).stdout
    ok(lib.startswith("status=deleted "), "story: libkeywarden says FAIL code=deleted", lib)

    # -- daemon down ----------------------------------------------------------------------------
    fails("no validator at socket=: fails closed (AUTHINFO_UNAVAIL)", "kw_down", "alice", t_eng,
          UNAVAIL, "unreachable or broken (ENOENT): failing closed")
finally:
    v.stop()
fails("validator stopped: the right token fails closed (AUTHINFO_UNAVAIL)", "kw", "alice",
      t_eng, UNAVAIL, "failing closed for user alice")

# -- impostors ----------------------------------------------------------------------------------
# A fake validator that says OK to any token for alice: in a world-writable folder (anyone could
# have bound it) the module refuses it, even when it runs as the same uid.
fake = Fake(os.path.join(WW, "v.sock"))
try:
    fails("a validator in a world-writable, non-sticky folder is not trusted (AUTHINFO_UNAVAIL)",
          "kw_ww", "alice", "7711$forged", UNAVAIL, "writable by group or others")
finally:
    fake.stop()
IMPOSTOR = ["a validator of another uid (65534) in a sticky root folder is not trusted",
            "... and is believed with server_uid=65534"]
if ME == 0 and shutil.which("setpriv"):
    base = tempfile.mkdtemp(prefix="kw-pam-uid-")
    os.chmod(base, 0o711)
    sticky = os.path.join(base, "sticky")
    os.mkdir(sticky)
    os.chmod(sticky, 0o1777)
    fsock = os.path.join(sticky, "v.sock")
    service("kw_foreign", "", sock=fsock)
    service("kw_foreign_pinned", "server_uid=65534", sock=fsock)
    fake = Fake(fsock, uid=65534)
    try:
        ok(fake.ready, "the fake validator runs as uid 65534")
        fails(IMPOSTOR[0], "kw_foreign", "alice", "7711$forged", UNAVAIL,
              "the validator runs as uid 65534: not root")
        passes(IMPOSTOR[1], "kw_foreign_pinned", "alice", "7711$forged")
    finally:
        fake.stop()
        shutil.rmtree(base)
else:
    for name in ["the fake validator runs as uid 65534"] + IMPOSTOR:
        count += 1
        print("ok %d - %s # SKIP needs root and setpriv" % (count, name))

# -- secrets --------------------------------------------------------------------------------------
leaked = [s for s in secrets for l in logs if s in l]
ok(len(logs) > 20 and not leaked, "no token secret appears in anything the module logged",
   "%d logs, leaked: %d" % (len(logs), len(leaked)))

print("1..%d" % count)
subprocess.run(["rm", "-rf", TMP])
