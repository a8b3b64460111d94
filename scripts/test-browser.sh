#!/usr/bin/env bash
# Browser end-to-end tests: builds dist/ (with the bundled model) and runs tests/e2e in headless
# Chromium against it, beside the native tool. Screenshots land in tests/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-app.sh
cargo build --release --locked -p loupe-cli --bin loupe --example make_scale_model
(cd tests && { [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund; } && node --test --test-concurrency=1 e2e/)
