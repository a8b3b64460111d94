//! What the figure shows, as it arrives from the worker: the tokens, the lens rows (filled in as
//! they stream), and what the user tracks. Pure data with no web types, so it reads on its own.

use loupe_protocol::{LensRow, ModelInfo, TokenInfo};

/// The quantity that colours the cells.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    Entropy,
    TopProbability,
    TrackedProbability(usize),
    TrackedRank(usize),
    KlToLast,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FigureData {
    pub run: u64,
    pub text: String,
    pub tokens: Vec<TokenInfo>,
    /// Tokens of the prompt; the rest are the model's answer.
    pub prompt_len: usize,
    pub n_rows: usize,
    /// `rows[r]` once row r has arrived.
    pub rows: Vec<Option<LensRow>>,
    pub tracked: Vec<TokenInfo>,
    pub done: bool,
    pub forward_s: f64,
    pub lens_s: f64,
    /// The model and options the lens was computed with, for the export.
    pub model: Option<ModelInfo>,
    pub precision: String,
    pub prompt: loupe_protocol::PromptSpec,
}

impl FigureData {
    pub fn n_positions(&self) -> usize {
        self.rows.iter().flatten().next().map(|r| r.entropy.len()).unwrap_or(self.tokens.len())
    }

    pub fn rows_done(&self) -> usize {
        self.rows.iter().filter(|r| r.is_some()).count()
    }

    pub fn complete(&self) -> bool {
        self.n_rows > 0 && self.rows_done() == self.n_rows
    }

    pub fn row(&self, r: usize) -> Option<&LensRow> {
        self.rows.get(r).and_then(|r| r.as_ref())
    }

    /// The cell's value under `metric`, none while the row is pending.
    pub fn value(&self, metric: Metric, r: usize, p: usize) -> Option<f32> {
        let row = self.row(r)?;
        match metric {
            Metric::Entropy => row.entropy.get(p).copied(),
            Metric::TopProbability => row.top_probs.get(p).and_then(|c| c.first()).copied(),
            Metric::TrackedProbability(i) => row.tracked_prob.get(i).and_then(|t| t.get(p)).copied(),
            Metric::TrackedRank(i) => row.tracked_rank.get(i).and_then(|t| t.get(p)).map(|&r| r as f32),
            Metric::KlToLast => row.kl_to_last.get(p).copied(),
        }
    }

    pub fn top1_text(&self, r: usize, p: usize) -> Option<&str> {
        self.row(r)?.top_texts.get(p)?.first().map(String::as_str)
    }

    pub fn ln_vocab(&self) -> Option<f32> {
        self.model.as_ref().map(|m| (m.vocab as f32).ln())
    }
}
