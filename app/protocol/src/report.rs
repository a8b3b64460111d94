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

/// The per-cell matrices of a `LensGrid`, each `[row][position]`, with the value a cell holds until
/// it arrives: the one list of them. `pending` (which builds the struct from it, so a field missing
/// here does not compile), `put_cells` and `LensReport::validate` expand it, as
/// `grid_matrices!(then!(args;))` → `then!(args; entropy: NaN, …)`. A new per-cell metric is a field
/// of `LensGrid` plus an entry here (and its accumulator in the engine's `lens/partial.rs`).
macro_rules! grid_matrices {
    ($then:ident!($($args:tt)*)) => {
        $then!($($args)* entropy: f32::NAN, top_ids: Vec::new(), top_probs: Vec::new(), top_tokens: Vec::new(),
            top_texts: Vec::new(), kl_to_last: f32::NAN)
    };
}

/// The per-cell matrices of a `TrackedToken`, as `grid_matrices!`.
macro_rules! tracked_matrices {
    ($then:ident!($($args:tt)*)) => {
        $then!($($args)* prob: f32::NAN, rank: 0)
    };
}

impl LensGrid {
    /// A grid of `n_rows` rows still to come (each empty until `put_cells` fills it).
    pub fn pending(n_rows: usize, n_positions: usize, tracked: Vec<TrackedToken>) -> Self {
        macro_rules! tracked_to_come {
            ($t:ident; $($matrix:ident: $empty:expr),*) => {
                TrackedToken { id: $t.id, piece: $t.piece, text: $t.text, $($matrix: vec![Vec::new(); n_rows]),* }
            };
        }
        let tracked = tracked.into_iter().map(|t| tracked_matrices!(tracked_to_come!(t;))).collect();
        macro_rules! grid_to_come {
            ($($matrix:ident: $empty:expr),*) => {
                LensGrid { n_rows, n_positions, tracked, $($matrix: vec![Vec::new(); n_rows]),* }
            };
        }
        grid_matrices!(grid_to_come!())
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
        macro_rules! all_shaped {
            ($of:expr; $($matrix:ident: $empty:expr),*) => { true $(&& shaped(&mut $of.$matrix.iter().map(Vec::len), rows))* };
        }
        let fits = first_row + rows <= self.n_rows
            && first_position + len <= n
            && part.tracked.len() == self.tracked.len()
            && grid_matrices!(all_shaped!(part;))
            && part.tracked.iter().all(|t| tracked_matrices!(all_shaped!(t;)));
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
                // A whole row into a row still to come (the native tool's one part) moves in.
                if row.is_empty() && at == 0 && cells.len() == n {
                    *row = cells;
                    continue;
                }
                if row.is_empty() {
                    *row = vec![empty.clone(); n];
                }
                for (j, cell) in cells.into_iter().enumerate() {
                    row[at + j] = cell;
                }
            }
        }
        let at = first_position;
        macro_rules! place_all {
            ($mine:expr, $theirs:expr; $($matrix:ident: $empty:expr),*) => {
                $(place(&mut $mine.$matrix, first_row, at, n, $empty, $theirs.$matrix);)*
            };
        }
        grid_matrices!(place_all!(self, part;));
        for (mine, theirs) in self.tracked.iter_mut().zip(part.tracked) {
            tracked_matrices!(place_all!(mine, theirs;));
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

/// One step of a run as it builds its report: what the worker streams to the page (`Event`'s run
/// events carry these) and what the command line folds into its report, through `LensReport::apply`.
#[derive(Clone, Debug, PartialEq)]
pub enum RunStep {
    /// The sequence being lensed: the prompt, and again once the answer is written.
    Sequence(Sequence),
    /// The tracked strings resolved to tokens, before any cell.
    Tracked(Vec<TokenInfo>),
    /// One token of the answer, while the model writes it.
    AnswerToken(TokenInfo),
    /// Cells of rows `first_row..` at positions `first_position..`.
    Cells { first_row: usize, first_position: usize, cells: LensGrid },
}

impl LensReport {
    /// The empty report of a run of `question` on a model, `n_rows` rows to come.
    pub fn begin(model: String, architecture: String, vocab: usize, question: Question, n_rows: usize) -> Self {
        LensReport {
            schema: REPORT_SCHEMA,
            model,
            architecture,
            vocab,
            question,
            grid: LensGrid::pending(n_rows, 0, Vec::new()),
            ..Default::default()
        }
    }

    /// Folds one step of a run in: the one place a run's report is assembled. A new sequence or
    /// new tracked tokens clear the cells (they no longer fit); cells that do not fit are refused.
    pub fn apply(&mut self, step: RunStep) -> Result<(), String> {
        let g = &self.grid;
        match step {
            RunStep::Sequence(sequence) => {
                self.grid = LensGrid::pending(g.n_rows, sequence.len(), g.tracked.clone());
                self.sequence = sequence;
            }
            RunStep::Tracked(tokens) => {
                let tracked = tokens
                    .into_iter()
                    .map(|t| TrackedToken { id: t.id, piece: t.piece, text: t.text, ..Default::default() })
                    .collect();
                self.grid = LensGrid::pending(g.n_rows, g.n_positions, tracked);
            }
            RunStep::AnswerToken(token) => {
                let text = token.text.clone();
                self.sequence.push_answer(vec![token], &text);
            }
            RunStep::Cells { first_row, first_position, cells } => {
                self.grid.put_cells(first_row, first_position, cells)?
            }
        }
        Ok(())
    }

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
        let same = [s.ids.len(), s.tokens.len(), s.token_info.len()].iter().all(|&l| l == n);
        macro_rules! all_shaped {
            ($of:expr; $($matrix:ident: $empty:expr),*) => {
                true $(&& $of.$matrix.len() == g.n_rows && $of.$matrix.iter().all(|r| r.len() == n))*
            };
        }
        let shaped = grid_matrices!(all_shaped!(g;)) && g.tracked.iter().all(|t| tracked_matrices!(all_shaped!(t;)));
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
        let mut long = good.clone();
        long.sequence.prompt_len = 9;
        assert!(long.validate().is_err());
        // Every per-cell matrix is checked, the tracked tokens' too: a ragged one is refused both
        // when a report is opened and when a part streams in.
        let ragged: [fn(&mut LensGrid); 3] = [
            |g| {
                g.top_texts[0].pop();
            },
            |g| g.kl_to_last.truncate(1),
            |g| g.tracked[0].rank[1].push(3),
        ];
        for spoil in ragged {
            let mut bad = good.clone();
            spoil(&mut bad.grid);
            assert!(bad.validate().is_err());
            let mut part = row_grid(2, 1.0);
            spoil(&mut part);
            let mut grid = LensGrid::pending(2, 2, vec![TrackedToken { id: 1, ..Default::default() }]);
            assert!(grid.put_cells(0, 0, part).is_err());
        }
    }

    #[test]
    fn a_run_builds_its_report_step_by_step() {
        let token = |id: u32| TokenInfo {
            id,
            piece: format!("t{id}"),
            text: format!("t{id}"),
            special: false,
            template: false,
        };
        let mut report = LensReport::begin("m.gguf".into(), "llama".into(), 9, Question::default(), 2);
        let steps = [
            RunStep::Sequence(Sequence::new("t1t2".into(), vec![token(1), token(2)], None)),
            RunStep::Tracked(vec![token(1)]),
            // Two parts in the order a plan may send them: the second row first.
            RunStep::Cells { first_row: 1, first_position: 0, cells: row_grid(1, 2.0) },
            RunStep::Cells { first_row: 0, first_position: 0, cells: row_grid(1, 1.0) },
        ];
        for step in steps {
            report.apply(step).unwrap();
        }
        assert_eq!(report.grid.entropy, vec![vec![1.0; 2], vec![2.0; 2]]);
        assert_eq!((report.grid.tracked[0].piece.as_str(), &report.grid.tracked[0].rank), ("t1", &vec![vec![1; 2]; 2]));
        assert_eq!(report.validate(), Ok(()));
        // An answer token lengthens the sequence; a new sequence clears the cells, which no longer fit.
        report.apply(RunStep::AnswerToken(token(3))).unwrap();
        assert_eq!((report.sequence.len(), report.sequence.text.as_str()), (3, "t1t2t3"));
        report.apply(RunStep::Sequence(report.sequence.clone())).unwrap();
        assert!(!report.grid.has_row(0) && report.grid.n_positions == 3);
        assert!(report.apply(RunStep::Cells { first_row: 0, first_position: 2, cells: row_grid(1, 1.0) }).is_err());
    }
}
