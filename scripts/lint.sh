#!/usr/bin/env bash
# The habits of the codebase: rustfmt-clean, no import circles between a crate's modules, and clippy-clean with warnings as errors, for the native
# crates and for the wasm binaries (the page, and the worker in both builds). Run by .ci/run before the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done
cargo fmt --all --check
# Every crate's modules point one way (see the README's Layout).
scripts/import-circles.py --check app/lens/src app/worker/src app/ui/src app/protocol/src app/cli/src
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p loupe-ui -p loupe-worker --target wasm32-unknown-unknown --locked -- -D warnings
cargo clippy -p loupe-worker --features relaxed --target wasm32-unknown-unknown --locked -- -D warnings
