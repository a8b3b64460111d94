//! The tokenizer, built from GGUF metadata alone (`tokenizer.ggml.*`).
//!
//! Two families, as `tokenizer.ggml.model` names them:
//! - `gpt2`: byte-level BPE with the pre-tokenizer `tokenizer.ggml.pre` names (SmolLM2, Qwen2, Llama 3);
//! - `llama`: SentencePiece BPE over scores (Llama 2, TinyLlama) or over vocabulary order (Gemma).
//!
//! Control and user-defined tokens (`<|im_start|>`, `<end_of_turn>`, `<think>`) are cut out of the
//! text before BPE runs, so they always encode as one token, as llama.cpp does and as Hugging Face
//! transformers builds these tokenizers from GGUF. Only control tokens count as special.

mod byte_level;
mod spm;

use crate::error::{LensError, Result};
use crate::gguf::GgufFile;
use std::collections::HashMap;
use std::ops::Range;

/// `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

pub use byte_level::byte_symbols;

/// The pre-tokenizers (`tokenizer.ggml.pre`) this engine knows.
pub const SUPPORTED_PRE_TOKENIZERS: &[&str] = byte_level::SUPPORTED_PRE;

enum Engine {
    // Boxed: both hold large tables inline, and the two sizes differ a lot.
    ByteLevel(Box<byte_level::ByteLevelBpe>),
    SentencePiece(Box<spm::SentencePieceBpe>),
}

pub struct Tokenizer {
    pieces: Vec<String>,
    special: Vec<bool>,
    ids: HashMap<String, u32>,
    engine: Engine,
    /// Tokens cut out of text before BPE, bucketed by first byte, longest first in each bucket.
    controls: HashMap<u8, Vec<(String, u32)>>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// Whether plain text gets a BOS token in front (`tokenizer.ggml.add_bos_token`).
    pub add_bos: bool,
    pub kind: String,
}

/// One encoded token and the bytes of the input text it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoded {
    pub id: u32,
    pub span: Range<usize>,
}

impl Tokenizer {
    pub fn from_gguf(g: &GgufFile) -> Result<Self> {
        let kind = g.string("tokenizer.ggml.model")?.to_string();
        let pieces: Vec<String> = g.string_array("tokenizer.ggml.tokens")?.into_iter().map(str::to_owned).collect();
        if pieces.is_empty() {
            return Err(LensError::Tokenizer("the vocabulary is empty".into()));
        }
        let types = if g.has("tokenizer.ggml.token_type") {
            let t = g.i32_array("tokenizer.ggml.token_type")?;
            if t.len() != pieces.len() {
                return Err(LensError::Tokenizer(format!("{} token types for {} tokens", t.len(), pieces.len())));
            }
            t
        } else {
            vec![1; pieces.len()]
        };
        let token_id = |key: &str| -> Result<Option<u32>> {
            match g.opt_usize(key)? {
                Some(id) if id < pieces.len() => Ok(Some(id as u32)),
                Some(id) => {
                    Err(LensError::Tokenizer(format!("`{key}` is {id}, outside the vocabulary of {}", pieces.len())))
                }
                None => Ok(None),
            }
        };
        let bos = token_id("tokenizer.ggml.bos_token_id")?;
        let eos = token_id("tokenizer.ggml.eos_token_id")?;
        let unk = token_id("tokenizer.ggml.unknown_token_id")?;

        let special: Vec<bool> = types.iter().map(|&t| t == TOKEN_TYPE_CONTROL).collect();
        let (engine, default_add_bos, split_types): (Engine, bool, &[i32]) = match kind.as_str() {
            "gpt2" => {
                let pre = g.opt_string("tokenizer.ggml.pre")?.unwrap_or("default");
                let merges = g.string_array("tokenizer.ggml.merges")?;
                (
                    Engine::ByteLevel(Box::new(byte_level::ByteLevelBpe::new(&pieces, &merges, pre)?)),
                    false,
                    &[TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED],
                )
            }
            "llama" => {
                let scores = if g.has("tokenizer.ggml.scores") {
                    g.f32_array("tokenizer.ggml.scores")?
                } else {
                    vec![0.0; pieces.len()]
                };
                if scores.len() != pieces.len() {
                    return Err(LensError::Tokenizer(format!("{} scores for {} tokens", scores.len(), pieces.len())));
                }
                let add_space_prefix = g.opt_bool("tokenizer.ggml.add_space_prefix")?.unwrap_or(true);
                (
                    Engine::SentencePiece(Box::new(spm::SentencePieceBpe::new(
                        &pieces,
                        &scores,
                        &types,
                        unk,
                        add_space_prefix,
                    ))),
                    true,
                    &[TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED],
                )
            }
            other => {
                return Err(LensError::Tokenizer(format!(
                    "unsupported tokenizer model `{other}`; supported: gpt2 (byte-level BPE), llama (SentencePiece)"
                )))
            }
        };
        let add_bos = g.opt_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(default_add_bos);

        let mut controls: HashMap<u8, Vec<(String, u32)>> = HashMap::new();
        for (i, (p, t)) in pieces.iter().zip(&types).enumerate() {
            if split_types.contains(t) && !p.is_empty() {
                controls.entry(p.as_bytes()[0]).or_default().push((p.clone(), i as u32));
            }
        }
        for bucket in controls.values_mut() {
            bucket.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        }

        let ids = pieces.iter().enumerate().map(|(i, p)| (p.clone(), i as u32)).collect();
        Ok(Self { pieces, special, ids, engine, controls, bos, eos, add_bos, kind })
    }

    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    /// The vocabulary's spelling of a token (`Ġthe`, `▁the`).
    pub fn piece(&self, id: u32) -> &str {
        self.pieces.get(id as usize).map(String::as_str).unwrap_or("")
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.special.get(id as usize).copied().unwrap_or(false)
    }

    pub fn id_of_piece(&self, piece: &str) -> Option<u32> {
        self.ids.get(piece).copied()
    }

    /// Encodes text, cutting control tokens out first; never adds BOS (see `add_bos`).
    pub fn encode(&self, text: &str) -> Result<Vec<Encoded>> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < text.len() {
            if !text.is_char_boundary(i) {
                i += 1;
                continue;
            }
            let rest = &text[i..];
            let bucket = self.controls.get(&rest.as_bytes()[0]);
            if let Some((piece, id)) = bucket.and_then(|b| b.iter().find(|(p, _)| rest.starts_with(p.as_str()))) {
                self.encode_plain(&text[start..i], start, &mut out)?;
                out.push(Encoded { id: *id, span: i..i + piece.len() });
                i += piece.len();
                start = i;
            } else {
                i += 1;
            }
        }
        self.encode_plain(&text[start..], start, &mut out)?;
        Ok(out)
    }

    fn encode_plain(&self, text: &str, offset: usize, out: &mut Vec<Encoded>) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        match &self.engine {
            Engine::ByteLevel(b) => b.encode(text, offset, out),
            Engine::SentencePiece(s) => {
                s.encode(text, offset, offset == 0, out);
                Ok(())
            }
        }
    }

    /// The bytes a token stands for (control tokens: their own spelling).
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        let piece = self.piece(id);
        if self.is_special(id) {
            return piece.as_bytes().to_vec();
        }
        match &self.engine {
            Engine::ByteLevel(_) => byte_level::piece_to_bytes(piece),
            Engine::SentencePiece(_) => spm::piece_to_bytes(piece),
        }
    }

    /// The text of one token, lossy where it holds part of a UTF-8 character.
    pub fn token_text(&self, id: u32) -> String {
        String::from_utf8_lossy(&self.token_bytes(id)).into_owned()
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids.iter().flat_map(|&id| self.token_bytes(id)).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
