#!/bin/sh
# demo-page.sh: the API tokens pages of keywarden-ssod on this machine, against a test IdP.
# Builds like quickstart.sh (into ./build), then starts keywarden-ssod on
# http://127.0.0.1:PORT (default 8080), the validator, and a test SAML IdP made of
# python3-lasso on PORT+1, all in a temporary state folder removed at the end. Open
# http://127.0.0.1:PORT/tokens, choose "Sign in with SSO", pick a user. Ctrl-C stops.
# The test IdP signs anyone in who clicks: never expose these ports.
set -e
cd "$(dirname "$0")"
top=$(pwd)
./install-deps.sh
[ -x configure ] || ./autogen.sh
mkdir -p build
(cd build && { [ -f Makefile ] || ../configure >configure.out; } && make -j"$(nproc)" >make.out)
top_srcdir="$top" top_builddir="$top/build" exec /usr/bin/python3 \
	"$top/tests/page/demo_idp.py" "${1:-8080}"
