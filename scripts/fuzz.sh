#!/usr/bin/env bash
# Fuzzes the engine with cargo-fuzz (libFuzzer, AddressSanitizer): any bytes as a GGUF model (parse,
# load, and a short lens when it loads), any text through SmolLM2's tokenizer, any text as a chat
# template, any text as a conversation (JSON) and as a link's query. Seeds are committed in app/lens/fuzz/corpus; what a run discovers goes to
# target/fuzz-corpus; a crash stops the run, and its input lands in app/lens/fuzz/artifacts.
#
#   scripts/fuzz.sh [SECONDS per target, default 60] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# Pinned, so every machine builds the same instrumented binaries.
NIGHTLY=nightly-2026-05-19
FUZZ_VERSION=0.13.2
rustup toolchain list | grep -q "^$NIGHTLY" || rustup toolchain install "$NIGHTLY" --profile minimal
[ "$(cargo fuzz --version 2>/dev/null)" = "cargo-fuzz $FUZZ_VERSION" ] || cargo install cargo-fuzz --locked --version "$FUZZ_VERSION"
[ -f models/SmolLM2-135M-Instruct.Q4_1.gguf ] || scripts/fetch-models.sh

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf_load tokenizer_encode template_render conversation_input)
cd app/lens
for target in "${targets[@]}"; do
  case $target in
    gguf_load) max_len=131072 ;;
    *) max_len=4096 ;;
  esac
  mkdir -p "../../target/fuzz-corpus/$target"
  echo "== $target: $seconds s"
  # The tests' RSS limit: a file or template that makes the engine hold gigabytes is a finding.
  # -O: the debug assertions and overflow checks come from fuzz/Cargo.toml's profile, which keeps
  # them everywhere except in minijinja (see there).
  cargo "+$NIGHTLY" fuzz run -O --fuzz-dir fuzz --target-dir ../../target/fuzz "$target" \
    "../../target/fuzz-corpus/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb=3072 -timeout=60 -print_final_stats=1
done
