//! Building blocks shared by the architectures: quantized linear layers in two precisions, RMS norm,
//! rotary embeddings, causal attention with a KV cache, and row-by-row access to quantized tables.

use crate::error::{LensError, Result};
use crate::gguf::GgufFile;
use crate::Precision;
use candle_core::quantized::{ggml_file::qtensor_from_ggml, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;

/// Rows `rows` of a 2-D quantized table `[n, d]`, still quantized (a copy of just those bytes).
pub fn table_rows(table: &QTensor, rows: Range<usize>) -> Result<QTensor> {
    let n = rows.len();
    Ok(crate::quantized::with_rows(table, rows, |bytes, d| {
        qtensor_from_ggml(table.dtype(), bytes, vec![n, d], &Device::Cpu)
    })??)
}

/// Dequantizes rows `rows` of a 2-D quantized table without touching the others.
pub fn dequantize_rows(table: &QTensor, rows: Range<usize>) -> Result<Tensor> {
    Ok(table_rows(table, rows)?.dequantize(&Device::Cpu)?)
}

/// A table of vectors looked up by token id, kept quantized (the embedding, the unembedding).
pub struct QuantizedTable {
    pub table: Arc<QTensor>,
    /// Where row 0 starts in the model file.
    pub file_offset: u64,
}

impl QuantizedTable {
    /// The table `name`, checked to be `[rows, d]`.
    pub fn read(g: &GgufFile, name: &str, rows: usize, d: usize) -> Result<Self> {
        Ok(Self { table: Arc::new(g.tensor(name, &[rows, d])?), file_offset: g.tensor_file_offset(name)? })
    }

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
                    return Err(outside_vocabulary(id, self.rows()));
                }
                dequantize_rows(&self.table, id..id + 1)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(&rows, 0)?)
    }
}

/// Weights dequantized at a time by exact precision's linear layers: 8 MiB of f32.
const EXACT_TILE_FLOATS: usize = 1 << 21;

/// The token embedding: a table in memory, or (streamed mode, when the unembedding is a separate
/// tensor) rows read from the file as tokens need them, so it takes no memory at all.
pub enum Embedding {
    Table(QuantizedTable),
    File { file: Rc<GgufFile<'static>>, name: String, vocab: usize },
}

impl Embedding {
    /// The vectors of `ids`, one row each, as `[ids.len(), d]` f32.
    pub fn lookup(&self, ids: &[u32]) -> Result<Tensor> {
        match self {
            Embedding::Table(t) => t.lookup(ids),
            Embedding::File { file, name, vocab } => {
                let rows = ids
                    .iter()
                    .map(|&id| {
                        let id = id as usize;
                        if id >= *vocab {
                            return Err(outside_vocabulary(id, *vocab));
                        }
                        Ok(file.tensor_rows(name, id..id + 1)?.dequantize(&Device::Cpu)?)
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Tensor::cat(&rows, 0)?)
            }
        }
    }
}

fn outside_vocabulary(id: usize, vocab: usize) -> LensError {
    LensError::InvalidRequest(format!("token id {id} is outside the vocabulary of {vocab}"))
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
        let (inner, out) = (x.dim(x.rank() - 1)?, self.weight.shape().dims()[0]);
        let rows = x.elem_count() / inner;
        let y = match precision {
            // One token (an answer's next one), fast: llama.cpp's arithmetic, activations quantized
            // to 8 bits against the quantized weight, which skips dequantizing the whole matrix. For
            // many tokens it is the slower one (9× in a browser, 5× natively at 36 tokens), so a
            // figure's forward pass is f32 in both precisions.
            Precision::Fast if rows == 1 => self.quantized.forward(x)?,
            // One token, exact: each block dequantized in registers, the same f32 weights as below.
            Precision::Exact if rows == 1 && super::matvec::supports(self.weight.dtype()) => {
                let mut dims = x.dims().to_vec();
                *dims.last_mut().expect("a linear layer's input has a last dimension") = out;
                let y = super::matvec::matvec(&self.weight, &x.flatten_all()?.to_vec1::<f32>()?)?;
                Tensor::from_vec(y, dims, &Device::Cpu)?
            }
            // The PyTorch definition: f32 activations against the dequantized weight, a slice of
            // output rows at a time. A whole matrix in f32 (235 MB for an 8B model's MLP) would
            // raise the high-water mark of wasm memory, which is never given back.
            _ => {
                let mut dims = x.dims().to_vec();
                *dims.last_mut().expect("a linear layer's input has a last dimension") = out;
                let flat = x.reshape((rows, inner))?;
                let step = (EXACT_TILE_FLOATS / inner).max(16);
                let mut parts = (0..out)
                    .step_by(step)
                    .map(|first| {
                        let w = dequantize_rows(&self.weight, first..(first + step).min(out))?;
                        crate::lens::matmul_nt(&flat, &w)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let y = if parts.len() == 1 { parts.pop().expect("one part") } else { Tensor::cat(&parts, 1)? };
                y.reshape(dims)?
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

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&mut self) {
        self.k = None;
        self.v = None;
    }
}

/// Additive mask for the queries at `positions` over the keys at `keys`: causal, and limited to
/// the last `window` positions if given.
pub fn attention_mask(positions: Range<usize>, keys: Range<usize>, window: Option<usize>) -> Result<Tensor> {
    let (rows, n_keys) = (positions.len(), keys.len());
    let mut mask = vec![0f32; rows * n_keys];
    for (i, pos) in positions.enumerate() {
        for (j, key) in keys.clone().enumerate() {
            let outside_window = window.is_some_and(|w| key + w <= pos);
            if key > pos || outside_window {
                mask[i * n_keys + j] = f32::NEG_INFINITY;
            }
        }
    }
    Ok(Tensor::from_vec(mask, (rows, n_keys), &Device::Cpu)?)
}

/// The keys that queries at `positions` can see among `0..keys`: none after the last query
/// (causality), none before the window of the first. Skipping the rest halves a long prompt's
/// attention work.
fn visible_keys(positions: &Range<usize>, keys: usize, window: Option<usize>) -> Range<usize> {
    let end = positions.end.min(keys);
    let start = window.map(|w| (positions.start + 1).saturating_sub(w)).unwrap_or(0).min(end);
    start..end
}

/// Query rows per attention step: bounds the score matrix (heads × rows × keys) for long prompts,
/// which would otherwise not fit in a browser tab (9 heads × 8192² floats is 2.4 GB).
const QUERY_CHUNK: usize = 256;

/// How one layer turns query-key products into attention weights.
#[derive(Clone, Copy, Debug)]
pub struct Scores {
    /// Multiplies q·k: 1/sqrt(head size), or the file's `attention.scale`.
    pub scale: f64,
    /// Gemma 2's `attn_logit_softcapping`: scores become cap · tanh(scores / cap) before the mask.
    pub softcap: Option<f64>,
    /// Attend only to the last `window` positions (sliding-window layers).
    pub window: Option<usize>,
}

/// Causal scaled dot-product attention of `[batch, heads, seq, head_dim]` queries at positions
/// `start..start + seq` over all cached keys/values (which may have fewer, grouped heads).
pub fn attend(q: &Tensor, k: &Tensor, v: &Tensor, start: usize, scores: Scores) -> Result<Tensor> {
    attend_in_chunks(q, k, v, start, scores, QUERY_CHUNK)
}

fn attend_in_chunks(q: &Tensor, k: &Tensor, v: &Tensor, start: usize, how: Scores, chunk: usize) -> Result<Tensor> {
    let (batch, n_heads, seq, head_dim) = q.dims4()?;
    let n_kv = k.dim(1)?;
    let (k, v) = if n_kv == n_heads {
        (k.clone(), v.clone())
    } else {
        let rep = n_heads / n_kv;
        (repeat_kv(k, rep)?, repeat_kv(v, rep)?)
    };
    let keys = k.dim(2)?;
    // Batch and heads as one dimension; values transposed once, so both products are `a · bᵀ`.
    let k = k.reshape((batch * n_heads, keys, head_dim))?.contiguous()?;
    let vt = v.reshape((batch * n_heads, keys, head_dim))?.transpose(1, 2)?.contiguous()?;
    let q = q.reshape((batch * n_heads, seq, head_dim))?;
    let mut outputs = Vec::with_capacity(seq.div_ceil(chunk));
    let mut first = 0;
    while first < seq {
        let len = chunk.min(seq - first);
        let positions = start + first..start + first + len;
        let seen = visible_keys(&positions, keys, how.window);
        let qc = q.narrow(1, first, len)?.contiguous()?;
        let kc = k.narrow(1, seen.start, seen.len())?.contiguous()?;
        let vc = vt.narrow(2, seen.start, seen.len())?.contiguous()?;
        let mask = attention_mask(positions, seen, how.window)?;
        let mut scores = (batched_matmul_nt(&qc, &kc)? * how.scale)?;
        if let Some(cap) = how.softcap {
            scores = ((scores / cap)?.tanh()? * cap)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&mask)?)?;
        outputs.push(batched_matmul_nt(&probs, &vc)?);
        first += len;
    }
    let out = if outputs.len() == 1 { outputs.pop().unwrap() } else { Tensor::cat(&outputs, 1)? };
    Ok(out.reshape((batch, n_heads, seq, head_dim))?)
}

/// `a · bᵀ` for each leading index: `[n, r, d]` by `[n, c, d]` gives `[n, r, c]`. In the browser
/// each product goes through the lens's SIMD128 kernel, as the linear layers do.
fn batched_matmul_nt(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    #[cfg(target_arch = "wasm32")]
    {
        let products = (0..a.dim(0)?)
            .map(|i| crate::lens::matmul_nt(&a.get(i)?, &b.get(i)?.contiguous()?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::stack(&products, 0)?)
    }
    #[cfg(not(target_arch = "wasm32"))]
    Ok(a.matmul(&b.transpose(1, 2)?)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn chunked_attention_equals_one_pass() {
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1.0, (1, 4, 37, 8), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (1, 2, 37, 8), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (1, 2, 37, 8), &dev).unwrap();
        let how = Scores { scale: 0.35, softcap: Some(2.0), window: Some(20) };
        let whole = attend_in_chunks(&q, &k, &v, 0, how, 1000).unwrap();
        for chunk in [1, 5, 16, 36] {
            let parts = attend_in_chunks(&q, &k, &v, 0, how, chunk).unwrap();
            let diff = max_diff(&whole, &parts);
            assert!(diff < 1e-6, "chunk {chunk}: {diff}");
        }
    }

    #[test]
    fn attention_equals_its_definition_with_a_cache_and_a_window() {
        let dev = Device::Cpu;
        // 5 queries after 32 cached positions, grouped heads.
        let q = Tensor::randn(0f32, 1.0, (1, 4, 5, 8), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (1, 2, 37, 8), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (1, 2, 37, 8), &dev).unwrap();
        for window in [None, Some(3), Some(20)] {
            let (kr, vr) = (repeat_kv(&k, 2).unwrap(), repeat_kv(&v, 2).unwrap());
            let mask = attention_mask(32..37, 0..37, window).unwrap();
            let scores = (q.matmul(&kr.t().unwrap()).unwrap() * 0.35).unwrap().broadcast_add(&mask).unwrap();
            let expected = candle_nn::ops::softmax_last_dim(&scores).unwrap().matmul(&vr).unwrap();
            for chunk in [2, 256] {
                let how = Scores { scale: 0.35, softcap: None, window };
                let got = attend_in_chunks(&q, &k, &v, 32, how, chunk).unwrap();
                let diff = max_diff(&expected, &got);
                assert!(diff < 1e-5, "window {window:?}, chunk {chunk}: {diff}");
            }
        }
        assert_eq!(visible_keys(&(32..37), 37, None), 0..37);
        assert_eq!(visible_keys(&(0..4), 37, None), 0..4);
        assert_eq!(visible_keys(&(32..37), 37, Some(3)), 30..37);
    }

    #[test]
    fn mask_is_causal_and_windowed() {
        let m = attention_mask(3..5, 0..5, Some(2)).unwrap().to_vec2::<f32>().unwrap();
        let open = |row: &Vec<f32>| row.iter().map(|v| v.is_finite()).collect::<Vec<_>>();
        assert_eq!(open(&m[0]), [false, false, true, true, false]);
        assert_eq!(open(&m[1]), [false, false, false, true, true]);
    }
}
