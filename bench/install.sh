#!/bin/sh
# Installs the benchmark's llama.cpp: node-llama-cpp, pinned by
# package-lock.json, into bench/node_modules. Only the prebuilt CPU binary
# package (@node-llama-cpp/linux-x64) comes along: optional packages (the
# CUDA/Vulkan/other-platform builds) are omitted and install scripts are not
# run, so nothing is downloaded or compiled besides the npm packages, and the
# result works offline. Skips the install when it is up to date.
set -e
cd "$(dirname "$0")"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "bench: installing nodejs and npm" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
stamp=node_modules/.ember-installed
if [ -f "$stamp" ] && [ "$stamp" -nt package.json ] && [ "$stamp" -nt package-lock.json ] \
   && [ -d node_modules/@node-llama-cpp/linux-x64 ]; then
    exit 0
fi
echo "bench: npm ci (node-llama-cpp $(sed -n 's/.*"node-llama-cpp": "\(.*\)".*/\1/p' package.json | head -n 1), CPU build only)" >&2
NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm ci --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error
touch "$stamp"
