#!/bin/sh
# contemplate_early.sh - contemplation's early stopping: time to the final
# answer and tokens spent with early stopping and without (--no-early-stop),
# on a run where the branches agree early. Prints a markdown table.
#
# Each run is `ember run --contemplate N --aggregate vote` (the time is the
# whole ember_contemplate call as `ember run` reports it: prefill, branches,
# vote; not the model load). The default setup is the bundled
# stories260K model asked to name the girl of the story, with a stop at the
# first "." so that a branch's answer is its first sentence: most branches
# say " Lily." within two tokens, a few wander into longer sentences, and the
# vote is decided as soon as the agreeing branches are done (early stopping
# then cancels the wanderers). Tokens are deterministic per seed; times are
# the median of REPS runs.
#
# Settings (environment):
#   EMBER     binary (default build/ember)
#   MODEL     GGUF (default models/stories260K.gguf)
#   PROMPT    (default "Once upon a time, there was a little girl named")
#   STOP      stop string (default "."; empty: none)
#   BRANCHES  (default 16)    TOKENS  branch budget (default 128)
#   TEMP      (default 1.5)   SEEDS   one run per seed (default "100 200 300 400 500 600")
#   REPS      timed runs per seed and mode, median (default 5)
#   THREADS   (default 1)
EMBER=${EMBER:-build/ember}
MODEL=${MODEL:-models/stories260K.gguf}
PROMPT=${PROMPT:-"Once upon a time, there was a little girl named"}
STOP=${STOP-.}
BRANCHES=${BRANCHES:-16}
TOKENS=${TOKENS:-128}
TEMP=${TEMP:-1.5}
SEEDS=${SEEDS:-"100 200 300 400 500 600"}
REPS=${REPS:-5}
THREADS=${THREADS:-1}
case $REPS in '' | *[!0-9]* | 0) echo "contemplate_early: REPS must be a positive integer" >&2; exit 2 ;; esac
[ -x "$EMBER" ] || { echo "contemplate_early: $EMBER is not an executable (build it, or set EMBER)" >&2; exit 2; }
set -f # answers are words, not patterns
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT

# one_run SEED MODE: runs ember once; prints "ms tokens agree/n cancelled answer"
one_run() {
    if [ "$2" = early ]; then es=; else es=--no-early-stop; fi
    if [ -n "$STOP" ]; then
        set -- "$1" --stop "$STOP"
    else
        set -- "$1"
    fi
    # shellcheck disable=SC2086 # $es is empty or one word
    "$EMBER" run -m "$MODEL" -t "$THREADS" --contemplate "$BRANCHES" --aggregate vote $es -n "$TOKENS" \
        --temp "$TEMP" --seed "$@" -p "$PROMPT" >"$T/out" 2>"$T/err" ||
        { echo "contemplate_early: ember failed (seed $1): $(tail -n 1 "$T/err")" >&2; return 1; }
    awk -v out="$T/out" '
        / prompt tokens once, / { for (i = 1; i <= NF; i++) { if ($(i + 1) == "generated,") tok = $i; if ($(i + 1) == "ms,") ms = $i } }
        /: cancelled, / { cancelled++ }
        END {
            while ((getline line < out) > 0)
                if (line ~ /^=== answer \(vote, /) { split(line, a, " "); agree = a[4]; sub(/^=== answer \([^)]*\): /, "", line); ans = line }
            if (tok == "" || ms == "" || agree == "") exit 1
            printf "%s %s %s %d %s\n", ms, tok, agree, cancelled, ans
        }' "$T/err" || { echo "contemplate_early: cannot read the summary of ember run (seed $1)" >&2; return 1; }
}

echo "Contemplation early stopping: \`ember run --contemplate $BRANCHES --aggregate vote\`, $(basename "$MODEL"),"
echo "temperature $TEMP, branch budget $TOKENS tokens, stop \"$STOP\", $THREADS thread(s); time to the final answer"
echo "(ember_contemplate: prefill + branches + vote), median of $REPS runs; prompt: \"$PROMPT\""
echo
echo "| seed | answer | agree (early / full) | cancelled | tokens early | tokens full | ms early | ms full | speedup |"
echo "|---:|---|---|---:|---:|---:|---:|---:|---:|"
# measure SEED MODE: REPS runs; prints "median_ms tokens agree/n cancelled answer"
measure() {
    : >"$T/ms"
    r=0
    while [ $r -lt "$REPS" ]; do
        line=$(one_run "$1" "$2") || return 1
        # shellcheck disable=SC2086 # split into words (globbing is off)
        set -- "$1" "$2" $line
        echo "$3" >>"$T/ms"
        if [ $r -eq 0 ]; then
            first=$line tok=$4
        elif [ "$4" != "$tok" ]; then
            echo "contemplate_early: seed $1 ($2) spent $tok then $4 tokens: not deterministic" >&2
            return 1
        fi
        r=$((r + 1))
    done
    med=$(sort -n "$T/ms" | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    echo "$med ${first#* }"
}

: >"$T/sum"
for seed in $SEEDS; do
    e=$(measure "$seed" early) || exit 1
    f=$(measure "$seed" full) || exit 1
    # shellcheck disable=SC2086
    set -- $f
    ms_full=$1 tok_full=$2 agree_full=$3
    shift 4
    ans_full="$*"
    # shellcheck disable=SC2086
    set -- $e
    ms_early=$1 tok_early=$2 agree_early=$3 canc_early=$4
    shift 4
    if [ "$*" != "$ans_full" ]; then
        echo "contemplate_early: seed $seed: early stopping changed the answer ('$*' vs '$ans_full')" >&2
        exit 1
    fi
    awk -v s="$seed" -v a="$ans_full" -v ge="$agree_early" -v gf="$agree_full" -v c="$canc_early" -v te="$tok_early" \
        -v tf="$tok_full" -v me="$ms_early" -v mf="$ms_full" \
        'BEGIN { printf "| %s | %s | %s / %s | %d | %d | %d | %.2f | %.2f | %.2fx |\n", s, a, ge, gf, c, te, tf, me, mf, mf / me }'
    echo "$tok_early $tok_full $ms_early $ms_full" >>"$T/sum"
done
awk '{ te += $1; tf += $2; me += $3; mf += $4 }
     END { printf "| total | | | | %d | %d | %.2f | %.2f | %.2fx |\n", te, tf, me, mf, mf / me
           printf "\nEarly stopping spent %d of %d tokens (%.0f%% fewer) and reached the answers %.2fx as fast.\n",
                  te, tf, 100 * (1 - te / tf), mf / me }' "$T/sum"
