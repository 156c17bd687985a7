#!/bin/sh
# cli_browser.sh - the chat page at / in a real browser: starts `ember serve`
# (bundled model, with an API key required) on a free 127.0.0.1 port and runs
# tests/browser/chat_test.mjs, which drives Debian's headless Chromium with
# playwright-core: it enters the key in the page's API key field, types a
# message, clicks Send, checks that the reply streams in and that the tok/s
# line is right, and saves a screenshot to BUILD/test-artifacts/chat.png
# (BUILD: the folder of $EMBER). Loopback traffic only; once playwright-core
# is installed it runs offline.
#
# Installs, each only when missing: Debian's chromium (large; through
# scripts/deps.sh, which `make test` runs first anyway) and the pinned
# playwright-core into tests/browser/node_modules (npm ci). Neither the server
# nor the browser outlives the script: the server is stopped by its pid, the
# test runs in its own process group under a time limit, and any process left
# with this run's browser profile folder is killed by pid.
set -u
EMBER=${EMBER:-build/ember}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
NODE_DIR="$ROOT/tests/browser"
ART=$(cd "$(dirname "$EMBER")" && pwd)/test-artifacts
TMP=$(mktemp -d)
SRV=""
RUN=""
pass=0
fail=0

leftovers() { # pids of processes using this run's browser profile
    ps -eo pid=,args= 2>/dev/null | grep -F -- "$TMP/profile" | grep -v grep | awk '{print $1}'
}
cleanup() {
    [ -n "$RUN" ] && kill -KILL -- "-$RUN" 2>/dev/null
    [ -n "$SRV" ] && kill -KILL "$SRV" 2>/dev/null
    for p in $(leftovers); do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }

# ---- what the test needs, installed only when missing
if [ ! -x "$CHROMIUM" ]; then
    echo "cli_browser: $CHROMIUM is missing; installing Debian's chromium (scripts/deps.sh)"
    "$ROOT/scripts/deps.sh" || { echo "cli_browser: installing chromium failed"; exit 1; }
fi
[ -x "$CHROMIUM" ] || { echo "cli_browser: $CHROMIUM is missing"; exit 1; }
for tool in curl node; do
    command -v "$tool" >/dev/null 2>&1 || { echo "cli_browser: '$tool' is missing (scripts/deps.sh installs it)"; exit 1; }
done
if [ ! -f "$NODE_DIR/node_modules/playwright-core/package.json" ]; then
    command -v npm >/dev/null 2>&1 || { echo "cli_browser: npm is missing (scripts/deps.sh installs it)"; exit 1; }
    if ! (cd "$NODE_DIR" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >"$TMP/npm.log" 2>&1); then
        cat "$TMP/npm.log"
        echo "cli_browser: npm ci failed (tests/browser)"
        exit 1
    fi
fi

# ---- the server, with API keys: the page must ask for one and send it
KEY=$("$EMBER" keys create --name browser --db "$TMP/keys.db" 2>"$TMP/keys.err") ||
    { cat "$TMP/keys.err"; echo "cli_browser: keys create failed"; exit 1; }
"$EMBER" serve --host 127.0.0.1 --port 0 --auth --db "$TMP/keys.db" 2>"$TMP/server.log" &
SRV=$!
PORT=""
i=0
while [ $i -lt 400 ]; do
    [ -z "$PORT" ] && PORT=$(sed -n 's/^ember: listening on http:\/\/127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$TMP/server.log")
    [ -n "$PORT" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")" = 200 ] && break
    kill -0 "$SRV" 2>/dev/null || { cat "$TMP/server.log"; echo "cli_browser: the server died"; exit 1; }
    sleep 0.05
    i=$((i + 1))
done
[ $i -lt 400 ] || { cat "$TMP/server.log"; echo "cli_browser: the server did not come up"; exit 1; }

# ---- the browser test (timeout makes itself a process-group leader: node and
# its children share the group, killed as one by cleanup)
rm -f "$ART/chat.png"
mkdir -p "$TMP/profile"
BASE="http://127.0.0.1:$PORT" CHROMIUM="$CHROMIUM" PROFILE="$TMP/profile" SHOT="$ART/chat.png" API_KEY="$KEY" \
    timeout -k 5 150 node "$NODE_DIR/chat_test.mjs" >"$TMP/test.out" 2>&1 &
RUN=$!
wait "$RUN"
rc=$?
RUN=""
sed 's/^/  /' "$TMP/test.out"
[ $rc -eq 0 ] && ok "chat page in headless Chromium" || bad "chat page in headless Chromium (exit $rc)"
[ -s "$ART/chat.png" ] && ok "screenshot $ART/chat.png" || bad "no screenshot"
sleep 0.2
left=$(leftovers)
[ -z "$left" ] && ok "no browser process left" || bad "browser processes left: $left"

# ---- the server stops cleanly (SIGTERM, exit 0, no sanitizer report)
kill -TERM "$SRV"
( sleep 20; kill -KILL "$SRV" 2>/dev/null ) &
DOG=$!
wait "$SRV"
st=$?
SRV=""
kill "$DOG" 2>/dev/null
wait "$DOG" 2>/dev/null
[ $st -eq 0 ] && ok "server exit status 0 after SIGTERM" || bad "server exit status $st"
if grep -q 'ERROR: \|runtime error' "$TMP/server.log"; then
    cat "$TMP/server.log"
    bad "sanitizer reports in the server log"
fi

echo "cli_browser: $pass passed, $fail failed"
[ $fail -eq 0 ]
