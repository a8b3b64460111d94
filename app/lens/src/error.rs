//! One error type for the engine. Every message is a sentence a user can act on.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum LensError {
    #[error("not a GGUF file: {0}")]
    NotGguf(String),
    #[error("the GGUF file is damaged or truncated: {0}")]
    Corrupt(String),
    #[error("unsupported model architecture `{found}`; supported: {}", supported.join(", "))]
    UnsupportedArchitecture { found: String, supported: &'static [&'static str] },
    #[error("unsupported tensor type: {0}; supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K")]
    UnsupportedTensorType(String),
    #[error("the GGUF file lacks `{0}`")]
    MissingMetadata(String),
    #[error("the GGUF metadata `{key}` is invalid: {why}")]
    BadMetadata { key: String, why: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("the prompt has {tokens} tokens, more than the model's context of {context}")]
    PromptTooLong { tokens: usize, context: usize },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("cancelled")]
    Cancelled,
    #[error("model computation failed: {0}")]
    Compute(String),
}

pub type Result<T> = std::result::Result<T, LensError>;

impl From<candle_core::Error> for LensError {
    fn from(e: candle_core::Error) -> Self {
        LensError::Compute(candle_message(&e))
    }
}

/// candle's message without the backtrace it appends when `RUST_BACKTRACE` is set.
pub fn candle_message(e: &candle_core::Error) -> String {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => candle_message(inner),
        other => other.to_string(),
    }
}
