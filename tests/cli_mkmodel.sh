#!/bin/sh
# CLI checks for `ember mkmodel`: a tiny model is written, runs, is
# reproducible; bad arguments give one-line errors and leave no file.
EMBER=${EMBER:-build/ember}
fail() { echo "cli_mkmodel: FAIL: $*"; exit 1; }
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
err="$dir/err"

"$EMBER" mkmodel "$dir/a.gguf" --shape tiny --vocab-from none --vocab 300 --type q4_0 --seed 5 2>"$err" \
    || fail "mkmodel: $(cat "$err")"
grep -q 'wrote .*a.gguf: q4_0, 2 layers' "$err" || fail "no summary: $(cat "$err")"
"$EMBER" mkmodel "$dir/b.gguf" --layers 2 --embd 256 --heads 4 --kv-heads 2 --ff 768 --ctx 2048 \
    --vocab-from none --vocab 300 --type q4_0 --seed 5 --name tiny -t 1 --quiet 2>"$err" || fail "mkmodel custom: $(cat "$err")"
[ -s "$err" ] && fail "--quiet printed: $(cat "$err")"
cmp -s "$dir/a.gguf" "$dir/b.gguf" || fail "--shape tiny and the same dimensions given one by one differ"
"$EMBER" run -m "$dir/a.gguf" -p "hi" -n 4 --temp 0 --quiet >/dev/null 2>"$err" || fail "run: $(cat "$err")"
if [ -f ../shared/vocab/ggml-vocab-llama-spm.gguf ]; then
    "$EMBER" mkmodel "$dir/spm.gguf" --shape tiny --vocab-from ../shared/vocab/ggml-vocab-llama-spm.gguf --type f16 --quiet \
        || fail "mkmodel with a vocabulary file"
    ids=$("$EMBER" tokenize -m "$dir/spm.gguf" -p "Hello world" --no-bos 2>/dev/null || "$EMBER" tokenize -m "$dir/spm.gguf" -p "Hello world")
    echo "$ids" | grep -q '15043, 3186' || fail "tokenizer not copied: $ids"
fi

bad() {
    expect=$1; shift
    if "$EMBER" mkmodel "$@" >"$dir/out" 2>"$err"; then fail "mkmodel $* succeeded"; fi
    [ "$(wc -l <"$err")" -eq 1 ] || fail "mkmodel $*: expected one line on stderr, got: $(cat "$err")"
    grep -qF -- "$expect" "$err" || fail "mkmodel $*: expected '$expect' in: $(cat "$err")"
}
bad "no output file" --shape tiny
bad "unknown shape 'huge'" "$dir/x.gguf" --shape huge
bad "unknown type 'q9'" "$dir/x.gguf" --shape tiny --type q9
bad "--layers is required" "$dir/x.gguf" --embd 256 --heads 4 --ff 768
bad "--vocab-from none needs --vocab" "$dir/x.gguf" --shape tiny --vocab-from none
bad "--heads: 'four' is not an integer" "$dir/x.gguf" --shape tiny --heads four
bad "not a multiple of heads" "$dir/x.gguf" --shape tiny --heads 3 --vocab-from none --vocab 300
bad "synthetic vocabulary" "$dir/x.gguf" --shape tiny --vocab-from none --vocab 10
bad "missing.gguf" "$dir/x.gguf" --shape tiny --vocab-from "$dir/missing.gguf"
bad "unknown option '--bogus'" "$dir/x.gguf" --bogus
bad "more than one output file" "$dir/x.gguf" "$dir/y.gguf" --shape tiny
[ -e "$dir/x.gguf" ] && fail "a failed mkmodel left $dir/x.gguf"
ls "$dir" | grep -q tmp && fail "a temporary file was left: $(ls "$dir")"
exit 0
