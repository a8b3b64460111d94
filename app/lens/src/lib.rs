//! `loupe-lens`: Loupe's engine. GGUF chat models (`gguf.rs`, `model/`), their tokenizer and chat
//! template read from the file (`tokenizer/`, `template.rs`), and an exact logit lens (`lens/`),
//! behind one `Engine` (`engine/`). The arithmetic both the models and the lens call is `kernels/`.
//!
//! Modules point one way: `error → quantized → gguf → kernels → model → lens → engine`
//! (`tokenizer`, `template` and `generate` beside them, under `engine`). Pure Rust with no web dependency; builds natively and for wasm32.
//! It speaks the types of `loupe-protocol`: a `Question` in, a `Sequence` and a `LensGrid` out.

pub mod engine;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod kernels;
pub mod lens;
pub mod model;
pub mod quantized;
pub mod template;
mod template_guard;
pub mod tokenizer;

pub use engine::{block_on, bring_forward, lens_plan, Answer, Engine, Here, LensJob, LensPart, Runner, Vocabulary};
pub use error::{LensError, Result};
pub use lens::{LensOptions, Product};
pub use loupe_protocol as protocol;
pub use loupe_protocol::{Precision, Prompt, Question, Sampling, Sequence, TemplateChoice};
pub use model::Record;
