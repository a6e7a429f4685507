#!/usr/bin/python3
"""smtp.py: keywarden-notify (and its front, keywarden notify run) against a real SMTP server on
loopback (aiosmtpd), with the clock moved by libfaketime: who gets the 7-day and the 1-day
mails, exactly once over repeated and concurrent runs; opt-out; deleted, expired and disabled
tokens; a server that is down or refuses mail records nothing and the next run delivers; what a
mail says. A final reply that comes after [notify] timeout still counts; a mail whose final
reply never comes is sent at most 3 times; revoked SSO users get no mail; user-controlled text
is defanged and shell-quoted; [notify] username/password_file are checked (also in a dry run);
a token whose issuer is disabled mid-run gets no further mail; `keywarden notify run` is a
front for keywarden-notify, the only program that links libcurl."""
import asyncio
import email
import email.policy
import signal
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kwtest import DAY, State, Tap  # noqa: E402

from aiosmtpd.controller import Controller  # noqa: E402

HOUR = 3600


class Recorder:
    """Records every accepted message (also to a file); mode 'reject' answers 451, 'slow'
    answers 250 after self.delay seconds, 'drop' takes the message and closes the connection
    without a final reply."""

    def __init__(self, path):
        self.path = path
        self.mails = []
        self.mode = "accept"
        self.delay = 3
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "reject":
            return "451 4.3.0 try again later"
        msg = email.message_from_bytes(envelope.original_content or envelope.content,
                                       policy=email.policy.default)
        rec = {"from": envelope.mail_from, "rcpt": list(envelope.rcpt_tos), "msg": msg}
        with self.lock:
            self.mails.append(rec)
            with open(self.path, "a") as f:
                f.write("%s %s %s %s\n" % (envelope.mail_from, ",".join(envelope.rcpt_tos),
                                           msg["X-Keywarden-Token"],
                                           msg["X-Keywarden-Threshold"]))
        if self.mode == "slow":  # the message is here; the sender waits for the 250
            await asyncio.sleep(self.delay)
        if self.mode == "drop":  # the message is here; the connection breaks before the 250
            server.transport.abort()
            await asyncio.sleep(0.2)
        return "250 OK"

    def take(self):
        """The (token, threshold, recipient) triples received since the last call."""
        with self.lock:
            got = self.mails
            self.mails = []
        return got


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def triples(mails):
    return sorted((int(m["msg"]["X-Keywarden-Token"]), int(m["msg"]["X-Keywarden-Threshold"]),
                   r) for m in mails for r in m["rcpt"])


t = Tap()
port = free_port()
st = State("[notify]\nsmtp_url = smtp://127.0.0.1:%d\nfrom = keywarden <keywarden@example.org>\n"
           "timeout = 5\n" % port)
rec = Recorder(os.path.join(st.dir, "mails.log"))
server = None
extra_states = []


def start_server():
    global server
    server = Controller(rec, hostname="127.0.0.1", port=port)
    server.start()


def stop_server():
    global server
    server.stop()
    server = None


try:
    now = int(time.time())
    st.run("account", "add", "acme")
    st.run("account", "add", "beta")
    users = [  # login, account, role, email
        ("alice", "acme", "Administrators", "alice@example.org"),
        ("bob", "acme", "Engineers", "bob@example.org"),
        ("carol", "acme", "Administrators", "carol@example.org"),  # opted out
        ("dave", "acme", "Administrators", "dave@example.org"),    # disabled
        ("erin", "acme", "Users", None),                           # no address
        ("frank", "acme", "Engineers", "frank@example.org"),
        ("gina", "beta", "Administrators", "gina@example.org"),
        ("hank", "acme", "Users", "hank@example.org"),             # disabled later
        ("ivan", "acme", "Administrators", None),                  # admin without address
    ]
    for login, acct, role, addr in users:
        args = ["user", "add", "--account", acct, login, "--role", role]
        if addr:
            args += ["--email", addr]
        st.run(*args)
    st.run("user", "set", "carol", "--expiry-emails", "off")
    soon = now + 8 * DAY + HOUR
    tok_a = st.token("bob", "build-bot", "Users", soon)
    tok_e = st.token("erin", "erin's token", "Users", soon)
    tok_f = st.token("frank", "deploy", "Engineers", soon)
    tok_g = st.token("gina", "beta-ci", "Users", soon)
    tok_h = st.token("hank", "hank-tok", "Users", soon)
    tok_d = st.token("bob", "deleted-before", "Users", soon)
    tok_c = st.token("frank", "long", "Users", now + 20 * DAY + HOUR)
    tok_n = st.token("alice", "never", "Users")
    tok_j = st.token("frank", "interrupted", "Users", now + 40 * DAY + HOUR)
    st.token("bob", "later", "Users", now + 30 * DAY)
    st.run("token", "delete", "--as", "alice", str(tok_d))
    st.run("user", "set", "dave", "--disable")
    st.run("user", "set", "hank", "--disable")
    start_server()

    p = st.run("notify", "run", offset=0, check=False)
    t.eq(p.returncode, 0, "a run with nothing due succeeds")
    t.eq(triples(rec.take()), [], "nothing is due 8 days ahead: no mail")

    # 1.5 days later every "soon" token is 6.5 days from expiry: the 7-day mails.
    at7 = int(1.5 * DAY)
    want7 = sorted([(tok_a, 7, "bob@example.org"), (tok_a, 7, "alice@example.org"),
                    (tok_e, 7, "alice@example.org"),
                    (tok_f, 7, "frank@example.org"), (tok_f, 7, "alice@example.org"),
                    (tok_g, 7, "gina@example.org")])
    p = st.run("notify", "run", "--dry-run", offset=at7, check=False)
    t.eq(p.returncode, 0, "--dry-run succeeds")
    t.eq(len([line for line in p.stdout.splitlines() if line.startswith("would send")]),
         len(want7), "--dry-run lists every due mail")
    t.eq(triples(rec.take()), [], "--dry-run sends nothing")
    t.eq(st.sql("SELECT count(*) FROM notification_sent"), ["0"], "--dry-run records nothing")

    # The server refuses (451): nothing recorded.
    rec.mode = "reject"
    p = st.run("keywarden-notify", offset=at7, check=False)
    t.ok(p.returncode != 0, "a run whose mails are refused fails", p.stderr)
    t.ok("not delivered" in p.stderr, "the refused delivery is logged", p.stderr)
    t.eq(st.sql("SELECT count(*) FROM notification_sent"), ["0"],
         "refused mails are not recorded as sent")
    rec.mode = "accept"

    # The server is down: nothing recorded, the run fails.
    stop_server()
    p = st.run("keywarden-notify", offset=at7, check=False)
    t.ok(p.returncode != 0, "a run with the SMTP server down fails", p.stderr)
    t.eq(st.sql("SELECT count(*) FROM notification_sent"), ["0"],
         "with the server down nothing is recorded as sent")
    t.eq(st.sql("SELECT count(*) FROM audit WHERE action = 'notify.sent'"), ["0"],
         "with the server down no notify.sent event is recorded")
    start_server()
    rec.take()

    p = st.run("keywarden-notify", offset=at7, check=False)
    t.eq(p.returncode, 0, "the next run, server up, succeeds")
    got = rec.take()
    t.eq(triples(got), want7, "7-day mails reach exactly the issuers with an address and "
         "the enabled, opted-in Administrators of the token's account")
    t.eq(sorted(st.sql("SELECT token_id || ' ' || threshold || ' ' || recipient "
                       "FROM notification_sent")),
         sorted("%d %d %s" % x for x in want7), "each delivered mail is recorded")
    t.eq(st.sql("SELECT count(*) FROM audit WHERE action = 'notify.sent'"), [str(len(want7))],
         "one notify.sent audit event per mail")

    # What a mail says.
    m = [x["msg"] for x in got if x["msg"]["X-Keywarden-Token"] == str(tok_a)
         and x["rcpt"] == ["bob@example.org"]][0]
    body = m.get_content()
    t.eq(m.get_content_type(), "text/plain", "the mail is plain text")
    t.ok("7 days" in m["Subject"] and str(tok_a) in m["Subject"], "the subject names the "
         "token and the threshold", m["Subject"])
    for what in ("token id:   %d" % tok_a, "build-bot", "Users", "issued by:  bob",
                 time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(soon)),
                 "keywarden token create --as 'bob' --name 'build-bot' --role 'Users' "
                 "--expires "):
        t.ok(what in body, "the mail contains %r" % what, body)
    t.ok("://" not in body and "http" not in body.lower() and "www." not in body,
         "the mail has no links", body)
    t.eq(got[0]["from"], "keywarden@example.org", "envelope sender is [notify] from")
    me = [x["msg"] for x in got if x["msg"]["X-Keywarden-Token"] == str(tok_e)][0]
    t.ok("--name 'erin'\\''s token'" in me.get_content(),
         "the replacement command quotes the name for the shell", me.get_content())

    # Repeated runs: nothing more.
    for off in (at7, at7 + HOUR, 3 * DAY):
        p = st.run("keywarden-notify", offset=off, check=False)
        t.ok(p.returncode == 0 and triples(rec.take()) == [],
             "a repeated run at +%dh sends nothing again" % (off // HOUR), p.stderr)

    # After a 7-day mail: the token is deleted (no 1-day mail), bob opts out.
    st.run("token", "delete", "--as", "alice", str(tok_e))
    st.run("user", "set", "bob", "--expiry-emails", "off")
    t.eq(st.sql("SELECT count(*) FROM notification_sent WHERE token_id = %d" % tok_e), ["1"],
         "deleting a token keeps the record of the mail already sent")

    # 7.5 days later: 1-day mails, from four concurrent runs.
    at1 = int(7.5 * DAY)
    want1 = sorted([(tok_a, 1, "alice@example.org"),
                    (tok_f, 1, "frank@example.org"), (tok_f, 1, "alice@example.org"),
                    (tok_g, 1, "gina@example.org")])
    # Two through `keywarden notify run`, two through the program itself: one lock.
    procs = [st.popen(*(("notify", "run") if k % 2 else ("keywarden-notify",)), offset=at1,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for k in range(4)]
    codes = [pr.wait(timeout=120) for pr in procs]
    t.eq(codes, [0, 0, 0, 0], "four concurrent runs succeed")
    t.eq(triples(rec.take()), want1, "1-day mails go out exactly once from concurrent runs, "
         "not to who opted out, not for a deleted token")
    p = st.run("keywarden-notify", offset=at1 + HOUR, check=False)
    t.ok(p.returncode == 0 and triples(rec.take()) == [], "a repeated 1-day run sends nothing")

    # Expired tokens: nothing.
    p = st.run("keywarden-notify", offset=9 * DAY, check=False)
    t.ok(p.returncode == 0 and triples(rec.take()) == [], "expired tokens get no mail")

    # Token c expires 20 days ahead; the first run sees it 0.5 days before: both thresholds
    # are due, only the 1-day mail goes out, and the 7-day mail never follows.
    p = st.run("keywarden-notify", offset=int(19.5 * DAY), check=False)
    t.eq(triples(rec.take()), sorted([(tok_c, 1, "frank@example.org"),
                                      (tok_c, 1, "alice@example.org")]),
         "when both thresholds are due only the 1-day mail is sent")
    st.run("keywarden-notify", offset=int(19.6 * DAY), check=False)
    t.eq(triples(rec.take()), [], "and no 7-day mail follows")
    t.eq(st.sql("SELECT count(*) FROM notification_sent WHERE token_id = %d AND threshold = 7"
                % tok_c), ["0"], "no 7-day record for that token")

    # Never: the deleted, the disabled issuer's, the never-expiring token.
    t.eq(st.sql("SELECT count(*) FROM notification_sent WHERE token_id IN (%d, %d, %d)"
                % (tok_d, tok_h, tok_n)), ["0"],
         "no mail for a deleted token, a disabled issuer's token, a token that never expires")
    t.eq(st.sql("SELECT count(*) FROM notification_sent WHERE recipient IN "
                "('carol@example.org', 'dave@example.org', 'hank@example.org')"), ["0"],
         "no mail to an opted-out or disabled user")
    t.eq(st.sql("SELECT recipient, count(*) FROM notification_sent "
                "GROUP BY token_id, threshold, recipient HAVING count(*) > 1"), [],
         "each (token, threshold, recipient) is recorded once")
    with open(rec.path) as f:
        lines = f.read().splitlines()
    t.eq(len(lines), len(set(lines)), "the server received no mail twice")
    t.eq(len(lines), len(want7) + len(want1) + 2, "the server received every mail")
    p = st.run("audit", "verify", check=False)
    t.eq(p.returncode, 0, "the audit chain is intact after the notify runs")

    # A run killed after the server took a mail but before it was recorded: the next run
    # sends it again (at-least-once), and sends the rest; nothing is lost.
    rec.take()
    rec.mode = "slow"
    pr = st.popen("keywarden-notify", offset=34 * DAY, stdout=subprocess.DEVNULL,
                  stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not rec.mails:
        time.sleep(0.05)
    os.kill(pr.pid, signal.SIGKILL)
    pr.wait()
    rec.mode = "accept"
    t.eq(st.sql("SELECT count(*) FROM notification_sent WHERE token_id = %d" % tok_j), ["0"],
         "a run killed while the server holds a mail has recorded nothing for it")
    first = triples(rec.take())
    p = st.run("keywarden-notify", offset=34 * DAY, check=False)
    again = triples(rec.take())
    want_j = sorted([(tok_j, 7, "alice@example.org"), (tok_j, 7, "frank@example.org")])
    t.ok(p.returncode == 0 and len(first) == 1 and sorted(set(first + again)) == want_j and
         again == want_j, "after the kill the next run delivers every mail, the interrupted "
         "one again (at least once)", "first %r again %r" % (first, again))
    t.eq(st.sql("SELECT count(*) FROM notification_sent WHERE token_id = %d" % tok_j), ["2"],
         "and records each once")

    # ---- A final 250 that comes after [notify] timeout (the server has the mail and is slow
    # to confirm): its own, longer wait; the mail is delivered and recorded once, not resent
    # by every run.
    rec.take()
    s2 = State("[notify]\nsmtp_url = smtp://127.0.0.1:%d\nfrom = keywarden@example.org\n"
               "timeout = 1\n" % port)
    extra_states.append(s2)
    s2.run("account", "add", "acme")
    s2.run("user", "add", "--account", "acme", "kim", "--role", "Administrators",
           "--email", "kim@example.org")
    now2 = int(time.time())
    tok_s = s2.token("kim", "slow-ack", "Users", now2 + 8 * DAY + HOUR)
    rec.mode, rec.delay = "slow", 3
    codes = []
    for off in (at7, at7 + HOUR, at7 + 2 * HOUR):
        codes.append(s2.run("keywarden-notify", offset=off, check=False).returncode)
    rec.mode = "accept"
    t.eq(triples(rec.take()), [(tok_s, 7, "kim@example.org")],
         "a final reply later than [notify] timeout: one copy over three runs")
    t.eq(codes, [0, 0, 0], "and every run succeeds")
    t.eq(s2.sql("SELECT count(*) FROM notification_sent WHERE token_id = %d" % tok_s), ["1"],
         "the slowly confirmed mail is recorded as sent")

    # ---- No final reply at all (the connection breaks after the whole message went out):
    # the mail may have been delivered. Each such attempt is recorded; after 3 the mail is not
    # sent again, with a warning that names its Message-ID.
    tok_u = s2.token("kim", "never-acked", "Users", now2 + 8 * DAY + HOUR)
    rec.mode = "drop"
    runs = [s2.run("keywarden-notify", offset=at7 + k * HOUR, check=False) for k in range(5)]
    rec.mode = "accept"
    got_u = triples(rec.take())
    t.eq(got_u, [(tok_u, 7, "kim@example.org")] * 3,
         "a mail whose final reply never comes is sent 3 times over 5 runs, no more")
    t.eq([r.returncode for r in runs], [1, 1, 1, 0, 0],
         "the 3 unconfirmed runs fail, the later ones succeed")
    t.ok("unconfirmed" in runs[0].stderr and "attempt 1 of 3" in runs[0].stderr,
         "an unconfirmed attempt is logged as such", runs[0].stderr)
    msgid = "<keywarden.%d.7." % tok_u
    t.ok(any(line.startswith("keywarden-notify: warning:") and msgid in line and
             "719aca8c3c744d8f92899a34961b32fd" in line and "not sending it again" in line
             for line in runs[2].stderr.splitlines()),
         "giving up is logged at warning level with the mail's Message-ID", runs[2].stderr)
    t.ok("given up" in runs[4].stderr and "warning" not in runs[4].stderr,
         "later runs skip it quietly, counting it", runs[4].stderr)
    try:
        attempts = s2.sql("SELECT attempts FROM notification_attempt WHERE token_id = %d"
                          % tok_u)
    except RuntimeError as e:  # a database without the table: a failure, not a crash
        attempts = str(e)
    t.eq(attempts, ["3"], "the unconfirmed attempts are recorded")
    t.eq(s2.sql("SELECT count(*) FROM notification_sent WHERE token_id = %d" % tok_u), ["0"],
         "an unconfirmed mail is not recorded as sent")
    t.eq(s2.sql("SELECT count(*) FROM audit WHERE action = 'notify.unconfirmed'"), ["3"],
         "one notify.unconfirmed audit event per unconfirmed attempt")
    p = s2.run("keywarden-notify", "--dry-run", offset=at7 + 6 * HOUR, check=False)
    t.ok(p.returncode == 0 and "would send" not in p.stdout, "--dry-run does not list a "
         "given-up mail", p.stdout + p.stderr)
    t.eq(s2.run("audit", "verify", check=False).returncode, 0,
         "the audit chain is intact after unconfirmed attempts")

    # ---- [notify] timeout still limits everything before the end of the message: a server
    # that never greets ends the run after it, not after the longer final-reply wait.
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)
    s2.write_conf("[notify]\nsmtp_url = smtp://127.0.0.1:%d\nfrom = keywarden@example.org\n"
                  "timeout = 2\n" % mute.getsockname()[1])
    tok_m = s2.token("kim", "mute-server", "Users", now2 + 8 * DAY + HOUR)
    t0 = time.monotonic()
    p = s2.run("keywarden-notify", offset=at7 + 7 * HOUR, check=False)
    took = time.monotonic() - t0
    mute.close()
    t.ok(p.returncode == 1 and "not delivered" in p.stderr and took < 15,
         "a server that never greets: the run fails after [notify] timeout (%.1f s)" % took,
         p.stderr)
    t.eq(s2.sql("SELECT count(*) FROM notification_sent WHERE token_id = %d" % tok_m), ["0"],
         "and records nothing")

    # ---- Revoked SSO users get no mail, as Administrators or as the issuer (the token's
    # other Administrators still do); user-controlled text in the mail is defanged and the
    # logins are shell-quoted.
    s3 = State("[notify]\nsmtp_url = smtp://127.0.0.1:%d\nfrom = keywarden@example.org\n"
               "timeout = 5\n" % port)
    extra_states.append(s3)
    s3.run("account", "add", "acme")
    for login, role, addr in (("sam", "Administrators", "sam@example.org"),
                              ("tina", "Administrators", "tina@example.org"),
                              ("uma", "Engineers", "uma@example.org"),
                              ("vic", "Engineers", "vic@example.org")):
        s3.run("user", "add", "--account", "acme", login, "--role", role, "--email", addr)
    now3 = int(time.time())
    tok_r = s3.token("uma", "revoked-issuer", "Users", now3 + 8 * DAY + HOUR)
    tok_l = s3.token("vic", "Renew now: https://evil.example/kw WWW.evil.example", "Users",
                     now3 + 8 * DAY + HOUR)
    s3.sql("UPDATE \"user\" SET source = 'sso', sso_state = 'active', sso_idp = 'idp', "
           "sso_name_id = login WHERE login IN ('sam', 'uma')")
    for login in ("sam", "uma"):
        s3.run("sso", "revoke", login, "--reason", "left the company")
    # An SSO login is whatever the IdP sent.
    evil_login = "o'brien $(id) http://www.evil.example"
    s3.sql("UPDATE \"user\" SET login = '%s' WHERE login = 'vic'" % evil_login.replace("'", "''"))
    rec.take()
    p = s3.run("keywarden-notify", offset=at7, check=False)
    got3 = rec.take()
    t.eq(p.returncode, 0, "the run with revoked SSO users and hostile names succeeds")
    t.eq(triples(got3), sorted([(tok_r, 7, "tina@example.org"), (tok_l, 7, "tina@example.org"),
                                (tok_l, 7, "vic@example.org")]),
         "no mail to a revoked SSO Administrator or a revoked SSO issuer; the other "
         "Administrators get it")
    ml = [x["msg"] for x in got3 if x["msg"]["X-Keywarden-Token"] == str(tok_l)
          and x["rcpt"] == ["vic@example.org"]][0]
    bl = ml.get_content()
    t.ok("://" not in bl and "www." not in bl.lower(), "no URL from a token name or a login "
         "reaches the mail", bl)
    t.ok("name:       Renew now: https[:]//evil.example/kw WWW[.]evil.example" in bl,
         "URLs in a token name are defanged", bl)
    q_login = "'o'\\''brien $(id) http[:]//www[.]evil.example'"
    t.ok("  keywarden user set %s --expiry-emails off\r\n" % q_login in bl or
         "  keywarden user set %s --expiry-emails off\n" % q_login in bl,
         "the login in the opt-out command is shell-quoted (and defanged)", bl)
    t.ok("--as %s --name 'Renew now: https[:]//evil.example/kw WWW[.]evil.example'" % q_login
         in bl, "the replacement command quotes the defanged issuer and name", bl)

    # ---- [notify] credentials: username needs password_file, and either needs TLS, also in
    # a dry run without smtp_url (which must not crash).
    pw3 = os.path.join(s3.dir, "smtp.pw")
    with open(pw3, "w") as f:
        f.write("secret\n")
    os.chmod(pw3, 0o600)
    s3.write_conf("[notify]\nusername = kw\npassword_file = %s\n" % pw3)
    p = s3.run("keywarden-notify", "--dry-run", check=False)
    t.ok(p.returncode == 8 and "password_file needs TLS" in p.stderr,
         "--dry-run with password_file and no smtp_url: refused (exit 8), no crash",
         "exit %d\n%s" % (p.returncode, p.stderr))
    s3.write_conf("[notify]\nstarttls = yes\nusername = kw\npassword_file = %s\n" % pw3)
    p = s3.run("keywarden-notify", "--dry-run", check=False)
    t.eq(p.returncode, 0, "--dry-run with password_file, starttls and no smtp_url works")
    # A FIFO in place of the password file is refused at once, not waited on.
    fifo = os.path.join(s3.dir, "smtp.fifo")
    os.mkfifo(fifo, 0o600)
    s3.write_conf("[notify]\nsmtp_url = smtp://127.0.0.1:%d\nfrom = k@example.org\n"
                  "starttls = yes\nusername = kw\npassword_file = %s\n" % (port, fifo))
    try:
        p = s3.run("keywarden-notify", check=False, timeout=30)
        t.ok(p.returncode == 8 and "is not a regular file" in p.stderr,
             "a FIFO as password_file is refused (exit 8) without hanging",
             "exit %d\n%s" % (p.returncode, p.stderr))
    except subprocess.TimeoutExpired:
        t.ok(False, "a FIFO as password_file is refused (exit 8) without hanging", "hung")
    s3.write_conf("[notify]\nsmtp_url = smtp://127.0.0.1:%d\nfrom = k@example.org\n"
                  "starttls = yes\nusername = kw\n" % port)
    p = s3.run("keywarden-notify", check=False)
    t.ok(p.returncode == 8 and "username needs [notify] password_file" in p.stderr,
         "username without password_file is refused", "exit %d\n%s" % (p.returncode, p.stderr))
    s3.write_conf("[notify]\nsmtp_url = smtp://127.0.0.1:%d\nfrom = k@example.org\n"
                  "username = kw\n" % port)
    for extra in ([], ["--dry-run"]):
        p = s3.run("keywarden-notify", *extra, check=False)
        t.ok(p.returncode == 8 and "username needs TLS" in p.stderr,
             "username without smtps:// or starttls is refused %s" % " ".join(extra),
             "exit %d\n%s" % (p.returncode, p.stderr))
    t.eq(triples(rec.take()), [], "refused configurations send nothing")

    # Configuration errors are refused before anything is sent.
    st.write_conf("[notify]\nsmtp_url = http://127.0.0.1:%d\nfrom = k@example.org\n" % port)
    p = st.run("notify", "run", check=False)
    t.eq(p.returncode, 8, "an smtp_url that is not smtp:// or smtps:// is refused")
    pw = os.path.join(st.dir, "smtp.pw")
    with open(pw, "w") as f:
        f.write("secret\n")
    os.chmod(pw, 0o644)
    st.write_conf("[notify]\nsmtp_url = smtp://127.0.0.1:%d\nfrom = k@example.org\n"
                  "starttls = yes\nusername = kw\npassword_file = %s\n" % (port, pw))
    p = st.run("notify", "run", check=False)
    t.ok(p.returncode == 8 and "chmod 600" in p.stderr,
         "a password file that others can read is refused", p.stderr)
    os.chmod(pw, 0o600)
    st.write_conf("[notify]\nsmtp_url = smtp://127.0.0.1:%d\nfrom = k@example.org\n"
                  "username = kw\npassword_file = %s\n" % (port, pw))
    p = st.run("keywarden-notify", check=False)
    t.ok(p.returncode == 8 and "password_file needs TLS" in p.stderr,
         "a password without smtps:// or starttls is refused (never sent in clear)", p.stderr)

    # ---- A token whose issuer is disabled while a run is under way: the mails not yet sent
    # are not sent (the ledger re-reads the token with the condition that made it due).
    s4 = State("[notify]\nsmtp_url = smtp://127.0.0.1:%d\nfrom = keywarden@example.org\n"
               "timeout = 5\n" % port)
    extra_states.append(s4)
    s4.run("account", "add", "acme")
    s4.run("user", "add", "--account", "acme", "ian", "--role", "Engineers",
           "--email", "ian@example.org")
    s4.run("user", "add", "--account", "acme", "amy", "--role", "Administrators",
           "--email", "amy@example.org")
    tok_i = s4.token("ian", "racing", "Users", int(time.time()) + 8 * DAY + HOUR)
    rec.take()
    rec.mode, rec.delay = "slow", 5
    pr = s4.popen("keywarden-notify", offset=at7, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not rec.mails:
        time.sleep(0.05)
    s4.run("user", "set", "ian", "--disable")  # while the server holds the issuer's mail
    out, err = pr.communicate(timeout=120)
    rec.mode = "accept"
    t.eq(triples(rec.take()), [(tok_i, 7, "ian@example.org")],
         "a token whose issuer is disabled during the run gets no further mail")
    t.ok(pr.returncode == 0 and "1 already sent" in err,
         "the run succeeds and counts the mail as no longer due", err)

    # ---- `keywarden notify run` runs keywarden-notify: the same mails, exit codes and
    # options; -c is passed on; only keywarden-notify links libcurl.
    s4.run("user", "set", "ian", "--enable")
    p_front = s4.run("notify", "run", "--dry-run", offset=at7, check=False)
    p_prog = s4.run("keywarden-notify", "--dry-run", offset=at7, check=False)
    t.ok(p_front.returncode == 0 and p_front.stdout == p_prog.stdout and
         "would send: token %d 7-day notice to amy@example.org (administrator)" % tok_i
         in p_front.stdout, "`notify run --dry-run` prints what keywarden-notify prints",
         p_front.stdout + p_front.stderr + p_prog.stdout)
    other = os.path.join(s4.dir, "other.conf")
    with open(other, "w") as f:
        f.write("[store]\nstate_dir = %s\n[notify]\nsmtp_url = smtp://127.0.0.1:%d\n"
                "from = keywarden@example.org\n" % (s4.dir, port))
    from kwtest import KEYWARDEN, KEYWARDEN_NOTIFY  # noqa: E402
    p = subprocess.run([KEYWARDEN, "-c", other, "notify", "run", "--dry-run"],
                       env=s4.env(at7), capture_output=True, text=True, timeout=60)
    t.ok(p.returncode == 0 and p.stdout == p_prog.stdout, "`keywarden -c FILE notify run` "
         "passes the config file on", p.stdout + p.stderr)
    for bad in (["--bogus"], ["extra"], ["--account"]):
        p = s4.run("notify", "run", *bad, check=False)
        t.eq(p.returncode, 2, "`notify run %s` is a usage error (exit 2)" % " ".join(bad))
    env = s4.env(None)
    env["KEYWARDEN_NOTIFY_PROGRAM"] = os.path.join(s4.dir, "no-such-program")
    p = subprocess.run([KEYWARDEN, "--state-dir", s4.dir, "notify", "run"], env=env,
                       capture_output=True, text=True, timeout=60)
    t.ok(p.returncode == 1 and "cannot run" in p.stderr,
         "a missing keywarden-notify is reported (exit 1)", p.stderr)

    def needed(path):
        out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True,
                             timeout=60).stdout
        return [line.split("[")[-1].rstrip("]") for line in out.splitlines()
                if "(NEEDED)" in line]
    t.ok(not any("curl" in lib for lib in needed(KEYWARDEN)) and
         any("curl" in lib for lib in needed(KEYWARDEN_NOTIFY)),
         "keywarden-notify links libcurl, keywarden does not",
         "keywarden: %r\nkeywarden-notify: %r" % (needed(KEYWARDEN), needed(KEYWARDEN_NOTIFY)))
finally:
    if server is not None:
        stop_server()
    st.cleanup()
    for s_ in extra_states:
        s_.cleanup()
t.done()
