#!/bin/sh
# install-deps.sh: installs the Debian bookworm packages that building and testing keywarden
# need (listed in .ci/debian-packages). Uses sudo when not run as root.
set -e
cd "$(dirname "$0")"
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
missing=$(for p in $(cat .ci/debian-packages); do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || echo "$p"
done)
if [ -n "$missing" ]; then
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi
# The OpenAPI 3.1 linter of tests/api/openapi.py, from the npm registry, pinned, kept in the tree
# (.ci/npm is ignored by git); node and npm come with the machine.
if command -v npm >/dev/null 2>&1 && [ ! -x .ci/npm/node_modules/.bin/validate-api ]; then
	npm install --prefix .ci/npm --no-audit --no-fund --silent \
		@seriousme/openapi-schema-validator@2.11.0 >/dev/null
fi
