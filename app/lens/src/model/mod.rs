//! A GGUF decoder model: one forward per architecture behind the small `Blocks` trait, plus what
//! every lens row is decoded through (final norm, unembedding, optional final soft-cap).

mod gemma;
pub mod layers;
mod llama;
pub mod residence;

use crate::error::{LensError, Result};
use crate::gguf::GgufFile;
use crate::Precision;
use candle_core::Tensor;
use layers::{Embedding, QuantizedTable, RmsNorm};
use residence::Residence;
use std::rc::Rc;

pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"];

/// Hyper-parameters read from `{arch}.*` metadata.
#[derive(Clone, Debug)]
pub struct Hyper {
    pub n_layers: usize,
    pub d_model: usize,
    pub d_ff: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    /// Leading dimensions of each head the rotary turns (`rope.dimension_count`; all by default).
    pub rope_dims: usize,
    /// Multiplies q·k in attention: 1/sqrt(head_dim) unless the file says otherwise.
    pub attn_scale: f64,
    pub eps: f32,
    pub rope_base: f32,
    /// Linear position interpolation factor (1 = none).
    pub rope_scale: f32,
    pub context: usize,
    pub vocab: usize,
}

/// What a forward pass keeps of the residual stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Record {
    /// The embedding output and every block's output: L + 1 rows.
    #[default]
    Blocks,
    /// Also the stream after each block's attention, between the two: 2L + 1 rows (1a, 1m, ...).
    InsideBlocks,
}

impl Record {
    /// What a question asks for.
    pub fn of(question: &crate::Question) -> Self {
        if question.inside_blocks {
            Record::InsideBlocks
        } else {
            Record::Blocks
        }
    }
}

/// Where a forward pass puts the residual stream's rows (each `[T, d]`): those `record` names.
pub struct Rows<'a> {
    pub out: &'a mut Vec<Tensor>,
    pub record: Record,
}

impl Rows<'_> {
    /// The embedding output, or a block's output (`x` is `[1, T, d]`).
    pub fn push(&mut self, x: &Tensor) -> Result<()> {
        self.out.push(x.squeeze(0)?);
        Ok(())
    }

    /// The stream after a block's attention, kept only for the sub-layer lens.
    pub fn push_after_attention(&mut self, x: &Tensor) -> Result<()> {
        if self.record == Record::InsideBlocks {
            self.push(x)?;
        }
        Ok(())
    }
}

pub type RowSink<'a> = Option<Rows<'a>>;

/// The residual stream of an architecture: embedding plus blocks, with a KV cache.
pub trait Blocks {
    /// Runs `ids` at positions `start..`; when `rows` is given, pushes its rows into it (see
    /// `Rows`). Returns the last block's output.
    fn forward(&mut self, ids: &[u32], start: usize, p: Precision, rows: &mut RowSink) -> Result<Tensor>;
    fn cached_len(&self) -> usize;
    fn clear_cache(&mut self);
    /// Whether blocks are read from the file per forward pass (no KV cache is kept then).
    fn streamed(&self) -> bool;
}

pub struct Model {
    pub architecture: String,
    pub hyper: Hyper,
    blocks: Box<dyn Blocks>,
    final_norm: RmsNorm,
    pub unembedding: QuantizedTable,
    /// Gemma 2's `final_logit_softcapping`: logits = cap · tanh(logits / cap).
    pub final_softcap: Option<f32>,
}

/// Largest number of lens rows, positions, layers or heads any real small model has many times over;
/// files claiming more are malformed, and refusing them early avoids absurd allocations.
const SANE_LIMIT: usize = 1 << 20;

/// The attention scale of a file that does not state `attention.scale`: 1/sqrt(head size), except
/// for the Gemma 2 and Gemma 3 27B models, whose query_pre_attn_scalar is d / heads. llama.cpp
/// knows them by their layer count too, as their files carry nothing else that tells.
fn default_attention_scale(arch: &str, n_layers: usize, d_model: usize, n_heads: usize, head_dim: usize) -> f64 {
    let gemma_27b = matches!((arch, n_layers), ("gemma2", 46) | ("gemma3", 62));
    let divisor = if gemma_27b { d_model / n_heads } else { head_dim };
    1.0 / (divisor as f64).sqrt()
}

impl Model {
    /// Loads every weight into memory.
    pub fn load(g: &GgufFile) -> Result<Self> {
        Self::load_as(g, &Residence::Resident)
    }

    /// Keeps the final norm and the (un)embedding in memory and reads each block from `file` when
    /// a forward pass reaches it: the lens of a model larger than memory, without generation.
    pub fn load_streamed(file: Rc<GgufFile<'static>>) -> Result<Self> {
        Self::load_as(&file, &Residence::Streamed(file.clone()))
    }

    /// The file's architecture, refused by name unless one of `SUPPORTED_ARCHITECTURES`.
    pub fn architecture_of(g: &GgufFile) -> Result<String> {
        let arch = g.architecture()?;
        if !SUPPORTED_ARCHITECTURES.contains(&arch.as_str()) {
            return Err(LensError::UnsupportedArchitecture { found: arch, supported: SUPPORTED_ARCHITECTURES });
        }
        Ok(arch)
    }

    fn load_as(g: &GgufFile, residence: &Residence) -> Result<Self> {
        let arch = Self::architecture_of(g)?;
        let key = |k: &str| format!("{arch}.{k}");
        let positive = |k: &str| -> Result<usize> {
            let v = g.usize(&key(k))?;
            if v == 0 || v > SANE_LIMIT {
                return Err(LensError::BadMetadata { key: key(k), why: format!("{v} is out of range") });
            }
            Ok(v)
        };
        let n_heads = positive("attention.head_count")?;
        let d_model = positive("embedding_length")?;
        let head_dim = match g.opt_usize(&key("attention.key_length"))? {
            Some(v) if v > 0 && v <= SANE_LIMIT => v,
            Some(v) => {
                return Err(LensError::BadMetadata {
                    key: key("attention.key_length"),
                    why: format!("{v} is out of range"),
                })
            }
            None if d_model >= n_heads => d_model / n_heads,
            None => {
                let why = format!("{n_heads} heads do not fit in {d_model} embedding dimensions");
                return Err(LensError::BadMetadata { key: key("attention.head_count"), why });
            }
        };
        let n_kv_heads = match g.opt_usize(&key("attention.head_count_kv"))? {
            Some(v) => v,
            None => n_heads,
        };
        if n_kv_heads == 0 || n_heads % n_kv_heads != 0 {
            return Err(LensError::BadMetadata {
                key: key("attention.head_count_kv"),
                why: format!("{n_kv_heads} does not divide the {n_heads} attention heads"),
            });
        }
        let embed_name = "token_embd.weight";
        let vocab = match g.tensor_shape(embed_name) {
            Some([v, d]) if *d == d_model && *v > 0 => *v,
            Some(dims) => {
                return Err(LensError::Corrupt(format!(
                    "`{embed_name}` has shape {dims:?}, expected [vocabulary, {d_model}]"
                )))
            }
            None => return Err(LensError::Corrupt(format!("the tensor `{embed_name}` is missing"))),
        };
        let context = positive("context_length")?;
        // A real number in a sane range, or the default when absent: NaN, infinite, zero or absurd
        // values would give a figure of silent garbage.
        let real = |k: &str, default: f32, range: std::ops::RangeInclusive<f32>| -> Result<f32> {
            match g.opt_f32(&key(k))? {
                None => Ok(default),
                Some(v) if v.is_finite() && range.contains(&v) => Ok(v),
                Some(v) => Err(LensError::BadMetadata {
                    key: key(k),
                    why: format!("{v} is outside {}..={}", range.start(), range.end()),
                }),
            }
        };
        let n_layers = positive("block_count")?;
        let rope_dims = match g.opt_usize(&key("rope.dimension_count"))? {
            None => head_dim,
            Some(v) if v > 0 && v <= head_dim && v % 2 == 0 => v,
            Some(v) => {
                let why = format!("{v} is not an even number of dimensions up to the head size {head_dim}");
                return Err(LensError::BadMetadata { key: key("rope.dimension_count"), why });
            }
        };
        let attn_scale = match g.opt_f32(&key("attention.scale"))? {
            Some(_) => real("attention.scale", 1.0, 1e-6..=10.0)? as f64,
            None => default_attention_scale(&arch, n_layers, d_model, n_heads, head_dim),
        };
        let hyper = Hyper {
            n_layers,
            d_model,
            d_ff: positive("feed_forward_length")?,
            n_heads,
            n_kv_heads,
            head_dim,
            rope_dims,
            attn_scale,
            eps: real("attention.layer_norm_rms_epsilon", 1e-6, 1e-12..=0.1)?,
            rope_base: real("rope.freq_base", 10_000.0, 1.0..=1e12)?,
            rope_scale: match g.opt_string(&key("rope.scaling.type"))? {
                Some("linear") => real("rope.scaling.factor", 1.0, 1.0..=1e6)?,
                _ => 1.0,
            },
            // No prompt near this length fits in a browser tab; larger claims are treated as this.
            context: context.min(1 << 17),
            vocab,
        };
        let (embed, unembedding) = match (g.has_tensor("output.weight"), residence) {
            // Streamed with a separate unembedding: embedding rows are read from the file as needed.
            (true, Residence::Streamed(file)) => {
                // Fails now, not mid-figure, if the table cannot be read.
                g.tensor_rows(embed_name, 0..1)?;
                g.tensor_rows(embed_name, vocab - 1..vocab)?;
                let embed = Embedding::File { file: file.clone(), name: embed_name.into(), vocab };
                (embed, QuantizedTable::read(g, "output.weight", vocab, d_model)?)
            }
            (true, Residence::Resident) => {
                let embed = QuantizedTable::read(g, embed_name, vocab, d_model)?;
                (Embedding::Table(embed), QuantizedTable::read(g, "output.weight", vocab, d_model)?)
            }
            (false, _) => {
                let tied = QuantizedTable::read(g, embed_name, vocab, d_model)?;
                let embed = QuantizedTable { table: tied.table.clone(), file_offset: tied.file_offset };
                (Embedding::Table(embed), tied)
            }
        };
        let final_norm = RmsNorm::load(g, "output_norm", d_model, hyper.eps)?;
        let final_softcap = Some(real("final_logit_softcapping", 0.0, 0.0..=1e6)?).filter(|c| *c > 0.0);
        let blocks: Box<dyn Blocks> = match arch.as_str() {
            "llama" => Box::new(llama::Llama::load(g, hyper.clone(), embed, llama::Variant::LLAMA, residence)?),
            "qwen2" => Box::new(llama::Llama::load(g, hyper.clone(), embed, llama::Variant::QWEN2, residence)?),
            "qwen3" => Box::new(llama::Llama::load(g, hyper.clone(), embed, llama::Variant::QWEN3, residence)?),
            "phi3" => Box::new(llama::Llama::load(g, hyper.clone(), embed, llama::Variant::PHI3, residence)?),
            "gemma2" => Box::new(gemma::Gemma::load(g, hyper.clone(), embed, gemma::Variant::GEMMA2, residence)?),
            "gemma3" => Box::new(gemma::Gemma::load(g, hyper.clone(), embed, gemma::Variant::GEMMA3, residence)?),
            _ => unreachable!("checked against SUPPORTED_ARCHITECTURES"),
        };
        Ok(Self { architecture: arch, hyper, blocks, final_norm, unembedding, final_softcap })
    }

    /// Number of lens rows: the embedding output plus one per block.
    pub fn n_rows(&self) -> usize {
        self.hyper.n_layers + 1
    }

    /// The residual stream of a whole sequence from a fresh cache: the rows `record` names, each
    /// `[T, d]`. The cache is left holding the sequence, so generation can continue from it.
    pub fn residual_stream(&mut self, ids: &[u32], p: Precision, record: Record) -> Result<Vec<Tensor>> {
        self.check_length(ids.len())?;
        self.blocks.clear_cache();
        let mut out = Vec::with_capacity(2 * self.n_rows());
        self.blocks.forward(ids, 0, p, &mut Some(Rows { out: &mut out, record }))?;
        Ok(out)
    }

    /// Runs new tokens after what the cache holds; returns the last block's output `[new, d]`.
    pub fn extend(&mut self, ids: &[u32], p: Precision) -> Result<Tensor> {
        if self.streamed() {
            return Err(LensError::InvalidRequest(loupe_protocol::STREAMED_GENERATION.into()));
        }
        let start = self.blocks.cached_len();
        self.check_length(start + ids.len())?;
        self.blocks.forward(ids, start, p, &mut None)
    }

    pub fn cached_len(&self) -> usize {
        self.blocks.cached_len()
    }

    /// Whether the blocks are read from the file per forward pass (`load_streamed`).
    pub fn streamed(&self) -> bool {
        self.blocks.streamed()
    }

    pub fn clear_cache(&mut self) {
        self.blocks.clear_cache();
    }

    pub fn check_length(&self, tokens: usize) -> Result<()> {
        if tokens == 0 {
            return Err(LensError::EmptyPrompt);
        }
        if tokens > self.hyper.context {
            return Err(LensError::PromptTooLong { tokens, context: self.hyper.context });
        }
        Ok(())
    }

    pub fn final_norm(&self, x: &Tensor) -> Result<Tensor> {
        self.final_norm.forward(x)
    }
}

#[cfg(test)]
mod tests {
    use super::default_attention_scale;

    #[test]
    fn gemma_27b_scales_attention_by_width_per_head() {
        // Gemma 2 27B: d 4608, 32 heads of 128, query_pre_attn_scalar 144.
        assert_eq!(default_attention_scale("gemma2", 46, 4608, 32, 128), 1.0 / 144f64.sqrt());
        // Gemma 3 27B: d 5376, 32 heads of 128, query_pre_attn_scalar 168.
        assert_eq!(default_attention_scale("gemma3", 62, 5376, 32, 128), 1.0 / 168f64.sqrt());
        // Gemma 3 1B: d 1152, 4 heads of 256, query_pre_attn_scalar 256 (not d / heads = 288).
        assert_eq!(default_attention_scale("gemma3", 26, 1152, 4, 256), 1.0 / 16.0);
        assert_eq!(default_attention_scale("llama", 46, 4608, 32, 128), 1.0 / 128f64.sqrt());
    }
}
