#!/bin/sh
# Runs every test program of one build folder, then the CLI checks; prints
# "N passed, N failed" and exits non-zero if anything failed.
B=${1:-build}
pass=0; fail=0; failed=""
for t in "$B"/tests/test_*; do
    [ -x "$t" ] || continue
    if "$t"; then pass=$((pass+1)); else fail=$((fail+1)); failed="$failed $(basename "$t")"; fi
done
for s in tests/cli_*.sh; do
    [ -f "$s" ] || continue
    if EMBER="$B/ember" sh "$s"; then pass=$((pass+1)); else fail=$((fail+1)); failed="$failed $(basename "$s")"; fi
done
echo "$B: $pass passed, $fail failed"
[ $fail -eq 0 ] || { echo "failed:$failed"; exit 1; }
