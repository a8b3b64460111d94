//! One recipe for a question, for every front end: prepare the prompt, resolve the tracked tokens,
//! let the model answer, run the forward pass, then the lens part by part. Each step that builds the
//! report goes to the front end as a `RunStep` (`LensReport::apply` folds them), so the command
//! line and the browser's worker assemble their reports the same way. What differs between them is
//! a `Runner`: the worker posts each step to the page, yields and checks Cancel between steps,
//! follows `lens_plan` and the positions brought into view, and decodes each part's vocabulary with
//! its helper workers (`Vocabulary`); the command line takes every default (one part, every cell,
//! the whole vocabulary here).

use super::{bring_forward, Engine, LensJob, LensPart};
use crate::error::{LensError, Result};
use crate::lens::{LensOptions, LensPartial};
use crate::model::Record;
use candle_core::Tensor;
use loupe_protocol::{LensGrid, Question, RunStep, Timings};
use std::collections::VecDeque;
use std::future::Future;
use std::ops::Range;

/// Who decodes a lens job's vocabulary: by default all of it here, at once.
// Single-threaded callers (the native tool, one wasm worker): no `Send` bound is wanted.
#[allow(async_fn_in_trait)]
pub trait Vocabulary {
    /// The accumulators of `job` over the whole vocabulary.
    async fn decode(&mut self, engine: &Engine, job: &LensJob) -> Result<LensPartial> {
        engine.compute_part(job, 0..engine.vocab_size(), &|| false)
    }
}

/// The whole vocabulary here, stopping when `cancel` says so.
pub struct Here<'a>(pub &'a dyn Fn() -> bool);

impl Vocabulary for Here<'_> {
    async fn decode(&mut self, engine: &Engine, job: &LensJob) -> Result<LensPartial> {
        engine.compute_part(job, 0..engine.vocab_size(), self.0)
    }
}

/// What a front end gives a run. Every default is the command line's.
#[allow(async_fn_in_trait)]
pub trait Runner: Vocabulary {
    /// Seconds on any steady clock, for the timings.
    fn now(&self) -> f64;
    /// One step of the report: the worker posts it, the command line folds it in.
    fn step(&mut self, step: RunStep) -> Result<()>;
    /// Between steps: the worker yields to its event loop there, and stops if asked to.
    async fn checkpoint(&mut self) -> Result<()> {
        Ok(())
    }
    /// The order of the lens's parts. By default one part of every cell, which is also what fixes
    /// the native tool's numbers bit for bit (the tile width depends on a part's cells).
    fn plan(&self, n_rows: usize, n_positions: usize) -> Vec<LensPart> {
        vec![LensPart { rows: 0..n_rows, positions: 0..n_positions }]
    }
    /// Positions brought into view since the last part, to be lensed next.
    fn focus(&mut self) -> Option<Range<usize>> {
        None
    }
}

impl Engine {
    /// The lens of one part of a residual stream (KL still measured against its last row), its
    /// vocabulary decoded by `vocabulary`: the one path from rows to cells.
    pub async fn lens_with(
        &self,
        rows: &[Tensor],
        part: &LensPart,
        opts: &LensOptions,
        vocabulary: &mut impl Vocabulary,
    ) -> Result<LensGrid> {
        let job = self.lens_job(rows, part, opts)?;
        let whole = vocabulary.decode(self, &job).await?;
        Ok(self.finish_job(&job, whole))
    }

    /// Runs `question`, each step going to `runner`; returns the forward and lens times (the load
    /// is the caller's to time).
    pub async fn ask(&mut self, question: &Question, runner: &mut impl Runner) -> Result<Timings> {
        let q = question;
        q.validate().map_err(LensError::InvalidRequest)?;
        let mut sequence = self.prepare(&q.prompt, &q.template)?;
        runner.step(RunStep::Sequence(sequence.clone()))?;
        let opts = self.lens_options(q)?;
        runner.step(RunStep::Tracked(opts.track.iter().map(|&id| self.token_info(id, false)).collect()))?;
        runner.checkpoint().await?;

        // A streamed model cannot answer (`STREAMED_GENERATION`); the page says so beside the field.
        if q.answer_tokens > 0 && !self.model.streamed() {
            let mut answer = self.begin_answer(&sequence.ids, q.answer_tokens, &q.sampling, q.precision)?;
            let mut ids = Vec::new();
            while let Some(next) = self.next_answer_token(&mut answer)? {
                runner.step(RunStep::AnswerToken(self.token_info(next, false)))?;
                ids.push(next);
                runner.checkpoint().await?;
            }
            // The answer's text decoded as a whole (a character split across tokens comes out whole).
            self.append_answer(&mut sequence, &ids);
            runner.step(RunStep::Sequence(sequence.clone()))?;
        }

        let t0 = runner.now();
        let rows = self.forward(&sequence.ids, q.precision, Record::of(q))?;
        let forward = runner.now() - t0;
        runner.checkpoint().await?;

        let (t1, n) = (runner.now(), sequence.len());
        let mut pending: VecDeque<LensPart> = runner.plan(rows.len(), n).into();
        loop {
            if let Some(focus) = runner.focus() {
                bring_forward(&mut pending, focus, n);
            }
            let Some(part) = pending.pop_front() else { break };
            let cells = self.lens_with(&rows, &part, &opts, runner).await?;
            let (first_row, first_position) = (part.rows.start, part.positions.start);
            runner.step(RunStep::Cells { first_row, first_position, cells })?;
            runner.checkpoint().await?;
        }
        Ok(Timings { load: 0.0, forward, lens: runner.now() - t1 })
    }
}

/// Runs a future whose every step is computed here (the command line's run, `Here`) to its end.
/// It never sleeps: a future that waits on something outside would spin, so only those go here.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return value;
        }
    }
}
