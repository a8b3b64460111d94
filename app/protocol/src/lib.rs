//! Types shared by the lens engine, the command-line tool, the worker and the UI.
//!
//! Field names follow `../shared/reference` (the Hugging Face oracle files), so a JSON written by the
//! native tool, exported by the app and computed in Python can be compared key by key.
//! Matrices are indexed `[row][position]`, row 0 being the embedding output.

use serde::{Deserialize, Serialize};

/// What was asked: a chat message (rendered with a chat template) or raw text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptSpec {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub chat: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub raw: Option<String>,
    /// The template used for `chat`: "file" (the model's own) or a built-in name or a file path.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub template: Option<String>,
}

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

/// Probability and rank of one token the user asked to follow, in every cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackedToken {
    pub id: u32,
    pub piece: String,
    pub prob: Vec<Vec<f32>>,
    /// 1 = the most probable token of that cell.
    pub rank: Vec<Vec<u32>>,
}

/// The logit lens of one sequence: every row decoded through the final norm and the unembedding.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LensGrid {
    pub n_rows: usize,
    pub n_positions: usize,
    /// Entropy of the decoded next-token distribution, in nats.
    pub entropy: Vec<Vec<f32>>,
    pub top_ids: Vec<Vec<Vec<u32>>>,
    pub top_probs: Vec<Vec<Vec<f32>>>,
    /// KL(last row || this row) in nats: how far this layer's guess is from the model's answer.
    pub kl_to_last: Vec<Vec<f32>>,
    pub tracked: Vec<TrackedToken>,
}

/// Seconds spent in each stage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub load: f64,
    pub forward: f64,
    pub lens: f64,
}

/// A whole lens result as the command-line tool writes it and the app exports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LensReport {
    pub model: String,
    pub architecture: String,
    pub precision: String,
    pub prompt: PromptSpec,
    /// The exact text that was tokenized (after the chat template).
    pub text: String,
    pub ids: Vec<u32>,
    /// Vocabulary spellings of `ids`, as in the reference files.
    pub tokens: Vec<String>,
    pub token_info: Vec<TokenInfo>,
    #[serde(flatten)]
    pub grid: LensGrid,
    /// Vocabulary spellings of `top_ids`.
    pub top_tokens: Vec<Vec<Vec<String>>>,
    pub timings: Timings,
}
