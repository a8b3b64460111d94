//! The running accumulators of every lens cell over one part of the vocabulary:
//!   m = running max logit, S0 = Σ e^(z-m), S1 = Σ (z-m)·e^(z-m)  →  entropy = ln S0 − S1/S0,
//!   a small top-k, for tracked tokens the count of logits above theirs (their rank),
//!   and Σ e^(zL-mL)·(z − zL) against the last row at the same position, for KL(last ‖ row).
//! Accumulators rescale when the running max grows, so tiles can come in any order, and the
//! accumulators of disjoint parts of the vocabulary merge.

use super::parallel::for_each_chunk;
use super::{for_each_tile, LensInput, VocabSlice};
use crate::error::{LensError, Result};
use crate::kernels::reduce::{exp_nonpositive, lanes_exp_sums, lanes_max, lanes_weighted_difference};
use loupe_protocol::{LensGrid, TrackedToken};
use serde::{Deserialize, Serialize};
use std::ops::Range;

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
    pub fn compute(
        input: &LensInput,
        slice: &VocabSlice,
        range: Range<usize>,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Self> {
        let (n_rows, n_pos, k) = (input.n_rows, input.n_pos, input.top_k);
        let nt = input.track.len();
        let track = &input.track;
        let mut cells: Vec<Cell> =
            (0..n_rows * n_pos).map(|c| Cell::new(k, input.tracked_logits[c * nt..(c + 1) * nt].to_vec())).collect();
        let last = (n_rows - 1) * n_pos;
        for_each_tile(slice, range, &input.normed, input.quantized.as_ref(), cancel, |v0, width, z| {
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
        if (self.n_rows, self.n_pos, self.k, self.cells.len())
            != (other.n_rows, other.n_pos, other.k, other.cells.len())
        {
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

    /// The grid of the first `keep_rows` rows of a partial that covers the whole vocabulary (a
    /// row group leaves out the last row it borrowed as the KL reference). Token strings are left
    /// empty: the kernel knows ids, the engine names them.
    pub fn finish(self, track: &[u32], keep_rows: usize) -> LensGrid {
        let (n_rows, n_pos) = (keep_rows.min(self.n_rows), self.n_pos);
        let all = self.cells;
        let last = (self.n_rows - 1) * n_pos;
        let mut grid = LensGrid {
            n_rows,
            n_positions: n_pos,
            entropy: vec![vec![0.0; n_pos]; n_rows],
            top_ids: vec![vec![Vec::new(); n_pos]; n_rows],
            top_probs: vec![vec![Vec::new(); n_pos]; n_rows],
            kl_to_last: vec![vec![0.0; n_pos]; n_rows],
            tracked: track
                .iter()
                .map(|&id| TrackedToken {
                    id,
                    prob: vec![vec![0.0; n_pos]; n_rows],
                    rank: vec![vec![0; n_pos]; n_rows],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let cells = &all[..n_rows * n_pos];
        for (c, cell) in cells.iter().enumerate() {
            let (r, p) = (c / n_pos, c % n_pos);
            let log_z = cell.log_partition();
            grid.entropy[r][p] = non_negative(cell.s0.ln() - cell.s1 / cell.s0);
            grid.top_ids[r][p] = cell.top.iter().map(|&(_, id)| id).collect();
            grid.top_probs[r][p] = cell.top.iter().map(|&(z, _)| (z as f64 - log_z).exp() as f32).collect();
            if c < last {
                let l = &all[last + p];
                let kl = log_z - l.log_partition() - cell.kl_cross / l.s0;
                grid.kl_to_last[r][p] = non_negative(kl);
            }
            for (i, t) in grid.tracked.iter_mut().enumerate() {
                t.prob[r][p] = (cell.tracked_logit[i] as f64 - log_z).exp() as f32;
                // A NaN logit is above nothing and below nothing: no rank, not rank 1.
                t.rank[r][p] = if t.prob[r][p].is_nan() { 0 } else { cell.above[i] + 1 };
            }
        }
        grid
    }
}

/// Entropy and KL are never negative: a tiny negative from rounding becomes 0, but NaN (a model
/// whose numbers broke) stays NaN, so it is shown as such rather than as certainty.
fn non_negative(x: f64) -> f32 {
    if x < 0.0 {
        0.0
    } else {
        x as f32
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
