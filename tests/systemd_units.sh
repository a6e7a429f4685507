#!/bin/sh
# systemd_units.sh: the shipped systemd units, users and folders. The units pass
# `systemd-analyze verify`; every daemon runs as user keywarden, never root; sysusers.d and
# tmpfiles.d files apply to an empty root; and the real validator, run as an unprivileged user
# under strace through checks, reload and stop, makes no system call that its unit's
# SystemCallFilter would kill it for.
. "$top_srcdir/tests/lib.sh"

units="keywarden-validator.service keywarden-ssod.service keywarden-notify.service"
mkdir -p "$T/units"
for u in $units; do
	# The generated units name the installed programs; point them at the build tree.
	sed -e "s|^ExecStart=[^ ]*/keywarden-validator|ExecStart=$top_builddir/keywarden-validator|" \
		-e "s|^ExecStart=[^ ]*/keywarden-ssod|ExecStart=$top_builddir/keywarden-ssod|" \
		-e "s|^ExecStart=[^ ]*/keywarden-notify|ExecStart=$top_builddir/keywarden-notify|" \
		-e "s|^ExecStart=[^ ]*/keywarden |ExecStart=$top_builddir/keywarden |" \
		"$top_builddir/systemd/$u" >"$T/units/$u"
done
cp "$top_srcdir/systemd/keywarden-validator.socket" "$top_srcdir/systemd/keywarden-notify.timer" "$T/units/"
for u in $units keywarden-validator.socket keywarden-notify.timer; do
	if SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$T/units/$u" >"$T/verify" 2>&1 &&
		! grep -v -e "Failed to open /dev/tty" -e "TTY" "$T/verify" | grep -q .; then
		ok "systemd-analyze verify $u"
	else
		not_ok "systemd-analyze verify $u" "$(cat "$T/verify")"
	fi
done
for u in $units; do
	if grep -qx "User=keywarden" "$T/units/$u" && grep -qx "NoNewPrivileges=yes" "$T/units/$u" &&
		grep -qx "ProtectSystem=strict" "$T/units/$u"; then
		ok "$u runs as keywarden, NoNewPrivileges, ProtectSystem=strict"
	else
		not_ok "$u: User=keywarden, NoNewPrivileges and ProtectSystem=strict"
	fi
done
grep -qx "SocketUser=keywarden" "$T/units/keywarden-validator.socket" &&
	grep -qx "SocketMode=0660" "$T/units/keywarden-validator.socket" &&
	ok "the validator socket is keywarden's, mode 0660" || not_ok "socket owner and mode"

# sysusers.d and tmpfiles.d on an empty root.
mkdir -p "$T/root/etc"
if systemd-sysusers --root="$T/root" "$top_srcdir/systemd/sysusers.d/keywarden.conf" >"$T/su" 2>&1 &&
	grep -q '^keywarden:' "$T/root/etc/passwd" && grep -q '^keywarden-clients:' "$T/root/etc/group"; then
	ok "sysusers.d creates the user keywarden and the group keywarden-clients"
else
	not_ok "sysusers.d" "$(cat "$T/su")"
fi
if systemd-tmpfiles --root="$T/root" --create "$top_srcdir/systemd/tmpfiles.d/keywarden.conf" >"$T/tf" 2>&1 &&
	[ "$(stat -c '%a' "$T/root/var/lib/keywarden")" = 700 ] &&
	[ "$(stat -c '%a' "$T/root/etc/keywarden")" = 750 ]; then
	ok "tmpfiles.d creates /var/lib/keywarden 0700 and /etc/keywarden 0750"
else
	not_ok "tmpfiles.d" "$(cat "$T/tf")"
fi

# The validator's system calls against its unit's filter, as an unprivileged user.
if [ "$(id -u)" -ne 0 ]; then
	not_ok "the syscall check runs the validator as another user and needs root"
	done_testing
	exit
fi
setup_acme
kw token create --as alice --name t --role Users
tok=$(cat "$T/out")
chmod 0711 "$T"
chown -R 65534:65534 "$STATE"
mkdir "$T/nobody" && chown 65534:65534 "$T/nobody"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
as_nobody strace -f -qq -o "$T/nobody/trace" "$top_builddir/keywarden-validator" --state-dir "$STATE" \
	>"$T/vlog" 2>&1 &
echo $! >"$T/strace.pid"
i=0
while [ ! -S "$STATE/validator.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
echo "$tok" | as_nobody "$KEYWARDEN" --state-dir "$STATE" token check - >"$T/check" 2>&1
crc=$?
echo "7\$bad" | as_nobody "$KEYWARDEN" --state-dir "$STATE" token check - >/dev/null 2>&1
vpid=$(pgrep -f "^$top_builddir/keywarden-validator --state-dir $STATE" | head -1)
kill -HUP "$vpid" 2>/dev/null
sleep 3 # a last-use flush
kill -TERM "$vpid" 2>/dev/null
wait "$(cat "$T/strace.pid")"
[ "$crc" -eq 0 ] && ok "the validator serves checks as an unprivileged user" ||
	not_ok "check as nobody: exit $crc" "$(cat "$T/check" "$T/vlog")"
/usr/bin/python3 - "$T/nobody/trace" "$T/units/keywarden-validator.service" >"$T/scan" 2>&1 <<'PY'
import re, subprocess, sys
trace, unit = sys.argv[1], sys.argv[2]
groups, cur = {}, None
for line in subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True,
                           text=True).stdout.splitlines():
    s = line.strip()
    if not s or s.startswith("#"):
        continue
    if not line.startswith(" ") and s.startswith("@"):
        cur = groups.setdefault(s, set())
    elif cur is not None:
        cur.add(s)
def expand(names, seen=None):
    out = set()
    for n in names:
        if n.startswith("@"):
            out |= expand(groups.get(n, ()), seen)
        else:
            out.add(n)
    return out
allowed, denied = set(), set()
for line in open(unit):
    m = re.match(r"SystemCallFilter=(~?)(.*)", line.strip())
    if m:
        (denied if m.group(1) else allowed).update(expand(m.group(2).split()))
used = set()
for line in open(trace):
    m = re.match(r"\d+\s+([a-z0-9_]+)\(", line)
    if m:
        used.add(m.group(1))
# systemd installs the filter before it execs the daemon: the whole trace counts.
bad = sorted(n for n in used if n in denied or n not in allowed)
print("%d system calls used; outside the unit's filter: %s" % (len(used), bad or "none"))
sys.exit(1 if bad or len(used) < 10 else 0)
PY
if [ $? -eq 0 ]; then ok "$(cat "$T/scan")"; else not_ok "$(cat "$T/scan")"; fi
done_testing
