//! The logit-lens kernel.
//!
//! Every (row, position) cell's residual vector is decoded as softmax(unembed(final_norm(h))), but the
//! (rows × positions × vocabulary) logits are never held: the unembedding is walked in tiles of
//! vocabulary rows, each tile dequantized to f32 once and multiplied with all cells at once (one
//! GEMM), and each cell folds the tile into running accumulators:
//!   m = running max logit, S0 = Σ e^(z-m), S1 = Σ (z-m)·e^(z-m)  →  entropy = ln S0 − S1/S0,
//!   a small top-k, for tracked tokens the count of logits above theirs (their rank),
//!   and Σ e^(zL-mL)·(z − zL) against the last row at the same position, for KL(last ‖ row).
//! Accumulators rescale when the running max grows, so tiles can come in any order, and the
//! accumulators of disjoint parts of the vocabulary merge: a `LensPartial` per part (one per worker
//! in the browser), `merge`d, then `finish`ed into the grid.

use crate::error::{LensError, Result};
use crate::model::layers::dequantize_rows;
use crate::model::Model;
use candle_core::quantized::QTensor;
use candle_core::Tensor;
use loupe_protocol::{LensGrid, TrackedToken};
use serde::{Deserialize, Serialize};
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
    pub table: &'a QTensor,
    pub first_id: usize,
    pub softcap: Option<f32>,
}

impl VocabSlice<'_> {
    pub fn of(model: &Model) -> VocabSlice<'_> {
        VocabSlice { table: &model.unembedding.table, first_id: 0, softcap: model.final_softcap }
    }

    fn len(&self) -> usize {
        self.table.shape().dims()[0]
    }
}

fn softcap(logits: Tensor, cap: Option<f32>) -> Result<Tensor> {
    Ok(match cap {
        Some(cap) => ((logits / cap as f64)?.tanh()? * cap as f64)?,
        None => logits,
    })
}

/// Calls `fold(first_vocab_id, width, logits)` for each tile of `slice` in `range` (ids relative to
/// the slice), where `logits` is `[cells, width]` row-major for the final-normed `x` `[cells, d]`.
/// Shared by the lens and by generation, so the lens's last row and the sampled logits agree.
fn for_each_tile(
    slice: &VocabSlice,
    range: Range<usize>,
    normed: &Tensor,
    cancel: &dyn Fn() -> bool,
    mut fold: impl FnMut(usize, usize, &[f32]),
) -> Result<()> {
    let cells = normed.dim(0)?;
    let width = tile_width(cells, slice.len());
    let mut v0 = range.start;
    while v0 < range.end {
        if cancel() {
            return Err(LensError::Cancelled);
        }
        let v1 = (v0 + width).min(range.end);
        let w = dequantize_rows(slice.table, v0..v1)?;
        let logits = softcap(normed.matmul(&w.t()?)?, slice.softcap)?;
        let z = logits.flatten_all()?.to_vec1::<f32>()?;
        fold(slice.first_id + v0, v1 - v0, &z);
        v0 = v1;
    }
    Ok(())
}

/// The full next-token logits of the final-normed rows `normed` `[n, d]`, row-major.
pub fn full_logits(model: &Model, normed: &Tensor) -> Result<Vec<f32>> {
    let slice = VocabSlice::of(model);
    let vocab = slice.len();
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
    pub normed: Tensor,
    pub n_rows: usize,
    pub n_pos: usize,
    pub top_k: usize,
    pub track: Vec<u32>,
    /// `[cell][tracked]`.
    pub tracked_logits: Vec<f32>,
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
            return Err(LensError::InvalidRequest(format!("tracked token id {bad} is outside the vocabulary of {vocab}")));
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

/// Accumulators of every cell over one part of the vocabulary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LensPartial {
    n_rows: usize,
    n_pos: usize,
    k: usize,
    cells: Vec<Cell>,
}

impl LensPartial {
    /// Folds vocabulary ids `range` (relative to `slice`) into fresh accumulators.
    pub fn compute(input: &LensInput, slice: &VocabSlice, range: Range<usize>, cancel: &dyn Fn() -> bool) -> Result<Self> {
        let (n_rows, n_pos, k) = (input.n_rows, input.n_pos, input.top_k);
        let nt = input.track.len();
        let track = &input.track;
        let mut cells: Vec<Cell> = (0..n_rows * n_pos)
            .map(|c| Cell::new(k, input.tracked_logits[c * nt..(c + 1) * nt].to_vec()))
            .collect();
        let last = (n_rows - 1) * n_pos;
        for_each_tile(slice, range, &input.normed, cancel, |v0, width, z| {
            // The last row first: its new maxima define the weights of KL(last ‖ row).
            let (others, last_cells) = cells.split_at_mut(last);
            let mut kl_rescale = vec![1f64; n_pos];
            for (pos, cell) in last_cells.iter_mut().enumerate() {
                let c = last + pos;
                kl_rescale[pos] = cell.fold(v0, &z[c * width..(c + 1) * width], k, track);
            }
            let last_cells = &*last_cells;
            let weights: Vec<f32> = (0..n_pos)
                .flat_map(|pos| {
                    let m = last_cells[pos].max;
                    let c = last + pos;
                    z[c * width..(c + 1) * width].iter().map(move |&zl| exp_nonpositive(zl - m))
                })
                .collect();
            for_each_chunk(others, |first, chunk| {
                for (i, cell) in chunk.iter_mut().enumerate() {
                    let c = first + i;
                    let pos = c % n_pos;
                    let zc = &z[c * width..(c + 1) * width];
                    cell.fold(v0, zc, k, track);
                    let zl = &z[(last + pos) * width..(last + pos + 1) * width];
                    let w = &weights[pos * width..(pos + 1) * width];
                    let cross = lanes_weighted_difference(zc, zl, w);
                    cell.kl_cross = cell.kl_cross * kl_rescale[pos] + cross as f64;
                }
            });
        })?;
        Ok(Self { n_rows, n_pos, k, cells })
    }

    /// Adds the accumulators of a disjoint part of the vocabulary.
    pub fn merge(&mut self, other: &LensPartial) -> Result<()> {
        if (self.n_rows, self.n_pos, self.k, self.cells.len()) != (other.n_rows, other.n_pos, other.k, other.cells.len()) {
            return Err(LensError::InvalidRequest("lens parts of different shapes".into()));
        }
        let last = (self.n_rows - 1) * self.n_pos;
        // KL cross terms are relative to each side's last-row maximum at the position.
        let scales: Vec<(f64, f64)> = (0..self.n_pos)
            .map(|p| {
                let (a, b) = (self.cells[last + p].max, other.cells[last + p].max);
                let m = a.max(b);
                let f = |x: f32| if x == f32::NEG_INFINITY { 0.0 } else { ((x - m) as f64).exp() };
                (f(a), f(b))
            })
            .collect();
        let (k, n_pos) = (self.k, self.n_pos);
        for (c, (mine, theirs)) in self.cells.iter_mut().zip(&other.cells).enumerate() {
            mine.merge(theirs, k, scales[c % n_pos]);
        }
        Ok(())
    }

    /// The grid of a partial that covers the whole vocabulary.
    pub fn finish(self, track: &[u32]) -> LensGrid {
        let (n_rows, n_pos) = (self.n_rows, self.n_pos);
        let cells = self.cells;
        let last = (n_rows - 1) * n_pos;
        let mut grid = LensGrid {
            n_rows,
            n_positions: n_pos,
            entropy: vec![vec![0.0; n_pos]; n_rows],
            top_ids: vec![vec![Vec::new(); n_pos]; n_rows],
            top_probs: vec![vec![Vec::new(); n_pos]; n_rows],
            kl_to_last: vec![vec![0.0; n_pos]; n_rows],
            tracked: track
                .iter()
                .map(|&id| TrackedToken { id, piece: String::new(), prob: vec![vec![0.0; n_pos]; n_rows], rank: vec![vec![0; n_pos]; n_rows] })
                .collect(),
        };
        for (c, cell) in cells.iter().enumerate() {
            let (r, p) = (c / n_pos, c % n_pos);
            let log_z = cell.log_partition();
            grid.entropy[r][p] = (cell.s0.ln() - cell.s1 / cell.s0).max(0.0) as f32;
            grid.top_ids[r][p] = cell.top.iter().map(|&(_, id)| id).collect();
            grid.top_probs[r][p] = cell.top.iter().map(|&(z, _)| (z as f64 - log_z).exp() as f32).collect();
            if c < last {
                let l = &cells[last + p];
                let kl = log_z - l.log_partition() - cell.kl_cross / l.s0;
                grid.kl_to_last[r][p] = kl.max(0.0) as f32;
            }
            for (i, t) in grid.tracked.iter_mut().enumerate() {
                t.prob[r][p] = (cell.tracked_logit[i] as f64 - log_z).exp() as f32;
                t.rank[r][p] = cell.above[i] + 1;
            }
        }
        grid
    }
}

/// Running state of one cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Cell {
    max: f32,
    s0: f64,
    s1: f64,
    /// Σ e^(zL − mL)·(z − zL) over the vocabulary, zL the last row's logits at this position.
    kl_cross: f64,
    /// Descending (logit, id), at most k.
    top: Vec<(f32, u32)>,
    /// Per tracked token: its logit and how many logits exceed it.
    tracked_logit: Vec<f32>,
    above: Vec<u32>,
}

impl Cell {
    fn new(k: usize, tracked_logit: Vec<f32>) -> Self {
        let n = tracked_logit.len();
        Self {
            max: f32::NEG_INFINITY,
            s0: 0.0,
            s1: 0.0,
            kl_cross: 0.0,
            top: Vec::with_capacity(k + 1),
            tracked_logit,
            above: vec![0; n],
        }
    }

    /// Folds one tile of logits; returns the factor e^(m_old − m_new) the sums were scaled by.
    fn fold(&mut self, v0: usize, z: &[f32], k: usize, track: &[u32]) -> f64 {
        let tile_max = lanes_max(z);
        let mut rescale = 1.0;
        if tile_max > self.max {
            if self.s0 > 0.0 {
                rescale = ((self.max - tile_max) as f64).exp();
                self.s1 = (self.s1 + (self.max - tile_max) as f64 * self.s0) * rescale;
                self.s0 *= rescale;
            }
            self.max = tile_max;
        }
        let (s0, s1) = lanes_exp_sums(z, self.max);
        self.s0 += s0 as f64;
        self.s1 += s1 as f64;

        if k > 0 {
            let mut floor = if self.top.len() == k { self.top[k - 1].0 } else { f32::NEG_INFINITY };
            for (j, &zj) in z.iter().enumerate() {
                if zj > floor {
                    let at = self.top.partition_point(|&(t, _)| t >= zj);
                    self.top.insert(at, (zj, (v0 + j) as u32));
                    self.top.truncate(k);
                    if self.top.len() == k {
                        floor = self.top[k - 1].0;
                    }
                }
            }
        }
        for (i, &id) in track.iter().enumerate() {
            let t = self.tracked_logit[i];
            let mut above = z.iter().filter(|&&zj| zj > t).count() as u32;
            let own = id as usize;
            if own >= v0 && own < v0 + z.len() && z[own - v0] > t {
                above -= 1; // the token itself, rounded differently in the tile GEMM
            }
            self.above[i] += above;
        }
        rescale
    }

    /// Adds what `other` accumulated over another part of the vocabulary. `kl_scale` pair: the
    /// factors bringing each side's KL cross term to the merged last-row maximum.
    fn merge(&mut self, other: &Cell, k: usize, kl_scale: (f64, f64)) {
        let m = self.max.max(other.max);
        let part = |max: f32, s0: f64, s1: f64| -> (f64, f64) {
            if s0 == 0.0 {
                return (0.0, 0.0);
            }
            let f = ((max - m) as f64).exp();
            (s0 * f, (s1 + (max - m) as f64 * s0) * f)
        };
        let (a0, a1) = part(self.max, self.s0, self.s1);
        let (b0, b1) = part(other.max, other.s0, other.s1);
        self.max = m;
        self.s0 = a0 + b0;
        self.s1 = a1 + b1;
        self.kl_cross = self.kl_cross * kl_scale.0 + other.kl_cross * kl_scale.1;
        self.top.extend_from_slice(&other.top);
        self.top.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        self.top.truncate(k);
        for (a, b) in self.above.iter_mut().zip(&other.above) {
            *a += b;
        }
    }

    fn log_partition(&self) -> f64 {
        self.max as f64 + self.s0.ln()
    }
}

// The reductions below keep LANES independent partial results: a single running f32 sum or max is a
// serial dependency the compiler may not reorder, so it would not use SIMD at all.
const LANES: usize = 8;

fn lanes_max(z: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; LANES];
    let chunks = z.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            m[i] = if c[i] > m[i] { c[i] } else { m[i] };
        }
    }
    rest.iter().chain(&m).copied().fold(f32::NEG_INFINITY, f32::max)
}

/// (Σ e^(z−m), Σ (z−m)·e^(z−m)) over a tile; terms are at most 1, a tile has at most a few thousand.
fn lanes_exp_sums(z: &[f32], m: f32) -> (f32, f32) {
    let (mut s0, mut s1) = ([0f32; LANES], [0f32; LANES]);
    let chunks = z.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            let d = c[i] - m;
            let e = exp_nonpositive(d);
            s0[i] += e;
            s1[i] += d * e;
        }
    }
    for &zj in rest {
        let d = zj - m;
        let e = exp_nonpositive(d);
        s0[0] += e;
        s1[0] += d * e;
    }
    (s0.iter().sum(), s1.iter().sum())
}

/// Σ w·(a − b) over a tile.
fn lanes_weighted_difference(a: &[f32], b: &[f32], w: &[f32]) -> f32 {
    let mut s = [0f32; LANES];
    let n = a.len() / LANES * LANES;
    for j in (0..n).step_by(LANES) {
        for i in 0..LANES {
            s[i] += w[j + i] * (a[j + i] - b[j + i]);
        }
    }
    let tail: f32 = (n..a.len()).map(|j| w[j] * (a[j] - b[j])).sum();
    s.iter().sum::<f32>() + tail
}

/// e^x for x ≤ 0 (0 below −87), written without branches or calls so that it vectorizes.
/// Range reduction x = n·ln2 + r, |r| ≤ ln2/2, then a degree-6 Taylor polynomial: relative error
/// about 2e-7, below f32 rounding of the sums it feeds.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    let x = x.max(-87.0);
    let n = (x * LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n as i32 + 127) << 23) as u32);
    p * scale
}

/// Runs `work(first_cell_index, cells)` over disjoint chunks, on all cores where threads exist.
fn for_each_chunk<T: Send>(items: &mut [T], work: impl Fn(usize, &mut [T]) + Sync) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        if threads > 1 && items.len() >= 2 * threads {
            let chunk = items.len().div_ceil(threads);
            std::thread::scope(|s| {
                for (i, part) in items.chunks_mut(chunk).enumerate() {
                    let work = &work;
                    s.spawn(move || work(i * chunk, part));
                }
            });
            return;
        }
    }
    work(0, items)
}

#[cfg(test)]
mod tests {
    use super::exp_nonpositive;

    #[test]
    fn fast_exp_matches_std() {
        let mut worst = 0f32;
        let mut x = 0f32;
        while x > -90.0 {
            let (a, b) = (exp_nonpositive(x), x.exp());
            if b > 1e-30 {
                worst = worst.max(((a - b) / b).abs());
            }
            x -= 0.0137;
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert_eq!(exp_nonpositive(-1000.0) < 1e-37, true);
    }
}
