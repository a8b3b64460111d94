"""The logit lens at 2L+1 points of a Hugging Face transformers model, read with forward hooks:
the embedding output, then for every block the residual stream after its attention (the residual
added back) and after its MLP, each decoded as lm_head(final_norm(h)) with the final soft-cap
where the model has one. Shared by make-sublayer-fixtures.py and make-architecture-fixtures.py.

The "after attention" point is where transformers has it: the input of `post_attention_layernorm`
(llama, qwen, phi3) or of `pre_feedforward_layernorm` (gemma2, gemma3, whose attention output passes
its own post-attention norm before the residual add).
"""
import torch


def mid_point(layer):
    """The module whose input is the residual stream after the block's attention."""
    return getattr(layer, "pre_feedforward_layernorm", None) or layer.post_attention_layernorm


def decode(model, h):
    """lm_head(final_norm(h)), soft-capped as the model's own output is."""
    z = model.lm_head(model.model.norm(h))
    cap = getattr(model.config, "final_logit_softcapping", None)
    return torch.tanh(z / cap) * cap if cap else z


@torch.no_grad()
def sublayer_lens(model, ids, first_label):
    """Row labels (`first_label`, then 1a, 1m, 2a, ...), entropy [row][pos], top-5 ids and
    probabilities [row][pos][k], the last row's largest difference from the model's own logits,
    and those logits."""
    inner, rows = model.model, []
    hooks = [inner.layers[0].register_forward_pre_hook(
        lambda m, args, kw: rows.append((first_label, (args[0] if args else kw["hidden_states"])[0].clone())),
        with_kwargs=True)]
    for i, layer in enumerate(inner.layers):
        hooks.append(mid_point(layer).register_forward_pre_hook(
            lambda m, args, i=i: rows.append((f"{i + 1}a", args[0][0].clone()))))
        hooks.append(layer.register_forward_hook(
            lambda m, args, out, i=i: rows.append((f"{i + 1}m", (out[0] if isinstance(out, tuple) else out)[0].clone()))))
    logits = model(torch.tensor([ids])).logits[0]
    for h in hooks:
        h.remove()
    assert len(rows) == 2 * len(inner.layers) + 1, [name for name, _ in rows]
    entropy, top_ids, top_probs = [], [], []
    for _, h in rows:
        logp = torch.log_softmax(decode(model, h).float(), dim=-1)
        entropy.append((-(logp.exp() * logp).sum(-1)).tolist())
        p, i = logp.exp().topk(5, dim=-1)
        top_ids.append(i.tolist())
        top_probs.append(p.tolist())
    maxdiff = (decode(model, rows[-1][1]) - logits).abs().max().item()
    return [name for name, _ in rows], entropy, top_ids, top_probs, maxdiff, logits
