//! The lens of a sequence: the residual stream from one forward pass, then every row decoded,
//! whole or by row groups (so a front end can show rows as they finish), and split by vocabulary
//! for other workers (`lens::wire`).

use super::Engine;
use crate::error::{LensError, Result};
use crate::lens::wire::{self, SliceHeader};
use crate::lens::{LensInput, LensOptions, LensPartial, VocabSlice};
use candle_core::Tensor;
use loupe_protocol::{LensGrid, Precision, Question};
use std::ops::Range;

/// A lens computation of a row group, split by vocabulary (see `Engine::lens_job`).
pub struct LensJob {
    pub input: LensInput,
    /// Rows reported; the input may carry one more, the last row borrowed as the KL reference.
    keep_rows: usize,
}

impl Engine {
    /// The kernel's options for a question: its top-k and its tracked strings resolved to tokens.
    pub fn lens_options(&self, question: &Question) -> Result<LensOptions> {
        Ok(LensOptions { top_k: question.top_k, track: self.resolve_tracked(&question.track)? })
    }

    /// The residual stream of `ids`: `n_rows` tensors `[T, d]`.
    pub fn forward(&mut self, ids: &[u32], precision: Precision) -> Result<Vec<Tensor>> {
        self.model.residual_stream(ids, precision)
    }

    /// The lens of a residual stream from `forward`.
    pub fn lens(&self, rows: &[Tensor], opts: &LensOptions, cancel: &dyn Fn() -> bool) -> Result<LensGrid> {
        self.lens_rows(rows, 0..rows.len(), opts, cancel)
    }

    /// The lens of rows `range` of a residual stream, KL still measured against its last row.
    pub fn lens_rows(
        &self,
        rows: &[Tensor],
        range: Range<usize>,
        opts: &LensOptions,
        cancel: &dyn Fn() -> bool,
    ) -> Result<LensGrid> {
        let job = self.lens_job(rows, range, opts)?;
        let slice = VocabSlice::of(&self.model);
        let whole = LensPartial::compute(&job.input, &slice, 0..self.vocab_size(), cancel)?;
        Ok(self.finish_job(&job, whole))
    }

    /// Prepares the lens of rows `range` so that parts of the vocabulary can be computed apart
    /// (`compute_part`, or a helper's `OwnedVocabSlice`), merged, and finished with `finish_job`.
    pub fn lens_job(&self, rows: &[Tensor], range: Range<usize>, opts: &LensOptions) -> Result<LensJob> {
        if range.is_empty() || range.end > rows.len() {
            return Err(LensError::InvalidRequest(format!("rows {range:?} of {}", rows.len())));
        }
        let last = rows.len() - 1;
        let mut subset = rows[range.clone()].to_vec();
        // KL needs the last row beside every group; it is decoded again and dropped after.
        if !range.contains(&last) {
            subset.push(rows[last].clone());
        }
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

    /// Rows `range` of the unembedding as bytes (borrowed), for a helper worker's `OwnedVocabSlice`.
    pub fn with_vocab_slice_bytes<T>(
        &self,
        range: Range<usize>,
        send: impl FnOnce(SliceHeader, &[u8]) -> T,
    ) -> Result<T> {
        wire::with_vocab_slice_bytes(&self.model, range, send)
    }
}
