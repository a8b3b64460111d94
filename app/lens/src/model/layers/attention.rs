//! Causal attention over a KV cache, in query chunks, with sliding windows and score soft-caps.

use crate::error::Result;
use crate::kernels::batched_matmul_nt;
use candle_core::{Device, Tensor};
use std::ops::Range;

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
