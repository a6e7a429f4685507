#!/usr/bin/python3
# spec.py: doc/protocol.md and the code agree: the version, the line limit, every FAIL code and
# ERROR reason. Read from the normative text, from validator/proto.[ch] and from the running
# daemon (its VERSION line and --version).
import os
import re
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vtest import TOP_SRCDIR, VALIDATOR, Conn, Env, Tap  # noqa: E402

t = Tap()
doc = open(os.path.join(TOP_SRCDIR, "doc", "protocol.md")).read()
proto_h = open(os.path.join(TOP_SRCDIR, "validator", "proto.h")).read()
proto_c = open(os.path.join(TOP_SRCDIR, "validator", "proto.c")).read()

major = int(re.search(r"#define KW_PROTO_MAJOR (\d+)", proto_h).group(1))
minor = int(re.search(r"#define KW_PROTO_MINOR (\d+)", proto_h).group(1))
line_max = int(re.search(r"#define KW_PROTO_LINE_MAX (\d+)", proto_h).group(1))

m = re.search(r"^# .*protocol, version (\d+)\.(\d+)", doc, re.M)
t.ok(m is not None and (int(m.group(1)), int(m.group(2))) == (major, minor),
     "doc title version %s equals KW_PROTO_MAJOR.MINOR %d.%d" % (m and m.group(0), major, minor))
t.ok("VERSION<TAB>%d<TAB>%d" % (major, minor) in doc, "doc handshake line matches the code's version")
m = re.search(r"at most \*\*(\d+) bytes\*\*", doc)
t.ok(m is not None and int(m.group(1)) == line_max,
     "doc line limit equals KW_PROTO_LINE_MAX (%d)" % line_max)

# FAIL codes: the doc's table rows `| `code` | ... |`; ERROR reasons: the Reasons sentence.
doc_codes = re.findall(r"^\| `([a-z_]+)` \|", doc, re.M)
code_arr = re.search(r"code_names\[KW_PROTO_CODE_COUNT\] = \{(.*?)\};", proto_c, re.S).group(1)
code_codes = re.findall(r'= "([a-z_]+)"', code_arr)
t.ok(len(doc_codes) >= 6, "doc lists the FAIL codes (%s)" % ", ".join(doc_codes))
t.eq(sorted(doc_codes), sorted(code_codes), "every FAIL code in the doc is one the code emits, and back")
reasons_txt = re.search(r"Reasons: (.*?)\.\s*A request id", doc, re.S)
doc_reasons = re.findall(r"`([a-z_]+)`", reasons_txt.group(1)) if reasons_txt else []
reason_arr = re.search(r"reason_names\[KW_PROTO_REASON_COUNT\] = \{(.*?)\};", proto_c, re.S).group(1)
code_reasons = re.findall(r'= "([a-z_]+)"', reason_arr)
t.ok(len(doc_reasons) >= 6, "doc lists the ERROR reasons (%s)" % ", ".join(doc_reasons))
t.eq(sorted(doc_reasons), sorted(code_reasons), "every ERROR reason in the doc is one the code emits, and back")
# Each name is used through its enum in the daemon (no dead entries).
srcs = ""
for f in ("daemon_server.c", "daemon_check.c"):
    srcs += open(os.path.join(TOP_SRCDIR, "validator", f)).read()
enum_names = re.findall(r"(KW_PROTO_(?:CODE|REASON)_[A-Z_]+),", proto_h)
unused = [e for e in enum_names if e not in srcs]
t.ok(not unused, "every code and reason is emitted somewhere in the daemon", unused)
# Doc answer forms use the same field names as the daemon.
t.ok("OK<TAB>ID<TAB>token_id=N<TAB>account=NAME<TAB>user=LOGIN<TAB>role=ROLE<TAB>expires=TIME" in doc
     and '"token_id=%llu\\taccount=%s\\tuser=%s\\trole=%s\\texpires=%s"' in srcs,
     "the OK answer's fields are the same in the doc and in the code")

# The running daemon.
out = subprocess.run([VALIDATOR, "--version"], stdout=subprocess.PIPE, text=True).stdout
t.ok("(protocol %d.%d)" % (major, minor) in out, "--version names protocol %d.%d" % (major, minor), out)
env = Env()
try:
    env.start()
    c = Conn(env.sock, handshake=False)
    t.eq(c.line(), "VERSION\t%d\t%d" % (major, minor), "the daemon's VERSION line matches the doc")
    c.close()
except Exception:  # noqa: BLE001
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    env.close()
sys.exit(t.done())
