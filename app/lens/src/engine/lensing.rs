//! The lens of a sequence (`recipe.rs` strings the steps together): the residual stream from one
//! forward pass, then every cell decoded, whole or in parts (`lens_plan`: row groups of a short sequence, the positions in view first for
//! a long one, so a front end can show cells as they finish), each part splittable by vocabulary
//! for other workers (`lens::wire`).

use super::recipe::{block_on, Here};
use super::Engine;
use crate::error::{LensError, Result};
use crate::lens::wire::{self, SliceHeader};
use crate::lens::{LensInput, LensOptions, LensPartial, Product, VocabSlice};
use crate::model::Record;
use candle_core::Tensor;
use loupe_protocol::{LensGrid, Precision, Question};
use std::collections::VecDeque;
use std::ops::Range;

/// Positions a long sequence shows first: the magnified view's default range is its tail, where
/// the template's dummy tokens and the answer are.
pub const FIRST_POSITIONS: usize = 64;
/// Positions per part after those; a part of every row at 512 positions of a 135M model is a few
/// seconds in a browser, so progress stays visible.
pub const POSITIONS_PER_PART: usize = 512;
/// Sequences up to this long are lensed by row groups over every position.
const SHORT: usize = 256;
/// Row groups for a short sequence: each group dequantizes the unembedding again and decodes the
/// last row again (the KL reference); measured on 2 cores, 2 groups instead of 4 took the lens from
/// 1.3–1.7 s to 1.1–1.2 s (SmolLM2) and from 5.0 s to 3.9 s (Qwen2.5-0.5B).
const ROW_GROUPS: usize = 2;

/// One part of a lens: rows × positions.
#[derive(Clone, Debug, PartialEq)]
pub struct LensPart {
    pub rows: Range<usize>,
    pub positions: Range<usize>,
}

/// The order in which to lens `n_rows × n_positions` cells: a short sequence by row groups; a long
/// one by position ranges of every row, the last `FIRST_POSITIONS` first, then backwards from there.
pub fn lens_plan(n_rows: usize, n_positions: usize) -> Vec<LensPart> {
    if n_rows == 0 || n_positions == 0 {
        return Vec::new();
    }
    if n_positions <= SHORT {
        let group = n_rows.div_ceil(ROW_GROUPS);
        return (0..n_rows)
            .step_by(group)
            .map(|r| LensPart { rows: r..(r + group).min(n_rows), positions: 0..n_positions })
            .collect();
    }
    let mut parts = vec![LensPart { rows: 0..n_rows, positions: n_positions - FIRST_POSITIONS..n_positions }];
    let mut end = n_positions - FIRST_POSITIONS;
    while end > 0 {
        let start = end.saturating_sub(POSITIONS_PER_PART);
        parts.push(LensPart { rows: 0..n_rows, positions: start..end });
        end = start;
    }
    parts
}

/// Moves the cells at positions `focus` (where the user is looking) to the front of the parts still
/// to do, every row of them, and keeps the rest in their order. A part over the whole sequence (a
/// short one's row groups) is left whole: the whole figure is a moment away then. So is the plan when
/// its next part already holds the focus.
pub fn bring_forward(pending: &mut VecDeque<LensPart>, focus: Range<usize>, n_positions: usize) {
    let next_holds_it = |p: &LensPart| p.positions.start <= focus.start && focus.end <= p.positions.end;
    if pending.front().is_some_and(next_holds_it) {
        return;
    }
    let mut first = VecDeque::new();
    let mut rest = VecDeque::new();
    for part in pending.drain(..) {
        let p = part.positions.clone();
        let (start, end) = (p.start.max(focus.start), p.end.min(focus.end));
        if start >= end || p == (0..n_positions) {
            rest.push_back(part);
            continue;
        }
        let piece = |positions: Range<usize>| LensPart { rows: part.rows.clone(), positions };
        first.push_back(piece(start..end));
        // Later positions first, as the plan fills backwards.
        if end < p.end {
            rest.push_back(piece(end..p.end));
        }
        if p.start < start {
            rest.push_back(piece(p.start..start));
        }
    }
    first.append(&mut rest);
    *pending = first;
}

/// A lens computation of a part, split by vocabulary (see `Engine::lens_job`).
pub struct LensJob {
    pub input: LensInput,
    /// Rows reported; the input may carry one more, the last row borrowed as the KL reference.
    keep_rows: usize,
}

impl Engine {
    /// The kernel's options for a question: its top-k and its tracked strings resolved to tokens.
    pub fn lens_options(&self, question: &Question) -> Result<LensOptions> {
        Ok(LensOptions {
            top_k: question.top_k,
            track: self.resolve_tracked(&question.track)?,
            product: Product::for_precision(question.precision, self.fast_product),
        })
    }

    /// The residual stream of `ids` from a fresh cache: the rows `record` names (`Record::of` a
    /// question), each `[T, d]`; the last is the model's output.
    pub fn forward(&mut self, ids: &[u32], precision: Precision, record: Record) -> Result<Vec<Tensor>> {
        self.model.residual_stream(ids, precision, record)
    }

    /// The lens of a residual stream from `forward`.
    pub fn lens(&self, rows: &[Tensor], opts: &LensOptions, cancel: &dyn Fn() -> bool) -> Result<LensGrid> {
        let positions = 0..rows.first().map(|r| r.dim(0)).transpose()?.unwrap_or(0);
        self.lens_part(rows, &LensPart { rows: 0..rows.len(), positions }, opts, cancel)
    }

    /// The lens of one part of a residual stream, KL still measured against its last row.
    pub fn lens_part(
        &self,
        rows: &[Tensor],
        part: &LensPart,
        opts: &LensOptions,
        cancel: &dyn Fn() -> bool,
    ) -> Result<LensGrid> {
        block_on(self.lens_with(rows, part, opts, &mut Here(cancel)))
    }

    /// Prepares the lens of a part so that pieces of the vocabulary can be computed apart
    /// (`compute_part`, or a helper's `OwnedVocabSlice`), merged, and finished with `finish_job`.
    pub fn lens_job(&self, rows: &[Tensor], part: &LensPart, opts: &LensOptions) -> Result<LensJob> {
        let n_positions = rows.first().map(|r| r.dim(0)).transpose()?.unwrap_or(0);
        let (range, positions) = (part.rows.clone(), part.positions.clone());
        if range.is_empty() || range.end > rows.len() || positions.is_empty() || positions.end > n_positions {
            return Err(LensError::InvalidRequest(format!(
                "rows {range:?} at positions {positions:?} of {} rows and {n_positions} positions",
                rows.len()
            )));
        }
        let last = rows.len() - 1;
        let mut subset: Vec<Tensor> = range.clone().map(|r| rows[r].clone()).collect();
        // KL needs the last row beside every group; it is decoded again and dropped after.
        if !range.contains(&last) {
            subset.push(rows[last].clone());
        }
        let subset = subset
            .into_iter()
            .map(|r| Ok(r.narrow(0, positions.start, positions.len())?.contiguous()?))
            .collect::<Result<Vec<_>>>()?;
        Ok(LensJob { input: LensInput::new(&self.model, &subset, opts)?, keep_rows: range.len() })
    }

    /// The accumulators of vocabulary ids `vocab` for a job.
    pub fn compute_part(&self, job: &LensJob, vocab: Range<usize>, cancel: &dyn Fn() -> bool) -> Result<LensPartial> {
        let end = vocab.end.min(self.vocab_size());
        LensPartial::compute(&job.input, &VocabSlice::of(&self.model), vocab.start.min(end)..end, cancel)
    }

    /// The grid of a job from the merged partials of its whole vocabulary, with token strings.
    pub fn finish_job(&self, job: &LensJob, whole: LensPartial) -> LensGrid {
        let mut grid = whole.finish(&job.input.track, job.keep_rows);
        let tk = &self.tokenizer;
        let name = |cells: &Vec<Vec<u32>>, f: &dyn Fn(u32) -> String| -> Vec<Vec<String>> {
            cells.iter().map(|c| c.iter().map(|&id| f(id)).collect()).collect()
        };
        grid.top_tokens = grid.top_ids.iter().map(|row| name(row, &|id| tk.piece(id).to_string())).collect();
        grid.top_texts = grid.top_ids.iter().map(|row| name(row, &|id| tk.token_text(id))).collect();
        for t in grid.tracked.iter_mut() {
            t.piece = tk.piece(t.id).to_string();
            t.text = tk.token_text(t.id);
        }
        grid
    }

    /// Rows `range` of the unembedding as a header and their offset in the model file, for a helper
    /// worker that reads its `OwnedVocabSlice` from the file itself.
    pub fn vocab_slice_in_file(&self, range: Range<usize>) -> Result<(SliceHeader, u64)> {
        wire::vocab_slice_in_file(&self.model, range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cell exactly once, and a long sequence's tail first.
    #[test]
    fn the_plan_covers_every_cell_once() {
        for (rows, n) in [(31, 37), (31, 256), (19, 257), (31, 3802), (5, 64 + 512)] {
            let plan = lens_plan(rows, n);
            let mut seen = vec![0u8; rows * n];
            for part in &plan {
                for r in part.rows.clone() {
                    for p in part.positions.clone() {
                        seen[r * n + p] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "{rows} × {n}");
            if n > SHORT {
                assert_eq!(plan[0].positions, n - FIRST_POSITIONS..n);
            }
        }
        assert!(lens_plan(0, 5).is_empty() && lens_plan(5, 0).is_empty());
    }

    fn coverage(parts: &VecDeque<LensPart>, rows: usize, n: usize) -> Vec<u8> {
        let mut seen = vec![0u8; rows * n];
        for part in parts {
            for r in part.rows.clone() {
                for p in part.positions.clone() {
                    seen[r * n + p] += 1;
                }
            }
        }
        seen
    }

    /// Focusing a range puts exactly its cells first and still covers every cell once.
    #[test]
    fn a_focused_range_comes_first() {
        let (rows, n) = (31, 1100);
        let mut pending: VecDeque<LensPart> = lens_plan(rows, n).into();
        pending.pop_front(); // the tail is done
        bring_forward(&mut pending, 0..60, n);
        assert_eq!(pending[0].positions.start, 12);
        assert_eq!(pending[1].positions, 0..12);
        let focused: usize = pending.iter().take(2).map(|p| p.positions.len()).sum();
        assert_eq!(focused, 60);
        let mut seen = coverage(&pending, rows, n);
        for r in 0..rows {
            seen[r * n + n - FIRST_POSITIONS..(r + 1) * n].iter_mut().for_each(|c| *c += 1);
        }
        assert!(seen.iter().all(|&c| c == 1));
        // Focusing again carves again, and the parts still cover the same cells.
        let before = pending.clone();
        bring_forward(&mut pending, 40..70, n);
        assert_eq!(pending[0].positions, 40..60);
        assert_eq!(pending[1].positions, 60..70);
        assert_eq!(coverage(&pending, rows, n), coverage(&before, rows, n));
        // A focus the next part already holds leaves the plan alone.
        let before = pending.clone();
        bring_forward(&mut pending, 41..59, n);
        assert_eq!(pending, before);
        // A short sequence's row groups stay whole.
        let mut short: VecDeque<LensPart> = lens_plan(rows, 40).into();
        let plan = short.clone();
        bring_forward(&mut short, 5..10, 40);
        assert_eq!(short, plan);
    }
}
