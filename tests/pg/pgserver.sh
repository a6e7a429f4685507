#!/bin/sh
# tests/pg/pgserver.sh: a throwaway PostgreSQL 15 server for the tests (issue 15), on a Unix
# socket only, in a folder of its own.
#
#   pgserver.sh start DIR [OWNER_PID]  initdb + pg_ctl start in DIR; prints the superuser's URL,
#                                      postgresql:///postgres?host=DIR&user=postgres
#   pgserver.sh newdb DIR NAME         an empty database NAME owned by the role keywarden;
#                                      prints its URL, postgresql:///NAME?host=DIR&user=keywarden
#   pgserver.sh dropdb DIR NAME        drops it (WITH (FORCE): its connections are ended)
#   pgserver.sh url DIR [NAME]         prints the URL (of NAME as keywarden, else as postgres)
#   pgserver.sh stop DIR               pg_ctl stop -m immediate, then removes the cluster
#                                      (DIR/data, its log; DIR itself is the caller's)
#
# DIR: a folder path of [A-Za-z0-9/._-] (it goes into URLs unquoted), absent or empty, short
# enough for a socket path (DIR/.s.PGSQL.5432 under 107 bytes). It is made 0755 and holds the
# socket (mode 0777), so that root and any other uid of the tests can connect; DIR/data, the
# cluster, is 0700. Every role authenticates by `trust` on that socket (a throwaway server
# reachable only through DIR), except `kwpass`, which must give its SCRAM-SHA-256 password
# (in DIR/kwpass.password, for the tests of the password-file path); kwpass is a member of
# keywarden. Roles: postgres (superuser), keywarden (owns the test databases), kwpass.
#
# Made for speed, not durability: initdb --no-sync, fsync = off, synchronous_commit = off,
# full_page_writes = off (a crash of this machine may lose or corrupt the test cluster, never
# anything else); small shared_buffers, max_connections = 300.
#
# The cluster belongs to an unprivileged user (PostgreSQL refuses to run as root): to the
# caller when it is not root; when run as root (CI is), to the system user kwpgtest, created
# here when missing (useradd --system --no-create-home; `nobody` when that fails), through
# setpriv.
#
# A started server must never outlive the test run. `start` cleans up after itself when it
# fails (server stopped, cluster removed, the log's tail on stderr), and it leaves a watchdog
# that stops the server (pg_ctl stop -m immediate) as soon as OWNER_PID (default: the process
# that ran `start`, i.e. the calling shell or program) is gone, even when it was SIGKILLed.
# Callers still stop it themselves when they are done, e.g. in sh:
#     dir=$(mktemp -d) && trap 'sh "$top_srcdir/tests/pg/pgserver.sh" stop "$dir"; rm -rf "$dir"' EXIT
#     trap 'exit 1' HUP INT TERM
#     url=$(sh "$top_srcdir/tests/pg/pgserver.sh" start "$dir") || exit 1
# and in Python a try/finally (or atexit) around the test that runs `stop`.
set -eu

PORT=5432
prog=$0

die() {
	echo "pgserver.sh: $*" >&2
	exit 1
}

bindir() {
	if command -v pg_config >/dev/null 2>&1; then
		b=$(pg_config --bindir 2>/dev/null || true)
		[ -n "$b" ] && [ -x "$b/initdb" ] && [ -x "$b/pg_ctl" ] && {
			echo "$b"
			return
		}
	fi
	[ -x /usr/lib/postgresql/15/bin/pg_ctl ] && {
		echo /usr/lib/postgresql/15/bin
		return
	}
	die "no PostgreSQL server programs (initdb, pg_ctl): install the Debian package postgresql"
}

check_dir() {
	case $1 in
	/*) ;;
	*) die "DIR must be an absolute path: $1" ;;
	esac
	case $1 in
	*[!A-Za-z0-9/._-]*) die "DIR may hold only [A-Za-z0-9/._-]: $1" ;;
	esac
	[ ${#1} -le 90 ] || die "DIR is too long for a Unix socket path: $1"
}

check_name() {
	case $1 in
	'' | *[!A-Za-z0-9_]*) die "a database name is [A-Za-z0-9_]+: '$1'" ;;
	esac
	[ ${#1} -le 63 ] || die "a database name has at most 63 characters: $1"
}

# The user that runs the cluster: the caller, or kwpgtest (nobody) for root.
server_user() {
	if [ "$(id -u)" -ne 0 ]; then
		id -un
		return
	fi
	if ! getent passwd kwpgtest >/dev/null 2>&1; then
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
			kwpgtest >/dev/null 2>&1 || true
	fi
	if getent passwd kwpgtest >/dev/null 2>&1; then echo kwpgtest; else echo nobody; fi
}

# as_server CMD...: CMD as the cluster's user (the caller itself unless root).
as_server() {
	if [ "$(id -u)" -ne 0 ]; then
		"$@"
	else
		u=$(cat "$DIR/.server-user")
		env HOME="$DIR" setpriv --reuid="$u" --regid="$(id -g "$u")" --clear-groups -- "$@"
	fi
}

# su_psql: psql as the superuser on the server's socket, SQL on stdin.
su_psql() {
	"$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres -d postgres "$@"
}

url() { # url DB USER
	echo "postgresql:///$1?host=$DIR&user=$2"
}

start() {
	[ ! -e "$DIR/data" ] || die "$DIR/data exists: a server was started there already"
	made_dir=0
	if [ ! -d "$DIR" ]; then
		mkdir -p "$DIR"
		made_dir=1
	fi
	started=0
	# On any failure from here on: stop what was started, remove what was made.
	trap 'if [ $? -ne 0 ]; then fail_cleanup; fi' EXIT
	user=$(server_user)
	echo "$user" >"$DIR/.server-user"
	if [ "$(id -u)" -eq 0 ]; then
		chown "$user" "$DIR"
	fi
	chmod 0755 "$DIR"
	as_server test -w "$DIR" ||
		die "the server user $user cannot reach $DIR (a folder above it is not searchable)"
	as_server "$BIN/initdb" -D "$DIR/data" --no-sync --no-instructions -A trust -U postgres \
		-E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 || {
		cat "$DIR/initdb.log" >&2
		die "initdb failed"
	}
	cat >>"$DIR/data/postgresql.conf" <<EOF
# tests/pg/pgserver.sh: a throwaway test server, Unix socket only, speed over durability.
listen_addresses = ''
port = $PORT
unix_socket_directories = '$DIR'
unix_socket_permissions = 0777
max_connections = 300
shared_buffers = 16MB
fsync = off
synchronous_commit = off
full_page_writes = off
password_encryption = 'scram-sha-256'
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
EOF
	cat >"$DIR/data/pg_hba.conf" <<EOF
# tests/pg/pgserver.sh: the socket in $DIR only; kwpass by its password, everyone else trusted.
local all kwpass scram-sha-256
local all all trust
EOF
	# pg_ctl's own output (the server's log goes to DIR/server.log).
	touch "$DIR/server.log"
	[ "$(id -u)" -ne 0 ] || chown "$user" "$DIR/server.log"
	started=1
	as_server "$BIN/pg_ctl" start -D "$DIR/data" -l "$DIR/server.log" -w -t 60 -s \
		>"$DIR/pg_ctl.log" 2>&1 || {
		cat "$DIR/pg_ctl.log" >&2
		die "pg_ctl start failed"
	}
	pw=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')
	(umask 022 && echo "$pw" >"$DIR/kwpass.password")
	su_psql -v pw="$pw" >/dev/null <<'EOF' || die "cannot create the roles"
CREATE ROLE keywarden LOGIN;
CREATE ROLE kwpass LOGIN PASSWORD :'pw' IN ROLE keywarden;
EOF
	trap - EXIT
	watchdog
	url postgres postgres
}

# A process that stops the server once OWNER_PID is gone (or the server was stopped).
watchdog() {
	pidfile="$DIR/data/postmaster.pid"
	(
		trap '' HUP INT
		while kill -0 "$OWNER" 2>/dev/null && [ -f "$pidfile" ]; do
			sleep 1
		done
		if [ -f "$pidfile" ]; then
			as_server "$BIN/pg_ctl" stop -D "$DIR/data" -m immediate -w -t 30 -s || true
		fi
	) </dev/null >/dev/null 2>&1 &
	echo $! >"$DIR/watchdog.pid"
}

fail_cleanup() {
	if [ "$started" -eq 1 ] && [ -f "$DIR/data/postmaster.pid" ]; then
		as_server "$BIN/pg_ctl" stop -D "$DIR/data" -m immediate -w -t 30 -s >/dev/null 2>&1 || true
	fi
	if [ -s "$DIR/server.log" ]; then
		echo "pgserver.sh: the server's log ends:" >&2
		tail -20 "$DIR/server.log" >&2
	fi
	rm -rf "$DIR/data" "$DIR/server.log" "$DIR/initdb.log" "$DIR/pg_ctl.log" \
		"$DIR/kwpass.password" "$DIR/.server-user" "$DIR/watchdog.pid"
	[ "$made_dir" -eq 0 ] || rmdir "$DIR" 2>/dev/null || true
}

stop() {
	[ -d "$DIR/data" ] || return 0
	if [ -f "$DIR/data/postmaster.pid" ]; then
		as_server "$BIN/pg_ctl" stop -D "$DIR/data" -m immediate -w -t 30 -s ||
			die "pg_ctl stop failed"
	fi
	if [ -f "$DIR/watchdog.pid" ]; then
		kill "$(cat "$DIR/watchdog.pid")" 2>/dev/null || true
	fi
	[ "${KW_PG_KEEP:-0}" = 1 ] && return 0
	rm -rf "$DIR/data" "$DIR/server.log" "$DIR/initdb.log" "$DIR/pg_ctl.log" \
		"$DIR/kwpass.password" "$DIR/.server-user" "$DIR/watchdog.pid"
}

[ $# -ge 2 ] || die "usage: $prog start|stop DIR | newdb|dropdb DIR NAME | url DIR [NAME]"
cmd=$1
DIR=$2
check_dir "$DIR"
BIN=$(bindir)
case $cmd in
start)
	OWNER=${3:-$PPID}
	start
	;;
stop)
	stop
	;;
newdb)
	[ $# -eq 3 ] || die "usage: $prog newdb DIR NAME"
	check_name "$3"
	echo 'CREATE DATABASE :"db" OWNER keywarden;' | su_psql -v db="$3" >/dev/null
	url "$3" keywarden
	;;
dropdb)
	[ $# -eq 3 ] || die "usage: $prog dropdb DIR NAME"
	check_name "$3"
	echo 'DROP DATABASE IF EXISTS :"db" WITH (FORCE);' | su_psql -v db="$3" >/dev/null
	;;
url)
	if [ $# -ge 3 ]; then
		check_name "$3"
		url "$3" keywarden
	else
		url postgres postgres
	fi
	;;
*)
	die "unknown command $cmd"
	;;
esac
