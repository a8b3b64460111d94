//! Loupe's lens engine: GGUF chat models, their tokenizer and chat template read from the file, and
//! an exact logit lens. Pure Rust with no web dependency; builds natively and for wasm32.

pub mod engine;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod lens;
pub mod model;
pub mod template;
pub mod tokenizer;

pub use engine::{Engine, LensJob, Prepared, Prompt, TemplateChoice};
pub use error::{LensError, Result};
pub use lens::LensOptions;
pub use loupe_protocol as protocol;

/// How the residual stream is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    /// As llama.cpp runs the model: activations quantized to 8 bits for the quantized matmuls.
    #[default]
    Fast,
    /// The PyTorch definition: f32 activations against dequantized weights.
    Exact,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fast => "fast",
            Precision::Exact => "exact",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fast" => Some(Precision::Fast),
            "exact" => Some(Precision::Exact),
            _ => None,
        }
    }
}
