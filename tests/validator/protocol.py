#!/usr/bin/python3
# protocol.py: conformance of keywarden-validator to doc/protocol.md over raw lines: the
# handshake, every verb and FAIL code, malformed, partial, overlong and pipelined lines,
# disconnects mid-request, ERROR reasons (version, protocol, line_too_long, idle, busy,
# not_allowed), forward-compatible fields.
import os
import socket
import sys
import traceback
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vtest import Conn, Env, Tap, fields, kwpg, wait_for  # noqa: E402

t = Tap()
env = Env("[validator]\nidle_timeout = 2\nmax_connections = 40\nmax_connections_per_uid = 40\nrate_limit_failures = 0\n")
try:
    env.setup_users()
    good = env.token("alice", "good")
    good_id = good.split("$")[0]
    env.start()

    # --- handshake ---
    c = Conn(env.sock, handshake=False)
    t.eq(c.line(), "VERSION\t1\t0", "the server sends VERSION 1 0 on accept")
    c.send("VERSION\t1\t0\n")
    a = c.check(1, good)
    f = fields(a)
    t.ok(f["verb"] == "OK" and f["id"] == "1", "CHECK of a valid token: OK with the id", a)
    t.eq([k for k in f if k not in ("verb", "id")],
         ["token_id", "account", "user", "role", "expires"], "OK carries the documented fields in order")
    t.ok(f.get("token_id") == good_id and f.get("account") == "acme" and f.get("user") == "alice"
         and f.get("role") == "Engineers" and f.get("expires") == "never",
         "OK fields: token_id, account, user, role, expires=never", a)
    t.eq(c.check(2, "APIKey " + good)[:5], "OK\t2\t", "header form 'APIKey <token>'")
    t.eq(c.check(3, "apikey   " + good)[:5], "OK\t3\t", "scheme case-insensitive, blanks allowed")
    t.eq(c.check(4, good.replace("$", "_", 1))[:5], "OK\t4\t", "'_' separator accepted")
    t.eq(c.check(5, good, service="api", remote_ip="203.0.113.7", future_key="x y")[:5], "OK\t5\t",
         "service=, remote_ip= and unknown keys accepted")
    t.eq(c.check(4294967295, good)[:13], "OK\t4294967295", "largest id 4294967295 echoed")

    # --- FAIL invalid, not told apart ---
    wrong = good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB")
    t.eq(c.check(10, wrong), "FAIL\t10\tcode=invalid", "wrong secret (bad checksum): invalid")
    t.eq(c.check(11, "999999$" + good.split("$")[1]), "FAIL\t11\tcode=invalid", "unknown id: invalid")
    t.eq(c.check(12, "garbage"), "FAIL\t12\tcode=invalid", "malformed token: invalid")
    t.eq(c.check(13, ""), "FAIL\t13\tcode=invalid", "empty token: invalid")
    t.eq(c.check(14, "Bearer " + good), "FAIL\t14\tcode=invalid", "other scheme: invalid")
    t.eq(c.check(15, good + "\tx=y"), "FAIL\t15\tcode=invalid",
         "token= is the rest of the line (a TAB inside makes it invalid)")
    # A token with a good checksum for another id (made from a real one) is refused by digest.
    other = env.token("alice", "other")
    swapped = other.split("$")[0] + "$" + good.split("$")[1]
    t.eq(c.check(16, swapped), "FAIL\t16\tcode=invalid", "secret of another token: invalid")

    # --- expired, deleted, disabled ---
    exp = env.token("alice", "exp", expires=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                          time.gmtime(time.time() + 2)))
    t.eq(c.check(20, exp)[:6], "OK\t20\t", "token with a future expiry: OK")
    t.ok("expires=20" in c.check(21, exp), "expires is RFC 3339")
    wait_for(lambda: c.check(22, exp) == "FAIL\t22\tcode=expired", timeout=5)
    t.eq(c.check(23, exp), "FAIL\t23\tcode=expired", "after its expiry instant: expired")
    dele = env.token("alice", "del")
    env.kw("token", "delete", "--as", "alice", dele.split("$")[0])
    t.eq(c.check(24, dele), "FAIL\t24\tcode=deleted", "deleted token: deleted")
    bobtok = env.token("bob", "bobs", role="Users")
    env.kw("user", "set", "bob", "--disable")
    t.eq(c.check(25, bobtok), "FAIL\t25\tcode=disabled", "token of a disabled issuer: disabled")
    c.close()

    # --- pipelining: answers in order ---
    c = Conn(env.sock)
    toks = [good, wrong, dele, good, exp, bobtok] * 50
    want_codes = ["OK", "invalid", "deleted", "OK", "expired", "disabled"] * 50
    c.send("".join("CHECK\t%d\ttoken=%s\n" % (i + 100, tk) for i, tk in enumerate(toks)))
    got = [c.line() for _ in toks]
    ids_ok = [fields(a)["id"] for a in got] == [str(i + 100) for i in range(len(toks))]
    codes = [("OK" if a.startswith("OK") else fields(a).get("code")) for a in got]
    t.ok(ids_ok and codes == want_codes, "300 pipelined requests in one write: answered in order",
         got[:8])
    c.close()

    # --- partial lines: one byte at a time ---
    c = Conn(env.sock)
    for b in ("CHECK\t7\ttoken=" + good + "\n").encode():
        c.send(bytes([b]))
    t.eq(c.line()[:5], "OK\t7\t", "a request sent one byte at a time")
    c.close()

    # --- disconnect mid-request, then the daemon still serves ---
    c = Conn(env.sock)
    c.send("CHECK\t8\ttoken=" + good[:10])
    c.close()
    c = Conn(env.sock)
    c.send("CHECK\t9\ttoken=" + good + "\n")
    c.s.shutdown(socket.SHUT_WR)
    t.eq(c.line()[:5], "OK\t9\t", "answers a request whose client half-closed after it")
    c.close()
    c = Conn(env.sock, handshake=False)
    c.close()
    t.ok(env.alive() and Conn(env.sock).check(1, good).startswith("OK"),
         "after clients vanished mid-request the daemon still answers")

    # --- ERROR reasons ---
    def error_after(send, handshake=True):
        cc = Conn(env.sock, handshake=handshake)
        if not handshake:
            cc.line()  # server VERSION
        cc.send(send)
        out = cc.lines()  # until the server closes
        cc.close()
        return out

    t.eq(error_after("CHECK\t1\ttoken=" + good + "\n", handshake=False), ["ERROR\treason=version"],
         "CHECK before VERSION: ERROR version, closed")
    t.eq(error_after("VERSION\t2\t0\n", handshake=False), ["ERROR\treason=version"],
         "VERSION 2: ERROR version")
    t.eq(error_after("hello\n", handshake=False), ["ERROR\treason=version"],
         "garbage before VERSION: ERROR version")
    cc = Conn(env.sock, handshake=False)
    cc.line()
    cc.send("VERSION\t1\t7\tfuture=1\n")
    t.eq(cc.check(1, good)[:5], "OK\t1\t", "a higher minor version (and extra fields) accepted")
    cc.close()
    for desc, line in [
        ("unknown verb", "AUTH\t1\ttoken=x\n"),
        ("lower-case verb", "check\t1\ttoken=x\n"),
        ("id 0", "CHECK\t0\ttoken=x\n"),
        ("id too large", "CHECK\t4294967296\ttoken=x\n"),
        ("id with leading zero", "CHECK\t01\ttoken=x\n"),
        ("id not a number", "CHECK\tabc\ttoken=x\n"),
        ("missing id", "CHECK\n"),
        ("missing token=", "CHECK\t1\tservice=x\n"),
        ("field without '='", "CHECK\t1\tservice\ttoken=x\n"),
        ("key with capitals", "CHECK\t1\tService=x\ttoken=x\n"),
        ("empty field", "CHECK\t1\t\ttoken=x\n"),
        ("CR before LF", "CHECK\t1\ttoken=" + good + "\r\n"),
        ("NUL in line", "CHECK\t1\ttoken=a\0b\n"),
        ("empty line", "\n"),
        ("VERSION repeated", "VERSION\t1\t0\n"),
    ]:
        t.eq(error_after(line), ["ERROR\treason=protocol"], "%s: ERROR protocol" % desc)
    out = error_after("CHECK\t1\ttoken=" + good + "\nBOGUS\nCHECK\t2\ttoken=" + good + "\n")
    t.ok(len(out) == 2 and out[0].startswith("OK\t1\t") and out[1] == "ERROR\treason=protocol",
         "answers before a bad line are sent, nothing after it", out)

    long_line = "CHECK\t1\tpad=" + "x" * 9000 + "\ttoken=" + good + "\n"
    t.eq(error_after(long_line), ["ERROR\treason=line_too_long"], "9 KB line: ERROR line_too_long")
    max_ok = "CHECK\t1\tpad="
    max_ok += "x" * (8192 - len(max_ok) - len("\ttoken=" + good + "\n")) + "\ttoken=" + good + "\n"
    cc = Conn(env.sock)
    cc.send(max_ok)
    t.ok(len(max_ok) == 8192 and cc.line().startswith("OK\t1\t"), "a line of exactly 8192 bytes is accepted")
    cc.close()

    cc = Conn(env.sock)
    t0 = time.time()
    out = cc.lines()
    el = time.time() - t0
    t.ok(out == ["ERROR\treason=idle"] and 1.5 <= el <= 5, "idle connection: ERROR idle after "
         "idle_timeout (2 s)", out, "after %.1f s" % el)

    # busy: fill up to max_connections (40).
    conns = [Conn(env.sock) for _ in range(40)]
    cc = Conn(env.sock, handshake=False)
    out = cc.lines()
    t.eq(out, ["VERSION\t1\t0", "ERROR\treason=busy"], "connection over max_connections: ERROR busy")
    cc.close()
    for x in conns:
        x.close()
    t.ok(wait_for(lambda: Conn(env.sock).check(1, good).startswith("OK"), timeout=3),
         "connections are accepted again once others left")

    # temp_fail: the database cannot answer (the token table is gone).
    db = kwpg.connect(env.state)
    db.execute("ALTER TABLE token RENAME TO token_away")
    db.commit()
    cc = Conn(env.sock)
    t.eq(cc.check(1, good), "FAIL\t1\tcode=temp_fail", "database error: temp_fail")
    db.execute("ALTER TABLE token_away RENAME TO token")
    db.commit()
    db.close()
    t.eq(cc.check(2, good)[:5], "OK\t2\t", "and OK again once the database is back")
    cc.close()

    # not_allowed: reload with an allow-list without us (SIGHUP).
    env.write_conf("[validator]\nidle_timeout = 2\nallow_uids = 54321\nrate_limit_failures = 0\n")
    env.daemon.send_signal(1)
    time.sleep(0.5)
    cc = Conn(env.sock, handshake=False)
    t.eq(cc.lines(), ["VERSION\t1\t0", "ERROR\treason=not_allowed"],
         "SIGHUP applies allow_uids: a peer not on it gets ERROR not_allowed")
    cc.close()
    env.write_conf("[validator]\nidle_timeout = 2\nallow_uids = 54321, %d\n" % os.getuid())
    env.daemon.send_signal(1)
    time.sleep(0.5)
    t.ok(Conn(env.sock).check(1, good).startswith("OK"), "a peer on allow_uids is served")
    env.write_conf("[validator]\nallow_gids = %d\n" % os.getgid())
    env.daemon.send_signal(1)
    time.sleep(0.5)
    t.ok(Conn(env.sock).check(1, good).startswith("OK"), "a peer on allow_gids is served")
    env.write_conf("[validator]\nidle_timeout = banana\n")
    env.daemon.send_signal(1)
    time.sleep(0.5)
    t.ok(env.alive() and "configuration not reloaded" in env.log()
         and Conn(env.sock).check(1, good).startswith("OK"),
         "a bad configuration on SIGHUP is refused, the old one kept")

    t.ok("request 1: OK token_id=%s" % good_id in env.log() and "uid=%d" % os.getuid() in env.log(),
         "decisions are logged at debug level with the peer's uid")
    t.ok(good.split("$")[1] not in env.log(), "the secret never reaches the log")
    t.eq(env.stop(), 0, "SIGTERM: exit status 0")
    t.ok(not os.path.exists(env.sock), "the socket is removed on exit")
except Exception:  # noqa: BLE001
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    env.close()
sys.exit(t.done())
