#!/bin/sh
# Checks the Debian packages keel needs to build, test or benchmark; installs the missing ones
# when run as root, otherwise prints the exact apt-get line.
# Usage: tools/deps.sh [build|test|bench|all] (default all: build and test)
set -eu
what=${1:-all}
build_pkgs="gcc make libc6-dev node-llhttp libpcre2-dev libsystemd-dev libssl-dev libjansson-dev"
# php-cli: tests/system/test_cookies.py (PHP file sessions behind cookie persistence).
# prometheus: tests/system/test_metrics.py scrapes keel with the real server and runs promtool.
# memcached, php-memcached: tests/system/test_sessions_memcached.py (PHP sessions in memcached).
# php-fpm: tests/system/test_post_freeze.py (PHP behind nginx, as sites run it).
# pebble: tests/system/test_acme.py (a real ACME server on loopback, and its DNS stub).
# openssl (the CLI: test certificates, s_client), sslscan: the TLS tests (tests/system/test_tls*.py).
test_pkgs="python3 python3-pytest nginx curl openssl clang llvm libclang-rt-14-dev prometheus chromium php-cli memcached php-memcached php-fpm sslscan pebble"
# chromium: the headless browser of tests/system/test_dashboard.py (stats dashboard).
# bench/run; perf (linux-perf) is optional: without it the untraced syscall count is left out.
# valgrind: bench/instr (instructions per request, callgrind).
bench_pkgs="gcc make python3 nginx haproxy wrk strace valgrind"
case "$what" in
build) pkgs="$build_pkgs" ;;
test) pkgs="$test_pkgs" ;;
bench) pkgs="$bench_pkgs" ;;
*) pkgs="$build_pkgs $test_pkgs" ;;
esac
missing=""
for p in $pkgs; do
	case "$p" in
	nginx)
		# any nginx flavour will do
		command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing $p" ;;
	*)
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
	echo "tools/deps.sh: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
	echo "tools/deps.sh: missing Debian packages. Run:"
	echo "  sudo apt-get install -y$missing"
	exit 1
fi
