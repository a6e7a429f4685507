#!/bin/sh
# no_secret_at_rest.sh: no file under the state folder ever holds a token's secret, in any
# encoding we can think of, after creation, use of the CLI, and a checkpoint.
. "$top_srcdir/tests/lib.sh"

setup_acme
: >"$T/tokens"
for i in 1 2 3 4 5; do
	kw token create --as alice --name "t$i" --description "token $i" --role Users
	cat "$T/out" >>"$T/tokens"
done
kw token delete --as alice 2
kw token list --as alice --json
sqlite3 "$STATE/keywarden.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
[ "$(wc -l <"$T/tokens")" -eq 5 ] && ok "five tokens created" || not_ok "token creation"

if /usr/bin/python3 - "$STATE" "$T/tokens" >"$T/scan" <<'PY'
import base64, os, sys
state, tokfile = sys.argv[1], sys.argv[2]
blobs = b""
for root, _, files in os.walk(state):
    for f in files:
        with open(os.path.join(root, f), "rb") as fh:
            blobs += fh.read()
n = 0
bad = []
for line in open(tokfile):
    tok = line.strip()
    secret = tok.split("$", 1)[1]
    raw = base64.urlsafe_b64decode(secret)
    needles = [tok.encode(), secret.encode(), secret[:16].encode(), raw[:32], raw[:12],
               raw[:32].hex().encode(), raw[:32].hex().upper().encode()]
    for nd in needles:
        n += 1
        if nd in blobs:
            bad.append((tok.split("$")[0], nd[:8]))
print("checked %d encodings of 5 secrets in every state file" % n if not bad
      else "secret found at rest: %r" % bad)
sys.exit(1 if bad or n != 35 else 0)
PY
then
	ok "$(cat "$T/scan")"
else
	not_ok "$(cat "$T/scan")"
fi
sqlite3 "$STATE/keywarden.db" "SELECT count(*) FROM token WHERE length(digest) = 32" | grep -qx 5 &&
	ok "every token row holds a 32-byte digest" || not_ok "digests"
done_testing
