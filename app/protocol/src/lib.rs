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

/// Largest model file Loupe accepts: wasm32 memory ends at 4 GiB, and loading holds the file and the
/// parsed tensors at once.
pub const MAX_MODEL_BYTES: u64 = 1_600_000_000;

/// Why a file of `bytes` is refused.
pub fn too_large_message(bytes: u64) -> String {
    format!(
        "this model is {:.2} GB; a browser tab's WebAssembly memory (4 GB, shared by the file and the loaded weights) holds models up to {:.1} GB. Pick a smaller or more quantized file.",
        bytes as f64 / 1e9,
        MAX_MODEL_BYTES as f64 / 1e9
    )
}

/// Options of one lens run, as the page sends them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    pub top_k: usize,
    /// Strings to track (` Canberra`); the worker resolves them to token ids.
    pub track: Vec<String>,
    /// "fast" or "exact".
    pub precision: String,
    /// Let the model answer up to this many tokens first (0 = no answer).
    pub answer_tokens: usize,
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            top_k: 5,
            track: Vec::new(),
            precision: "exact".into(),
            answer_tokens: 0,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

/// Page → worker. Sent as JSON; a dropped file travels beside it as a `File` handle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// How many extra workers share the lens (none = decide from the number of cores). Takes
    /// effect at the next model load.
    Configure { lens_workers: Option<usize> },
    /// Load from the browser's model cache, else download (with progress) and store.
    LoadUrl { url: String, name: String },
    /// Load the `File` that accompanies this message (never uploaded anywhere).
    LoadFile { name: String },
    /// Render and tokenize only: the tokens appear before any compute.
    Tokenize { run: u64, prompt: PromptSpec },
    /// Tokenize, optionally answer, then stream the lens rows.
    Run { run: u64, prompt: PromptSpec, options: RunOptions },
    /// Stop the current download or run at the next checkpoint.
    Cancel,
    ListCache,
    /// Delete one stored model, or all when `url` is none.
    ClearCache { url: Option<String> },
}

/// What the worker knows of the loaded model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub source: String,
    pub architecture: String,
    pub n_rows: usize,
    pub d_model: usize,
    pub vocab: usize,
    pub context: usize,
    pub bytes: u64,
    /// "file" when the GGUF carries a chat template, else the built-in that will be used.
    pub template: String,
    pub from_cache: bool,
    /// Workers decoding the vocabulary in parallel (1 = the model worker alone).
    pub lens_threads: usize,
}

/// One decoded lens row over all positions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LensRow {
    pub row: usize,
    pub entropy: Vec<f32>,
    pub top_ids: Vec<Vec<u32>>,
    pub top_probs: Vec<Vec<f32>>,
    /// Vocabulary spellings of `top_ids` (for the JSON export).
    pub top_pieces: Vec<Vec<String>>,
    /// Text of `top_ids` (for labels).
    pub top_texts: Vec<Vec<String>>,
    pub kl_to_last: Vec<f32>,
    /// `[tracked token][position]`.
    pub tracked_prob: Vec<Vec<f32>>,
    pub tracked_rank: Vec<Vec<u32>>,
}

/// A cached model in the browser's storage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CachedModel {
    pub url: String,
    pub bytes: u64,
}

/// Worker → page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The worker's wasm is initialised; earlier messages would have been lost.
    Ready,
    Progress { loaded: u64, total: Option<u64>, stage: String },
    ModelLoaded { info: ModelInfo },
    /// The loaded model was dropped (to make room for a new one that then may fail).
    Unloaded,
    /// The sequence being lensed (prompt, then prompt + answer).
    Tokens { run: u64, text: String, tokens: Vec<TokenInfo>, template: Option<String>, prompt_len: usize },
    AnswerToken { run: u64, token: TokenInfo },
    /// Tracked strings resolved to tokens, before the rows arrive.
    Tracked { run: u64, tokens: Vec<TokenInfo> },
    Rows { run: u64, n_rows: usize, rows: Vec<LensRow> },
    Done { run: u64, timings: Timings },
    Cancelled { run: Option<u64> },
    Error { run: Option<u64>, message: String },
    CacheList { entries: Vec<CachedModel> },
}
