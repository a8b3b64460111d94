#!/usr/bin/env bash
# Installs what building and testing the web app needs, skipping whatever is already there:
# the wasm32 target, trunk, wasm-bindgen-cli (the exact version in Cargo.lock), Chromium for the
# browser tests, and the tests' npm packages. See docs/toolchain.md for why these versions.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

TRUNK_VERSION=0.21.14
if [ "$(trunk --version 2>/dev/null)" != "trunk $TRUNK_VERSION" ]; then
  cargo install trunk --locked --version "$TRUNK_VERSION"
fi

BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print}' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $BINDGEN_VERSION" ]; then
  # Not --locked: its lock pins a webpki-roots release this registry lacks.
  cargo install wasm-bindgen-cli --version "$BINDGEN_VERSION"
fi

# chromium-driver runs the wasm32 tests (scripts/test-wasm.sh); the browser tests drive chromium itself.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium chromium-driver
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq chromium chromium-driver
  fi
fi

if [ ! -d tests/node_modules/playwright-core ]; then
  (cd tests && npm ci --no-audit --no-fund)
fi
