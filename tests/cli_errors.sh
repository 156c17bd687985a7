#!/bin/sh
# CLI behaviour: the happy paths print what llama.cpp / llama2.c print, and
# bad input gets a one-line error on stderr and a non-zero exit status.
# Run by tests/run_all.sh with EMBER set to the binary under test.
EMBER=${EMBER:-build/ember}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0; passes=0
ok() { passes=$((passes+1)); }
bad() { echo "FAIL: $*"; fails=$((fails+1)); }

# expect_error NAME NEEDLE CMD...: non-zero exit, exactly one stderr line containing NEEDLE
expect_error() {
    name=$1; needle=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"; rc=$?
    lines=$(wc -l <"$T/err")
    if [ $rc -eq 0 ]; then bad "$name: exit 0"; return; fi
    if [ $rc -ge 128 ]; then bad "$name: crashed (status $rc)"; return; fi
    if [ "$lines" -ne 1 ]; then bad "$name: $lines stderr lines: $(cat "$T/err")"; return; fi
    if ! grep -qF -- "$needle" "$T/err"; then bad "$name: '$(cat "$T/err")' lacks '$needle'"; return; fi
    ok
}

# --- happy paths -------------------------------------------------------------
out=$("$EMBER" run --greedy -n 64 --quiet -p "Once upon a time")
case "$out" in
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high."*) ok ;;
    *) bad "greedy story differs from llama2.c's: $out" ;;
esac
[ "$("$EMBER" tokenize -p "Once upon a time")" = "[1, 403, 407, 261, 378]" ] && ok || bad "tokenize ids"
"$EMBER" tokenize --pieces -p "Once upon" | grep -q "403 -> ' Once'" && ok || bad "tokenize --pieces"
"$EMBER" logits --ids 1,403 --top 3 >"$T/l.json" && grep -q '"top"' "$T/l.json" && ok || bad "logits --top"
[ "$("$EMBER" run --greedy -n 32 -t 1 --quiet -p "The little dog")" = "$("$EMBER" run --greedy -n 32 -t 2 --quiet -p "The little dog")" ] \
    && ok || bad "-t 1 and -t 2 differ"
s1=$("$EMBER" run --seed 7 --temp 1 -n 40 --quiet -p "One day")
s2=$("$EMBER" run --seed 7 --temp 1 -n 40 --quiet -p "One day")
[ "$s1" = "$s2" ] && ok || bad "same seed, different text"
"$EMBER" inspect models/stories260K.gguf | grep -q "llama.block_count" && ok || bad "inspect"
"$EMBER" run --greedy -n 50 --quiet --stop "Lily" -p "Once upon a time" >"$T/stop"
grep -q "Lily" "$T/stop" && bad "stop string was emitted" || ok
# contemplation sizes its KV cache for all branches (8 x 100 tokens are more
# than the model's 512 positions, which used to be the cache)
if "$EMBER" run --contemplate 8 --no-early-stop -n 100 --seed 1 -p "Once upon a time" >"$T/ct" 2>"$T/cterr"; then
    ctx=$(sed -n 's/.*contemplating with 8 branches (vote), seed 1, context \([0-9]*\)$/\1/p' "$T/cterr")
    if ! grep -q '^=== answer (vote, [0-9]/8 branches agree)' "$T/ct"; then bad "contemplate: no answer line: $(cat "$T/ct")"
    elif [ -z "$ctx" ] || [ "$ctx" -lt 805 ]; then bad "contemplate: context '$ctx' is not sized for 8 x 100 tokens"
    else ok; fi
else
    bad "contemplate 8 x 100 tokens failed: $(cat "$T/cterr")"
fi

# --- bad input ---------------------------------------------------------------
expect_error "missing file" "No such file" "$EMBER" run -m "$T/nope.gguf" -p hi
expect_error "directory" "is a directory" "$EMBER" run -m "$T" -p hi
printf 'GGUF\003\000\000\000garbage' >"$T/bad.gguf"
expect_error "malformed gguf" "truncated" "$EMBER" run -m "$T/bad.gguf" -p hi
printf 'not a model at all, just text' >"$T/text.gguf"
expect_error "not gguf" "not a GGUF file" "$EMBER" run -m "$T/text.gguf" -p hi
long=$(printf 'Once upon a time %.0s' $(seq 1 40))
expect_error "prompt longer than context" "longer than the context" "$EMBER" run -c 16 -p "$long"
expect_error "branch longer than the model's context" "more than the model's context of 512" \
    "$EMBER" run --contemplate 2 -n 600 -p "Once upon a time"
expect_error "contemplate -c too small" "-c is too small for these branches" \
    "$EMBER" run --contemplate 4 -c 64 -n 40 --seed 3 --quiet -p "Once upon a time"
expect_error "unknown flag" "unknown option '--bogus'" "$EMBER" run --bogus -p hi
expect_error "bad number" "'abc' is not an integer" "$EMBER" run -n abc -p hi
expect_error "threads out of range" "out of range" "$EMBER" run -t 0 -p hi
expect_error "bad temperature" "is not a number" "$EMBER" run --temp hot -p hi
expect_error "missing value" "needs a value" "$EMBER" run -p
expect_error "no prompt" "no prompt" "$EMBER" run
expect_error "bad kv" "--kv" "$EMBER" run --kv f8 -p hi
expect_error "bad ids" "comma-separated" "$EMBER" logits --ids 1,x,3
expect_error "id out of range" "out of range" "$EMBER" logits --ids 1,99999
expect_error "unknown command" "unknown command" "$EMBER" frobnicate
expect_error "convert missing input" "No such file" "$EMBER" convert llama2c "$T/a.bin" "$T/b.bin" "$T/out.gguf"

echo "cli_errors: $passes passed, $fails failed"
[ $fails -eq 0 ]
