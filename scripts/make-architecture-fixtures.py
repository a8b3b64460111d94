#!/usr/bin/env python3
"""Per-architecture references from Hugging Face transformers + PyTorch (fp32, CPU).

No real weights of Llama 3.x, Qwen3, Gemma 2 or Phi-3 ship on the package registries, so for each
architecture this builds a small model with the real structure and random weights in transformers
itself (a few layers, GQA, the architecture's own options: Llama 3 rope scaling, Qwen3 q/k norms,
Gemma 2 soft-caps and a query_pre_attn_scalar unlike the head size, Phi-3 fused projections), and:

1. writes it as GGUF the way llama.cpp's convert_hf_to_gguf.py does (Llama's q/k permutation,
   `rope_freqs`, Gemma's `1 + w` norms, Phi-3's fused tensors), 2-D weights in Q8_0, with a small
   byte-level vocabulary so the file loads like any other;
2. puts the Q8_0-rounded weights back into the transformers model, so both sides hold the very same
   numbers;
3. checks that transformers' own GGUF loader reads the file back to the same logits (a second,
   independent reading of the conventions), where transformers can read that architecture;
4. writes the lens at 2L + 1 points (embedding, then after each block's attention and after its MLP,
   hooked where transformers has them) of a fixed random token sequence, each decoded as
   lm_head(final_norm(h)) with the final soft-cap, with the keys of fixtures/sublayer.

Outputs app/lens/tests/fixtures/architectures/<case>.gguf and <case>.json (committed; small).
Needs `pip install torch transformers gguf` (a virtualenv; not part of the README's commands).
Run:  python3 scripts/make-architecture-fixtures.py
"""
import json, math, pathlib

import numpy as np
import torch
import gguf
from gguf import GGMLQuantizationType as Q
from hooked_lens import sublayer_lens
from transformers import (AutoModelForCausalLM, Gemma2Config, Gemma2ForCausalLM, Gemma3ForCausalLM, Gemma3TextConfig,
                          LlamaConfig, LlamaForCausalLM,
                          Phi3Config, Phi3ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "app/lens/tests/fixtures/architectures"
POSITIONS = 24
MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n")]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|eot_id|>"]

COMMON = dict(vocab_size=256 + len(MERGES) + len(SPECIALS), hidden_size=64, intermediate_size=128, num_hidden_layers=3,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, rms_norm_eps=1e-5)

CASES = {
    # Llama 3.1/3.2: llama3 rope scaling (the frequencies a short context would stretch), untied output.
    "llama3": (LlamaForCausalLM, LlamaConfig(**COMMON, head_dim=16, tie_word_embeddings=False, rope_parameters={
        "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 64})),
    # Qwen3: per-head RMS norms on q and k, a head size unlike d / heads, tied embeddings.
    "qwen3": (Qwen3ForCausalLM, Qwen3Config(**COMMON, head_dim=32, tie_word_embeddings=True,
                                            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})),
    # Gemma 2: attention and final soft-caps (lower than the real 50 and 30, so that they bite on
    # random weights), post-norms, sliding window on every other layer (short here so the test
    # crosses it), query_pre_attn_scalar 24 against a head size of 16.
    "gemma2": (Gemma2ForCausalLM, Gemma2Config(**COMMON, head_dim=16, query_pre_attn_scalar=24, sliding_window=8,
                                               attn_logit_softcapping=3.0, final_logit_softcapping=8.0,
                                               tie_word_embeddings=True)),
    # Gemma 3: q/k norms, five sliding layers with a local rotary base then one global layer, and
    # again a query_pre_attn_scalar unlike the head size.
    "gemma3": (Gemma3ForCausalLM, Gemma3TextConfig(**{**COMMON, "num_hidden_layers": 6}, head_dim=16,
                                                   query_pre_attn_scalar=24, sliding_window=8,
                                                   tie_word_embeddings=True)),
    # Phi-3: fused qkv and gate_up projections, untied output; and partial rotary (Phi-4-mini turns
    # three quarters of each head, this half).
    "phi3": (Phi3ForCausalLM, Phi3Config(**COMMON, tie_word_embeddings=False, pad_token_id=0, bos_token_id=1,
                                         eos_token_id=2, rope_parameters={
                                             "rope_type": "default", "rope_theta": 10000.0,
                                             "partial_rotary_factor": 0.5})),
}


def longrope(original):
    """Phi-3.5-mini's kind of rope scaling, with random factors (4 positions to the original context)."""
    g = torch.Generator().manual_seed(original)
    factors = lambda lo, hi: (lo + (hi - lo) * torch.rand(8, generator=g)).tolist()
    return Phi3Config(**{**COMMON, "max_position_embeddings": 4 * original}, original_max_position_embeddings=original,
                      tie_word_embeddings=False,
                      pad_token_id=0, bos_token_id=1, eos_token_id=2, rope_parameters={
                          "rope_type": "longrope", "rope_theta": 10000.0, "short_factor": factors(1.0, 1.5),
                          "long_factor": factors(1.0, 8.0), "original_max_position_embeddings": original})


# LongRoPE (Phi-3.5, Phi-4-mini, Phi-3 128k): the prompt within the original context (short
# factors), and past it (long factors); both scale cos and sin.
CASES["phi3.5-short"] = (Phi3ForCausalLM, longrope(32))
CASES["phi3.5-long"] = (Phi3ForCausalLM, longrope(16))


def q8_round(w):
    """The values Q8_0 stores for `w` (rows quantized along the last axis), and its bytes."""
    data = gguf.quants.quantize(w, Q.Q8_0)
    return gguf.quants.dequantize(data, Q.Q8_0).reshape(w.shape), data


def llama_permute(w, n_head):
    """convert_hf_to_gguf.py's permutation of Llama's q/k rows into the interleaved rotary layout."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def byte_vocabulary():
    """GPT-2's byte-to-symbol table in byte order, a few merged pieces, then the control tokens."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    symbol = dict(zip(bs, (chr(c) for c in cs)))
    return [symbol[b] for b in range(256)] + [a + b for a, b in MERGES] + SPECIALS


def llama3_rope_factors(rope, head_dim):
    """The divisors convert_hf_to_gguf.py writes as `rope_freqs.weight` for llama3 rope scaling."""
    base, factor = rope["rope_theta"], rope["factor"]
    low, high, old = rope["low_freq_factor"], rope["high_freq_factor"], rope["original_max_position_embeddings"]
    freqs = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < old / high:
            out.append(1.0)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def gguf_tensors(case, model, cfg):
    """(GGUF name, HF parameter, transform to the GGUF layout) for every weight."""
    hd = cfg.head_dim if getattr(cfg, "head_dim", None) else cfg.hidden_size // cfg.num_attention_heads
    ident = lambda w: w
    plus_one = lambda w: w + 1  # Gemma's norms are stored as 1 + w
    gemma = case.startswith("gemma")
    norm = plus_one if gemma else ident
    sd = dict(model.named_parameters())
    out = [("token_embd.weight", "model.embed_tokens.weight", ident), ("output_norm.weight", "model.norm.weight", norm)]
    if not cfg.tie_word_embeddings:
        out.append(("output.weight", "lm_head.weight", ident))
    for i in range(cfg.num_hidden_layers):
        hf, gg = f"model.layers.{i}", f"blk.{i}"
        out.append((f"{gg}.attn_norm.weight", f"{hf}.input_layernorm.weight", norm))
        out.append((f"{gg}.attn_output.weight", f"{hf}.self_attn.o_proj.weight", ident))
        out.append((f"{gg}.ffn_down.weight", f"{hf}.mlp.down_proj.weight", ident))
        if case.startswith("phi3"):
            out.append((f"{gg}.attn_qkv.weight", f"{hf}.self_attn.qkv_proj.weight", ident))
            out.append((f"{gg}.ffn_up.weight", f"{hf}.mlp.gate_up_proj.weight", ident))
        else:
            if case == "llama3":
                nh, nkv = cfg.num_attention_heads, cfg.num_key_value_heads
                perm_q = lambda w: llama_permute(w, nh)
                perm_k = lambda w: llama_permute(w, nkv)
            else:
                perm_q = perm_k = ident
            out.append((f"{gg}.attn_q.weight", f"{hf}.self_attn.q_proj.weight", perm_q))
            out.append((f"{gg}.attn_k.weight", f"{hf}.self_attn.k_proj.weight", perm_k))
            out.append((f"{gg}.attn_v.weight", f"{hf}.self_attn.v_proj.weight", ident))
            out.append((f"{gg}.ffn_gate.weight", f"{hf}.mlp.gate_proj.weight", ident))
            out.append((f"{gg}.ffn_up.weight", f"{hf}.mlp.up_proj.weight", ident))
        if gemma:
            out.append((f"{gg}.post_attention_norm.weight", f"{hf}.post_attention_layernorm.weight", norm))
            out.append((f"{gg}.ffn_norm.weight", f"{hf}.pre_feedforward_layernorm.weight", norm))
            out.append((f"{gg}.post_ffw_norm.weight", f"{hf}.post_feedforward_layernorm.weight", norm))
        else:
            out.append((f"{gg}.ffn_norm.weight", f"{hf}.post_attention_layernorm.weight", norm))
        if case in ("qwen3", "gemma3"):
            out.append((f"{gg}.attn_q_norm.weight", f"{hf}.self_attn.q_norm.weight", norm))
            out.append((f"{gg}.attn_k_norm.weight", f"{hf}.self_attn.k_norm.weight", norm))
    assert len({hf for _, hf, _ in out}) == len(sd), sorted(set(sd) - {hf for _, hf, _ in out})
    return out, sd, hd


@torch.no_grad()
def write_gguf(case, model, cfg, path):
    arch = {"llama3": "llama"}.get(case, case.split(".")[0])
    w = gguf.GGUFWriter(str(path), arch)
    tensors, sd, hd = gguf_tensors(case, model, cfg)
    w.add_name(f"loupe-test-{case}")
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    rope = getattr(cfg, "rope_parameters", None) or {}
    w.add_rope_dimension_count(int(hd * rope.get("partial_rotary_factor", 1.0)))
    if case == "gemma3":
        w.add_rope_freq_base(rope["full_attention"]["rope_theta"])
        w.add_float32("gemma3.rope.local.freq_base", rope["sliding_attention"]["rope_theta"])
    else:
        w.add_rope_freq_base(rope.get("rope_theta", 10000.0))
    if case.startswith("gemma"):
        w.add_sliding_window(cfg.sliding_window)
        # llama.cpp's `attention.scale`: transformers' query_pre_attn_scalar ** -0.5.
        w.add_float32(f"{arch}.attention.scale", cfg.query_pre_attn_scalar ** -0.5)
    if case == "gemma2":
        w.add_attn_logit_softcapping(cfg.attn_logit_softcapping)
        w.add_final_logit_softcapping(cfg.final_logit_softcapping)
    vocab = byte_vocabulary()
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2" if case == "qwen3" else "llama-bpe" if case == "llama3" else "default")
    w.add_token_list(vocab)
    w.add_token_types([1] * (256 + len(MERGES)) + [3] * len(SPECIALS))
    w.add_token_merges([f"{a} {b}" for a, b in MERGES])
    w.add_bos_token_id(256 + len(MERGES))
    w.add_eos_token_id(256 + len(MERGES))
    for name, hf, to_gguf in tensors:
        t = sd[hf].detach().float().numpy()
        g = to_gguf(t)
        if g.ndim == 2 and g.shape[1] % 32 == 0:
            rounded, data = q8_round(g)
            # The permutation only moves whole rows, and Q8_0 quantizes within rows, so rounding the
            # permuted rows and permuting back equals rounding the original rows.
            sd[hf].copy_(torch.from_numpy(q8_round(t)[0]))
            w.add_tensor(name, data, raw_shape=data.shape, raw_dtype=Q.Q8_0)
        else:
            w.add_tensor(name, g.astype(np.float32))
    if case == "llama3":
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(rope, hd))
    if rope.get("rope_type") == "longrope":
        # As convert_hf_to_gguf.py writes Phi-3's LongRoPE.
        original = rope["original_max_position_embeddings"]
        stretch = cfg.max_position_embeddings / original
        w.add_tensor("rope_factors_long.weight", np.array(rope["long_factor"], dtype=np.float32))
        w.add_tensor("rope_factors_short.weight", np.array(rope["short_factor"], dtype=np.float32))
        w.add_rope_scaling_orig_ctx_len(original)
        w.add_rope_scaling_attn_factors(math.sqrt(1 + math.log(stretch) / math.log(original)) if stretch > 1 else 1.0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for seed, (case, (cls, cfg)) in enumerate(CASES.items()):
        torch.manual_seed(seed)
        cfg._attn_implementation = "eager"
        model = cls(cfg).float().eval()
        # Random init leaves norms at 1 and the lens trivially flat; spread them so every norm matters.
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.ndim == 1:
                    p.copy_(torch.randn_like(p) * 0.2 + (0.0 if case.startswith("gemma") else 1.0))
                else:
                    # Larger token vectors give a lens with confident and uncertain cells alike
                    # (Gemma scales its embedding by sqrt(d) itself).
                    embed = 0.25 if case.startswith("gemma") else 0.5
                    p.normal_(0, embed if name.endswith(("embed_tokens.weight", "lm_head.weight")) else 0.2)
        path = OUT / f"{case}.gguf"
        write_gguf(case, model, cfg, path)
        ids = torch.randint(0, 256, (POSITIONS,), generator=torch.Generator().manual_seed(100 + seed)).tolist()
        labels, entropy, top_ids, top_probs, maxdiff, logits = sublayer_lens(model, ids, "0")
        assert maxdiff < 1e-4, (case, maxdiff)
        try:
            # What transformers' GGUF reader does not take from the file: llama3 rope scaling (it
            # ignores `rope_freqs`), Qwen3's head size (`key_length`), Gemma 2's soft-caps, Phi-3's pad id.
            overrides = {"llama3": lambda: {"rope_parameters": cfg.rope_parameters},
                         "qwen3": lambda: {"head_dim": cfg.head_dim},
                         "gemma2": lambda: {"attn_logit_softcapping": cfg.attn_logit_softcapping,
                                            "final_logit_softcapping": cfg.final_logit_softcapping},
                         "phi3": lambda: {"pad_token_id": 0, "rope_parameters": cfg.rope_parameters,
                                          "original_max_position_embeddings": cfg.original_max_position_embeddings}}.get(
                case.split(".")[0], dict)()
            again = AutoModelForCausalLM.from_pretrained(OUT, gguf_file=path.name, dtype=torch.float32,
                                                         **overrides).eval()
            if case.startswith("gemma"):  # transformers' GGUF reader knows no `attention.scale`
                for layer in again.model.layers:
                    layer.self_attn.scaling = cfg.query_pre_attn_scalar ** -0.5
            reread = (again(torch.tensor([ids])).logits[0] - logits).abs().max().item()
        except Exception as e:  # an architecture (or rope scaling) transformers' GGUF reader lacks
            reread = f"not checked: {type(e).__name__}: {e}"[:200]
        print(f"{case}: {len(labels)} rows, {len(ids)} positions; transformers re-reading the GGUF: {reread}")
        out = {
            "model": path.name,
            "architecture": case,
            "ids": ids,
            "n_rows": len(labels),
            "rows": labels,
            "entropy": entropy,
            "top_ids": top_ids,
            "top_probs": top_probs,
            "reread_max_logit_diff": reread,
            "note": "transformers fp32 of a random-weight model with this architecture's structure; "
                    "written by scripts/make-architecture-fixtures.py",
        }
        (OUT / f"{case}.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main()
