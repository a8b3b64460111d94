//! Gemma 2 and Gemma 3 decoders (`gemma2`, `gemma3`).
//!
//! Differences from Llama: the embedding is scaled by sqrt(d); each sub-layer's output is normed
//! again before the residual add (`post_attention_norm`, `post_ffw_norm`); the MLP uses GELU (tanh);
//! some layers attend only within a sliding window. Gemma 2 soft-caps the attention scores and
//! alternates sliding and global layers. Gemma 3 instead norms each head of q and k before the
//! rotary, and five of every six layers are sliding, with their own rotary base. Both may scale
//! attention by a query_pre_attn_scalar other than the head size (`Hyper::attn_scale`). llama.cpp
//! already folded Gemma's `1 + w` norm convention into the stored weights, so the norms here are
//! plain RMS norms.

use super::layers::*;
use super::residence::{Layers, Residence};
use super::{Blocks, Hyper, RowSink};
use crate::error::Result;
use crate::gguf::GgufFile;
use crate::Precision;
use candle_core::Tensor;

const LOCAL_ROPE_BASE: f32 = 10_000.0;

/// What distinguishes Gemma 2 from Gemma 3.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    /// The architecture's name, which prefixes its metadata keys.
    arch: &'static str,
    /// Every `global_every`-th layer attends globally, the others within the window (the patterns
    /// llama.cpp and transformers hard-code).
    global_every: usize,
    qk_norm: bool,
    /// The local layers' rotary base differs (`rope.local.freq_base`, 10,000 by default).
    local_rope_base: bool,
    /// `attn_logit_softcapping` applies (Gemma 2; 50 when the file does not say).
    attn_softcap: bool,
}

impl Variant {
    pub const GEMMA2: Variant =
        Variant { arch: "gemma2", global_every: 2, qk_norm: false, local_rope_base: false, attn_softcap: true };
    pub const GEMMA3: Variant =
        Variant { arch: "gemma3", global_every: 6, qk_norm: true, local_rope_base: true, attn_softcap: false };
}

struct Block {
    attn_norm: RmsNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    qk_norms: Option<(RmsNorm, RmsNorm)>,
    post_attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
    post_ffn_norm: RmsNorm,
    sliding: bool,
    cache: KvCache,
}

pub struct Gemma {
    embed: Embedding,
    blocks: Layers<Block>,
    global_rotary: Rotary,
    local_rotary: Rotary,
    window: usize,
    attn_softcap: Option<f64>,
    h: Hyper,
}

impl Gemma {
    pub fn load(g: &GgufFile, h: Hyper, embed: Embedding, variant: Variant, residence: &Residence) -> Result<Self> {
        let key = |k: &str| format!("{}.{k}", variant.arch);
        let window = match g.opt_usize(&key("attention.sliding_window"))? {
            None => h.context,
            Some(0) => {
                let why = "a window of 0 positions would leave nothing to attend to".into();
                return Err(crate::LensError::BadMetadata { key: key("attention.sliding_window"), why });
            }
            Some(w) => w,
        };
        let at_least_one = |k: &str, default: f32| -> Result<f32> {
            match g.opt_f32(&key(k))? {
                None => Ok(default),
                Some(v) if v.is_finite() && (1.0..=1e12).contains(&v) => Ok(v),
                Some(v) => Err(crate::LensError::BadMetadata { key: key(k), why: format!("{v} is out of range") }),
            }
        };
        let local_base =
            if variant.local_rope_base { at_least_one("rope.local.freq_base", LOCAL_ROPE_BASE)? } else { h.rope_base };
        let attn_softcap =
            if variant.attn_softcap { Some(at_least_one("attn_logit_softcapping", 50.0)? as f64) } else { None };
        let global_rotary = Rotary::new(h.rope_dims, h.rope_base, RopeStyle::Halves, None, h.rope_scale)?;
        let local_rotary = Rotary::new(h.rope_dims, local_base, RopeStyle::Halves, None, 1.0)?;
        let blocks = Layers::load(g, &h, residence, Box::new(move |g, h, i| load_block(g, h, variant, i)))?;
        Ok(Self { embed, blocks, global_rotary, local_rotary, window, attn_softcap, h })
    }
}

fn load_block(g: &GgufFile, h: &Hyper, variant: Variant, i: usize) -> Result<Block> {
    let (d, hd) = (h.d_model, h.head_dim);
    let p = format!("blk.{i}");
    let norm = |name: &str, len: usize| RmsNorm::load(g, &format!("{p}.{name}"), len, h.eps);
    let linear = |name: &str, out: usize, inp: usize| Linear::load(g, &format!("{p}.{name}"), out, inp, false);
    Ok(Block {
        attn_norm: norm("attn_norm", d)?,
        q: linear("attn_q", h.n_heads * hd, d)?,
        k: linear("attn_k", h.n_kv_heads * hd, d)?,
        v: linear("attn_v", h.n_kv_heads * hd, d)?,
        o: linear("attn_output", d, h.n_heads * hd)?,
        qk_norms: if variant.qk_norm { Some((norm("attn_q_norm", hd)?, norm("attn_k_norm", hd)?)) } else { None },
        post_attn_norm: norm("post_attention_norm", d)?,
        ffn_norm: norm("ffn_norm", d)?,
        gate: linear("ffn_gate", h.d_ff, d)?,
        up: linear("ffn_up", h.d_ff, d)?,
        down: linear("ffn_down", d, h.d_ff)?,
        post_ffn_norm: norm("post_ffw_norm", d)?,
        sliding: !(i + 1).is_multiple_of(variant.global_every),
        cache: KvCache::default(),
    })
}

impl Blocks for Gemma {
    fn forward(&mut self, ids: &[u32], start: usize, p: Precision, rows: &mut RowSink) -> Result<Tensor> {
        let h = &self.h;
        let mut x = (self.embed.lookup(ids)?.unsqueeze(0)? * (h.d_model as f64).sqrt())?;
        if let Some(rows) = rows.as_mut() {
            rows.push(&x)?;
        }
        for i in 0..self.blocks.len() {
            let mut b = self.blocks.get(i)?;
            let (rotary, window) =
                if b.sliding { (&self.local_rotary, Some(self.window)) } else { (&self.global_rotary, None) };
            let n = b.attn_norm.forward(&x)?;
            let mut q = split_heads(&b.q.forward(&n, p)?, h.n_heads, h.head_dim)?;
            let mut k = split_heads(&b.k.forward(&n, p)?, h.n_kv_heads, h.head_dim)?;
            if let Some((q_norm, k_norm)) = &b.qk_norms {
                (q, k) = (q_norm.forward(&q)?, k_norm.forward(&k)?);
            }
            let (q, k) = (rotary.apply(&q, start)?, rotary.apply(&k, start)?);
            let v = split_heads(&b.v.forward(&n, p)?, h.n_kv_heads, h.head_dim)?;
            let (k, v) = b.cache.append(k, v)?;
            let scores = Scores { scale: h.attn_scale, softcap: self.attn_softcap, window };
            let attn = merge_heads(&attend(&q, &k, &v, start, scores)?)?;
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
        self.blocks.resident().first().map(|b| b.cache.len()).unwrap_or(0)
    }

    fn clear_cache(&mut self) {
        self.blocks.resident_mut().iter_mut().for_each(|b| b.cache.clear());
    }

    fn streamed(&self) -> bool {
        self.blocks.streamed()
    }
}
