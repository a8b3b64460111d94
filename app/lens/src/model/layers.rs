//! Building blocks shared by the architectures: quantized linear layers in two precisions, RMS norm,
//! rotary embeddings, causal attention with a KV cache, and row-by-row access to quantized tables.

use crate::error::{LensError, Result};
use crate::gguf::GgufFile;
use crate::Precision;
use candle_core::quantized::{ggml_file::qtensor_from_ggml, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use std::ops::Range;
use std::sync::Arc;

/// Dequantizes rows `rows` of a 2-D quantized table `[n, d]` without touching the others.
pub fn dequantize_rows(table: &QTensor, rows: Range<usize>) -> Result<Tensor> {
    let (n, d) = table.shape().dims2()?;
    if rows.end > n || rows.start > rows.end {
        return Err(LensError::InvalidRequest(format!("rows {rows:?} outside a table of {n}")));
    }
    let dtype = table.dtype();
    let row_bytes = d / dtype.block_size() * dtype.type_size();
    let data = table.data()?;
    let slice = &data[rows.start * row_bytes..rows.end * row_bytes];
    let q = qtensor_from_ggml(dtype, slice, vec![rows.len(), d], &Device::Cpu)?;
    Ok(q.dequantize(&Device::Cpu)?)
}

/// A table of vectors looked up by token id, kept quantized (the embedding, the unembedding).
pub struct QuantizedTable {
    pub table: Arc<QTensor>,
}

impl QuantizedTable {
    pub fn rows(&self) -> usize {
        self.table.shape().dims()[0]
    }

    /// The vectors of `ids`, one row each, as `[ids.len(), d]` f32.
    pub fn lookup(&self, ids: &[u32]) -> Result<Tensor> {
        let rows = ids
            .iter()
            .map(|&id| {
                let id = id as usize;
                if id >= self.rows() {
                    return Err(LensError::InvalidRequest(format!(
                        "token id {id} is outside the vocabulary of {}",
                        self.rows()
                    )));
                }
                dequantize_rows(&self.table, id..id + 1)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(&rows, 0)?)
    }
}

/// `y = x W^T + b` with W kept quantized.
pub struct Linear {
    weight: Arc<QTensor>,
    quantized: QMatMul,
    bias: Option<Tensor>,
}

impl Linear {
    pub fn load(g: &GgufFile, name: &str, out_dim: usize, in_dim: usize, bias: bool) -> Result<Self> {
        let weight = Arc::new(g.tensor(&format!("{name}.weight"), &[out_dim, in_dim])?);
        let quantized = QMatMul::from_arc(weight.clone())?;
        let bias = if bias { Some(vector(g, &format!("{name}.bias"), out_dim)?) } else { None };
        Ok(Self { weight, quantized, bias })
    }

    pub fn forward(&self, x: &Tensor, precision: Precision) -> Result<Tensor> {
        let y = match precision {
            // llama.cpp's arithmetic: activations quantized to 8 bits, integer dot products.
            Precision::Fast => self.quantized.forward(x)?,
            // The PyTorch definition: f32 activations against the dequantized weight, one layer at a time.
            Precision::Exact => {
                let w = self.weight.dequantize(&Device::Cpu)?;
                x.broadcast_matmul(&w.t()?)?
            }
        };
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

/// A 1-D f32 tensor of length `len` (norm weights, biases).
pub fn vector(g: &GgufFile, name: &str, len: usize) -> Result<Tensor> {
    Ok(g.tensor(name, &[len])?.dequantize(&Device::Cpu)?)
}

pub struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    pub fn load(g: &GgufFile, name: &str, len: usize, eps: f32) -> Result<Self> {
        Ok(Self { weight: vector(g, &format!("{name}.weight"), len)?, eps })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::rms_norm(&x.contiguous()?, &self.weight, self.eps)?)
    }
}

/// How a file's q/k weights pair up the rotary dimensions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RopeStyle {
    /// Adjacent pairs (llama.cpp permutes Llama's q/k weights into this layout).
    Interleaved,
    /// First half with second half (GPT-NeoX; Qwen2, Gemma).
    Halves,
}

/// Precomputed cos/sin tables for positions `0..max_positions`.
pub struct Rotary {
    cos: Tensor,
    sin: Tensor,
    style: RopeStyle,
}

impl Rotary {
    /// `freq_divisors` (Llama 3's `rope_freqs.weight`) stretch the low frequencies; `position_scale`
    /// is linear position interpolation (1 = none).
    pub fn new(
        head_dim: usize,
        base: f32,
        max_positions: usize,
        style: RopeStyle,
        freq_divisors: Option<&[f32]>,
        position_scale: f32,
    ) -> Result<Self> {
        let half = head_dim / 2;
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| {
                let f = 1.0 / base.powf(2.0 * i as f32 / head_dim as f32);
                f / freq_divisors.and_then(|d| d.get(i)).copied().unwrap_or(1.0) / position_scale
            })
            .collect();
        let inv_freq = Tensor::from_vec(inv_freq, (1, half), &Device::Cpu)?;
        let positions = Tensor::arange(0u32, max_positions as u32, &Device::Cpu)?
            .to_dtype(DType::F32)?
            .reshape((max_positions, 1))?;
        let angles = positions.broadcast_mul(&inv_freq)?;
        Ok(Self { cos: angles.cos()?, sin: angles.sin()?, style })
    }

    /// Rotates `x` of shape `[batch, heads, seq, head_dim]` for positions `start..start + seq`.
    pub fn apply(&self, x: &Tensor, start: usize) -> Result<Tensor> {
        let seq = x.dim(2)?;
        let cos = self.cos.narrow(0, start, seq)?;
        let sin = self.sin.narrow(0, start, seq)?;
        let x = x.contiguous()?;
        Ok(match self.style {
            RopeStyle::Interleaved => candle_nn::rotary_emb::rope_i(&x, &cos, &sin)?,
            RopeStyle::Halves => candle_nn::rotary_emb::rope(&x, &cos, &sin)?,
        })
    }
}

/// Keys and values of the positions seen so far, for generation.
#[derive(Default)]
pub struct KvCache {
    k: Option<Tensor>,
    v: Option<Tensor>,
}

impl KvCache {
    pub fn append(&mut self, k: Tensor, v: Tensor) -> Result<(Tensor, Tensor)> {
        let (k, v) = match (self.k.take(), self.v.take()) {
            (Some(pk), Some(pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
            _ => (k, v),
        };
        self.k = Some(k.clone());
        self.v = Some(v.clone());
        Ok((k, v))
    }

    pub fn len(&self) -> usize {
        self.k.as_ref().map(|k| k.dim(2).unwrap_or(0)).unwrap_or(0)
    }

    pub fn clear(&mut self) {
        self.k = None;
        self.v = None;
    }
}

/// Additive mask `[seq, start + seq]`: causal, and limited to the last `window` positions if given.
pub fn attention_mask(seq: usize, start: usize, window: Option<usize>) -> Result<Tensor> {
    let total = start + seq;
    let mut mask = vec![0f32; seq * total];
    for i in 0..seq {
        let pos = start + i;
        for j in 0..total {
            let outside_window = window.is_some_and(|w| pos - j.min(pos) >= w);
            if j > pos || outside_window {
                mask[i * total + j] = f32::NEG_INFINITY;
            }
        }
    }
    Ok(Tensor::from_vec(mask, (seq, total), &Device::Cpu)?)
}

/// Scaled dot-product attention over `[batch, heads, seq, head_dim]` queries and cached keys/values
/// with fewer (grouped) heads.
pub fn attend(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    let (_, n_heads, _, _) = q.dims4()?;
    let n_kv = k.dim(1)?;
    let (k, v) = if n_kv == n_heads {
        (k.clone(), v.clone())
    } else {
        let rep = n_heads / n_kv;
        (repeat_kv(k, rep)?, repeat_kv(v, rep)?)
    };
    let scores = (q.contiguous()?.matmul(&k.t()?.contiguous()?)? * scale)?;
    let scores = scores.broadcast_add(mask)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
    Ok(probs.matmul(&v.contiguous()?)?)
}

fn repeat_kv(x: &Tensor, rep: usize) -> Result<Tensor> {
    let (b, n_kv, seq, hd) = x.dims4()?;
    Ok(x.unsqueeze(2)?.expand((b, n_kv, rep, seq, hd))?.reshape((b, n_kv * rep, seq, hd))?)
}

/// Splits `[batch, seq, heads * head_dim]` into `[batch, heads, seq, head_dim]`.
pub fn split_heads(x: &Tensor, heads: usize, head_dim: usize) -> Result<Tensor> {
    let (b, seq, _) = x.dims3()?;
    Ok(x.reshape((b, seq, heads, head_dim))?.transpose(1, 2)?.contiguous()?)
}

/// Joins `[batch, heads, seq, head_dim]` back into `[batch, seq, heads * head_dim]`.
pub fn merge_heads(x: &Tensor) -> Result<Tensor> {
    let (b, heads, seq, hd) = x.dims4()?;
    Ok(x.transpose(1, 2)?.reshape((b, seq, heads * hd))?)
}

/// The GELU of Gemma (tanh approximation).
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    Ok(x.gelu()?)
}

pub fn silu(x: &Tensor) -> Result<Tensor> {
    Ok(candle_nn::ops::silu(x)?)
}

