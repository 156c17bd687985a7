#!/bin/sh
# Installs the Debian packages ember builds against, if any are missing.
# Needs root (or sudo) only when something is actually missing.
set -e
PKGS="build-essential pkg-config libpcre2-dev libcjson-dev libcmocka-dev clang libmicrohttpd-dev curl nodejs libsqlite3-dev sqlite3 libssl-dev"
# Debian's chromium (large) for the chat page's browser test, tests/cli_browser.sh
PKGS="$PKGS chromium"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && command -v npm >/dev/null 2>&1 && exit 0
echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# Debian's nodejs comes without npm (NodeSource's bundles it); the API client
# test needs npm.
command -v npm >/dev/null 2>&1 || $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
