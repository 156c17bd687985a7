#!/bin/sh
# cli_server.sh - `ember serve` end to end, on 127.0.0.1 only, with the
# bundled model: starts five servers on free ports, checks every endpoint
# with curl, runs tests/server/api_test.mjs (streaming, n > 1, stop strings,
# logprobs, usage, every error case, 8 parallel requests vs `ember run`,
# preemption, client disconnects, queue limits, timeouts, contemplating
# mode vs `ember run --contemplate` and its KV memory, fuzzing), the
# official `openai` npm client (tests/node), and graceful shutdown.
# Every server is killed on exit. Needs curl, node and npm (the first run
# installs the pinned openai package into tests/node/node_modules).
set -u
EMBER=${EMBER:-build/ember}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
PIDS=""
pass=0
fail=0

cleanup() {
    for p in $PIDS; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }

for tool in curl node; do
    command -v "$tool" >/dev/null 2>&1 || { echo "cli_server: '$tool' is missing (scripts/deps.sh installs it)"; exit 1; }
done

# start NAME ARGS...: starts `ember serve` on a free port; sets PORT_NAME and PID_NAME
start() {
    name=$1
    shift
    "$EMBER" serve --host 127.0.0.1 --port 0 "$@" 2>"$TMP/$name.log" &
    pid=$!
    PIDS="$PIDS $pid"
    port=""
    i=0
    while [ $i -lt 400 ]; do
        if [ -z "$port" ]; then
            port=$(sed -n 's/^ember: listening on http:\/\/127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$TMP/$name.log")
        fi
        if [ -n "$port" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" = 200 ]; then
            eval "PORT_$name=$port PID_$name=$pid"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "cli_server: server $name died:"
            cat "$TMP/$name.log"
            exit 1
        fi
        sleep 0.05
        i=$((i + 1))
    done
    echo "cli_server: server $name did not come up"
    cat "$TMP/$name.log"
    exit 1
}

# stop PID SIGNAL: signals a server and waits for it (killed after 20 s); returns its exit status
stop() {
    kill "-$2" "$1"
    ( sleep 20; kill -KILL "$1" 2>/dev/null ) &
    dog=$!
    wait "$1"
    st=$?
    kill "$dog" 2>/dev/null
    wait "$dog" 2>/dev/null
    return $st
}

start MAIN --max-body 65536
start LONG --slots 1 --max-queue 1 --ctx 4096 --shutdown-grace 0.5
start SMALL --ctx 4096 --timeout 1
start PRE --slots 4 --ctx 256 --kv-pool 256
start CT --slots 8 --ctx 1280
M="http://127.0.0.1:$PORT_MAIN"

# ---- curl: every endpoint answers with the right status and type
check() { # NAME EXPECTED_STATUS CURL_ARGS...
    name=$1
    want=$2
    shift 2
    got=$(curl -s -o "$TMP/body" -D "$TMP/head" -w '%{http_code}' "$@")
    if [ "$got" = "$want" ]; then ok "curl: $name -> $want"; else bad "curl: $name -> $got, expected $want: $(head -c 300 "$TMP/body")"; fi
}
check "GET /health" 200 "$M/health"
grep -q '"status":"ok"' "$TMP/body" && ok "curl: health body" || bad "curl: health body"
check "GET /" 200 "$M/"
grep -qi '^content-type: text/html' "$TMP/head" && ok "curl: chat page is html" || bad "curl: chat page is html"
check "GET /v1/models" 200 "$M/v1/models"
grep -q '"id":"stories260K"' "$TMP/body" && ok "curl: model listed" || bad "curl: model listed"
check "GET /metrics" 200 "$M/metrics"
grep -q '^ember_kv_blocks_free ' "$TMP/body" && ok "curl: metrics text" || bad "curl: metrics text"
check "POST /v1/completions" 200 "$M/v1/completions" -H 'Content-Type: application/json' \
    -d '{"prompt":"Once upon a time","max_tokens":8,"temperature":0}'
check "POST /v1/chat/completions" 200 "$M/v1/chat/completions" \
    -d '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":8}'
check "streaming chat" 200 -N "$M/v1/chat/completions" \
    -d '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":8,"stream":true}'
tail -c 20 "$TMP/body" | grep -q 'data: \[DONE\]' && ok "curl: stream ends with [DONE]" || bad "curl: stream ends with [DONE]"
grep -qi '^content-type: text/event-stream' "$TMP/head" && ok "curl: event-stream type" || bad "curl: event-stream type"
check "invalid JSON" 400 "$M/v1/completions" -d '{"prompt":'
printf '{"prompt":"\377\376"}' >"$TMP/bad.json"
check "invalid UTF-8" 400 "$M/v1/completions" --data-binary "@$TMP/bad.json"
grep -q '"code":"invalid_utf8"' "$TMP/body" && ok "curl: invalid_utf8 code" || bad "curl: invalid_utf8 code"
check "unknown model" 404 "$M/v1/completions" -d '{"model":"nope","prompt":"x"}'
check "unknown path" 404 "$M/nope"
check "wrong method" 405 -X DELETE "$M/v1/models"
head -c 200000 /dev/zero | tr '\0' 'a' >"$TMP/big"
check "body over the limit (Expect: 100-continue)" 413 "$M/v1/completions" -H 'Expect: 100-continue' --data-binary "@$TMP/big"
check "body over the limit" 413 "$M/v1/completions" -H 'Expect:' --data-binary "@$TMP/big"
check "health after all that" 200 "$M/health"

# ---- the HTTP API in detail
if EMBER="$EMBER" MAIN="$M" LONG="http://127.0.0.1:$PORT_LONG" SMALL="http://127.0.0.1:$PORT_SMALL" \
    PRE="http://127.0.0.1:$PORT_PRE" CT="http://127.0.0.1:$PORT_CT" timeout 180 node "$ROOT/tests/server/api_test.mjs" >"$TMP/api.out" 2>&1; then
    sed 's/^/  /' "$TMP/api.out"
    ok "api_test.mjs"
else
    sed 's/^/  /' "$TMP/api.out"
    bad "api_test.mjs"
fi

# ---- the official openai client
NODE_DIR="$ROOT/tests/node"
if [ ! -f "$NODE_DIR/node_modules/openai/package.json" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        bad "openai client: npm is missing"
    elif ! (cd "$NODE_DIR" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >"$TMP/npm.log" 2>&1); then
        cat "$TMP/npm.log"
        bad "openai client: npm ci failed"
    fi
fi
if [ -f "$NODE_DIR/node_modules/openai/package.json" ]; then
    if BASE="$M" timeout 60 node "$NODE_DIR/openai_test.mjs" >"$TMP/oai.out" 2>&1; then
        ok "openai client ($(tail -n 1 "$TMP/oai.out"))"
    else
        cat "$TMP/oai.out"
        bad "openai client"
    fi
fi

# ---- graceful shutdown: in-flight requests finish within the grace period
curl -s -N "$M/v1/completions" -d '{"prompt":"Once upon a time","max_tokens":200,"ignore_eos":true,"stream":true}' \
    >"$TMP/inflight" &
CURL=$!
sleep 0.1
stop "$PID_MAIN" TERM
rc=$?
wait "$CURL"
[ $rc -eq 0 ] && ok "SIGTERM: exit status 0" || bad "SIGTERM: exit status $rc"
n=$(grep -c '"finish_reason":"length"' "$TMP/inflight")
tail -c 20 "$TMP/inflight" | grep -q 'data: \[DONE\]' && [ "$n" = 1 ] && ok "SIGTERM: the in-flight stream finished" ||
    bad "SIGTERM: the in-flight stream finished ($(tail -c 300 "$TMP/inflight"))"
curl -s -o /dev/null "$M/health" && bad "SIGTERM: still accepting" || ok "SIGTERM: no longer accepting"

# ... and those that do not finish in time are cancelled (LONG has a 0.5 s grace period)
L="http://127.0.0.1:$PORT_LONG"
curl -s -N "$L/v1/completions" -d '{"prompt":"Once upon a time","max_tokens":3000,"ignore_eos":true,"stream":true}' \
    >"$TMP/cut" &
CURL=$!
sleep 0.2
t0=$(date +%s)
stop "$PID_LONG" INT
rc=$?
wait "$CURL"
t1=$(date +%s)
[ $rc -eq 0 ] && ok "SIGINT: exit status 0" || bad "SIGINT: exit status $rc"
[ $((t1 - t0)) -le 4 ] && ok "SIGINT: stopped within the grace period" || bad "SIGINT: took $((t1 - t0)) s"
grep -q '"code":"shutting_down"' "$TMP/cut" && tail -c 20 "$TMP/cut" | grep -q 'data: \[DONE\]' &&
    ok "SIGINT: the unfinished stream got an error event and [DONE]" || bad "SIGINT: stream end ($(tail -c 300 "$TMP/cut"))"

for p in $PID_SMALL $PID_PRE $PID_CT; do
    stop "$p" TERM || bad "server $p exit status"
done
grep -h 'ERROR: \|runtime error' "$TMP"/*.log && bad "sanitizer reports in the server logs"
PIDS=""

echo "cli_server: $pass passed, $fail failed"
[ $fail -eq 0 ]
