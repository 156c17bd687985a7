#!/bin/sh
# CLI checks for `ember mkmodel`: a tiny model (dense and mixture of experts)
# is written, runs, is reproducible; bad arguments give one-line errors and
# leave no file.
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

# Mixture of experts: the named shape and the same thing from flags are one
# file; inspect shows the expert counts and Mixtral's stacked tensors; it runs.
"$EMBER" mkmodel "$dir/moe.gguf" --shape tiny-moe --vocab-from none --vocab 300 --type q8_0 --seed 2 2>"$err" \
    || fail "mkmodel tiny-moe: $(cat "$err")"
grep -q 'ff 512, 4 experts (2 used), vocab 300' "$err" || fail "no MoE summary: $(cat "$err")"
"$EMBER" mkmodel "$dir/moe2.gguf" --shape tiny --ff 512 --experts 4 --experts-used 2 --name tiny-moe \
    --vocab-from none --vocab 300 --type q8_0 --seed 2 --quiet || fail "mkmodel --experts"
cmp -s "$dir/moe.gguf" "$dir/moe2.gguf" || fail "--shape tiny-moe and --shape tiny --ff 512 --experts 4 differ"
"$EMBER" inspect "$dir/moe.gguf" >"$dir/inspect" 2>"$err" || fail "inspect: $(cat "$err")"
for line in 'experts: 4 (llama.expert_count)' 'experts used per token: 2 (llama.expert_used_count)' \
            'blk.1.ffn_gate_exps.weight       Q8_0    256 x 512 x 4' 'blk.1.ffn_up_exps.weight         Q8_0    256 x 512 x 4' \
            'blk.1.ffn_down_exps.weight       Q8_0    512 x 256 x 4' 'blk.1.ffn_gate_inp.weight        F32     256 x 4 '; do
    grep -qF "$line" "$dir/inspect" || fail "inspect: no '$line' in: $(cat "$dir/inspect")"
done
grep -q 'ffn_up\.weight' "$dir/inspect" && fail "a MoE file has a dense ffn_up"
out=$("$EMBER" run -m "$dir/moe.gguf" -p "hi" -n 6 --temp 0 2>"$err") || fail "run moe: $(cat "$err")"
grep -q 'generated 6 tokens' "$err" || fail "run moe generated no tokens: $(cat "$err")"
[ -n "$out" ] || fail "run moe printed nothing"
"$EMBER" mkmodel "$dir/dense.gguf" --shape tiny-moe --experts 0 --vocab-from none --vocab 300 --quiet || fail "--experts 0"
"$EMBER" inspect "$dir/dense.gguf" | grep -q 'expert' && fail "--experts 0 still wrote experts"
"$EMBER" mkmodel --help | grep -q 'mixtral-mini .*8 experts (2 used)' || fail "help lists no mixtral-mini"

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
bad "--experts: 300 is out of range" "$dir/x.gguf" --shape tiny --experts 300
bad "--experts-used needs --experts" "$dir/x.gguf" --shape tiny --experts-used 2 --vocab-from none --vocab 300
bad "experts-used 5 must be in [1, experts 4]" "$dir/x.gguf" --shape tiny --experts 4 --experts-used 5 --vocab-from none --vocab 300
[ -e "$dir/x.gguf" ] && fail "a failed mkmodel left $dir/x.gguf"
ls "$dir" | grep -q tmp && fail "a temporary file was left: $(ls "$dir")"
exit 0
