//! The logit-lens kernel.
//!
//! Every (row, position) cell's residual vector is decoded as softmax(unembed(final_norm(h))), but the
//! (rows × positions × vocabulary) logits are never held: the unembedding is walked in tiles of
//! vocabulary rows, each tile dequantized to f32 once and multiplied with all cells at once (one
//! GEMM), and each cell folds the tile into running accumulators:
//!   m = running max logit, S0 = Σ e^(z-m), S1 = Σ (z-m)·e^(z-m)  →  entropy = ln S0 − S1/S0,
//!   a small top-k, for tracked tokens the count of logits above theirs (their rank),
//!   and Σ e^(zL-mL)·(z − zL) against the last row at the same position, for KL(last ‖ row).
//! Accumulators rescale when the running max grows, so the tiles can come in any order.

use crate::error::{LensError, Result};
use crate::model::layers::dequantize_rows;
use crate::model::Model;
use candle_core::Tensor;
use loupe_protocol::{LensGrid, TrackedToken};

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
    (TILE_FLOATS / cells.max(1)).clamp(64, 4096).min(vocab) / 16 * 16
}

/// Calls `fold(first_vocab_id, logits)` for each vocabulary tile, where `logits` is
/// `[cells, width]` row-major for the final-normed `x` `[cells, d]`. Shared by the lens and by
/// generation, so the lens's last row and the sampled logits are the same numbers.
pub fn for_each_tile(
    model: &Model,
    normed: &Tensor,
    cancel: &dyn Fn() -> bool,
    mut fold: impl FnMut(usize, usize, &[f32]),
) -> Result<()> {
    let table = &model.unembedding.table;
    let vocab = model.unembedding.rows();
    let cells = normed.dim(0)?;
    let width = tile_width(cells, vocab).max(16);
    let mut v0 = 0;
    while v0 < vocab {
        if cancel() {
            return Err(LensError::Cancelled);
        }
        let v1 = (v0 + width).min(vocab);
        let w = dequantize_rows(table, v0..v1)?;
        let logits = normed.matmul(&w.t()?)?;
        let logits = match model.final_softcap {
            Some(cap) => ((logits / cap as f64)?.tanh()? * cap as f64)?,
            None => logits,
        };
        let z = logits.flatten_all()?.to_vec1::<f32>()?;
        fold(v0, v1 - v0, &z);
        v0 = v1;
    }
    Ok(())
}

/// The full next-token logits of the final-normed rows `normed` `[n, d]`, row-major.
pub fn full_logits(model: &Model, normed: &Tensor) -> Result<Vec<f32>> {
    let vocab = model.unembedding.rows();
    let n = normed.dim(0)?;
    let mut out = vec![0f32; n * vocab];
    for_each_tile(model, normed, &|| false, |v0, width, z| {
        for r in 0..n {
            out[r * vocab + v0..r * vocab + v0 + width].copy_from_slice(&z[r * width..(r + 1) * width]);
        }
    })?;
    Ok(out)
}

/// Running state of one cell.
#[derive(Clone)]
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

/// The lens of `rows` (each `[positions, d]`, row 0 the embedding output). KL is measured against
/// the last of `rows`, which is the model's own output when all rows are given.
pub fn logit_lens(model: &Model, rows: &[Tensor], opts: &LensOptions, cancel: &dyn Fn() -> bool) -> Result<LensGrid> {
    let n_rows = rows.len();
    if n_rows == 0 {
        return Err(LensError::InvalidRequest("no rows to decode".into()));
    }
    let n_pos = rows[0].dim(0)?;
    let vocab = model.unembedding.rows();
    if let Some(&bad) = opts.track.iter().find(|&&id| id as usize >= vocab) {
        return Err(LensError::InvalidRequest(format!("tracked token id {bad} is outside the vocabulary of {vocab}")));
    }
    let k = opts.top_k.min(vocab);
    let x = model.final_norm(&Tensor::cat(rows, 0)?)?.contiguous()?;
    let n_cells = n_rows * n_pos;

    // Tracked tokens' logits first, so the main pass can count the logits above them.
    let tracked_logits: Vec<f32> = if opts.track.is_empty() {
        Vec::new()
    } else {
        let w = model.unembedding.lookup(&opts.track)?;
        let z = x.matmul(&w.t()?)?;
        let z = match model.final_softcap {
            Some(cap) => ((z / cap as f64)?.tanh()? * cap as f64)?,
            None => z,
        };
        z.flatten_all()?.to_vec1::<f32>()?
    };
    let nt = opts.track.len();
    let mut cells: Vec<Cell> =
        (0..n_cells).map(|c| Cell::new(k, tracked_logits[c * nt..(c + 1) * nt].to_vec())).collect();
    let last = (n_rows - 1) * n_pos;

    for_each_tile(model, &x, cancel, |v0, width, z| {
        // The last row first: its new maxima define the weights of KL(last ‖ row).
        let (others, last_cells) = cells.split_at_mut(last);
        let mut kl_rescale = vec![1f64; n_pos];
        for (pos, cell) in last_cells.iter_mut().enumerate() {
            let c = last + pos;
            kl_rescale[pos] = cell.fold(v0, &z[c * width..(c + 1) * width], k, &opts.track);
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
                cell.fold(v0, zc, k, &opts.track);
                let zl = &z[(last + pos) * width..(last + pos + 1) * width];
                let w = &weights[pos * width..(pos + 1) * width];
                let cross = lanes_weighted_difference(zc, zl, w);
                cell.kl_cross = cell.kl_cross * kl_rescale[pos] + cross as f64;
            }
        });
    })?;

    let mut grid = LensGrid {
        n_rows,
        n_positions: n_pos,
        entropy: vec![vec![0.0; n_pos]; n_rows],
        top_ids: vec![vec![Vec::new(); n_pos]; n_rows],
        top_probs: vec![vec![Vec::new(); n_pos]; n_rows],
        kl_to_last: vec![vec![0.0; n_pos]; n_rows],
        tracked: opts
            .track
            .iter()
            .map(|&id| TrackedToken {
                id,
                piece: String::new(),
                prob: vec![vec![0.0; n_pos]; n_rows],
                rank: vec![vec![0; n_pos]; n_rows],
            })
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
    Ok(grid)
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
