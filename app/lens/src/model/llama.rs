//! Llama-family decoder (`llama`: Llama 2/3, SmolLM2, TinyLlama; `qwen2`: Qwen2/2.5).
//!
//! Qwen2 is this same forward with biases on q/k/v and the half-split rotary layout, so both share
//! one file rather than two copies that could drift apart; `Variant` names what differs.
//!
//! x = embed(ids)
//! per block: x += W_o · attn(rope(W_q·norm(x)), rope(W_k·norm(x)), W_v·norm(x));
//!            x += W_down · (silu(W_gate·norm(x)) * W_up·norm(x))

use super::layers::*;
use super::{Blocks, Hyper, RowSink};
use crate::error::Result;
use crate::gguf::GgufFile;
use crate::Precision;
use candle_core::Tensor;

struct Block {
    attn_norm: RmsNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ffn_norm: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
    cache: KvCache,
}

/// What distinguishes the architectures this file covers.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    pub qkv_bias: bool,
    pub rope: RopeStyle,
}

impl Variant {
    /// llama.cpp permutes Llama's q/k weights into the interleaved rotary layout.
    pub const LLAMA: Variant = Variant { qkv_bias: false, rope: RopeStyle::Interleaved };
    pub const QWEN2: Variant = Variant { qkv_bias: true, rope: RopeStyle::Halves };
}

pub struct Llama {
    embed: QuantizedTable,
    blocks: Vec<Block>,
    rotary: Rotary,
    h: Hyper,
}

impl Llama {
    pub fn load(g: &GgufFile, h: Hyper, embed: QuantizedTable, variant: Variant) -> Result<Self> {
        let (d, hd) = (h.d_model, h.head_dim);
        let qkv_bias = variant.qkv_bias;
        // Llama 3.1+ files carry their frequency stretch as a tensor.
        let divisors = if g.has_tensor("rope_freqs.weight") {
            let t = g.tensor("rope_freqs.weight", &[hd / 2])?;
            Some(t.dequantize(&candle_core::Device::Cpu)?.to_vec1::<f32>()?)
        } else {
            None
        };
        let rotary = Rotary::new(hd, h.rope_base, variant.rope, divisors.as_deref(), h.rope_scale)?;
        let blocks = (0..h.n_layers)
            .map(|i| {
                let p = format!("blk.{i}");
                Ok(Block {
                    attn_norm: RmsNorm::load(g, &format!("{p}.attn_norm"), d, h.eps)?,
                    q: Linear::load(g, &format!("{p}.attn_q"), h.n_heads * hd, d, qkv_bias)?,
                    k: Linear::load(g, &format!("{p}.attn_k"), h.n_kv_heads * hd, d, qkv_bias)?,
                    v: Linear::load(g, &format!("{p}.attn_v"), h.n_kv_heads * hd, d, qkv_bias)?,
                    o: Linear::load(g, &format!("{p}.attn_output"), d, h.n_heads * hd, false)?,
                    ffn_norm: RmsNorm::load(g, &format!("{p}.ffn_norm"), d, h.eps)?,
                    gate: Linear::load(g, &format!("{p}.ffn_gate"), h.d_ff, d, false)?,
                    up: Linear::load(g, &format!("{p}.ffn_up"), h.d_ff, d, false)?,
                    down: Linear::load(g, &format!("{p}.ffn_down"), d, h.d_ff, false)?,
                    cache: KvCache::default(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { embed, blocks, rotary, h })
    }
}

impl Blocks for Llama {
    fn forward(&mut self, ids: &[u32], start: usize, p: Precision, rows: &mut RowSink) -> Result<Tensor> {
        let h = &self.h;
        let mut x = self.embed.lookup(ids)?.unsqueeze(0)?;
        if let Some(rows) = rows.as_mut() {
            rows.push(&x)?;
        }
        let scale = 1.0 / (h.head_dim as f64).sqrt();
        for b in self.blocks.iter_mut() {
            let n = b.attn_norm.forward(&x)?;
            let q = self.rotary.apply(&split_heads(&b.q.forward(&n, p)?, h.n_heads, h.head_dim)?, start)?;
            let k = self.rotary.apply(&split_heads(&b.k.forward(&n, p)?, h.n_kv_heads, h.head_dim)?, start)?;
            let v = split_heads(&b.v.forward(&n, p)?, h.n_kv_heads, h.head_dim)?;
            let (k, v) = b.cache.append(k, v)?;
            let attn = merge_heads(&attend(&q, &k, &v, start, None, scale)?)?;
            x = (x + b.o.forward(&attn, p)?)?;
            if let Some(rows) = rows.as_mut() {
                rows.push_after_attention(&x)?;
            }

            let n = b.ffn_norm.forward(&x)?;
            let mlp = (silu(&b.gate.forward(&n, p)?)? * b.up.forward(&n, p)?)?;
            x = (x + b.down.forward(&mlp, p)?)?;
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
