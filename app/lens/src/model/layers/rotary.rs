//! Rotary position embeddings: plain, with Llama 3's frequency divisors or linear scaling, and
//! LongRoPE.

use crate::error::Result;
use candle_core::{DType, Device, Tensor};

/// How a file's q/k weights pair up the rotary dimensions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RopeStyle {
    /// Adjacent pairs (llama.cpp permutes Llama's q/k weights into this layout).
    Interleaved,
    /// First half with second half (GPT-NeoX; Qwen2, Gemma).
    Halves,
}

/// Rotary position embedding. The angles are computed for the positions of each call rather than
/// tabled for the whole context: a table for a 128k context takes tens of MB (per rotary base) that
/// wasm memory would never give back, while computing them costs a few flops per position.
pub struct Rotary {
    /// `[1, dims / 2]`.
    inv_freq: Tensor,
    /// How many leading dimensions of each head rotate (`rope.dimension_count`; Phi-4-mini turns
    /// three quarters of each head); the rest pass through.
    dims: usize,
    style: RopeStyle,
    long: Option<LongRope>,
}

/// LongRoPE (Phi-3 128k, Phi-3.5, Phi-4-mini): sequences longer than the original context use
/// other frequency divisors, and cos and sin are scaled (transformers' `attention_factor`).
/// The set of factors is chosen per call by its last position, as transformers does (llama.cpp
/// chooses once from the context size), so an answer that crosses the original context rotates
/// its new keys with the long factors beside cached keys rotated with the short ones.
struct LongRope {
    /// `[1, dims / 2]`, for calls whose last position is past `original_context`.
    inv_freq: Tensor,
    original_context: usize,
    magnitude: f32,
}

impl Rotary {
    /// Rotates the first `dims` dimensions of each head. `freq_divisors` (Llama 3's
    /// `rope_freqs.weight`) stretch the low frequencies; `position_scale` is linear position
    /// interpolation (1 = none).
    pub fn new(
        dims: usize,
        base: f32,
        style: RopeStyle,
        freq_divisors: Option<&[f32]>,
        position_scale: f32,
    ) -> Result<Self> {
        let inv_freq = inverse_frequencies(dims, base, freq_divisors, position_scale)?;
        Ok(Self { inv_freq, dims: dims / 2 * 2, style, long: None })
    }

    /// LongRoPE: `short` and `long` divide the frequencies up to and past `original_context`
    /// (a call's last position decides, as in transformers); cos and sin are scaled by `magnitude`.
    pub fn long_rope(
        dims: usize,
        base: f32,
        style: RopeStyle,
        short: &[f32],
        long: &[f32],
        original_context: usize,
        magnitude: f32,
    ) -> Result<Self> {
        let mut rotary = Self::new(dims, base, style, Some(short), 1.0)?;
        let inv_freq = inverse_frequencies(dims, base, Some(long), 1.0)?;
        rotary.long = Some(LongRope { inv_freq, original_context, magnitude });
        Ok(rotary)
    }

    /// Rotates `x` of shape `[batch, heads, seq, head_dim]` for positions `start..start + seq`.
    pub fn apply(&self, x: &Tensor, start: usize) -> Result<Tensor> {
        let seq = x.dim(2)?;
        let positions = Tensor::arange(start as u32, (start + seq) as u32, &Device::Cpu)?
            .to_dtype(DType::F32)?
            .reshape((seq, 1))?;
        let (inv_freq, magnitude) = match &self.long {
            Some(l) if start + seq > l.original_context => (&l.inv_freq, l.magnitude),
            Some(l) => (&self.inv_freq, l.magnitude),
            None => (&self.inv_freq, 1.0),
        };
        let angles = positions.broadcast_mul(inv_freq)?;
        let (mut cos, mut sin) = (angles.cos()?, angles.sin()?);
        if magnitude != 1.0 {
            (cos, sin) = ((cos * magnitude as f64)?, (sin * magnitude as f64)?);
        }
        let head_dim = x.dim(3)?;
        let turned = x.narrow(3, 0, self.dims)?.contiguous()?;
        let turned = match self.style {
            RopeStyle::Interleaved => candle_nn::rotary_emb::rope_i(&turned, &cos, &sin)?,
            RopeStyle::Halves => candle_nn::rotary_emb::rope(&turned, &cos, &sin)?,
        };
        if self.dims == head_dim {
            return Ok(turned);
        }
        Ok(Tensor::cat(&[&turned, &x.narrow(3, self.dims, head_dim - self.dims)?], 3)?)
    }
}

/// `[1, dims / 2]`: base^(-2i/dims), divided by `divisors[i]` where given and by `position_scale`.
fn inverse_frequencies(dims: usize, base: f32, divisors: Option<&[f32]>, position_scale: f32) -> Result<Tensor> {
    let half = dims / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| {
            let f = 1.0 / base.powf(2.0 * i as f32 / dims as f32);
            f / divisors.and_then(|d| d.get(i)).copied().unwrap_or(1.0) / position_scale
        })
        .collect();
    Ok(Tensor::from_vec(inv_freq, (1, half), &Device::Cpu)?)
}
