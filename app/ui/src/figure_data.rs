//! What the figure shows: the run's `LensReport`, filled in as the worker's events arrive (the
//! sequence, the tracked tokens, row groups), plus which model computed it. Pure data with no web
//! types, so it reads on its own; the JSON export is this report as it stands.

use crate::compare::Alignment;
use loupe_protocol::{LensReport, ModelInfo, Question, RunId, RunStep, TokenInfo, TrackedToken};

/// The quantity that colours the cells.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    Entropy,
    TopProbability,
    TrackedProbability(usize),
    TrackedRank(usize),
    KlToLast,
    /// This run's entropy minus the pinned run's at the aligned cell (`compare.rs`).
    EntropyChange,
    /// This run's log-probability of tracked token `i` minus the pinned run's.
    LogProbabilityChange(usize),
}

impl Metric {
    /// Whether this metric needs a pinned run to compare with.
    pub fn is_change(self) -> bool {
        matches!(self, Metric::EntropyChange | Metric::LogProbabilityChange(_))
    }
}

/// A pinned run beside this one, and how their cells line up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    pub pinned: FigureData,
    pub alignment: Alignment,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FigureData {
    pub run: RunId,
    pub report: LensReport,
    pub model: Option<ModelInfo>,
    /// The worker said the run is complete (timings are in the report).
    pub done: bool,
    /// Which cells have arrived, row-major: a long sequence streams in position ranges.
    filled: Vec<bool>,
    cells_filled: usize,
    /// The run this one is compared with, once both are complete.
    pub compare: Option<Box<Comparison>>,
}

impl FigureData {
    /// An empty figure for a new run of `question` on `model`.
    pub fn new(run: RunId, model: ModelInfo, question: Question) -> Self {
        let n_rows = question.n_rows(model.n_rows - 1);
        let report = LensReport::begin(model.file.clone(), model.architecture.clone(), model.vocab, question, n_rows);
        Self { run, report, model: Some(model), done: false, filled: Vec::new(), cells_filled: 0, compare: None }
    }

    /// A saved report (the page's export or `loupe --json`), shown without any model.
    pub fn opened(report: LensReport) -> Result<Self, String> {
        report.validate()?;
        let cells = report.grid.n_rows * report.grid.n_positions;
        Ok(Self {
            run: RunId(0),
            report,
            model: None,
            done: true,
            filled: vec![true; cells],
            cells_filled: cells,
            compare: None,
        })
    }

    /// One step of the run from the worker, folded into the report (`LensReport::apply`); the
    /// figure also keeps which cells have arrived.
    pub fn apply(&mut self, step: RunStep) -> Result<(), String> {
        let arrived = match &step {
            RunStep::Cells { first_row, first_position, cells } => {
                Some((*first_row..first_row + cells.n_rows, *first_position..first_position + cells.n_positions))
            }
            _ => None,
        };
        let clears = matches!(step, RunStep::Sequence(_) | RunStep::Tracked(_));
        self.report.apply(step)?;
        let n = self.report.grid.n_positions;
        if clears {
            self.filled = vec![false; self.report.grid.n_rows * n];
            self.cells_filled = 0;
        }
        if let Some((rows, positions)) = arrived {
            for r in rows {
                for flag in &mut self.filled[r * n + positions.start..r * n + positions.end] {
                    if !*flag {
                        *flag = true;
                        self.cells_filled += 1;
                    }
                }
            }
        }
        Ok(())
    }

    pub fn tokens(&self) -> &[TokenInfo] {
        &self.report.sequence.token_info
    }

    pub fn prompt_len(&self) -> usize {
        self.report.sequence.prompt_len
    }

    pub fn tracked(&self) -> &[TrackedToken] {
        &self.report.grid.tracked
    }

    pub fn n_rows(&self) -> usize {
        self.report.grid.n_rows
    }

    pub fn n_positions(&self) -> usize {
        self.report.sequence.len()
    }

    /// Rows whose every cell has arrived.
    pub fn rows_done(&self) -> usize {
        (0..self.n_rows()).filter(|&r| self.has_row(r)).count()
    }

    /// Cells that have arrived, of all.
    pub fn cells_done(&self) -> (usize, usize) {
        (self.cells_filled, self.filled.len())
    }

    pub fn complete(&self) -> bool {
        !self.filled.is_empty() && self.cells_filled == self.filled.len()
    }

    pub fn has_cell(&self, r: usize, p: usize) -> bool {
        let n = self.report.grid.n_positions;
        p < n && self.filled.get(r * n + p).copied().unwrap_or(false)
    }

    /// Every row's cells at `positions` have arrived.
    pub fn has_positions(&self, positions: std::ops::Range<usize>) -> bool {
        let n = self.report.grid.n_positions;
        positions.end <= n && (0..self.n_rows()).all(|r| positions.clone().all(|p| self.filled[r * n + p]))
    }

    pub fn has_row(&self, r: usize) -> bool {
        let n = self.report.grid.n_positions;
        r < self.n_rows() && n > 0 && self.filled[r * n..(r + 1) * n].iter().all(|&f| f)
    }

    /// The cell's value under `metric`, none while it is pending.
    pub fn value(&self, metric: Metric, r: usize, p: usize) -> Option<f32> {
        let g = &self.report.grid;
        if !self.has_cell(r, p) {
            return None;
        }
        // A cell whose logits were not a number has no top token or rank to show either: every
        // metric says NaN (hatched), never "pending" or "certain".
        let broken = g.entropy[r].get(p).is_some_and(|h| h.is_nan());
        if broken && !matches!(metric, Metric::EntropyChange | Metric::LogProbabilityChange(_)) {
            return Some(f32::NAN);
        }
        match metric {
            Metric::Entropy => g.entropy[r].get(p).copied(),
            Metric::TopProbability => g.top_probs[r].get(p).and_then(|c| c.first()).copied(),
            Metric::TrackedProbability(i) => g.tracked.get(i).and_then(|t| t.prob[r].get(p)).copied(),
            Metric::TrackedRank(i) => {
                g.tracked.get(i).and_then(|t| t.rank[r].get(p)).map(|&r| if r == 0 { f32::NAN } else { r as f32 })
            }
            Metric::KlToLast => g.kl_to_last[r].get(p).copied(),
            Metric::EntropyChange => self.change(Metric::Entropy, r, p),
            Metric::LogProbabilityChange(i) => self.change(Metric::TrackedProbability(i), r, p),
        }
    }

    /// `base`'s change from the pinned run at the aligned cell; NaN where the cell has no
    /// counterpart (shown hatched), none without a pinned run.
    fn change(&self, base: Metric, r: usize, p: usize) -> Option<f32> {
        let c = self.compare.as_ref()?;
        Some(difference(&c.pinned, self, &c.alignment, base, r, p).unwrap_or(f32::NAN))
    }

    /// Compares this (complete) run with `pinned`.
    pub fn compare_with(&mut self, pinned: FigureData) {
        let spell = |f: &FigureData| f.tokens().iter().map(|t| t.piece.clone()).collect::<Vec<_>>();
        let alignment = crate::compare::align(&spell(&pinned), &spell(self), pinned.n_rows(), self.n_rows());
        self.compare = Some(Box::new(Comparison { pinned, alignment }));
    }

    /// The cell's top tokens as (id, text, probability), best first.
    pub fn top(&self, r: usize, p: usize) -> Vec<(u32, String, f32)> {
        let g = &self.report.grid;
        if !self.has_cell(r, p) {
            return Vec::new();
        }
        let ids = g.top_ids[r].get(p).cloned().unwrap_or_default();
        let texts = g.top_texts[r].get(p).cloned().unwrap_or_default();
        let probs = g.top_probs[r].get(p).cloned().unwrap_or_default();
        ids.into_iter().zip(texts).zip(probs).map(|((id, t), prob)| (id, t, prob)).collect()
    }

    /// The vocabulary spellings of the cell's top tokens (what tracking a token asks for).
    pub fn top_pieces(&self, r: usize, p: usize) -> Vec<String> {
        let g = &self.report.grid;
        g.top_tokens.get(r).and_then(|row| row.get(p)).cloned().unwrap_or_default()
    }

    pub fn top1_text(&self, r: usize, p: usize) -> Option<&str> {
        if !self.has_cell(r, p) {
            return None;
        }
        let g = &self.report.grid;
        g.top_texts.get(r)?.get(p)?.first().map(String::as_str)
    }

    /// Cells whose entropy is not a number.
    pub fn not_a_number(&self) -> usize {
        self.report.grid.entropy.iter().flatten().filter(|h| h.is_nan()).count()
    }

    /// How row `r` is named on the axis (`emb 0`, `12`, or inside blocks `12a`, `12m`).
    pub fn row_label(&self, r: usize) -> String {
        self.report.question.row_label(r)
    }

    pub fn ln_vocab(&self) -> Option<f32> {
        (self.report.vocab > 0).then(|| (self.report.vocab as f32).ln())
    }
}

/// The current run's value minus the pinned run's at the aligned cell, for `metric`: entropy, or
/// the log-probability of a tracked token (matched between the runs by its spelling). None where
/// the cell has no counterpart or either value is missing.
fn difference(
    pinned: &FigureData,
    current: &FigureData,
    alignment: &Alignment,
    metric: Metric,
    r: usize,
    p: usize,
) -> Option<f32> {
    let (pr, pp) = (*alignment.rows.get(r)?, (*alignment.positions.get(p)?)?);
    match metric {
        Metric::TrackedProbability(i) => {
            let piece = &current.tracked().get(i)?.piece;
            let j = pinned.tracked().iter().position(|t| &t.piece == piece)?;
            let now = current.value(Metric::TrackedProbability(i), r, p)?;
            let before = pinned.value(Metric::TrackedProbability(j), pr, pp)?;
            // A probability that underflowed to 0 counts as the smallest one, not as -inf; NaN stays
            // NaN (`f32::max` would turn it into the smallest probability).
            let ln = |x: f32| if x.is_nan() { f32::NAN } else { x.max(f32::MIN_POSITIVE).ln() };
            Some(ln(now) - ln(before))
        }
        other => Some(current.value(other, r, p)? - pinned.value(other, pr, pp)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loupe_protocol::{LensGrid, Sequence, REPORT_SCHEMA};

    /// One row of two cells: the first broken (its logits were NaN, so no top-k and rank 0), the
    /// second ordinary.
    fn broken_and_ordinary() -> FigureData {
        let n = 2;
        let token = TokenInfo { id: 1, piece: "a".into(), text: "a".into(), special: false, template: false };
        let mut report = LensReport { schema: REPORT_SCHEMA, ..Default::default() };
        report.sequence = Sequence::new("aa".into(), vec![token; n], None);
        report.grid = LensGrid {
            n_rows: 1,
            n_positions: n,
            entropy: vec![vec![f32::NAN, 1.5]],
            top_ids: vec![vec![vec![], vec![1]]],
            top_probs: vec![vec![vec![], vec![0.25]]],
            top_tokens: vec![vec![vec![], vec!["a".into()]]],
            top_texts: vec![vec![vec![], vec!["a".into()]]],
            kl_to_last: vec![vec![f32::NAN, 0.0]],
            tracked: vec![TrackedToken {
                id: 1,
                prob: vec![vec![f32::NAN, 0.25]],
                rank: vec![vec![0, 1]],
                ..Default::default()
            }],
        };
        FigureData::opened(report).unwrap()
    }

    #[test]
    fn a_broken_cell_is_not_a_number_under_every_metric() {
        let f = broken_and_ordinary();
        for metric in [
            Metric::Entropy,
            Metric::TopProbability,
            Metric::TrackedProbability(0),
            Metric::TrackedRank(0),
            Metric::KlToLast,
        ] {
            assert!(f.value(metric, 0, 0).is_some_and(f32::is_nan), "{metric:?}: {:?}", f.value(metric, 0, 0));
            assert!(f.value(metric, 0, 1).is_some_and(f32::is_finite), "{metric:?}");
        }
        assert_eq!(f.value(Metric::TrackedRank(0), 0, 1), Some(1.0));
        assert_eq!(f.not_a_number(), 1);
    }
}
