//! Byte-level BPE (GPT-2 style), assembled from the GGUF vocabulary and merges with the `tokenizers`
//! crate. The text is first cut by the split regex of the tokenizer the file was converted from
//! (`tokenizer.ggml.pre`); BPE then merges only within each piece.

use super::Encoded;
use crate::error::{LensError, Result};
use std::sync::OnceLock;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior};

pub const SUPPORTED_PRE: &[&str] =
    &["default", "gpt2", "smollm", "qwen2", "deepseek-r1-qwen", "llama-bpe", "llama3", "llama-v3"];

const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

pub struct ByteLevelBpe {
    tokenizer: tokenizers::Tokenizer,
}

impl ByteLevelBpe {
    pub fn new(pieces: &[String], merges: &[&str], pre: &str) -> Result<Self> {
        let err = |e: tokenizers::Error| LensError::Tokenizer(e.to_string());
        let vocab: tokenizers::models::bpe::Vocab =
            pieces.iter().enumerate().map(|(i, p)| (p.clone(), i as u32)).collect();
        let merges = merges
            .iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| LensError::Tokenizer(format!("malformed merge `{m}`")))
            })
            .collect::<Result<Vec<_>>>()?;
        // Llama 3's own tokenizer takes a whole pre-token that is in the vocabulary as is.
        let llama3 = matches!(pre, "llama-bpe" | "llama3" | "llama-v3");
        let bpe = BPE::builder().vocab_and_merges(vocab, merges).ignore_merges(llama3).build().map_err(err)?;
        let split = |re: &str| -> Result<PreTokenizerWrapper> {
            Ok(Split::new(SplitPattern::Regex(re.into()), SplitDelimiterBehavior::Isolated, false).map_err(err)?.into())
        };
        let bytes_only: PreTokenizerWrapper = ByteLevel::new(false, true, false).into();
        let gpt2: PreTokenizerWrapper = ByteLevel::new(false, true, true).into();
        let pre_tokenizer: PreTokenizerWrapper = match pre {
            "default" | "gpt2" => gpt2,
            // SmolLM's own tokenizer puts every digit on its own before GPT-2's split.
            "smollm" => Sequence::new(vec![Digits::new(true).into(), gpt2]).into(),
            "qwen2" | "deepseek-r1-qwen" => Sequence::new(vec![split(QWEN2_SPLIT)?, bytes_only]).into(),
            _ if llama3 => Sequence::new(vec![split(LLAMA3_SPLIT)?, bytes_only]).into(),
            other => {
                return Err(LensError::Tokenizer(format!(
                    "unknown pre-tokenizer `{other}`; supported: {}",
                    SUPPORTED_PRE.join(", ")
                )))
            }
        };
        let mut tokenizer = tokenizers::Tokenizer::new(bpe);
        tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
        Ok(Self { tokenizer })
    }

    pub fn encode(&self, text: &str, offset: usize, out: &mut Vec<Encoded>) -> Result<()> {
        let enc = self.tokenizer.encode(text, false).map_err(|e| LensError::Tokenizer(e.to_string()))?;
        for (&id, &(a, b)) in enc.get_ids().iter().zip(enc.get_offsets()) {
            out.push(Encoded { id, span: offset + a..offset + b });
        }
        Ok(())
    }
}

/// GPT-2's printable spelling of each byte, as byte-level vocabularies write them (`Ġ` for a space).
pub fn byte_symbols() -> [char; 256] {
    let mut next = 256u32;
    std::array::from_fn(|b| {
        let b = b as u32;
        let printable = (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        let c = if printable {
            b
        } else {
            next += 1;
            next - 1
        };
        char::from_u32(c).expect("the table stays below U+0144")
    })
}

/// GPT-2's table from the printable characters used in the vocabulary back to bytes.
fn unicode_to_byte() -> &'static std::collections::HashMap<char, u8> {
    static TABLE: OnceLock<std::collections::HashMap<char, u8>> = OnceLock::new();
    TABLE.get_or_init(|| byte_symbols().into_iter().enumerate().map(|(b, c)| (c, b as u8)).collect())
}

pub fn piece_to_bytes(piece: &str) -> Vec<u8> {
    let table = unicode_to_byte();
    let mut out = Vec::with_capacity(piece.len());
    for c in piece.chars() {
        match table.get(&c) {
            Some(&b) => out.push(b),
            // Not byte-level spelling (some files store raw text): keep the character.
            None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}
