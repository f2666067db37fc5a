#!/bin/sh
# Runs the system tests with Debian's pytest (python3 on PATH may be another interpreter).
# KEEL and KEEL_ORIGIN point at the binaries under test (the Makefile sets them).
set -e
cd "$(dirname "$0")"
exec /usr/bin/python3 -m pytest -p no:cacheprovider -q "$@" .
