#!/usr/bin/python3
# spec.py: doc/protocol.md and the code agree: the version, the line limit, the verbs, the field
# names, every FAIL code and ERROR reason. The code's words are read from the one header that
# the daemon and libkeywarden share (libkeywarden/keywarden_protocol.h), and from the running
# daemon (its VERSION line and --version); the parsers and the daemon must spell the protocol
# through that header, not with words of their own.
import os
import re
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vtest import TOP_SRCDIR, VALIDATOR, Conn, Env, Tap  # noqa: E402


def src(*path):
    with open(os.path.join(TOP_SRCDIR, *path)) as f:
        return f.read()


def macros(text):
    """#define NAME BODY of a header, continuation lines joined, comments dropped."""
    text = re.sub(r"/\*.*?\*/", " ", text.replace("\\\n", " "), flags=re.S)
    return dict(re.findall(r"^#define ([A-Z0-9_]+)(?:[ \t]+(.*?))?[ \t]*$", text, re.M))


def expand(defs, name):
    """The value of a macro made of string literals, number macros, other such macros and
    KW_PROTO_STR(NUMBER_MACRO), as Python text (int for a number)."""
    body = defs[name].strip()
    if re.fullmatch(r"\d+", body):
        return int(body)
    out = ""
    for lit, strarg, ident in re.findall(
            r'("(?:\\.|[^"\\])*")|KW_PROTO_STR\(([A-Z0-9_]+)\)|([A-Z][A-Z0-9_]*)', body):
        if lit:
            out += lit[1:-1].encode().decode("unicode_escape")
        elif strarg:
            out += str(expand(defs, strarg))
        else:
            out += str(expand(defs, ident))
    return out


t = Tap()
doc = src("doc", "protocol.md")
shared_h = src("libkeywarden", "keywarden_protocol.h")
proto_h = src("validator", "proto.h")
proto_c = src("validator", "proto.c")
defs = macros(shared_h)
P = {n: expand(defs, n) for n in defs if n.startswith("KW_") and n != "KW_PROTO_STR"}

# The header is the only place that defines the words: the others include it.
for f in (("validator", "proto.h"), ("libkeywarden", "keywarden.h"), ("lib", "conf.h")):
    again = sorted(set(macros(src(*f))) & set(P))
    t.ok(not again, "%s defines none of keywarden_protocol.h's names again" % "/".join(f), again)
    t.ok('#include "keywarden_protocol.h"' in src(*f), "%s includes keywarden_protocol.h" % "/".join(f))
t.ok(re.search(r"^\s*#\s*include", shared_h, re.M) is None,
     "keywarden_protocol.h includes nothing (libc-only clients pay nothing for it)")

major, minor, line_max = P["KW_PROTO_MAJOR"], P["KW_PROTO_MINOR"], P["KW_PROTO_LINE_MAX"]
m = re.search(r"^# .*protocol, version (\d+)\.(\d+)", doc, re.M)
t.ok(m is not None and (int(m.group(1)), int(m.group(2))) == (major, minor),
     "doc title version %s equals KW_PROTO_MAJOR.MINOR %d.%d" % (m and m.group(0), major, minor))
t.ok("VERSION<TAB>%d<TAB>%d" % (major, minor) in doc, "doc handshake line matches the code's version")
t.eq(P["KW_PROTO_HELLO"], "%s\t%d\t%d\n" % (P["KW_PROTO_CMD_VERSION"], major, minor),
     "KW_PROTO_HELLO is the VERSION line of the header's version")
m = re.search(r"at most \*\*(\d+) bytes\*\*", doc)
t.ok(m is not None and int(m.group(1)) == line_max,
     "doc line limit equals KW_PROTO_LINE_MAX (%d)" % line_max)
m = re.search(r"socket \(`([^`]+)`", doc)
t.ok(m is not None and m.group(1) == P["KW_DEFAULT_SOCKET_PATH"],
     "doc socket path equals KW_DEFAULT_SOCKET_PATH (%s)" % P["KW_DEFAULT_SOCKET_PATH"])


def words(prefix):
    return {n[len(prefix):]: v for n, v in P.items() if n.startswith(prefix)}


# FAIL codes: the doc's table rows `| `code` | ... |`; ERROR reasons: the Reasons sentence.
codes = words("KW_PROTO_FAIL_CODE_")
reasons = words("KW_PROTO_ERROR_REASON_")
doc_codes = re.findall(r"^\| `([a-z_]+)` \|", doc, re.M)
t.ok(len(doc_codes) >= 6, "doc lists the FAIL codes (%s)" % ", ".join(doc_codes))
t.eq(sorted(doc_codes), sorted(codes.values()), "every FAIL code in the doc is one in the header, and back")
reasons_txt = re.search(r"Reasons: (.*?)\.\s*A request id", doc, re.S)
doc_reasons = re.findall(r"`([a-z_]+)`", reasons_txt.group(1)) if reasons_txt else []
t.ok(len(doc_reasons) >= 6, "doc lists the ERROR reasons (%s)" % ", ".join(doc_reasons))
t.eq(sorted(doc_reasons), sorted(reasons.values()),
     "every ERROR reason in the doc is one in the header, and back")

# The daemon's enums name the header's words: KW_PROTO_CODE_X is KW_PROTO_FAIL_CODE_X.
for table, enum, prefix, want in (("code_names", "CODE", "FAIL_CODE", codes),
                                  ("reason_names", "REASON", "ERROR_REASON", reasons)):
    arr = re.search(r"%s\[KW_PROTO_%s_COUNT\] = \{(.*?)\};" % (table, enum), proto_c, re.S).group(1)
    pairs = re.findall(r"\[KW_PROTO_%s_([A-Z_]+)\] = KW_PROTO_%s_([A-Z_]+)," % (enum, prefix), arr)
    t.ok(pairs and all(a == b for a, b in pairs) and sorted(a for a, _ in pairs) == sorted(want),
         "proto.c's %s maps each enum to the header's word of the same name, all of them" % table,
         pairs)
# Each name is used through its enum in the daemon (no dead entries).
srcs = src("validator", "daemon_server.c") + src("validator", "daemon_check.c")
enum_names = re.findall(r"(KW_PROTO_(?:CODE|REASON)_[A-Z_]+),", proto_h)
unused = [e for e in enum_names if e not in srcs]
t.ok(not unused, "every code and reason is emitted somewhere in the daemon", unused)

# Answer and request forms: the doc's lines spelled with the header's words.
F = words("KW_PROTO_FIELD_")
ok_line = "<TAB>".join([P["KW_PROTO_REPLY_OK"], "ID"] + [
    "%s=%s" % (F[k], v) for k, v in (("TOKEN_ID", "N"), ("ACCOUNT", "NAME"), ("USER", "LOGIN"),
                                     ("ROLE", "ROLE"), ("EXPIRES", "TIME"))])
t.ok(ok_line in doc, "the doc's OK answer uses the header's verb and field names", ok_line)
ok_fmt = expand(dict(defs, **macros(proto_h)), "KW_PROTO_OK_FIELDS_FMT")
t.eq(ok_fmt, "\t".join(f + "=" + s for f, s in (
    (F["TOKEN_ID"], "%llu"), (F["ACCOUNT"], "%s"), (F["USER"], "%s"), (F["ROLE"], "%s"),
    (F["EXPIRES"], "%s"))), "the daemon's OK fields (KW_PROTO_OK_FIELDS_FMT) are the doc's, in order")
t.ok("KW_PROTO_OK_FIELDS_FMT" in src("validator", "daemon_check.c"), "the daemon answers OK with them")
fail_line = "%s<TAB>ID<TAB>%s=CODE" % (P["KW_PROTO_REPLY_FAIL"], F["CODE"])
error_line = "%s<TAB>%s=REASON" % (P["KW_PROTO_REPLY_ERROR"], F["REASON"])
t.ok(fail_line in doc and error_line in doc, "the doc's FAIL and ERROR lines use the header's words",
     fail_line, error_line)
check_line = "%s<TAB>ID<TAB>[%s=NAME<TAB>][%s=ADDR<TAB>]...%s=TOKEN" % (
    P["KW_PROTO_CMD_CHECK"], F["SERVICE"], F["REMOTE_IP"], F["TOKEN"])
t.ok(check_line in doc, "the doc's CHECK request uses the header's verb and field names", check_line)
t.ok("or `%s`" % P["KW_PROTO_EXPIRES_NEVER"] in doc, "the doc's expires value for no expiry is the header's")

# Written once: the two parsers and the daemon's answers spell no protocol word themselves
# (a word as a whole string literal, or starting or ending one next to a TAB, LF or '=').
# Comments and log calls are left out: a log line may name a verb or a field for humans.
vocab = sorted(set(v for n, v in P.items() if isinstance(v, str) and re.fullmatch(r"[A-Za-z_]+", v)))
for path in (("libkeywarden", "client.c"), ("validator", "proto.c"),
             ("validator", "daemon_server.c"), ("validator", "daemon_check.c")):
    text = re.sub(r"/\*.*?\*/", " ", src(*path), flags=re.S)
    text = re.sub(r"\b(?:kw_(?:debug|info|notice|warning|error)|log_check)\(.*?\);", " ", text,
                  flags=re.S)
    found = []
    for w in vocab:
        found += re.findall(r'(?:"|\\t)%s(?:=|\\t|\\n|")' % w, text)
    t.ok(not found, "%s spells no protocol word of its own" % "/".join(path), found)

# Distinct names for distinct types: no struct or enum of the public header is also one of
# the daemon's.
decl = r"^(?:struct|enum) (kw_\w+) \{"
public = set(re.findall(decl, src("libkeywarden", "keywarden.h"), re.M))
daemon = set()
for f in sorted(os.listdir(os.path.join(TOP_SRCDIR, "validator"))):
    if f.endswith((".h", ".c")):
        daemon |= set(re.findall(decl, src("validator", f), re.M))
t.ok(public and daemon and not public & daemon,
     "keywarden.h and validator/ name no struct or enum alike", sorted(public & daemon))

# The running daemon.
out = subprocess.run([VALIDATOR, "--version"], stdout=subprocess.PIPE, text=True).stdout
t.ok("(protocol %d.%d)" % (major, minor) in out, "--version names protocol %d.%d" % (major, minor), out)
env = Env()
try:
    env.start()
    c = Conn(env.sock, handshake=False)
    t.eq(c.line() + "\n", P["KW_PROTO_HELLO"], "the daemon's VERSION line is KW_PROTO_HELLO")
    c.close()
except Exception:  # noqa: BLE001
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    env.close()
sys.exit(t.done())
