//! Llama-family decoder: `llama` (Llama 2/3, SmolLM2, TinyLlama), `qwen2` (Qwen2/2.5), `qwen3`,
//! `phi3` (Phi-3, Phi-3.5, Phi-4-mini).
//!
//! The others are this same forward with small changes, so they share one file rather than copies
//! that could drift apart; `Variant` names what differs: Qwen2's biases on q/k/v, Qwen3's RMS norm
//! on each head of q and k, Phi-3's fused q/k/v and gate/up matrices, and the rotary layout.
//!
//! x = embed(ids)
//! per block: x += W_o · attn(rope(W_q·norm(x)), rope(W_k·norm(x)), W_v·norm(x));
//!            x += W_down · (silu(W_gate·norm(x)) * W_up·norm(x))

use super::layers::*;
use super::residence::{Layers, Residence};
use super::{Blocks, Hyper, RowSink};
use crate::error::{LensError, Result};
use crate::gguf::GgufFile;
use crate::Precision;
use candle_core::Tensor;

struct Block {
    attn_norm: RmsNorm,
    qkv: Qkv,
    /// Qwen3's per-head norms of q and k, before the rotary.
    qk_norms: Option<(RmsNorm, RmsNorm)>,
    o: Linear,
    ffn_norm: RmsNorm,
    gate_up: GateUp,
    down: Linear,
    cache: KvCache,
}

/// The query, key and value projections: three matrices, or one whose output rows are q, k, v.
enum Qkv {
    Separate { q: Linear, k: Linear, v: Linear },
    Fused(Linear),
}

/// The MLP's gate and up projections: two matrices, or one whose output is gate then up.
enum GateUp {
    Separate { gate: Linear, up: Linear },
    Fused(Linear),
}

/// What distinguishes the architectures this file covers.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    pub qkv_bias: bool,
    pub qk_norm: bool,
    /// One `attn_qkv` tensor (when the file has it) and one `ffn_up` holding gate and up.
    pub fused: bool,
    pub rope: RopeStyle,
}

impl Variant {
    /// llama.cpp permutes Llama's q/k weights into the interleaved rotary layout.
    pub const LLAMA: Variant = Variant { qkv_bias: false, qk_norm: false, fused: false, rope: RopeStyle::Interleaved };
    pub const QWEN2: Variant = Variant { qkv_bias: true, qk_norm: false, fused: false, rope: RopeStyle::Halves };
    pub const QWEN3: Variant = Variant { qkv_bias: false, qk_norm: true, fused: false, rope: RopeStyle::Halves };
    pub const PHI3: Variant = Variant { qkv_bias: false, qk_norm: false, fused: true, rope: RopeStyle::Halves };
}

pub struct Llama {
    embed: Embedding,
    blocks: Layers<Block>,
    rotary: Rotary,
    h: Hyper,
}

impl Llama {
    pub fn load(g: &GgufFile, h: Hyper, embed: Embedding, variant: Variant, residence: &Residence) -> Result<Self> {
        let rotary = rotary(g, &h, variant.rope)?;
        let blocks = Layers::load(g, &h, residence, Box::new(move |g, h, i| load_block(g, h, variant, i)))?;
        Ok(Self { embed, blocks, rotary, h })
    }
}

fn load_block(g: &GgufFile, h: &Hyper, variant: Variant, i: usize) -> Result<Block> {
    let (d, hd, qkv_bias) = (h.d_model, h.head_dim, variant.qkv_bias);
    let (q_dim, kv_dim) = (h.n_heads * hd, h.n_kv_heads * hd);
    let p = format!("blk.{i}");
    let linear =
        |name: &str, out: usize, inp: usize, bias: bool| Linear::load(g, &format!("{p}.{name}"), out, inp, bias);
    let qkv = if variant.fused && g.has_tensor(&format!("{p}.attn_qkv.weight")) {
        Qkv::Fused(linear("attn_qkv", q_dim + 2 * kv_dim, d, qkv_bias)?)
    } else {
        Qkv::Separate {
            q: linear("attn_q", q_dim, d, qkv_bias)?,
            k: linear("attn_k", kv_dim, d, qkv_bias)?,
            v: linear("attn_v", kv_dim, d, qkv_bias)?,
        }
    };
    let gate_up = if variant.fused {
        GateUp::Fused(linear("ffn_up", 2 * h.d_ff, d, false)?)
    } else {
        GateUp::Separate { gate: linear("ffn_gate", h.d_ff, d, false)?, up: linear("ffn_up", h.d_ff, d, false)? }
    };
    let qk_norms = if variant.qk_norm {
        let norm = |name: &str| RmsNorm::load(g, &format!("{p}.{name}"), hd, h.eps);
        Some((norm("attn_q_norm")?, norm("attn_k_norm")?))
    } else {
        None
    };
    Ok(Block {
        attn_norm: RmsNorm::load(g, &format!("{p}.attn_norm"), d, h.eps)?,
        qkv,
        qk_norms,
        o: linear("attn_output", d, q_dim, false)?,
        ffn_norm: RmsNorm::load(g, &format!("{p}.ffn_norm"), d, h.eps)?,
        gate_up,
        down: linear("ffn_down", d, h.d_ff, false)?,
        cache: KvCache::default(),
    })
}

impl Blocks for Llama {
    fn forward(&mut self, ids: &[u32], start: usize, p: Precision, rows: &mut RowSink) -> Result<Tensor> {
        let h = &self.h;
        let mut x = self.embed.lookup(ids)?.unsqueeze(0)?;
        if let Some(rows) = rows.as_mut() {
            rows.push(&x)?;
        }
        let scores = Scores { scale: h.attn_scale, softcap: None, window: None };
        for i in 0..self.blocks.len() {
            let mut b = self.blocks.get(i)?;
            let n = b.attn_norm.forward(&x)?;
            let (q, k, v) = b.qkv.forward(&n, p, h)?;
            let (mut q, mut k) = (split_heads(&q, h.n_heads, h.head_dim)?, split_heads(&k, h.n_kv_heads, h.head_dim)?);
            if let Some((q_norm, k_norm)) = &b.qk_norms {
                (q, k) = (q_norm.forward(&q)?, k_norm.forward(&k)?);
            }
            let (q, k) = (self.rotary.apply(&q, start)?, self.rotary.apply(&k, start)?);
            let v = split_heads(&v, h.n_kv_heads, h.head_dim)?;
            let (k, v) = b.cache.append(k, v)?;
            let attn = merge_heads(&attend(&q, &k, &v, start, scores)?)?;
            x = (x + b.o.forward(&attn, p)?)?;
            if let Some(rows) = rows.as_mut() {
                rows.push_after_attention(&x)?;
            }

            let n = b.ffn_norm.forward(&x)?;
            let (gate, up) = b.gate_up.forward(&n, p, h.d_ff)?;
            let mlp = (silu(&gate)? * up)?;
            x = (x + b.down.forward(&mlp, p)?)?;
            if let Some(rows) = rows.as_mut() {
                rows.push(&x)?;
            }
        }
        Ok(x.squeeze(0)?)
    }

    fn cached_len(&self) -> usize {
        self.blocks.resident().first().map(|b| b.cache.len()).unwrap_or(0)
    }

    fn clear_cache(&mut self) {
        self.blocks.resident_mut().iter_mut().for_each(|b| b.cache.clear());
    }

    fn streamed(&self) -> bool {
        self.blocks.streamed()
    }
}

/// The rotary of a llama-family file: plain, or with Llama 3.1+'s frequency stretch
/// (`rope_freqs`), or Phi-3's LongRoPE (`rope_factors_short`/`_long`), each carried as tensors.
fn rotary(g: &GgufFile, h: &Hyper, style: RopeStyle) -> Result<Rotary> {
    let factors = |name: &str| -> Result<Option<Vec<f32>>> {
        if !g.has_tensor(name) {
            return Ok(None);
        }
        let t = g.tensor(name, &[h.rope_dims / 2])?.dequantize(&candle_core::Device::Cpu)?.to_vec1::<f32>()?;
        if let Some(bad) = t.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
            return Err(LensError::BadMetadata { key: name.into(), why: format!("{bad} is not a frequency divisor") });
        }
        Ok(Some(t))
    };
    let arch = g.architecture()?;
    match (factors("rope_factors_short.weight")?, factors("rope_factors_long.weight")?) {
        (Some(short), Some(long)) => {
            let key = format!("{arch}.rope.scaling.original_context_length");
            let original = match g.opt_usize(&key)? {
                // Its logarithm divides the default magnitude: 1 would make it infinite.
                Some(n) if n > 1 => n,
                _ => {
                    return Err(LensError::BadMetadata {
                        key,
                        why: "LongRoPE needs an original context of 2 or more".into(),
                    })
                }
            };
            // The file states the magnitude; otherwise LongRoPE's own default from the stretch.
            let stretch = h.context as f32 / original as f32;
            let default = if stretch > 1.0 { (1.0 + stretch.ln() / (original as f32).ln()).sqrt() } else { 1.0 };
            let key = format!("{arch}.rope.scaling.attn_factor");
            let magnitude = match g.opt_f32(&key)? {
                None => default,
                Some(m) if m.is_finite() && m > 0.0 && m < 100.0 => m,
                Some(m) => return Err(LensError::BadMetadata { key, why: format!("{m} is out of range") }),
            };
            Rotary::long_rope(h.rope_dims, h.rope_base, style, &short, &long, original, magnitude)
        }
        (None, None) => {
            Rotary::new(h.rope_dims, h.rope_base, style, factors("rope_freqs.weight")?.as_deref(), h.rope_scale)
        }
        _ => Err(LensError::Corrupt("LongRoPE needs both `rope_factors_short` and `rope_factors_long`".into())),
    }
}

impl Qkv {
    /// q `[batch, seq, heads · head_dim]`, then k and v with the key/value heads.
    fn forward(&self, n: &Tensor, p: Precision, h: &Hyper) -> Result<(Tensor, Tensor, Tensor)> {
        Ok(match self {
            Qkv::Separate { q, k, v } => (q.forward(n, p)?, k.forward(n, p)?, v.forward(n, p)?),
            Qkv::Fused(qkv) => {
                let all = qkv.forward(n, p)?;
                let (q_dim, kv_dim) = (h.n_heads * h.head_dim, h.n_kv_heads * h.head_dim);
                (all.narrow(2, 0, q_dim)?, all.narrow(2, q_dim, kv_dim)?, all.narrow(2, q_dim + kv_dim, kv_dim)?)
            }
        })
    }
}

impl GateUp {
    fn forward(&self, n: &Tensor, p: Precision, d_ff: usize) -> Result<(Tensor, Tensor)> {
        Ok(match self {
            GateUp::Separate { gate, up } => (gate.forward(n, p)?, up.forward(n, p)?),
            GateUp::Fused(gate_up) => {
                let both = gate_up.forward(n, p)?;
                (both.narrow(2, 0, d_ff)?, both.narrow(2, d_ff, d_ff)?)
            }
        })
    }
}
