#!/bin/sh
# tests/package/check.sh: the Debian packages, end to end, as an admin meets them. Builds them
# from a copy of this tree (dpkg-buildpackage -us -uc -b, tests skipped), runs lintian, installs
# them with apt-get, runs `keywarden init` and the validator as the user keywarden, creates an
# account, a user and a token with the installed CLI, checks the token through the installed
# libkeywarden (a program built with pkg-config) and the installed PAM module (pamtester, a
# test-only /etc/pam.d service), turns the pam-auth-update profile on (reinstalling the
# packages, the upgrade path, keeps it on), uses it and turns it off, then purges the packages
# and checks that nothing is left behind. Prints TAP.
#
# Needs root on Debian bookworm (it installs packages and creates the system user); run by
# run-tests.sh once per run. It refuses to run ("Bail out!", exit 2) when keywarden is already
# installed or /etc/keywarden or /var/lib/keywarden exist, so that it never purges real data,
# and on exit it puts the machine back: packages it pulled in, the PAM service file, the
# common-* PAM files, and the keywarden user and groups when it created them.
#
# Environment: KW_PKG_KEEP=1 keeps the work folder (build log, lintian output, .debs).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
SERVICE=kw-pkgcheck-$$
PAMFILE=/etc/pam.d/$SERVICE
PKGS="keywarden keywarden-ssod libkeywarden1 libkeywarden-dev libpam-keywarden"
APT="env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=600"
n=0
fails=0
vpid=
use_systemd=0
work=

bail() {
	echo "Bail out! $*"
	exit 2
}
ok() { # ok STATUS NAME [DETAIL-FILE-OR-TEXT]
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		fails=$((fails + 1))
		echo "not ok $n - $2"
		if [ $# -gt 2 ]; then
			if [ -f "$3" ]; then tail -40 "$3"; else printf '%s\n' "$3"; fi | sed 's/^/# /'
		fi
	fi
}
as_kw() { setpriv --reuid=keywarden --regid=keywarden --init-groups -- "$@"; }
installed() { # installed PKG: true when dpkg has it unpacked or configured
	dpkg-query -W -f='${db:Status-Status}\n' "$1" 2>/dev/null | grep -q -E '^(installed|unpacked|half-configured|half-installed|triggers-)'
}
known() { dpkg-query -W -f='${db:Status-Status}\n' "$1" 2>/dev/null | grep -q -v '^not-installed$'; }
# Paths named after keywarden, or owned by its user or groups (those that exist), in the
# system's trees.
traces() {
	owned=
	getent passwd keywarden >/dev/null && owned="$owned -o -user keywarden"
	getent group keywarden >/dev/null && owned="$owned -o -group keywarden"
	getent group keywarden-clients >/dev/null && owned="$owned -o -group keywarden-clients"
	# shellcheck disable=SC2086
	find /etc /usr /var /run /opt /srv -xdev \
		\( -path /var/tmp -o -path /var/cache/apt -o -path /var/log -o -path /var/lib/apt \
		-o -path /var/lib/dpkg/updates \) -prune -o \( -name '*keywarden*' $owned \) -print \
		2>/dev/null | sort
}

# --- can it run at all?
[ "$(id -u)" -eq 0 ] || bail "the package check needs root (it installs packages and creates the user keywarden)"
for tool in dpkg-buildpackage lintian apt-get pamtester pam-auth-update setpriv pkg-config cc \
	readelf nm; do
	command -v "$tool" >/dev/null 2>&1 || bail "$tool is missing (install .ci/debian-packages)"
done
[ -d "$top/debian" ] || bail "no debian/ folder in $top"
for p in $PKGS; do
	known "$p" && bail "$p is installed (or left configured): this check purges it, remove it first"
done
for d in /etc/keywarden /var/lib/keywarden /run/keywarden; do
	[ -e "$d" ] && bail "$d exists: this check would purge it"
done
[ -e "$PAMFILE" ] && bail "$PAMFILE exists"
had_user=0; getent passwd keywarden >/dev/null && had_user=1
had_group=0; getent group keywarden >/dev/null && had_group=1
had_clients=0; getent group keywarden-clients >/dev/null && had_clients=1

work=$(mktemp -d /tmp/kw-pkgcheck.XXXXXX) || bail "mktemp failed"
chmod 0755 "$work"
mkdir "$work/pam.d.orig"
cp -p /etc/pam.d/common-* "$work/pam.d.orig/" || bail "cannot save /etc/pam.d/common-*"
traces >"$work/traces.before"

cleanup() {
	set +e
	if [ -n "$vpid" ]; then
		kill "$vpid" 2>/dev/null
		wait "$vpid" 2>/dev/null
	fi
	[ "$use_systemd" = 1 ] &&
		systemctl stop keywarden-validator.service keywarden-validator.socket 2>/dev/null
	rm -f "$PAMFILE"
	left=
	for p in $PKGS; do known "$p" && left="$left $p"; done
	[ -n "$left" ] && $APT purge $left >>"$work/cleanup.log" 2>&1
	# What apt pulled in for the packages and nothing else uses now.
	if [ -s "$work/pulled" ]; then
		auto=$(for p in $(cat "$work/pulled"); do
			apt-mark showauto "$p" 2>/dev/null
		done)
		[ -n "$auto" ] && $APT purge $auto >>"$work/cleanup.log" 2>&1
	fi
	cp -p "$work/pam.d.orig"/common-* /etc/pam.d/ 2>/dev/null
	rm -rf /etc/keywarden /var/lib/keywarden /run/keywarden
	[ "$had_user" -eq 0 ] && getent passwd keywarden >/dev/null && userdel keywarden
	[ "$had_group" -eq 0 ] && getent group keywarden >/dev/null && groupdel keywarden
	[ "$had_clients" -eq 0 ] && getent group keywarden-clients >/dev/null &&
		groupdel keywarden-clients
	if [ "${KW_PKG_KEEP:-0}" = 1 ]; then
		echo "# work folder kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 3' INT TERM HUP

# --- build, from a copy of the tree (tracked and new files, not build outputs)
mkdir "$work/src"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$top" && git ls-files -z -c -o --exclude-standard) |
		(cd "$top" && xargs -0 cp -P --parents -t "$work/src") 2>"$work/copy.log"
else
	(cd "$top" && tar -cf - --exclude='./build*' --exclude=./autom4te.cache .) |
		(cd "$work/src" && tar -xf -) 2>"$work/copy.log"
fi
[ $? -eq 0 ] && [ -f "$work/src/debian/control" ] || bail "cannot copy the tree (see $work/copy.log)"
jobs=$(nproc 2>/dev/null || echo 1)
(cd "$work/src" && DEB_BUILD_OPTIONS="nocheck parallel=$jobs" DPKG_GENSYMBOLS_CHECK_LEVEL=4 \
	dpkg-buildpackage -us -uc -b -Pnocheck) >"$work/build.log" 2>&1
ok $? "dpkg-buildpackage -us -uc -b builds the packages (libkeywarden1.symbols matches the exports exactly)" "$work/build.log"
debs=
for p in $PKGS; do
	f=$(ls "$work/${p}_"*.deb 2>/dev/null | head -1)
	[ -n "$f" ] || bail "no .deb for $p (see the build log above)"
	debs="$debs $f"
done

# --- lintian: no error, no warning (info tags only, shown here)
lintian --fail-on error,warning --display-info --pedantic --show-overrides "$work"/keywarden_*.changes >"$work/lintian.log" 2>&1
ok $? "lintian: no error and no warning" "$work/lintian.log"
# Every tag, overridden ones (O:, with their reason in debian/*.lintian-overrides) included.
grep -E '^[EWIPXO]: ' "$work/lintian.log" | sed 's/^/# lintian: /'

# --- install with apt, as admins do
$APT -s install $debs 2>/dev/null | sed -n 's/^Inst \([^ ]*\) .*/\1/p' >"$work/inst"
grep -v -x -F "$(printf '%s\n' $PKGS)" "$work/inst" >"$work/pulled"
$APT install $debs >"$work/install.log" 2>&1
ok $? "apt-get install ./*.deb installs the packages$( [ -s "$work/pulled" ] && printf ' (and %s)' "$(tr '\n' ' ' <"$work/pulled" | sed 's/ $//')")" "$work/install.log"
for p in $PKGS; do installed "$p" || bail "$p is not installed after apt-get install"; done
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)

getent passwd keywarden >/dev/null && getent group keywarden-clients >/dev/null
ok $? "the system user keywarden and the group keywarden-clients exist (sysusers.d)"
st=$(stat -c '%a %U %G' /var/lib/keywarden /etc/keywarden 2>&1 | tr '\n' ' ')
test "$st" = "700 keywarden keywarden 750 root keywarden "
ok $? "/var/lib/keywarden (0700 keywarden) and /etc/keywarden (0750 root:keywarden) exist (tmpfiles.d)" "$st"
test -f "/usr/lib/$multiarch/security/pam_keywarden.so" &&
	test -L "/usr/lib/$multiarch/libkeywarden.so.1" &&
	test -f /usr/share/pam-configs/keywarden
ok $? "pam_keywarden.so in /usr/lib/$multiarch/security, libkeywarden.so.1, the pam-auth-update profile"
wants=/etc/systemd/system
test -L "$wants/sockets.target.wants/keywarden-validator.socket" &&
	test -L "$wants/timers.target.wants/keywarden-notify.timer" &&
	! test -e "$wants/multi-user.target.wants/keywarden-validator.service" &&
	! test -e "$wants/multi-user.target.wants/keywarden-ssod.service"
ok $? "the validator socket and the mail timer are enabled; the validator service (socket-activated) and ssod are not" "$(ls -l $wants/*.wants 2>&1 | grep keywarden)"
# hardening=+all: position-independent executables, full RELRO with BIND_NOW, fortified
# calls, no executable stack, in every program and library of the packages.
left=$(for f in /usr/bin/keywarden /usr/sbin/keywarden-validator /usr/sbin/keywarden-notify \
	/usr/sbin/keywarden-ssod "/usr/lib/$multiarch/libkeywarden.so.1" \
	"/usr/lib/$multiarch/security/pam_keywarden.so"; do
	h=$(readelf -h "$f" 2>&1)
	d=$(readelf -d "$f" 2>&1)
	l=$(readelf -lW "$f" 2>&1)
	printf '%s' "$h" | grep -q 'Type:.*DYN' || echo "$f: not PIE"
	printf '%s' "$l" | grep -q GNU_RELRO || echo "$f: no RELRO"
	printf '%s' "$d" | grep -q -E 'BIND_NOW|FLAGS.*NOW' || echo "$f: no BIND_NOW"
	printf '%s' "$l" | grep GNU_STACK | grep -q RWE && echo "$f: executable stack"
	case $f in */bin/* | */sbin/*)
		nm -D "$f" | grep -q '__[a-z_]*_chk' || echo "$f: no fortified call" ;;
	esac
done)
test -z "$left"
ok $? "hardening: PIE, full RELRO (BIND_NOW), no executable stack, fortified calls" "$left"
left=$(for m in man1/keywarden.1 man5/keywarden.conf.5 man8/keywarden-validator.8 \
	man8/keywarden-notify.8 man8/keywarden-ssod.8 man8/pam_keywarden.8 man3/libkeywarden.3; do
	[ -f "/usr/share/man/$m.gz" ] || echo "missing: $m"
done)
test -z "$left"
ok $? "the seven manual pages are installed" "$left"
! grep -q pam_keywarden /etc/pam.d/common-auth /etc/pam.d/common-account
ok $? "the PAM profile is off after install (Default: no)"

# --- keywarden init and the validator, as the user keywarden
printf '# written by tests/package/check.sh\n[validator]\nsocket_group = keywarden-clients\n' \
	>/etc/keywarden/keywarden.conf
chown root:keywarden /etc/keywarden/keywarden.conf
chmod 0640 /etc/keywarden/keywarden.conf
as_kw keywarden init >"$work/init.log" 2>&1
ok $? "keywarden init, run as keywarden, makes the database and the key" "$work/init.log"
st=$(stat -c '%n %a %U' /var/lib/keywarden/keywarden.db /var/lib/keywarden/keywarden.key 2>&1 | tr '\n' ' ')
test "$st" = "/var/lib/keywarden/keywarden.db 600 keywarden /var/lib/keywarden/keywarden.key 600 keywarden "
ok $? "the database and the key are 0600 keywarden" "$st"
clients_gid=$(getent group keywarden-clients | cut -d: -f3)
if [ -d /run/systemd/system ]; then
	# systemd runs this machine: the packages' own units, socket-activated.
	use_systemd=1
	systemctl restart keywarden-validator.socket >"$work/validator.log" 2>&1
	how="the packages' keywarden-validator.socket (systemd)"
else
	# What the units do (RuntimeDirectory=keywarden; the socket unit's SocketGroup=
	# keywarden-clients, which the daemon alone may only set as a member): CI has no systemd
	# as PID 1, so the daemon is started as the unit would, without socket activation.
	install -d -o keywarden -g keywarden -m 0755 /run/keywarden
	setpriv --reuid=keywarden --regid=keywarden --groups="$clients_gid" -- \
		/usr/sbin/keywarden-validator --foreground >"$work/validator.log" 2>&1 &
	vpid=$!
	how="keywarden-validator, run as keywarden,"
fi
i=0
while [ ! -S /run/keywarden/validator.sock ] && [ $i -lt 100 ]; do
	[ -n "$vpid" ] && ! kill -0 "$vpid" 2>/dev/null && break
	sleep 0.1
	i=$((i + 1))
done
st=$(stat -c '%a %U %G' /run/keywarden/validator.sock 2>&1)
test "$st" = "660 keywarden keywarden-clients"
ok $? "$how listens on /run/keywarden/validator.sock (0660 keywarden, group keywarden-clients)" "$(echo "$st"; cat "$work/validator.log")"

# --- an account, a user and a token, with the installed CLI
as_kw keywarden account add pkgcheck >"$work/cli.log" 2>&1 &&
	as_kw keywarden user add --account pkgcheck kwpkguser --role Engineers >>"$work/cli.log" 2>&1 &&
	as_kw keywarden token create --as kwpkguser --name pkgcheck --role Engineers \
		>"$work/token" 2>>"$work/cli.log"
ok $? "keywarden account add, user add, token create" "$work/cli.log"
token=$(cat "$work/token")
as_kw keywarden token create --as kwpkguser --name pkgcheck2 --role Users >"$work/token2" \
	2>>"$work/cli.log"
token2=$(cat "$work/token2")
printf '%s\n' "$token" | keywarden token check - >"$work/check.log" 2>&1
ok $? "keywarden token check: the validator says the token is valid" "$work/check.log"

# --- the installed library, through its -dev package, from a member of keywarden-clients
cc -o "$work/client" "$top/tests/package/client.c" $(pkg-config --cflags --libs keywarden) \
	>"$work/cc.log" 2>&1 &&
	readelf -d "$work/client" | grep -q 'NEEDED.*\[libkeywarden.so.1\]'
ok $? "a program builds against libkeywarden-dev (pkg-config keywarden) and needs libkeywarden.so.1" "$work/cc.log"
out=$(printf '%s\n' "$token" | setpriv --reuid=nobody --regid=nogroup \
	--groups="$clients_gid" -- "$work/client" 2>&1)
test "$out" = "ok kwpkguser Engineers"
ok $? "as nobody in keywarden-clients, libkeywarden1 checks the token: ok kwpkguser Engineers" "$out"
out=$(printf '%s\n' "$token" | setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
	"$work/client" 2>&1)
test $? -eq 2
ok $? "as nobody outside keywarden-clients, the socket refuses the connection" "$out"

# --- the installed PAM module, with pamtester and a test-only service
printf '# %s: tests/package/check.sh, removed when it ends\nauth\trequired\tpam_keywarden.so [min_role=Engineers]\naccount\trequired\tpam_keywarden.so [min_role=Engineers]\n' \
	"$SERVICE" >"$PAMFILE"
out=$(printf '%s\n' "$token" | pamtester -v "$SERVICE" kwpkguser authenticate acct_mgmt 2>&1)
rc=$?
test $rc -eq 0 && printf '%s' "$out" | grep -q 'successfully authenticated'
ok $? "pamtester: pam_keywarden.so (found by PAM in its module folder) accepts the token for kwpkguser" "$out"
out=$(printf '%s\n' "$token" | pamtester -v "$SERVICE" root authenticate 2>&1)
test $? -ne 0 && printf '%s' "$out" | grep -q 'Authentication failure'
ok $? "pamtester: the same token is refused for another user" "$out"
id=${token%%[\$_]*}
as_kw keywarden token delete --as kwpkguser "$id" >>"$work/cli.log" 2>&1
out=$(printf '%s\n' "$token" | pamtester -v "$SERVICE" kwpkguser authenticate 2>&1)
test $? -ne 0 && printf '%s' "$out" | grep -q 'Authentication failure'
ok $? "pamtester: after keywarden token delete the token is refused" "$(cat "$work/cli.log"; echo "$out")"
rm -f "$PAMFILE"

# --- the pam-auth-update profile: on, a service of common-auth takes a token typed at pam_unix's
# password prompt (try_first_pass); off again, nothing of it stays in the common-* files.
env DEBIAN_FRONTEND=noninteractive pam-auth-update --enable keywarden >"$work/pau.log" 2>&1 &&
	grep -q 'pam_keywarden.so try_first_pass' /etc/pam.d/common-auth &&
	grep -q 'required.*pam_keywarden.so' /etc/pam.d/common-account &&
	grep -B1 pam_keywarden /etc/pam.d/common-auth | grep -q pam_unix
ok $? "pam-auth-update --enable keywarden puts the module after pam_unix in common-auth and in common-account" "$(cat "$work/pau.log" /etc/pam.d/common-auth)"
# The upgrade path (prerm upgrade, postinst configure with the old version): the admin's
# choice and the data stay.
$APT install --reinstall $debs >"$work/reinstall.log" 2>&1 &&
	grep -q 'pam_keywarden.so try_first_pass' /etc/pam.d/common-auth &&
	test -s /var/lib/keywarden/keywarden.db && test -s /var/lib/keywarden/keywarden.key
ok $? "apt-get install --reinstall (the upgrade path) keeps the enabled PAM profile, the database and the key" "$work/reinstall.log"
printf '# %s: tests/package/check.sh, removed when it ends\n@include common-auth\n' "$SERVICE" \
	>"$PAMFILE"
out=$(printf '%s\n' "$token2" | pamtester -v "$SERVICE" kwpkguser authenticate 2>&1)
test $? -eq 0 && printf '%s' "$out" | grep -q 'successfully authenticated'
ok $? "pamtester, @include common-auth: a token typed at the password prompt is accepted" "$out"
out=$(printf '%s\n' "${token2}x" | pamtester -v "$SERVICE" kwpkguser authenticate 2>&1)
test $? -ne 0 && printf '%s' "$out" | grep -q 'Authentication failure'
ok $? "pamtester, @include common-auth: a wrong token is refused" "$out"
rm -f "$PAMFILE"
env DEBIAN_FRONTEND=noninteractive pam-auth-update --disable keywarden >"$work/pau.log" 2>&1 &&
	! grep -q pam_keywarden /etc/pam.d/common-auth /etc/pam.d/common-account
ok $? "pam-auth-update --disable keywarden takes it out again" "$work/pau.log"

if [ "$use_systemd" = 1 ]; then
	mpid=$(systemctl show -p MainPID --value keywarden-validator.service)
	user=$(ps -o user= -p "$mpid" 2>&1)
	systemctl stop keywarden-validator.service keywarden-validator.socket >>"$work/validator.log" 2>&1
	rc=$?
	test "$user" = keywarden && test $rc -eq 0
	ok $? "the socket-activated validator ran as keywarden and stops" "$(echo "user $user, stop exit $rc"; cat "$work/validator.log")"
else
	kill "$vpid" 2>/dev/null
	wait "$vpid"
	rc=$?
	vpid=
	test $rc -eq 0 -o $rc -eq 143
	ok $? "the validator stops on SIGTERM" "$(echo "exit $rc"; cat "$work/validator.log")"
fi

# --- purge, and nothing is left behind
for p in $PKGS; do dpkg -L "$p"; done 2>/dev/null | sort -u >"$work/files"
pre=$(grep -c . "$work/files")
$APT purge $PKGS >"$work/purge.log" 2>&1
ok $? "apt-get purge removes the five packages" "$work/purge.log"
left=$(for p in $PKGS; do known "$p" && echo "$p"; done)
test -z "$left"
ok $? "dpkg knows none of them any more (no config-files state)" "$left"
left=$(while read -r f; do [ -e "$f" ] && [ ! -d "$f" ] && echo "$f"; done <"$work/files")
test "$pre" -gt 20 && test -z "$left"
ok $? "none of the packages' $pre files is left" "$left"
left=$(ls -d /var/lib/keywarden /etc/keywarden /run/keywarden 2>/dev/null)
test -z "$left"
ok $? "purge removed /var/lib/keywarden (database, key), /etc/keywarden (config), /run/keywarden" "$left"
left=$(grep -l keywarden /etc/pam.d/common-* /usr/share/pam-configs/* /var/lib/pam/seen 2>/dev/null)
test -z "$left"
ok $? "no trace of the PAM profile in /usr/share/pam-configs, /etc/pam.d/common-* or /var/lib/pam/seen" "$left"
traces >"$work/traces.after"
left=$(comm -13 "$work/traces.before" "$work/traces.after")
test -z "$left"
ok $? "no file named after keywarden, or owned by its user or groups, is left in /etc /usr /var /run /opt /srv" "$left"
getent passwd keywarden >/dev/null
ok $? "the user keywarden stays after purge, as Debian leaves system users (this check removes it afterwards)"

echo "1..$n"
[ "$fails" -eq 0 ]
