//! The logit-lens kernel.
//!
//! Every (row, position) cell's residual vector is decoded as softmax(unembed(final_norm(h))), but the
//! (rows × positions × vocabulary) logits are never held: the unembedding is walked in tiles of
//! vocabulary rows, each tile dequantized to f32 once and multiplied with all cells at once (one
//! GEMM), and each cell folds the tile into running accumulators (`partial.rs`).
//! Accumulators of disjoint parts of the vocabulary merge, so the vocabulary can be split across
//! workers (`wire.rs` moves the parts as bytes); `parallel.rs` runs the folding on native threads.
//! The products and the vectorized per-tile sums are `kernels/`'s: in fast precision each tile's
//! product may be taken in 8-bit integers (`kernels/int8.rs`).

mod parallel;
mod partial;
pub mod wire;

pub use partial::LensPartial;

use crate::error::{LensError, Result};
use crate::kernels::{dequantize_rows, int8, matvec};
use crate::model::Model;
use crate::Precision;
use candle_core::quantized::QTensor;
use candle_core::Tensor;
use std::ops::Range;

#[derive(Clone, Debug)]
pub struct LensOptions {
    pub top_k: usize,
    /// Token ids whose probability and rank to report in every cell.
    pub track: Vec<u32>,
    /// How each tile of logits is multiplied.
    pub product: Product,
}

impl Default for LensOptions {
    fn default() -> Self {
        Self { top_k: 5, track: Vec::new(), product: Product::F32 }
    }
}

/// The arithmetic of the lens's one matrix product.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Product {
    #[default]
    F32,
    /// 8-bit integers (`kernels/int8.rs`), within fast precision's accuracy bar.
    Int8,
}

impl Product {
    /// Exact precision's product is f32; fast precision's is `fast` (the engine's choice, from
    /// `int8_is_faster` in a browser). Natively and in the SIMD128 worker the f32 product is the
    /// faster one, so there fast precision's lens is the exact one.
    pub fn for_precision(precision: Precision, fast: Product) -> Product {
        match precision {
            Precision::Fast => fast,
            Precision::Exact => Product::F32,
        }
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

/// One tile of logits `[cells, width]` for the final-normed `x` and dequantized rows `w`.
#[cfg(not(target_arch = "wasm32"))]
fn tile(x: &Tensor, w: &Tensor, cap: Option<f32>) -> Result<Vec<f32>> {
    Ok(softcap(x.matmul(&w.t()?)?, cap)?.flatten_all()?.to_vec1::<f32>()?)
}

#[cfg(target_arch = "wasm32")]
fn tile(x: &Tensor, w: &Tensor, cap: Option<f32>) -> Result<Vec<f32>> {
    let mut z = crate::kernels::matmul_nt_flat(x, w)?;
    if let Some(cap) = cap {
        z.iter_mut().for_each(|v| *v = cap * (*v / cap).tanh());
    }
    Ok(z)
}

/// Calls `fold(first_vocab_id, width, logits)` for each tile of `slice` in `range` (ids relative to
/// the slice), where `logits` is `[cells, width]` row-major for the final-normed `x` `[cells, d]`,
/// multiplied in 8-bit integers when `quantized` holds `x` quantized (fast precision). Shared by
/// the lens and by generation, so the exact lens's last row and the sampled logits agree.
pub(crate) fn for_each_tile(
    slice: &VocabSlice,
    range: Range<usize>,
    normed: &Tensor,
    quantized: Option<&int8::Cells>,
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
        let z = match quantized {
            Some(x) => int8_tile(x, &w, slice.softcap)?,
            None => tile(normed, &w, slice.softcap)?,
        };
        fold(slice.first_id + v0, v1 - v0, &z);
        v0 = v1;
    }
    Ok(())
}

/// A tile of logits in 8-bit integers from quantized cells and the tile's f32 rows.
fn int8_tile(x: &int8::Cells, w: &Tensor, cap: Option<f32>) -> Result<Vec<f32>> {
    let mut z = crate::kernels::int8_logits(x, w)?;
    if let Some(cap) = cap {
        z.iter_mut().for_each(|v| *v = cap * (*v / cap).tanh());
    }
    Ok(z)
}

/// The full next-token logits of the final-normed rows `normed` `[n, d]`, row-major.
pub fn full_logits(model: &Model, normed: &Tensor) -> Result<Vec<f32>> {
    let slice = VocabSlice::of(model);
    // One row (an answer's next token): the table's blocks dequantized in registers.
    if normed.dim(0)? == 1 && matvec::supports(slice.table.dtype()) {
        let z = matvec::matvec(slice.table, &normed.flatten_all()?.to_vec1::<f32>()?)?;
        let z = Tensor::from_vec(z, (1, slice.rows()), normed.device())?;
        return Ok(softcap(z, slice.softcap)?.flatten_all()?.to_vec1::<f32>()?);
    }
    let vocab = slice.rows();
    let n = normed.dim(0)?;
    let mut out = vec![0f32; n * vocab];
    for_each_tile(&slice, 0..vocab, normed, None, &|| false, |v0, width, z| {
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
    /// The cells in 8 bits, for fast precision's integer product.
    pub(crate) quantized: Option<int8::Cells>,
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
        let quantized = quantize_cells(&normed, opts.product)?;
        Ok(Self {
            normed,
            n_rows,
            n_pos,
            top_k: opts.top_k.min(vocab),
            track: opts.track.clone(),
            tracked_logits,
            quantized,
        })
    }

    pub(crate) fn product(&self) -> Product {
        if self.quantized.is_some() {
            Product::Int8
        } else {
            Product::F32
        }
    }
}

/// Whether the integer product is clearly faster than the f32 one on this machine: both timed on a
/// synthetic tile (`now` in seconds). Only the relaxed-SIMD build can gain (see `Product`); it
/// gains on CPUs whose engine compiles the relaxed dot to one instruction, and not on others (an
/// AMD EPYC without AVX-VNNI ran it 15% slower than f32), which is why it is measured, not assumed.
pub fn int8_is_faster(now: &dyn Fn() -> f64) -> bool {
    if !cfg!(all(target_arch = "wasm32", feature = "relaxed")) {
        return false;
    }
    // A tile the size the lens meets (rows larger than the caches), ~15 ms per product.
    let (cells, width, d) = (256, 2048, 576);
    let x: Vec<f32> = (0..cells * d).map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 300.0).collect();
    let w: Vec<f32> = (0..width * d).map(|i| ((i * 104_729 % 997) as f32 - 498.0) / 400.0).collect();
    let (Ok(xt), Ok(wt)) = (
        Tensor::from_vec(x.clone(), (cells, d), &candle_core::Device::Cpu),
        Tensor::from_vec(w, (width, d), &candle_core::Device::Cpu),
    ) else {
        return false;
    };
    let quantized = int8::Cells::quantize(&x, d);
    let best = |f: &dyn Fn() -> bool| {
        (0..3)
            .map(|_| {
                let t0 = now();
                let ok = f();
                if ok {
                    now() - t0
                } else {
                    f64::INFINITY
                }
            })
            .fold(f64::INFINITY, f64::min)
    };
    let f32_time = best(&|| tile(&xt, &wt, None).is_ok());
    let int8_time = best(&|| int8_tile(&quantized, &wt, None).is_ok());
    int8_time < 0.9 * f32_time
}

/// The cells in 8 bits for the integer product, where the width allows; otherwise it stays f32.
pub(crate) fn quantize_cells(normed: &Tensor, product: Product) -> Result<Option<int8::Cells>> {
    let d = normed.dim(1)?;
    Ok(match product {
        Product::Int8 if int8::supported(d) => Some(int8::Cells::quantize(&normed.flatten_all()?.to_vec1::<f32>()?, d)),
        _ => None,
    })
}
