#!/bin/sh
# Runs unit test binaries (built with tests/unit/unit.h), prints each one's summary and the total.
# Usage: tests/unit/run.sh BIN...
# A binary that dies without printing its "N passed, N failed" line (signal, sanitizer report,
# exit()) counts as one failed test. Exits 1 when a test failed or a binary crashed.
set -u

if [ $# -eq 0 ]; then
	echo "usage: $0 BIN..." >&2
	exit 2
fi

total_pass=0
total_fail=0
bad=0
out=$(mktemp "${TMPDIR:-/tmp}/keel-unit.XXXXXX") || exit 2
trap 'rm -f "$out"' EXIT INT TERM

for bin in "$@"; do
	name=$(basename "$bin")
	if [ ! -x "$bin" ]; then
		echo "$name: not found or not executable"
		total_fail=$((total_fail + 1))
		bad=1
		continue
	fi
	"$bin" >"$out" 2>&1
	rc=$?
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
	if [ -z "$summary" ]; then
		# No summary: the binary crashed. Show everything it said.
		cat "$out"
		if [ $rc -gt 128 ]; then
			echo "$name: CRASHED (signal $((rc - 128)))"
		else
			echo "$name: CRASHED (exit status $rc, no summary line)"
		fi
		total_fail=$((total_fail + 1))
		bad=1
		continue
	fi
	p=${summary%% passed*}
	f=${summary#*passed, }
	f=${f%% failed}
	if [ "$f" -ne 0 ] || [ $rc -ne 0 ]; then
		# Failed checks (and anything a sanitizer printed) before the summary.
		grep -vE '^[0-9]+ passed, [0-9]+ failed$' "$out"
		bad=1
		if [ "$f" -eq 0 ]; then
			echo "$name: exit status $rc despite no failed test"
			f=1
		fi
	fi
	skipped=$(sed -n 's/^\([0-9][0-9]*\) known-bug test(s) skipped.*/\1/p' "$out" | tail -n 1)
	if [ -n "$skipped" ]; then
		echo "$name: $p passed, $f failed ($skipped known-bug tests skipped)"
	else
		echo "$name: $p passed, $f failed"
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
done

echo "$total_pass passed, $total_fail failed"
[ $bad -eq 0 ] && [ $total_fail -eq 0 ]
