#!/usr/bin/env bash
# Runs every test: fetches the real models (skipped when present), then the engine and CLI tests
# (native, release build), the hostile-input tests again in wasm32 in Chromium, then the browser
# tests once the app exists.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-models.sh all
cargo test --release --workspace --locked
scripts/test-wasm.sh
if [ -x scripts/test-browser.sh ]; then
  scripts/test-browser.sh
fi
