//! `loupe-protocol`: the types every part of Loupe speaks, with no model code and no web code.
//!
//! - [`Question`] (`question.rs`): what the user asks; the URL (`query.rs`), the CLI, the worker and
//!   the engine all use it.
//! - [`LensReport`] (`report.rs`): the one result shape, with [`Sequence`] and [`LensGrid`].
//! - [`Request`] / [`Event`] (`messages.rs`): page ↔ worker messages.
//! - `token_label`: how token strings are shown.

pub mod conversation;
pub mod messages;
pub mod query;
pub mod question;
pub mod report;
pub mod token_label;

pub use conversation::{Message, Role};
pub use messages::{
    too_large_message, CachedModel, Event, ModelInfo, Request, RunId, MAX_MODEL_BYTES, RESIDENT_MAX_BYTES,
    STREAMED_GENERATION,
};
pub use question::{Precision, Prompt, Question, Sampling, TemplateChoice, MAX_ANSWER_TOKENS, MAX_TOP_K, MAX_TRACKED};
pub use report::{LensGrid, LensReport, RunStep, Sequence, Timings, TokenInfo, TrackedToken, REPORT_SCHEMA};
