//! Building blocks shared by the architectures, one job per file: the token tables (`tables.rs`),
//! linear layers, norms and activations (`linear.rs`), rotary embeddings (`rotary.rs`), and
//! attention with its KV cache (`attention.rs`).

mod attention;
mod linear;
mod rotary;
mod tables;

pub use attention::*;
pub use linear::*;
pub use rotary::*;
pub use tables::*;
