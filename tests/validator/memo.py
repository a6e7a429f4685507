#!/usr/bin/python3
# memo.py: the validator's memo of verified token texts (validator/daemon_check.c) never lets
# a text through that the digest would refuse. After a token's text matched its digest, the
# row remembers a keyed SipHash of that exact text and later checks of the same text skip the
# parse, the checksum and the HMAC; everything else must still get the answer the full check
# gives: a well-formed token with the right id and checksum but another secret, a changed
# checksum, the other separator, the scheme prefix, a deleted token, a disabled user, a token
# created again after the cache was dropped.
import base64
import hashlib
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vtest import Conn, Env, Tap, fields  # noqa: E402


def forged(token_id, random32):
    """A well-formed token for token_id with another secret: right length, right checksum."""
    check = hashlib.sha256(b"keywarden-v1" + token_id.to_bytes(8, "big") + random32).digest()[:4]
    return "%d$%s" % (token_id, base64.urlsafe_b64encode(random32 + check).decode())


def changed(tok, pos):
    c = tok[pos]
    return tok[:pos] + ("A" if c != "A" else "B") + tok[pos + 1:]


t = Tap()
env = Env()
try:
    env.setup_users()
    good = env.token("alice", "good")
    tid = int(good.split("$")[0])
    other = env.token("bob", "other", role="Users")
    env.start()
    c = Conn(env.sock)

    def code(tok, rid=1):
        a = fields(c.check(rid, tok))
        return "ok" if a["verb"] == "OK" else a.get("code", a["verb"])

    t.ok(code(good) == "ok", "the token is OK the first time (full check: the memo is set)")
    t.ok(code(good) == "ok" and code(good) == "ok", "and again (from the memo)")
    t.ok(forged(tid, b"\x00" * 32) != good and code(forged(tid, b"\x00" * 32)) == "invalid",
         "a well-formed text for the same id with another secret (checksum right): invalid")
    bad = [forged(tid, os.urandom(32)) for _ in range(20)]
    t.ok(all(code(b) == "invalid" for b in bad),
         "20 random secrets with the right id and checksum, after the memo was set: all invalid")
    t.ok(code(good) == "ok", "the token itself is still OK after them")
    t.ok(code(changed(good, len(good) - 1)) == "invalid",
         "its text with the last (checksum) character changed: invalid")
    t.ok(code(changed(good, len(str(tid)) + 5)) == "invalid",
         "its text with a character of the secret changed: invalid")
    t.ok(code(good[:-1]) == "invalid" and code(good + "A") == "invalid",
         "one character short or long: invalid")
    under = good.replace("$", "_", 1)
    t.ok(code(under) == "ok" and code(good) == "ok" and code(under) == "ok",
         "the '_' form and the '$' form alternately: OK each time")
    t.ok(code("APIKey " + good) == "ok" and code("  apikey\t" + good + " ") == "ok",
         "with the scheme and blanks around it: OK")
    bob_secret = other.split("$", 1)[1]
    t.ok(code("%d$%s" % (tid, bob_secret)) == "invalid",
         "another token's secret under this id: invalid")
    a = fields(c.check(2, good))
    t.ok(a["verb"] == "OK" and a.get("token_id") == str(tid) and a.get("user") == "alice",
         "an answer from the memo carries the token's fields", a)

    env.kw("user", "set", "alice", "--disable")
    t.ok(code(good) == "disabled", "after the user is disabled: disabled, not OK")
    env.kw("user", "set", "alice", "--enable")
    t.ok(code(good) == "ok", "enabled again: OK")
    env.kw("token", "delete", "--as", "alice", str(tid))
    t.ok(code(good) == "deleted", "after the token is deleted: deleted, not OK")
    t.ok(code(good) == "deleted", "and again")
    t.ok(code(other) == "ok" and code(other) == "ok",
         "another token is unaffected (OK twice)")
    t.ok(env.alive(), "the daemon is still running")
except Exception:  # noqa: BLE001
    t.ok(False, "no exception", traceback.format_exc())
finally:
    env.close()
t.done()
