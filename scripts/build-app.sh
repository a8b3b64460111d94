#!/usr/bin/env bash
# Builds the static site into dist/ with the bundled default model, offline, with pinned tools.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/fetch-models.sh smollm2
mkdir -p public/models
cp -u models/SmolLM2-135M-Instruct.Q4_1.gguf public/models/
TRUNK_OFFLINE=true TRUNK_SKIP_VERSION_CHECK=true trunk build index.html --release
