#!/usr/bin/env python3
"""Sub-layer logit-lens references from Hugging Face transformers + PyTorch (fp32, CPU): for each
test model and reference prompt, 2L+1 rows — the embedding output, then for every block the residual
stream after its attention (the residual added back) and after its MLP — each decoded as
lm_head(final_norm(h)) (with final soft-capping where a model has it), as the block-level references
in app/lens/tests/fixtures/reference are. Writes app/lens/tests/fixtures/sublayer/<reference name>.json
with the reference files' keys (ids, n_rows, entropy, top_ids, top_probs).

The hooks and the decoding are `hooked_lens.py`'s, shared with make-architecture-fixtures.py.

Needs `pip install torch transformers gguf` (a virtualenv; not part of the README's commands).
Run after scripts/fetch-models.sh:  python3 scripts/make-sublayer-fixtures.py
"""
import json, pathlib

import torch
from transformers import AutoModelForCausalLM

from hooked_lens import sublayer_lens

ROOT = pathlib.Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "app/lens/tests/fixtures/reference"
OUT = ROOT / "app/lens/tests/fixtures/sublayer"
CASES = {
    "SmolLM2-135M-Instruct.Q4_1.gguf": ["smollm2-135m__capital-australia", "smollm2-135m__eiffel-raw"],
    "qwen2.5-coder-0.5b-instruct.gguf": ["qwen2.5-coder-0.5b__capital-australia"],
    "gemma-3-270m-q4_k_m.gguf": ["gemma3-270m__capital-australia", "gemma3-270m__eiffel-raw"],
}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for file, names in CASES.items():
        model = AutoModelForCausalLM.from_pretrained(ROOT / "models", gguf_file=file, dtype=torch.float32)
        model.eval()
        for name in names:
            ref = json.loads((REFERENCE / f"{name}.json").read_text())
            labels, entropy, top_ids, top_probs, maxdiff, _ = sublayer_lens(model, ref["ids"], "emb")
            out = {
                "model": file,
                "prompt": ref["prompt"],
                "ids": ref["ids"],
                "n_rows": len(labels),
                "rows": labels,
                "entropy": entropy,
                "top_ids": top_ids,
                "top_probs": top_probs,
                "last_row_vs_model_logits_maxdiff": maxdiff,
                "torch": torch.__version__,
            }
            (OUT / f"{name}.json").write_text(json.dumps(out))
            print(f"{name}: {len(labels)} rows, {len(ref['ids'])} positions, last row vs logits {maxdiff:.2e}")


if __name__ == "__main__":
    main()
