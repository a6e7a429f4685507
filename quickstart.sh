#!/bin/sh
# quickstart.sh: from a fresh Debian bookworm machine to a checked token, unprivileged, in
# ./state on the embedded SQLite store. Installs the build dependencies (with sudo when not
# root), builds into ./build, and shows the main job: an account, an administrator, a token
# created, listed, and checked through the running validator.
set -e
cd "$(dirname "$0")"
top=$(pwd)
./install-deps.sh
[ -x configure ] || ./autogen.sh
mkdir -p build
(cd build && { [ -f Makefile ] || ../configure >configure.out; } && make -j"$(nproc)" >make.out)
kw() { "$top/build/keywarden" --state-dir "$top/state" "$@"; }

echo "== keywarden init (state folder: ./state)"
kw init
# On a second run these say that acme and alice exist already; that is fine.
kw account add acme || true
kw user add --account acme alice --role Administrators --email alice@example.com || true
echo "== keywarden token create --as alice --name quickstart --role Engineers --expires $(date -u -d '+30 days' +%Y-%m-%d)"
token=$(kw token create --as alice --name quickstart --description "made by quickstart.sh" \
	--role Engineers --expires "$(date -u -d '+30 days' +%Y-%m-%d)")
echo "$token"
echo "== keywarden token list --as alice"
kw token list --as alice
if [ -x build/keywarden-validator ]; then
	echo "== keywarden-validator --state-dir ./state (in the background)"
	build/keywarden-validator --state-dir "$top/state" &
	pid=$!
	trap 'kill $pid 2>/dev/null' EXIT
	i=0
	while [ ! -S state/validator.sock ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	echo "== keywarden token check (the token, read from stdin)"
	echo "$token" | kw token check -
	kill $pid
	wait $pid 2>/dev/null || true
	trap - EXIT
	echo "== keywarden token list --as alice (last usage recorded by the validator)"
	kw token list --as alice
fi
