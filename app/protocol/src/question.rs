//! The question a user asks of a model: what to feed it, how to compute, what to report. One type
//! for every front end: the page's URL and controls, the worker, the `loupe` command line and the
//! engine all read and write `Question`; a report records the question it answers.

use serde::{Deserialize, Serialize};

/// What to feed the model. Serializes as the reference files write it: `{"chat": "...", "system": "..."}`
/// or `{"raw": "..."}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// A user message (with an optional system message), rendered with a chat template and with
    /// the generation prompt added.
    Chat {
        #[serde(rename = "chat")]
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        system: Option<String>,
    },
    /// Plain text, BOS added where the model adds one.
    Raw { raw: String },
}

impl Default for Prompt {
    fn default() -> Self {
        Prompt::Chat { user: String::new(), system: None }
    }
}

impl Prompt {
    pub fn chat(user: &str) -> Self {
        Prompt::Chat { user: user.into(), system: None }
    }

    pub fn raw(text: &str) -> Self {
        Prompt::Raw { raw: text.into() }
    }
}

/// Which chat template renders a chat prompt.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateChoice {
    /// The file's own; a fitting built-in where the file has none.
    #[default]
    FromFile,
    /// A built-in by name (`chatml`, `llama3`, `gemma`).
    Builtin(String),
    /// Jinja source given by the user.
    Custom(String),
}

impl TemplateChoice {
    pub fn is_from_file(&self) -> bool {
        *self == TemplateChoice::FromFile
    }
}

/// How the residual stream is computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// The PyTorch definition: f32 activations against dequantized weights.
    #[default]
    Exact,
    /// As llama.cpp runs the model: activations quantized to 8 bits for the quantized matmuls.
    Fast,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Exact => "exact",
            Precision::Fast => "fast",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "exact" => Some(Precision::Exact),
            "fast" => Some(Precision::Fast),
            _ => None,
        }
    }
}

/// How the answer's tokens are picked. `temperature == 0` means greedy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Self { temperature: 0.0, top_p: 1.0, seed: 0 }
    }
}

/// Bounds every front end enforces, so a link or a flag cannot ask for absurd work.
pub const MAX_TOP_K: usize = 100;
pub const MAX_ANSWER_TOKENS: usize = 1024;

/// A whole question. Missing fields take their defaults when read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Question {
    pub prompt: Prompt,
    #[serde(skip_serializing_if = "TemplateChoice::is_from_file")]
    pub template: TemplateChoice,
    pub precision: Precision,
    /// Top tokens reported per cell.
    pub top_k: usize,
    /// Strings whose probability and rank to follow (` Canberra`); the engine resolves them to tokens.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub track: Vec<String>,
    /// Let the model answer up to this many tokens first; the lens then covers the answer too.
    pub answer_tokens: usize,
    pub sampling: Sampling,
}

impl Default for Question {
    fn default() -> Self {
        Self {
            prompt: Prompt::default(),
            template: TemplateChoice::FromFile,
            precision: Precision::Exact,
            top_k: 5,
            track: Vec::new(),
            answer_tokens: 0,
            sampling: Sampling::default(),
        }
    }
}

impl Question {
    /// Checks the numbers a user can type; the message names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if self.top_k == 0 || self.top_k > MAX_TOP_K {
            return Err(format!("top-k is between 1 and {MAX_TOP_K}, not {}", self.top_k));
        }
        if self.answer_tokens > MAX_ANSWER_TOKENS {
            return Err(format!("an answer is at most {MAX_ANSWER_TOKENS} tokens, not {}", self.answer_tokens));
        }
        let s = &self.sampling;
        if !(s.top_p > 0.0 && s.top_p <= 1.0) {
            return Err(format!("top-p is in (0, 1], not {}", s.top_p));
        }
        if !(s.temperature >= 0.0 && s.temperature.is_finite()) {
            return Err(format!("the temperature is a number ≥ 0, not {}", s.temperature));
        }
        Ok(())
    }

    /// Tracked strings from the comma-separated form the page uses; spaces count
    /// (` Canberra, Sydney` tracks ` Canberra` and ` Sydney`).
    pub fn parse_track_list(list: &str) -> Vec<String> {
        list.split(',').filter(|s| !s.trim().is_empty()).map(str::to_owned).collect()
    }

    pub fn track_list(&self) -> String {
        self.track.join(",")
    }
}
