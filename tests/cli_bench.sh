#!/bin/sh
# CLI checks for `ember bench` on the bundled model (tiny settings, a few
# seconds at most). Run by tests/run_all.sh with EMBER set to the binary.
EMBER=${EMBER:-build/ember}
MODEL=models/stories260K.gguf
fail() { echo "cli_bench: FAIL: $*"; exit 1; }
out=$(mktemp) || exit 1
err=$(mktemp) || exit 1
trap 'rm -f "$out" "$err"' EXIT

# The table: one row per test.
"$EMBER" bench -m "$MODEL" -t 1 --pp 8,16 --tg 4 --batch 1,3 --reps 2 >"$out" 2>"$err" || fail "table run: $(cat "$err")"
for row in '| pp8 ' '| pp16 ' '| tg4 ' '| tg4 x1 ' '| tg4 x3 '; do
    grep -qF "$row" "$out" || fail "no row '$row' in: $(cat "$out")"
done
grep -q 'MiB of weights streamed per decode call' "$out" || fail "no size line"

# Contemplation: one row per branch count.
"$EMBER" bench -m "$MODEL" -t 1 --pp 0 --batch 0 --tg 8 --contemplate 1,2,4 --reps 1 >"$out" 2>"$err" ||
    fail "contemplate run: $(cat "$err")"
for row in '| ct8 x1 ' '| ct8 x2 ' '| ct8 x4 '; do
    grep -qF "$row" "$out" || fail "no row '$row' in: $(cat "$out")"
done

# JSON: one object with every test, the reps and the model size.
"$EMBER" bench -m "$MODEL" -t 2 --pp 8 --tg 3 --batch 2 --reps 3 --json >"$out" 2>"$err" || fail "json run: $(cat "$err")"
[ "$(wc -l <"$out")" -eq 1 ] || fail "--json printed more than one line"
for key in '"engine":"ember"' '"name":"pp8"' '"name":"tg3"' '"name":"tg3 x2"' '"n_seqs":2' '"size_bytes":1171200' \
           '"median_tps":' '"tps":[' '"streamed_bytes_per_call":'; do
    grep -qF "$key" "$out" || fail "no $key in: $(cat "$out")"
done
if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["results"])==3 and all(len(r["tps"])==3 and min(r["tps"])>0 for r in d["results"])' "$out" \
        || fail "--json is not valid JSON with 3 results of 3 reps: $(cat "$out")"
fi

# Bad arguments: exit status 1, one line on stderr, nothing on stdout.
bad() {
    expect=$1; shift
    if "$EMBER" bench "$@" >"$out" 2>"$err"; then fail "bench $* succeeded"; fi
    [ -s "$out" ] && fail "bench $* printed to stdout"
    [ "$(wc -l <"$err")" -eq 1 ] || fail "bench $*: expected one line on stderr, got: $(cat "$err")"
    grep -qF -- "$expect" "$err" || fail "bench $*: expected '$expect' in: $(cat "$err")"
}
bad "--pp: 'x' is not an integer" -m "$MODEL" --pp 8,x
bad "--reps: 0 is out of range" -m "$MODEL" --reps 0
bad "--tg needs a value" -m "$MODEL" --tg
bad "unknown option '--bogus'" -m "$MODEL" --bogus
bad "nothing to run" -m "$MODEL" --pp 0 --tg 0
bad "no-such-model.gguf" -m no-such-model.gguf
bad "--batch: 300 is out of range" -m "$MODEL" --batch 300
bad "--contemplate: 65 is out of range" -m "$MODEL" --contemplate 65
exit 0
