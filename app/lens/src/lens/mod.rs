//! The logit-lens kernel.
//!
//! Every (row, position) cell's residual vector is decoded as softmax(unembed(final_norm(h))), but the
//! (rows × positions × vocabulary) logits are never held: the unembedding is walked in tiles of
//! vocabulary rows, each tile dequantized to f32 once and multiplied with all cells at once (one
//! GEMM), and each cell folds the tile into running accumulators (`partial.rs`).
//! Accumulators of disjoint parts of the vocabulary merge, so the vocabulary can be split across
//! workers (`wire.rs` moves the parts as bytes). `reduce.rs` holds the vectorized per-tile sums and
//! `parallel.rs` the native threads.

// The wasm32 GEMM (natively, candle's is faster); compiled natively only for its tests.
#[cfg(any(target_arch = "wasm32", test))]
mod gemm;
mod parallel;
mod partial;
mod reduce;
#[cfg(any(target_arch = "wasm32", test))]
mod simd;
pub mod wire;

pub use partial::LensPartial;

/// The vector instructions the wasm kernels were built with, for the model info line.
pub const SIMD: &str = if cfg!(all(target_arch = "wasm32", feature = "relaxed")) {
    "relaxed SIMD"
} else if cfg!(target_arch = "wasm32") {
    "SIMD128"
} else {
    "native"
};

use crate::error::{LensError, Result};
use crate::model::layers::dequantize_rows;
use crate::model::Model;
use candle_core::quantized::QTensor;
use candle_core::Tensor;
use std::ops::Range;

#[derive(Clone, Debug)]
pub struct LensOptions {
    pub top_k: usize,
    /// Token ids whose probability and rank to report in every cell.
    pub track: Vec<u32>,
}

impl Default for LensOptions {
    fn default() -> Self {
        Self { top_k: 5, track: Vec::new() }
    }
}

/// Logits buffer per tile is kept near this many floats (8 MiB), whatever the number of cells.
const TILE_FLOATS: usize = 1 << 21;

fn tile_width(cells: usize, vocab: usize) -> usize {
    ((TILE_FLOATS / cells.max(1)).clamp(64, 4096).min(vocab) / 16 * 16).max(16)
}

/// Part of an unembedding: rows `first_id..first_id + table rows` of the vocabulary, and the final
/// soft-cap the model applies to its logits.
pub struct VocabSlice<'a> {
    table: &'a QTensor,
    first_id: usize,
    softcap: Option<f32>,
}

impl VocabSlice<'_> {
    pub fn of(model: &Model) -> VocabSlice<'_> {
        VocabSlice { table: &model.unembedding.table, first_id: 0, softcap: model.final_softcap }
    }

    pub fn rows(&self) -> usize {
        self.table.shape().dims()[0]
    }
}

fn softcap(logits: Tensor, cap: Option<f32>) -> Result<Tensor> {
    Ok(match cap {
        Some(cap) => ((logits / cap as f64)?.tanh()? * cap as f64)?,
        None => logits,
    })
}

/// `x · wᵀ` for `x` `[n, d]` and `w` `[m, d]` (a linear layer, a tile of logits): in wasm32 through
/// the SIMD128 kernel, natively through candle's GEMM.
pub(crate) fn matmul_nt(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    #[cfg(target_arch = "wasm32")]
    {
        let (n, m) = (x.dim(0)?, w.dim(0)?);
        let x = x.contiguous()?;
        Ok(Tensor::from_vec(tile(&x, w, None)?, (n, m), &candle_core::Device::Cpu)?)
    }
    #[cfg(not(target_arch = "wasm32"))]
    Ok(x.matmul(&w.t()?)?)
}

/// One tile of logits `[cells, width]` for the final-normed `x` and dequantized rows `w`.
#[cfg(not(target_arch = "wasm32"))]
fn tile(x: &Tensor, w: &Tensor, cap: Option<f32>) -> Result<Vec<f32>> {
    Ok(softcap(x.matmul(&w.t()?)?, cap)?.flatten_all()?.to_vec1::<f32>()?)
}

#[cfg(target_arch = "wasm32")]
fn tile(x: &Tensor, w: &Tensor, cap: Option<f32>) -> Result<Vec<f32>> {
    use candle_core::{CpuStorage, Storage};
    let ((cells, d), width) = (x.dims2()?, w.dim(0)?);
    let (x_storage, x_layout) = x.storage_and_layout();
    let (w_storage, w_layout) = w.storage_and_layout();
    let mut z = vec![0f32; cells * width];
    match (&*x_storage, x_layout.contiguous_offsets(), &*w_storage, w_layout.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(xs)), Some((xa, xb)), Storage::Cpu(CpuStorage::F32(ws)), Some((wa, wb))) => {
            gemm::tile_logits(&xs[xa..xb], &ws[wa..wb], cells, width, d, &mut z)
        }
        _ => return Err(LensError::Compute("the lens expects contiguous f32 tensors".into())),
    }
    if let Some(cap) = cap {
        z.iter_mut().for_each(|v| *v = cap * (*v / cap).tanh());
    }
    Ok(z)
}

/// Calls `fold(first_vocab_id, width, logits)` for each tile of `slice` in `range` (ids relative to
/// the slice), where `logits` is `[cells, width]` row-major for the final-normed `x` `[cells, d]`.
/// Shared by the lens and by generation, so the lens's last row and the sampled logits agree.
pub(crate) fn for_each_tile(
    slice: &VocabSlice,
    range: Range<usize>,
    normed: &Tensor,
    cancel: &dyn Fn() -> bool,
    mut fold: impl FnMut(usize, usize, &[f32]),
) -> Result<()> {
    let cells = normed.dim(0)?;
    let width = tile_width(cells, slice.rows());
    let mut v0 = range.start;
    while v0 < range.end {
        if cancel() {
            return Err(LensError::Cancelled);
        }
        let v1 = (v0 + width).min(range.end);
        let w = dequantize_rows(slice.table, v0..v1)?;
        let z = tile(normed, &w, slice.softcap)?;
        fold(slice.first_id + v0, v1 - v0, &z);
        v0 = v1;
    }
    Ok(())
}

/// The full next-token logits of the final-normed rows `normed` `[n, d]`, row-major.
pub fn full_logits(model: &Model, normed: &Tensor) -> Result<Vec<f32>> {
    let slice = VocabSlice::of(model);
    let vocab = slice.rows();
    let n = normed.dim(0)?;
    let mut out = vec![0f32; n * vocab];
    for_each_tile(&slice, 0..vocab, normed, &|| false, |v0, width, z| {
        for r in 0..n {
            out[r * vocab + v0..r * vocab + v0 + width].copy_from_slice(&z[r * width..(r + 1) * width]);
        }
    })?;
    Ok(out)
}

/// What every part of a lens computation shares: the final-normed cells `[n_rows · n_pos, d]`
/// (row-major by row, then position; the last row is the KL reference) and the tracked tokens'
/// logits in each cell.
pub struct LensInput {
    pub(crate) normed: Tensor,
    pub(crate) n_rows: usize,
    pub(crate) n_pos: usize,
    pub(crate) top_k: usize,
    pub(crate) track: Vec<u32>,
    /// `[cell][tracked]`.
    pub(crate) tracked_logits: Vec<f32>,
}

impl LensInput {
    /// Final-norms `rows` (each `[positions, d]`) and computes the tracked tokens' logits.
    pub fn new(model: &Model, rows: &[Tensor], opts: &LensOptions) -> Result<Self> {
        let n_rows = rows.len();
        if n_rows == 0 {
            return Err(LensError::InvalidRequest("no rows to decode".into()));
        }
        let vocab = model.unembedding.rows();
        if let Some(&bad) = opts.track.iter().find(|&&id| id as usize >= vocab) {
            return Err(LensError::InvalidRequest(format!(
                "tracked token id {bad} is outside the vocabulary of {vocab}"
            )));
        }
        let n_pos = rows[0].dim(0)?;
        let normed = model.final_norm(&Tensor::cat(rows, 0)?)?.contiguous()?;
        // Tracked tokens' logits first, so every part can count the logits above them.
        let tracked_logits = if opts.track.is_empty() {
            Vec::new()
        } else {
            let w = model.unembedding.lookup(&opts.track)?;
            softcap(normed.matmul(&w.t()?)?, model.final_softcap)?.flatten_all()?.to_vec1::<f32>()?
        };
        Ok(Self { normed, n_rows, n_pos, top_k: opts.top_k.min(vocab), track: opts.track.clone(), tracked_logits })
    }
}
