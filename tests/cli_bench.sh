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
# (bench/run.mjs pairs ember's and llama.cpp's rows by these names.)
"$EMBER" bench -m "$MODEL" -t 2 --pp 8 --tg 3 --batch 2 --contemplate 2 --reps 3 --json >"$out" 2>"$err" ||
    fail "json run: $(cat "$err")"
[ "$(wc -l <"$out")" -eq 1 ] || fail "--json printed more than one line"
for key in '"engine":"ember"' '"name":"pp8"' '"name":"tg3"' '"name":"tg3 x2"' '"n_seqs":2' '"size_bytes":1171200' \
           '"name":"ct3 x2","kind":"contemplate","n_tokens":3,"n_seqs":2' \
           '"median_tps":' '"tps":[' '"streamed_bytes_per_call":'; do
    grep -qF "$key" "$out" || fail "no $key in: $(cat "$out")"
done
if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["results"])==4 and all(len(r["tps"])==3 and min(r["tps"])>0 for r in d["results"])' "$out" \
        || fail "--json is not valid JSON with 4 results of 3 reps: $(cat "$out")"
fi

# Early stopping (bench/contemplate_early.sh, its default setup: branches
# that agree after two tokens, a few that wander): same answers, fewer tokens
# with early stopping, and the table.
REPS=1 SEEDS="100 500" EMBER="$EMBER" sh bench/contemplate_early.sh >"$out" 2>"$err" ||
    fail "contemplate_early.sh: $(cat "$err")"
grep -qF '| seed | answer | agree (early / full) |' "$out" || fail "contemplate_early.sh: no table in: $(cat "$out")"
[ "$(grep -c '^| [0-9]* | lily | ' "$out")" -eq 2 ] || fail "contemplate_early.sh: expected 2 rows answering 'lily': $(cat "$out")"
awk -F'|' '$2 ~ /total/ { found = 1; te = $6 + 0; tf = $7 + 0 }
           END { exit !(found && te > 0 && te < tf) }' "$out" ||
    fail "contemplate_early.sh: early stopping did not spend fewer tokens: $(cat "$out")"

# Mixture of experts: weights streamed per decode token count only the
# experts a token is routed to. tiny-moe in Q8_0 (34 bytes per 32 values),
# synthetic vocabulary of 300, E 256, F 512, KV 128, 4 experts, 2 used:
# per layer norms 2*1024 + q,o 2*256*272 + k,v 2*128*272 + router 256*4*4
# = 215040, experts 3 * 4*512*272 = 1671168 (half of it active), 2 layers;
# plus output_norm 1024, output 300*272 and one token_embd row of 272.
moe=$(mktemp -d) || exit 1
trap 'rm -rf "$out" "$err" "$moe"' EXIT
"$EMBER" mkmodel "$moe/m.gguf" --shape tiny-moe --vocab-from none --vocab 300 --type q8_0 --quiet 2>"$err" ||
    fail "mkmodel tiny-moe: $(cat "$err")"
"$EMBER" bench -m "$moe/m.gguf" -t 1 --pp 4 --tg 2 --batch 0 --reps 1 --json >"$out" 2>"$err" || fail "moe json run: $(cat "$err")"
active=$(( 2 * (215040 + 1671168 / 2) + 1024 + 300 * 272 + 272 ))
all=$(( 2 * (215040 + 1671168) + 1024 + 2 * 300 * 272 ))
for key in "\"streamed_bytes_per_call\":$active," "\"size_bytes\":$all," '"n_expert":4,"n_expert_used":2,'; do
    grep -qF "$key" "$out" || fail "moe: no $key in: $(cat "$out")"
done
"$EMBER" bench -m "$moe/m.gguf" -t 1 --pp 4 --tg 2 --batch 0 --reps 1 >"$out" 2>"$err" || fail "moe table run: $(cat "$err")"
grep -qF "$(awk "BEGIN { printf \"%.2f\", $active / 1048576 }") MiB of weights streamed per decode token (active: 2 of 4 experts)" "$out" ||
    fail "moe: no active-experts size line in: $(cat "$out")"

# Memory and load time: the text line; in JSON, figures that make sense for
# the 1185376-byte bundled model (weights used in place: RSS within the
# budget 1.10 x (file + KV) + 32 MiB, a load far below a second).
"$EMBER" bench -m "$MODEL" -t 1 --pp 0 --tg 4 --batch 0 --reps 1 >"$out" 2>"$err" || fail "memory run: $(cat "$err")"
grep -q '^memory: file 1\.1 MiB + KV cache [0-9.]* MiB; RSS after load [0-9.]* MiB (peak [0-9.]*), after the tests [0-9.]* MiB (peak [0-9.]*); budget 1\.10 x (file + KV) + 32 MiB = [0-9.]* MiB: within$' "$out" ||
    fail "no memory line in: $(cat "$out")"
"$EMBER" bench -m "$MODEL" -t 1 --pp 0 --tg 4 --batch 0 --reps 1 --json >"$out" 2>"$err" || fail "memory json run: $(cat "$err")"
for key in '"file_bytes":1185376,' '"rss_ok":true,' '"mlock":false,' '"membw_gbs":null,' '"tg_bw_fraction":null,'; do
    grep -qF "$key" "$out" || fail "no $key in: $(cat "$out")"
done
num() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" "$out"; }
awk -v load="$(num load_ms)" -v kv="$(num kv_bytes)" -v rl="$(num rss_load_bytes)" -v hl="$(num hwm_load_bytes)" \
    -v rr="$(num rss_run_bytes)" -v hr="$(num hwm_run_bytes)" -v lim="$(num rss_limit_bytes)" \
    'BEGIN { exit !(load > 0 && load < 1000 && kv > 0 && rl > 1048576 && rl <= hl && hl <= hr && rr <= hr &&
                    lim == int(1.10 * (1185376 + kv) + 33554432 + 0.5) && rr <= lim) }' ||
    fail "memory figures out of range: $(cat "$out")"
# --membw: the bandwidth and the decode rate as a fraction of its bound.
"$EMBER" bench -m "$MODEL" -t 2 --pp 0 --tg 4 --batch 0 --reps 1 --membw >"$out" 2>"$err" || fail "--membw run: $(cat "$err")"
grep -q '^memory read bandwidth: [0-9.]* GB/s (2 threads, best of 3 passes over 1 GiB)$' "$out" || fail "no bandwidth line in: $(cat "$out")"
grep -q '^decode tg4: [0-9.]* t/s x 0\.99 MiB/token = [0-9.]* GB/s = [0-9.]*% of the bandwidth bound ([0-9.]* t/s)$' "$out" ||
    fail "no decode fraction line in: $(cat "$out")"
# --mlock: the whole file is locked (VmLck), or, where RLIMIT_MEMLOCK is
# below the file's size, the load fails saying so. With the limit at 0 (and
# as root without CAP_IPC_LOCK) it must fail that way. AddressSanitizer
# replaces mlock() with a no-op that succeeds: there only the option's way
# to the load can be checked.
if grep -q __asan_init "$EMBER" 2>/dev/null; then
    "$EMBER" bench -m "$MODEL" -t 1 --pp 0 --tg 2 --batch 0 --reps 1 --mlock --json >"$out" 2>"$err" ||
        fail "--mlock (ASan build): $(cat "$err")"
    grep -qF '"mlock":true,' "$out" || fail "--mlock: not reported in: $(cat "$out")"
else
    if "$EMBER" bench -m "$MODEL" -t 1 --pp 0 --tg 2 --batch 0 --reps 1 --mlock --json >"$out" 2>"$err"; then
        grep -qF '"mlock":true,' "$out" || fail "--mlock: not reported in: $(cat "$out")"
        [ "$(num locked_bytes)" -ge 1185376 ] || fail "--mlock: less than the file locked: $(cat "$out")"
    else
        grep -q 'mlock of the 1\.1 MiB model failed.*RLIMIT_MEMLOCK is [0-9]* KiB' "$err" || fail "--mlock failed without naming the limit: $(cat "$err")"
    fi
    nolock() { sh -c 'ulimit -l 0 && exec "$@"' sh "$@"; }
    if [ "$(id -u)" = 0 ]; then
        command -v setpriv >/dev/null 2>&1 || fail "setpriv (util-linux) is needed to test --mlock without CAP_IPC_LOCK as root"
        nolock() { setpriv --inh-caps=-ipc_lock --bounding-set=-ipc_lock sh -c 'ulimit -l 0 && exec "$@"' sh "$@"; }
    fi
    if nolock "$EMBER" bench -m "$MODEL" -t 1 --pp 0 --tg 2 --batch 0 --reps 1 --mlock >"$out" 2>"$err"; then
        fail "--mlock with RLIMIT_MEMLOCK 0 succeeded: $(cat "$out")"
    fi
    [ "$(wc -l <"$err")" -eq 1 ] && grep -q '^ember: mlock of the 1\.1 MiB model failed (.*): RLIMIT_MEMLOCK is 0 KiB; raise it' "$err" ||
        fail "--mlock with RLIMIT_MEMLOCK 0: expected one line naming the limit, got: $(cat "$err")"
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
