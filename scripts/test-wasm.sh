#!/usr/bin/env bash
# The engine's hostile-input tests (app/lens/tests/malformed.rs) and its one-token kernels
# (one_token.rs) compiled to wasm32 and run in headless Chromium with wasm-bindgen-test: there
# `usize` has 32 bits, so sizes that only overflow in a browser are caught, and the kernels are the
# SIMD128 code the worker runs. Needs chromium-driver (scripts/install-tools.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}" \
  cargo test --release --locked --target wasm32-unknown-unknown -p loupe-lens --test malformed --test one_token
