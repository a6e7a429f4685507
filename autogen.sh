#!/bin/sh
# Regenerates the build system from configure.ac and Makefile.am.
set -e
cd "$(dirname "$0")"
mkdir -p m4 build-aux
autoreconf --force --install
# The TAP test driver ships with automake but is not copied by autoreconf.
cp -f "$(automake --print-libdir)/tap-driver.sh" build-aux/tap-driver.sh
