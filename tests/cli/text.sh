#!/bin/sh
# text.sh: only valid UTF-8 without controls or bidirectional controls gets in (issue 10,
# item 4): C1 controls, bidi overrides, invalid UTF-8 (overlong forms, surrogates) are refused
# with exit 3 and change nothing, and the error does not echo them; limits count characters;
# rows stored before these checks (written here with the sqlite3 shell) still give JSON that
# parses and tables without a raw control.
. "$top_srcdir/tests/lib.sh"

PY=/usr/bin/python3

# safe_text FILE: valid UTF-8, and no control (but newline), C1 control or bidi control.
safe_text() {
	$PY - "$1" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
try:
    text = data.decode("utf-8")
except UnicodeDecodeError as e:
    sys.exit("invalid UTF-8: %s" % e)
bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f or
       ord(c) in (0x61c, 0x200e, 0x200f, 0x2028, 0x2029) or 0x202a <= ord(c) <= 0x202e or
       0x2066 <= ord(c) <= 0x2069]
if bad:
    sys.exit("raw characters: %s" % ", ".join("U+%04X" % ord(c) for c in bad))
EOF
}

# json_ok FILE: one JSON document, or JSON Lines with --lines; parsed by Python from the bytes.
json_ok() {
	$PY - "$@" <<'EOF'
import json, sys
data = open(sys.argv[1], "rb").read()
if len(sys.argv) > 2:
    lines = data.split(b"\n")
    assert lines[-1] == b"", "no final newline"
    for line in lines[:-1]:
        json.loads(line)
    print(len(lines) - 1)
else:
    json.loads(data)
EOF
}

setup_acme
kw token create --as alice --name first --role Users
before=$(db_dump)

# ---- refused at every entry, exit 3, nothing changed, not echoed ----
for spec in "C1 CSI raw byte:\233" "C1 CSI as UTF-8:\302\233" "RLO U+202E:\342\200\256" \
	"LRI U+2066:\342\201\246" "RLM U+200F:\342\200\217" "ALM U+061C:\330\234" \
	"LINE SEPARATOR U+2028:\342\200\250" "byte FF:\377" "overlong slash:\300\257" \
	"surrogate U+D800:\355\240\200" "above U+10FFFF:\364\220\200\200" \
	"cut sequence:\342\200" "ESC:\033" "DEL:\177"; do
	what=${spec%%:*}
	bad=$(printf "${spec#*:}")
	expect 3 "token name with $what" token create --as alice --name "a${bad}b" --role Users
	safe_text "$T/err" && ok "  the error does not echo it" ||
		not_ok "  the error echoes it" "$(od -c "$T/err" | head -5)"
	expect 3 "description with $what" token create --as alice --name x \
		--description "d${bad}d" --role Users
	expect 3 "login with $what" user add --account acme "car${bad}ol" --role Users
	safe_text "$T/err" && ok "  the error does not echo it" ||
		not_ok "  the error echoes it" "$(od -c "$T/err" | head -5)"
	expect 3 "email with $what" user add --account acme carol --role Users \
		--email "carol${bad}@example.com"
	expect 3 "email set with $what" user set bob --email "b${bad}@example.com"
	expect 3 "account name with $what" account add "ac${bad}me"
done
expect 3 "login with a no-break space" user add --account acme "car$(printf '\302\240')ol" \
	--role Users
expect 3 "login with a zero width space" user add --account acme \
	"car$(printf '\342\200\213')ol" --role Users
# A lookup by a bad name is refused too, and its error (which quotes the name) is shown safe.
kw token list --as "$(printf 'ali\302\233ce')"
[ "$rc" -ne 0 ] && safe_text "$T/err" && ok "an unknown user with a C1 control: safe error" ||
	not_ok "an unknown user with a C1 control: exit $rc" "$(od -c "$T/err" | head -5)"
[ "$(db_dump)" = "$before" ] && ok "no refused text changed the database" ||
	not_ok "refused text changed the database"

# ---- limits count characters ----
key=$(printf '\360\237\224\221') # U+1F511, four bytes
k100=$(for i in $(seq 1 100); do printf '%s' "$key"; done)
expect 0 "a name of 100 four-byte characters (400 bytes)" token create --as alice \
	--name "$k100" --role Users
expect 3 "101 four-byte characters" token create --as alice --name "$k100$key" --role Users
err_has "longer than 100 characters"
e1000=$(for i in $(seq 1 1000); do printf '\303\251'; done)
expect 0 "a description of 1000 two-byte characters" token create --as alice --name desc \
	--description "$e1000" --role Users
expect 3 "1001 of them" token create --as alice --name desc --description "$e1000$(printf '\303\251')" \
	--role Users
expect 0 "a login with non-ASCII letters" user add --account acme "j$(printf '\303\274')rgen" \
	--role Users --email "j$(printf '\303\274')rgen@example.com"
expect 0 "right-to-left text without controls is text" token create --as alice \
	--name "$(printf '\327\251\327\234\327\225\327\235')" --role Users
kw token list --as alice --json
n=$($PY -c 'import json,sys; j=json.load(open(sys.argv[1])); print(sum(1 for t in j if t["name"] == sys.argv[2] and len(t["name"]) == 100))' "$T/out" "$k100")
[ "$n" = 1 ] && ok "the 100-character name comes back whole in --json" ||
	not_ok "the 100-character name in --json" "$(head -c 600 "$T/out")"
kw token list --as alice
line=$(grep -F "$key" "$T/out")
cut19=$(for i in $(seq 1 19); do printf '%s' "$key"; done)
case "$line" in
*"$cut19~  "*) ok "token list cuts the name at 19 characters and '~', on a character boundary" ;;
*) not_ok "token list cuts on characters" "$line" ;;
esac
# the columns after NAME start at the same character position on every row
cols=$($PY - "$T/out" <<'EOF'
import sys
rows = [l for l in open(sys.argv[1], encoding="utf-8").read().split("\n") if "Users" in l]
print(len({l.index("Users") for l in rows}), len(rows))
EOF
)
[ "$cols" = "1 4" ] && ok "token list pads by characters: ROLE lines up on all 4 rows" ||
	not_ok "token list columns line up" "$cols" "$(cat "$T/out")"

# ---- rows stored before the checks ----
db() { sqlite3 "$STATE/keywarden.db" "$1"; }
id=$(db "SELECT id FROM token WHERE name = 'first'")
# name: CSI clear-screen as a raw 0x9B, an RLO, a lone continuation; description: ESC, a
# surrogate, an overlong; a login and an email with C1 and bidi controls.
db "UPDATE token SET name = CAST(X'61' || X'9B324A' || X'E280AE' || X'80' || X'7A' AS TEXT),
	description = CAST(X'1B5B324A' || X'EDA080' || X'C0AF' || X'0A0D09' AS TEXT) WHERE id = $id"
db "UPDATE user SET login = CAST(X'626F' || X'C29B' || X'62' AS TEXT),
	email = CAST(X'62' || X'E280AE' || X'FF' || X'406578616D706C652E636F6D' AS TEXT)
	WHERE login = 'bob'"
db "UPDATE account SET name = CAST(X'61636D' || X'E281A6' || X'65' AS TEXT) WHERE name = 'acme'"
acct=$(printf 'acm\342\201\246e')

kw token list --as alice --json
[ "$rc" -eq 0 ] && json_ok "$T/out" && ok "token list --json parses" ||
	not_ok "token list --json parses (exit $rc)" "$(od -c "$T/out" | head -5)"
safe_text "$T/out" && ok "  and holds no raw control" || not_ok "  raw control in --json"
kw token show --as alice "$id" --json
[ "$rc" -eq 0 ] && json_ok "$T/out" && ok "token show --json parses" ||
	not_ok "token show --json parses (exit $rc)" "$(od -c "$T/out" | head -5)"
name=$(json_get "$T/out" 'ascii(j["name"])')
[ "$name" = "'a\\ufffd2J\\u202e\\ufffdz'" ] &&
	ok "  the bad name shows U+FFFD for each bad byte, the RLO as \\u202e" ||
	not_ok "  the bad name in --json" "$name"
kw user list --account "$acct" --json
[ "$rc" -eq 0 ] && json_ok "$T/out" && ok "user list --json parses" ||
	not_ok "user list --json parses (exit $rc)" "$(od -c "$T/out" | head -5)"
kw report --json
[ "$rc" -eq 0 ] && json_ok "$T/out" && ok "report --json parses" ||
	not_ok "report --json parses (exit $rc)" "$(od -c "$T/out" | head -5)"

kw token list --as alice
[ "$rc" -eq 0 ] && safe_text "$T/out" && ok "token list: no raw control in the table" ||
	not_ok "token list table (exit $rc)" "$(od -c "$T/out" | head -8)"
kw token show --as alice "$id"
[ "$rc" -eq 0 ] && safe_text "$T/out" && ok "token show: no raw control" ||
	not_ok "token show (exit $rc)" "$(od -c "$T/out" | head -8)"
[ "$(grep -c "" "$T/out")" -eq 9 ] && ok "token show: one line per field (the CR LF of the description shown as U+FFFD)" ||
	not_ok "token show lines" "$(cat "$T/out")"
kw user list --account "$acct"
[ "$rc" -eq 0 ] && safe_text "$T/out" && ok "user list: no raw control" ||
	not_ok "user list (exit $rc)" "$(od -c "$T/out" | head -8)"
kw report
[ "$rc" -eq 0 ] && safe_text "$T/out" && ok "report: no raw control" ||
	not_ok "report (exit $rc)" "$(od -c "$T/out" | head -8)"

# ---- audit export ----
# A deletion records the bad name in the audit details; an edited details column holds raw
# bad bytes inside a JSON object (the chain breaks, the export must still parse).
kw token delete --as alice "$id"
[ "$rc" -eq 0 ] && ok "a token with a bad stored name can be deleted" || not_ok "delete: exit $rc"
db "UPDATE audit SET details = CAST('{\"name\":\"' || X'9BE280AE' || X'C0' || '\",\"n\":1}' AS TEXT),
	actor = CAST(X'61' || X'FF' AS TEXT) WHERE seq = 1"
kw audit export
n=$(json_ok "$T/out" --lines)
[ "$rc" -eq 0 ] && [ -n "$n" ] && [ "$n" -gt 5 ] && ok "audit export: all $n lines parse" ||
	not_ok "audit export lines parse (exit $rc)" "$(od -c "$T/out" | head -8)"
safe_text "$T/out" && ok "  and hold no raw control" || not_ok "  raw control in the export"
d=$($PY -c 'import json,sys; print(ascii(json.loads(open(sys.argv[1],"rb").read().split(b"\n")[0])["details"]))' "$T/out")
[ "$d" = "{'name': '\\ufffd\\u202e\\ufffd', 'n': 1}" ] &&
	ok "  the edited details stay an object, bad bytes as U+FFFD" || not_ok "  details" "$d"
last=$(tail -n 1 "$T/out")
case "$last" in
*'"action":"token.delete"'*'\u202e'*) ok "  the token.delete event names the token, escaped" ;;
*) not_ok "  the token.delete event" "$last" ;;
esac

done_testing
