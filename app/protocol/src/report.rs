//! The result: a `LensReport` is the one shape of a lens result, built once and shared by the page
//! (which fills it as rows stream in), its JSON export, and the `loupe` tool's `--json`.
//! `docs/report-schema.md` documents its JSON. Field names follow the Hugging Face reference files
//! (`model`, `prompt`, `text`, `ids`, `tokens`, `n_rows`, `entropy`, `top_ids`, `top_probs`,
//! `top_tokens`), so the three sources compare key by key. Matrices are `[row][position]`, row 0
//! being the embedding output and the last row the model's own output.

use crate::question::Question;
use serde::{Deserialize, Serialize};

/// One token of the sequence as the figure's x-axis needs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: u32,
    /// The vocabulary's own spelling (`Ġthe`, `▁the`, `<|im_start|>`).
    pub piece: String,
    /// The text the token stands for (` the`); bytes that are not whole UTF-8 show as U+FFFD.
    pub text: String,
    /// A control token of the tokenizer (`<|im_start|>`, `<bos>`, `<end_of_turn>`).
    pub special: bool,
    /// Written by the chat template rather than by a message: role names, separators, control tokens.
    pub template: bool,
}

/// The tokens being lensed: the prompt as rendered and tokenized, then the model's answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sequence {
    /// The exact text that was tokenized (after the chat template), answer included.
    pub text: String,
    pub ids: Vec<u32>,
    /// Vocabulary spellings of `ids`, as in the reference files.
    pub tokens: Vec<String>,
    pub token_info: Vec<TokenInfo>,
    /// The template that rendered the prompt ("file", a built-in name, "custom"); none for raw text.
    pub template_used: Option<String>,
    /// Tokens of the prompt; the rest are the model's answer.
    pub prompt_len: usize,
}

impl Sequence {
    pub fn new(text: String, token_info: Vec<TokenInfo>, template_used: Option<String>) -> Self {
        let ids = token_info.iter().map(|t| t.id).collect();
        let tokens = token_info.iter().map(|t| t.piece.clone()).collect();
        let prompt_len = token_info.len();
        Self { text, ids, tokens, token_info, template_used, prompt_len }
    }

    /// Appends answer tokens; `decoded` is their text (decoded together, so multi-byte characters
    /// split across tokens come out whole).
    pub fn push_answer(&mut self, answer: Vec<TokenInfo>, decoded: &str) {
        for t in answer {
            self.ids.push(t.id);
            self.tokens.push(t.piece.clone());
            self.token_info.push(t);
        }
        self.text.push_str(decoded);
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// JSON has no NaN or infinity: serde_json writes them as `null`, and these read `null` back as
/// NaN, so a cell whose numbers broke travels (worker to page, export, `loupe --json`) as "not a
/// number" instead of failing the whole message.
mod non_finite {
    use serde::{Deserialize, Deserializer};

    pub fn matrix<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f32>>, D::Error> {
        let m: Vec<Vec<Option<f32>>> = Deserialize::deserialize(d)?;
        Ok(m.into_iter().map(|row| row.into_iter().map(|v| v.unwrap_or(f32::NAN)).collect()).collect())
    }

    pub fn cube<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<Vec<f32>>>, D::Error> {
        let c: Vec<Vec<Vec<Option<f32>>>> = Deserialize::deserialize(d)?;
        Ok(c.into_iter()
            .map(|row| row.into_iter().map(|cell| cell.into_iter().map(|v| v.unwrap_or(f32::NAN)).collect()).collect())
            .collect())
    }
}

/// Probability and rank of one token the user asked to follow, in every cell.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackedToken {
    pub id: u32,
    pub piece: String,
    pub text: String,
    #[serde(deserialize_with = "non_finite::matrix")]
    pub prob: Vec<Vec<f32>>,
    /// 1 = the most probable token of that cell; 0 = none (the cell's numbers are not a number).
    pub rank: Vec<Vec<u32>>,
}

/// The logit lens of a sequence, or of a group of its rows while they stream: every cell decoded
/// through the final norm and the unembedding.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LensGrid {
    pub n_rows: usize,
    pub n_positions: usize,
    /// Entropy of the decoded next-token distribution, in nats.
    #[serde(deserialize_with = "non_finite::matrix")]
    pub entropy: Vec<Vec<f32>>,
    pub top_ids: Vec<Vec<Vec<u32>>>,
    #[serde(deserialize_with = "non_finite::cube")]
    pub top_probs: Vec<Vec<Vec<f32>>>,
    /// Vocabulary spellings of `top_ids`.
    pub top_tokens: Vec<Vec<Vec<String>>>,
    /// Text of `top_ids`, for labels (` Sydney` where `top_tokens` has `ĠSydney`).
    pub top_texts: Vec<Vec<Vec<String>>>,
    /// KL(last row ‖ this row) in nats: how far this layer's guess is from the model's answer.
    #[serde(deserialize_with = "non_finite::matrix")]
    pub kl_to_last: Vec<Vec<f32>>,
    pub tracked: Vec<TrackedToken>,
}

impl LensGrid {
    /// A grid of `n_rows` rows still to come (each empty until `put_cells` fills it).
    pub fn pending(n_rows: usize, n_positions: usize, tracked: Vec<TrackedToken>) -> Self {
        let tracked = tracked
            .into_iter()
            .map(|t| TrackedToken { prob: vec![Vec::new(); n_rows], rank: vec![Vec::new(); n_rows], ..t })
            .collect();
        Self {
            n_rows,
            n_positions,
            entropy: vec![Vec::new(); n_rows],
            top_ids: vec![Vec::new(); n_rows],
            top_probs: vec![Vec::new(); n_rows],
            top_tokens: vec![Vec::new(); n_rows],
            top_texts: vec![Vec::new(); n_rows],
            kl_to_last: vec![Vec::new(); n_rows],
            tracked,
        }
    }

    /// Whether row `r` has been laid out: some of its cells placed (all of them, for a report that
    /// is not streaming). Which cells of a streaming grid have arrived is the receiver's to track.
    pub fn has_row(&self, r: usize) -> bool {
        self.entropy.get(r).is_some_and(|row| !row.is_empty())
    }

    /// Copies `part`, the cells of rows `first_row..` at positions `first_position..`, into place.
    /// A row's first part lays it out at full length, its other cells empty (NaN, no tokens) until
    /// their own parts arrive; which cells have arrived is for the receiver to track.
    pub fn put_cells(&mut self, first_row: usize, first_position: usize, part: LensGrid) -> Result<(), String> {
        let (rows, len, n) = (part.n_rows, part.n_positions, self.n_positions);
        let shaped = |row_lengths: &mut dyn Iterator<Item = usize>, count: usize| {
            let lengths: Vec<usize> = row_lengths.collect();
            lengths.len() == count && lengths.iter().all(|&l| l == len)
        };
        let fits = first_row + rows <= self.n_rows
            && first_position + len <= n
            && part.tracked.len() == self.tracked.len()
            && shaped(&mut part.entropy.iter().map(Vec::len), rows)
            && shaped(&mut part.top_ids.iter().map(Vec::len), rows)
            && shaped(&mut part.top_probs.iter().map(Vec::len), rows)
            && shaped(&mut part.top_tokens.iter().map(Vec::len), rows)
            && shaped(&mut part.top_texts.iter().map(Vec::len), rows)
            && shaped(&mut part.kl_to_last.iter().map(Vec::len), rows)
            && part.tracked.iter().all(|t| {
                shaped(&mut t.prob.iter().map(Vec::len), rows) && shaped(&mut t.rank.iter().map(Vec::len), rows)
            });
        if !fits {
            return Err(format!(
                "cells of rows {first_row}..{} at positions {first_position}..{} do not fit a grid of {} rows and {n} positions",
                first_row + rows,
                first_position + len,
                self.n_rows,
            ));
        }
        fn place<T: Clone>(into: &mut [Vec<T>], first_row: usize, at: usize, n: usize, empty: T, from: Vec<Vec<T>>) {
            for (i, cells) in from.into_iter().enumerate() {
                let row = &mut into[first_row + i];
                if row.is_empty() {
                    *row = vec![empty.clone(); n];
                }
                for (j, cell) in cells.into_iter().enumerate() {
                    row[at + j] = cell;
                }
            }
        }
        let at = first_position;
        place(&mut self.entropy, first_row, at, n, f32::NAN, part.entropy);
        place(&mut self.top_ids, first_row, at, n, Vec::new(), part.top_ids);
        place(&mut self.top_probs, first_row, at, n, Vec::new(), part.top_probs);
        place(&mut self.top_tokens, first_row, at, n, Vec::new(), part.top_tokens);
        place(&mut self.top_texts, first_row, at, n, Vec::new(), part.top_texts);
        place(&mut self.kl_to_last, first_row, at, n, f32::NAN, part.kl_to_last);
        for (mine, theirs) in self.tracked.iter_mut().zip(part.tracked) {
            place(&mut mine.prob, first_row, at, n, f32::NAN, theirs.prob);
            place(&mut mine.rank, first_row, at, n, 0, theirs.rank);
        }
        Ok(())
    }
}

/// Seconds spent in each stage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub load: f64,
    pub forward: f64,
    pub lens: f64,
}

/// The version of the report's JSON; a file with another one is refused with a clear message.
pub const REPORT_SCHEMA: u32 = 1;

/// A whole lens result: which model, the question, the sequence, and the grid.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LensReport {
    /// `REPORT_SCHEMA` when written.
    pub schema: u32,
    /// The model's file name.
    pub model: String,
    pub architecture: String,
    /// Tokens in the model's vocabulary (the legend marks ln V; ranks run up to it).
    pub vocab: usize,
    #[serde(flatten)]
    pub question: Question,
    #[serde(flatten)]
    pub sequence: Sequence,
    #[serde(flatten)]
    pub grid: LensGrid,
    pub timings: Timings,
}

impl LensReport {
    /// Checks a report read from a file: its schema, and that every matrix has the grid's shape, so
    /// the views can index it freely.
    pub fn validate(&self) -> Result<(), String> {
        if self.schema != REPORT_SCHEMA {
            return Err(format!(
                "it is a report of schema {}, and this Loupe reads schema {REPORT_SCHEMA}",
                self.schema
            ));
        }
        let (g, s) = (&self.grid, &self.sequence);
        let n = g.n_positions;
        let rows_ok = |len: usize| len == g.n_rows;
        let same = [s.ids.len(), s.tokens.len(), s.token_info.len()].iter().all(|&l| l == n);
        let shaped = rows_ok(g.entropy.len())
            && rows_ok(g.top_ids.len())
            && rows_ok(g.top_probs.len())
            && rows_ok(g.top_texts.len())
            && rows_ok(g.top_tokens.len())
            && rows_ok(g.kl_to_last.len())
            && g.entropy.iter().chain(&g.kl_to_last).all(|r| r.len() == n)
            && g.top_ids.iter().all(|r| r.len() == n)
            && g.top_probs.iter().all(|r| r.len() == n)
            && g.top_texts.iter().all(|r| r.len() == n)
            && g.top_tokens.iter().all(|r| r.len() == n)
            && g.tracked.iter().all(|t| {
                rows_ok(t.prob.len())
                    && rows_ok(t.rank.len())
                    && t.prob.iter().all(|r| r.len() == n)
                    && t.rank.iter().all(|r| r.len() == n)
            });
        if g.n_rows == 0 || n == 0 || !same || !shaped || s.prompt_len > n {
            return Err(format!("its matrices do not match its {} rows and {n} positions", g.n_rows));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::question::Prompt;

    fn row_grid(n_rows: usize, value: f32) -> LensGrid {
        LensGrid {
            n_rows,
            n_positions: 2,
            entropy: vec![vec![value; 2]; n_rows],
            top_ids: vec![vec![vec![1]; 2]; n_rows],
            top_probs: vec![vec![vec![0.5]; 2]; n_rows],
            top_tokens: vec![vec![vec!["a".into()]; 2]; n_rows],
            top_texts: vec![vec![vec!["a".into()]; 2]; n_rows],
            kl_to_last: vec![vec![0.0; 2]; n_rows],
            tracked: vec![TrackedToken {
                id: 1,
                prob: vec![vec![0.5; 2]; n_rows],
                rank: vec![vec![1; 2]; n_rows],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn rows_stream_into_place() {
        let mut g = LensGrid::pending(3, 2, vec![TrackedToken { id: 1, ..Default::default() }]);
        assert!((0..3).all(|r| !g.has_row(r)));
        g.put_cells(1, 0, row_grid(2, 7.0)).unwrap();
        assert!(!g.has_row(0) && g.has_row(1) && g.has_row(2));
        assert_eq!(g.entropy[2], vec![7.0, 7.0]);
        assert_eq!(g.tracked[0].rank[1], vec![1, 1]);
        assert!(g.put_cells(2, 0, row_grid(2, 1.0)).is_err());
    }

    #[test]
    fn position_chunks_stream_into_place() {
        let mut g = LensGrid::pending(2, 5, vec![TrackedToken { id: 1, ..Default::default() }]);
        // The last two positions first, then the first two.
        g.put_cells(0, 3, row_grid(2, 7.0)).unwrap();
        assert!(g.entropy[1][2].is_nan() && g.entropy[1][3] == 7.0 && g.entropy[1][4] == 7.0);
        assert!(g.top_ids[0][0].is_empty() && g.top_ids[0][4] == vec![1]);
        g.put_cells(0, 0, row_grid(2, 3.0)).unwrap();
        assert_eq!(g.tracked[0].rank[0], vec![1, 1, 0, 1, 1]);
        assert!(g.put_cells(0, 4, row_grid(2, 1.0)).is_err(), "past the last position");
        let mut ragged = row_grid(2, 1.0);
        ragged.entropy[1].pop();
        assert!(g.put_cells(0, 0, ragged).is_err(), "a part whose rows are not all its width");
    }

    #[test]
    fn not_a_number_survives_json() {
        let mut g = row_grid(2, 1.0);
        g.entropy[1][0] = f32::NAN;
        g.kl_to_last[0][1] = f32::INFINITY;
        g.top_probs[1][1][0] = f32::NAN;
        g.tracked[0].prob[0][0] = f32::NAN;
        let json = serde_json::to_string(&g).unwrap();
        let back: LensGrid = serde_json::from_str(&json).unwrap();
        assert!(back.entropy[1][0].is_nan() && back.entropy[1][1] == 1.0);
        assert!(back.kl_to_last[0][1].is_nan(), "infinity has no JSON form either");
        assert!(back.top_probs[1][1][0].is_nan() && back.tracked[0].prob[0][0].is_nan());
    }

    #[test]
    fn report_json_has_the_reference_keys() {
        let r = LensReport {
            schema: REPORT_SCHEMA,
            question: Question { prompt: Prompt::chat("hi"), ..Default::default() },
            grid: row_grid(1, 1.0),
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        for key in
            ["model", "prompt", "text", "ids", "tokens", "n_rows", "entropy", "top_ids", "top_probs", "top_tokens"]
        {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["prompt"], serde_json::json!({"chat": "hi"}));
        assert_eq!(v["precision"], "exact");
        let back: LensReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn opened_reports_are_checked() {
        let token = TokenInfo { id: 1, piece: "a".into(), text: "a".into(), special: false, template: false };
        let good = LensReport {
            schema: REPORT_SCHEMA,
            sequence: Sequence::new("aa".into(), vec![token.clone(), token], None),
            grid: row_grid(2, 1.0),
            ..Default::default()
        };
        assert_eq!(good.validate(), Ok(()));
        assert!(LensReport { schema: 7, ..good.clone() }.validate().unwrap_err().contains("schema 7"));
        let mut short = good.clone();
        short.grid.entropy[1].pop();
        assert!(short.validate().is_err());
        let mut long = good;
        long.sequence.prompt_len = 9;
        assert!(long.validate().is_err());
    }
}
