//! The question a user asks of a model: what to feed it, how to compute, what to report. One type
//! for every front end: the page's URL and controls, the worker, the `loupe` command line and the
//! engine all read and write `Question`; a report records the question it answers.

use crate::conversation::{Message, Role, MAX_MESSAGES};
use serde::{Deserialize, Serialize};

/// What to feed the model: a conversation, rendered with a chat template and the generation prompt
/// added, or plain text (BOS added where the model adds one). A single message is a conversation
/// of one. In JSON a user message with an optional system message is written as the reference
/// files write it, `{"chat": "...", "system": "..."}`, any other conversation as
/// `{"messages": [{"role": ..., "content": ...}, ...]}`, plain text as `{"raw": "..."}`; all three read back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "PromptJson", into = "PromptJson")]
pub enum Prompt {
    Chat { messages: Vec<Message> },
    Raw { raw: String },
}

/// `Prompt`'s JSON forms.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum PromptJson {
    Chat {
        chat: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        system: Option<String>,
    },
    Messages {
        messages: Vec<Message>,
    },
    Raw {
        raw: String,
    },
}

impl From<PromptJson> for Prompt {
    fn from(json: PromptJson) -> Self {
        match json {
            PromptJson::Chat { chat, system } => Prompt::with_system(system.as_deref(), &chat),
            PromptJson::Messages { messages } => Prompt::Chat { messages },
            PromptJson::Raw { raw } => Prompt::Raw { raw },
        }
    }
}

impl From<Prompt> for PromptJson {
    fn from(prompt: Prompt) -> Self {
        match prompt {
            Prompt::Raw { raw } => PromptJson::Raw { raw },
            Prompt::Chat { messages } => match prompt_as_chat(&messages) {
                Some((system, user)) => PromptJson::Chat { chat: user.into(), system: system.map(Into::into) },
                None => PromptJson::Messages { messages },
            },
        }
    }
}

/// A user message with an optional system message before it, as (system, user). A blank system
/// message is kept as a turn of its own (the single-message form would drop it).
fn prompt_as_chat(messages: &[Message]) -> Option<(Option<&str>, &str)> {
    match messages {
        [Message { role: Role::User, content }] => Some((None, content)),
        [Message { role: Role::System, content: system }, Message { role: Role::User, content }]
            if !system.trim().is_empty() =>
        {
            Some((Some(system), content))
        }
        _ => None,
    }
}

impl Default for Prompt {
    fn default() -> Self {
        Prompt::chat("")
    }
}

impl Prompt {
    /// One user message.
    pub fn chat(user: &str) -> Self {
        Prompt::with_system(None, user)
    }

    /// A user message after a system message, where one is given and not blank.
    pub fn with_system(system: Option<&str>, user: &str) -> Self {
        let system = system.filter(|s| !s.trim().is_empty()).map(|s| Message::new(Role::System, s));
        Prompt::Chat { messages: system.into_iter().chain([Message::new(Role::User, user)]).collect() }
    }

    pub fn raw(text: &str) -> Self {
        Prompt::Raw { raw: text.into() }
    }

    /// The turns of a chat prompt; none for plain text.
    pub fn messages(&self) -> &[Message] {
        match self {
            Prompt::Chat { messages } => messages,
            Prompt::Raw { .. } => &[],
        }
    }

    /// A chat prompt that is one user message with an optional system message, as (system, user).
    pub fn as_single_message(&self) -> Option<(Option<&str>, &str)> {
        prompt_as_chat(self.messages())
    }

    /// The last user message's text: what a chat asks now (the teacher's raw-text control runs it).
    pub fn last_user_text(&self) -> Option<&str> {
        self.messages().iter().rev().find(|m| m.role == Role::User).map(|m| m.content.as_str())
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
    /// Faster where it can be, within 0.05 nats (median) of exact: an answer's tokens with
    /// llama.cpp's arithmetic (activations quantized to 8 bits against the quantized weights), and
    /// the lens's product in 8-bit integers in the relaxed-SIMD worker where that measures faster.
    /// A figure's forward pass is f32 as in exact, which is the faster one for many tokens.
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
/// Each tracked token adds a pass over every cell's logits and a row of numbers per cell.
pub const MAX_TRACKED: usize = 32;

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
    /// Lens the residual stream inside each block too: after its attention as well as after its
    /// MLP, 2L + 1 rows instead of L + 1.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inside_blocks: bool,
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
            inside_blocks: false,
        }
    }
}

impl Question {
    /// Lens rows for a model of `n_layers` blocks.
    pub fn n_rows(&self, n_layers: usize) -> usize {
        if self.inside_blocks {
            2 * n_layers + 1
        } else {
            n_layers + 1
        }
    }

    /// How row `r` is named: `emb 0`, then the block number, or with `inside_blocks` `3a` (after
    /// block 3's attention) and `3m` (after its MLP, the block's output).
    pub fn row_label(&self, r: usize) -> String {
        match (r, self.inside_blocks) {
            (0, _) => "emb 0".to_string(),
            (r, false) => r.to_string(),
            (r, true) if r % 2 == 1 => format!("{}a", r.div_ceil(2)),
            (r, true) => format!("{}m", r / 2),
        }
    }

    /// Checks the numbers a user can type; the message names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if let Prompt::Chat { messages } = &self.prompt {
            if messages.is_empty() {
                return Err("a chat prompt has at least one message".into());
            }
            if messages.len() > MAX_MESSAGES {
                return Err(format!("a conversation has at most {MAX_MESSAGES} messages, not {}", messages.len()));
            }
        }
        if self.top_k == 0 || self.top_k > MAX_TOP_K {
            return Err(format!("top-k is between 1 and {MAX_TOP_K}, not {}", self.top_k));
        }
        if self.track.len() > MAX_TRACKED {
            return Err(format!("at most {MAX_TRACKED} tokens can be tracked, not {}", self.track.len()));
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
    /// A string given twice is tracked once.
    pub fn parse_track_list(list: &str) -> Vec<String> {
        let mut tracked: Vec<String> = Vec::new();
        for s in list.split(',').filter(|s| !s.trim().is_empty()) {
            if !tracked.iter().any(|t| t == s) {
                tracked.push(s.to_owned());
            }
        }
        tracked
    }

    pub fn track_list(&self) -> String {
        self.track.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_inside_blocks_are_named_after_their_block() {
        let q = Question { inside_blocks: true, ..Default::default() };
        assert_eq!(q.n_rows(30), 61);
        let labels: Vec<String> = (0..5).map(|r| q.row_label(r)).collect();
        assert_eq!(labels, ["emb 0", "1a", "1m", "2a", "2m"]);
        assert_eq!(Question::default().row_label(3), "3");
        assert_eq!(Question::default().n_rows(30), 31);
    }

    #[test]
    fn prompts_are_written_as_the_references_write_them_and_read_back() {
        let json = |p: &Prompt| serde_json::to_string(p).unwrap();
        let read = |s: &str| serde_json::from_str::<Prompt>(s).unwrap();
        let one = Prompt::with_system(Some("Be brief."), "Hi");
        assert_eq!(json(&one), r#"{"chat":"Hi","system":"Be brief."}"#);
        assert_eq!(json(&Prompt::chat("Hi")), r#"{"chat":"Hi"}"#);
        assert_eq!(read(r#"{"chat":"Hi","system":"Be brief."}"#), one);
        // A blank system message is no message.
        assert_eq!(read(r#"{"chat":"Hi","system":" "}"#), Prompt::chat("Hi"));
        let talk = Prompt::Chat {
            messages: vec![
                Message::new(Role::User, "Hi"),
                Message::new(Role::Assistant, "Hello."),
                Message::new(Role::User, "Capital of Chad?"),
            ],
        };
        assert_eq!(
            json(&talk),
            r#"{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello."},{"role":"user","content":"Capital of Chad?"}]}"#
        );
        assert_eq!(read(&json(&talk)), talk);
        assert_eq!(talk.last_user_text(), Some("Capital of Chad?"));
        assert_eq!(read(r#"{"raw":"x"}"#), Prompt::raw("x"));
        assert!(Question { prompt: Prompt::Chat { messages: Vec::new() }, ..Default::default() }.validate().is_err());
    }
}
