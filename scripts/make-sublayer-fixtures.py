#!/usr/bin/env python3
"""Sub-layer logit-lens references from Hugging Face transformers + PyTorch (fp32, CPU): for each
test model and reference prompt, 2L+1 rows — the embedding output, then for every block the residual
stream after its attention (the residual added back) and after its MLP — each decoded as
lm_head(final_norm(h)) (with final soft-capping where a model has it), as the block-level references
in app/lens/tests/fixtures/reference are. Writes app/lens/tests/fixtures/sublayer/<reference name>.json
with the reference files' keys (ids, n_rows, entropy, top_ids, top_probs).

The "after attention" point is where transformers has it: the input of `post_attention_layernorm`
(llama, qwen2) or of `pre_feedforward_layernorm` (gemma3, whose attention output passes its own
post-attention norm before the residual add).

Needs `pip install torch transformers gguf` (a virtualenv; not part of the README's commands).
Run after scripts/fetch-models.sh:  python3 scripts/make-sublayer-fixtures.py
"""
import json, pathlib

import torch
from transformers import AutoModelForCausalLM

ROOT = pathlib.Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "app/lens/tests/fixtures/reference"
OUT = ROOT / "app/lens/tests/fixtures/sublayer"
CASES = {
    "SmolLM2-135M-Instruct.Q4_1.gguf": ["smollm2-135m__capital-australia", "smollm2-135m__eiffel-raw"],
    "qwen2.5-coder-0.5b-instruct.gguf": ["qwen2.5-coder-0.5b__capital-australia"],
    "gemma-3-270m-q4_k_m.gguf": ["gemma3-270m__capital-australia", "gemma3-270m__eiffel-raw"],
}


def mid_point(layer):
    """The module whose input is the residual stream after the block's attention."""
    return getattr(layer, "pre_feedforward_layernorm", None) or layer.post_attention_layernorm


@torch.no_grad()
def sublayer_lens(model, ids):
    inner = model.model
    rows = []
    hooks = [inner.layers[0].register_forward_pre_hook(lambda m, args, kw: rows.append(("emb", (args[0] if args else kw["hidden_states"])[0].clone())), with_kwargs=True)]
    for i, layer in enumerate(inner.layers):
        hooks.append(mid_point(layer).register_forward_pre_hook(lambda m, args, i=i: rows.append((f"{i + 1}a", args[0][0].clone()))))
        hooks.append(layer.register_forward_hook(lambda m, args, out, i=i: rows.append((f"{i + 1}m", (out[0] if isinstance(out, tuple) else out)[0].clone()))))
    logits = model(torch.tensor([ids])).logits[0]
    for h in hooks:
        h.remove()
    assert len(rows) == 2 * len(inner.layers) + 1, [name for name, _ in rows]
    cap = getattr(model.config, "final_logit_softcapping", None)
    entropy, top_ids, top_probs = [], [], []
    for name, h in rows:
        z = model.lm_head(inner.norm(h))
        if cap:
            z = torch.tanh(z / cap) * cap
        logp = torch.log_softmax(z.float(), dim=-1)
        entropy.append((-(logp.exp() * logp).sum(-1)).tolist())
        p, i = logp.exp().topk(5, dim=-1)
        top_ids.append(i.tolist())
        top_probs.append(p.tolist())
    # The last row is the model's own output.
    last = model.lm_head(inner.norm(rows[-1][1]))
    if cap:
        last = torch.tanh(last / cap) * cap
    maxdiff = (last - logits).abs().max().item()
    return [name for name, _ in rows], entropy, top_ids, top_probs, maxdiff


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for file, names in CASES.items():
        model = AutoModelForCausalLM.from_pretrained(ROOT / "models", gguf_file=file, dtype=torch.float32)
        model.eval()
        for name in names:
            ref = json.loads((REFERENCE / f"{name}.json").read_text())
            labels, entropy, top_ids, top_probs, maxdiff = sublayer_lens(model, ref["ids"])
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
