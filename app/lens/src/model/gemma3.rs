//! Gemma 3 decoder (`gemma3`).
//!
//! Differences from Llama: the embedding is scaled by sqrt(d); q and k get their own RMS norm per
//! head before the rotary; each sub-layer's output is normed again before the residual add
//! (`post_attention_norm`, `post_ffw_norm`); the MLP uses GELU (tanh); five of every six layers attend
//! within a sliding window with a local rotary base, the sixth globally. llama.cpp already folded
//! Gemma's `1 + w` norm convention into the stored weights, so the norms here are plain RMS norms.

use super::layers::*;
use super::{Blocks, Hyper, RowSink};
use crate::error::Result;
use crate::gguf::GgufFile;
use crate::Precision;
use candle_core::Tensor;

/// Every sixth layer attends globally (llama.cpp hard-codes this pattern for Gemma 3 too).
const GLOBAL_EVERY: usize = 6;
const LOCAL_ROPE_BASE: f32 = 10_000.0;

struct Block {
    attn_norm: RmsNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    post_attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
    post_ffn_norm: RmsNorm,
    sliding: bool,
    cache: KvCache,
}

pub struct Gemma3 {
    embed: QuantizedTable,
    blocks: Vec<Block>,
    global_rotary: Rotary,
    local_rotary: Rotary,
    window: usize,
    h: Hyper,
}

impl Gemma3 {
    pub fn load(g: &GgufFile, h: Hyper, embed: QuantizedTable) -> Result<Self> {
        let (d, hd) = (h.d_model, h.head_dim);
        let window = g.opt_usize("gemma3.attention.sliding_window")?.unwrap_or(h.context).max(1);
        let local_base = match g.opt_f32("gemma3.rope.local.freq_base")? {
            None => LOCAL_ROPE_BASE,
            Some(b) if b.is_finite() && b >= 1.0 => b,
            Some(b) => {
                let why = format!("{b} is not a rotary base");
                return Err(crate::LensError::BadMetadata { key: "gemma3.rope.local.freq_base".into(), why });
            }
        };
        let global_rotary = Rotary::new(hd, h.rope_base, RopeStyle::Halves, None, h.rope_scale)?;
        let local_rotary = Rotary::new(hd, local_base, RopeStyle::Halves, None, 1.0)?;
        let blocks = (0..h.n_layers)
            .map(|i| {
                let p = format!("blk.{i}");
                let norm = |name: &str, len: usize| RmsNorm::load(g, &format!("{p}.{name}"), len, h.eps);
                Ok(Block {
                    attn_norm: norm("attn_norm", d)?,
                    q: Linear::load(g, &format!("{p}.attn_q"), h.n_heads * hd, d, false)?,
                    k: Linear::load(g, &format!("{p}.attn_k"), h.n_kv_heads * hd, d, false)?,
                    v: Linear::load(g, &format!("{p}.attn_v"), h.n_kv_heads * hd, d, false)?,
                    o: Linear::load(g, &format!("{p}.attn_output"), d, h.n_heads * hd, false)?,
                    q_norm: norm("attn_q_norm", hd)?,
                    k_norm: norm("attn_k_norm", hd)?,
                    post_attn_norm: norm("post_attention_norm", d)?,
                    ffn_norm: norm("ffn_norm", d)?,
                    gate: Linear::load(g, &format!("{p}.ffn_gate"), h.d_ff, d, false)?,
                    up: Linear::load(g, &format!("{p}.ffn_up"), h.d_ff, d, false)?,
                    down: Linear::load(g, &format!("{p}.ffn_down"), d, h.d_ff, false)?,
                    post_ffn_norm: norm("post_ffw_norm", d)?,
                    sliding: (i + 1) % GLOBAL_EVERY != 0,
                    cache: KvCache::default(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { embed, blocks, global_rotary, local_rotary, window, h })
    }
}

impl Blocks for Gemma3 {
    fn forward(&mut self, ids: &[u32], start: usize, p: Precision, rows: &mut RowSink) -> Result<Tensor> {
        let h = &self.h;
        let mut x = (self.embed.lookup(ids)?.unsqueeze(0)? * (h.d_model as f64).sqrt())?;
        if let Some(rows) = rows.as_mut() {
            rows.push(&x)?;
        }
        let scale = 1.0 / (h.head_dim as f64).sqrt();
        for b in self.blocks.iter_mut() {
            let (rotary, window) =
                if b.sliding { (&self.local_rotary, Some(self.window)) } else { (&self.global_rotary, None) };
            let n = b.attn_norm.forward(&x)?;
            let q = b.q_norm.forward(&split_heads(&b.q.forward(&n, p)?, h.n_heads, h.head_dim)?)?;
            let k = b.k_norm.forward(&split_heads(&b.k.forward(&n, p)?, h.n_kv_heads, h.head_dim)?)?;
            let (q, k) = (rotary.apply(&q, start)?, rotary.apply(&k, start)?);
            let v = split_heads(&b.v.forward(&n, p)?, h.n_kv_heads, h.head_dim)?;
            let (k, v) = b.cache.append(k, v)?;
            let attn = merge_heads(&attend(&q, &k, &v, start, window, scale)?)?;
            x = (x + b.post_attn_norm.forward(&b.o.forward(&attn, p)?)?)?;
            if let Some(rows) = rows.as_mut() {
                rows.push_after_attention(&x)?;
            }

            let n = b.ffn_norm.forward(&x)?;
            let mlp = (gelu_tanh(&b.gate.forward(&n, p)?)? * b.up.forward(&n, p)?)?;
            x = (x + b.post_ffn_norm.forward(&b.down.forward(&mlp, p)?)?)?;
            if let Some(rows) = rows.as_mut() {
                rows.push(&x)?;
            }
        }
        Ok(x.squeeze(0)?)
    }

    fn cached_len(&self) -> usize {
        self.blocks.first().map(|b| b.cache.len()).unwrap_or(0)
    }

    fn clear_cache(&mut self) {
        self.blocks.iter_mut().for_each(|b| b.cache.clear());
    }
}
