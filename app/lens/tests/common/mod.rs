//! Helpers shared by the engine's integration tests: where the real models are, and a builder for
//! small GGUF files with random weights (for tokenizer, malformed-input and context-limit tests).
#![allow(dead_code)]

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use std::path::PathBuf;

pub const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const QWEN25: &str = "qwen2.5-coder-0.5b-instruct.gguf";
pub const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

/// The git-ignored cache that `scripts/fetch-models.sh` fills.
pub fn model_dir() -> PathBuf {
    std::env::var_os("LOUPE_MODEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}

pub fn model_path(name: &str) -> PathBuf {
    let p = model_dir().join(name);
    assert!(p.exists(), "{} is missing: run scripts/fetch-models.sh first", p.display());
    p
}

pub fn model_bytes(name: &str) -> Vec<u8> {
    std::fs::read(model_path(name)).unwrap()
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// GPT-2's printable spelling of each byte.
pub fn byte_symbols() -> Vec<char> {
    loupe_lens::tokenizer::byte_symbols().to_vec()
}

/// A llama-architecture GGUF under construction: metadata and tensors, written on `bytes()`.
pub struct TinyGguf {
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<(String, QTensor)>,
}

fn random(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

pub const D: usize = 32;

impl TinyGguf {
    /// One block, d = 32, 2 heads (1 KV head), random weights; the embedding is Q8_0.
    pub fn llama(tokens: Vec<String>, types: Vec<i32>, merges: Vec<String>, pre: &str, context: usize) -> Self {
        let vocab = tokens.len();
        let strings = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
        let metadata = vec![
            ("general.architecture".into(), Value::String("llama".into())),
            ("general.name".into(), Value::String("tiny test llama".into())),
            ("llama.block_count".into(), Value::U32(1)),
            ("llama.context_length".into(), Value::U32(context as u32)),
            ("llama.embedding_length".into(), Value::U32(D as u32)),
            ("llama.feed_forward_length".into(), Value::U32(64)),
            ("llama.attention.head_count".into(), Value::U32(2)),
            ("llama.attention.head_count_kv".into(), Value::U32(1)),
            ("llama.attention.layer_norm_rms_epsilon".into(), Value::F32(1e-5)),
            ("llama.rope.freq_base".into(), Value::F32(500_000.0)),
            ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
            ("tokenizer.ggml.pre".into(), Value::String(pre.into())),
            ("tokenizer.ggml.tokens".into(), strings(tokens)),
            ("tokenizer.ggml.token_type".into(), Value::Array(types.into_iter().map(Value::I32).collect())),
            ("tokenizer.ggml.merges".into(), strings(merges)),
        ];
        let q = |shape: &[usize], seed: u64, dtype: GgmlDType| QTensor::quantize(&random(shape, seed), dtype).unwrap();
        let ones = |n: usize| {
            QTensor::quantize(&Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).unwrap(), GgmlDType::F32).unwrap()
        };
        let f32 = GgmlDType::F32;
        let tensors = vec![
            ("token_embd.weight".into(), q(&[vocab, D], 1, GgmlDType::Q8_0)),
            ("output_norm.weight".into(), ones(D)),
            ("blk.0.attn_norm.weight".into(), ones(D)),
            ("blk.0.ffn_norm.weight".into(), ones(D)),
            ("blk.0.attn_q.weight".into(), q(&[D, D], 2, f32)),
            ("blk.0.attn_k.weight".into(), q(&[D / 2, D], 3, f32)),
            ("blk.0.attn_v.weight".into(), q(&[D / 2, D], 4, f32)),
            ("blk.0.attn_output.weight".into(), q(&[D, D], 5, f32)),
            ("blk.0.ffn_gate.weight".into(), q(&[64, D], 6, f32)),
            ("blk.0.ffn_up.weight".into(), q(&[64, D], 7, f32)),
            ("blk.0.ffn_down.weight".into(), q(&[D, 64], 8, f32)),
        ];
        Self { metadata, tensors }
    }

    /// A byte-level vocabulary of the 256 byte symbols, a few merges and ChatML control tokens.
    pub fn byte_level(context: usize) -> Self {
        let mut tokens: Vec<String> = byte_symbols().into_iter().map(String::from).collect();
        let merges = vec!["h e".to_string(), "l l".to_string(), "he ll".to_string()];
        tokens.extend(["he", "ll", "hell"].map(String::from));
        let mut types = vec![1; tokens.len()];
        for special in ["<|im_start|>", "<|im_end|>"] {
            tokens.push(special.into());
            types.push(3);
        }
        let mut g = Self::llama(tokens, types, merges, "gpt2", context);
        g.set("tokenizer.ggml.eos_token_id", Value::U32(260));
        g.set("tokenizer.chat_template", Value::String(loupe_lens::template::CHATML.into()));
        g
    }

    /// Every entry and tensor of an existing GGUF file, to be changed and written again.
    pub fn read(path: &std::path::Path) -> Self {
        let mut file = std::io::Cursor::new(std::fs::read(path).unwrap());
        let content = gguf_file::Content::read(&mut file).unwrap();
        let mut metadata: Vec<(String, Value)> = content.metadata.clone().into_iter().collect();
        metadata.sort_by(|a, b| a.0.cmp(&b.0));
        let mut names: Vec<&String> = content.tensor_infos.keys().collect();
        names.sort();
        let tensors =
            names.into_iter().map(|n| (n.clone(), content.tensor(&mut file, n, &Device::Cpu).unwrap())).collect();
        Self { metadata, tensors }
    }

    /// The same model with width `d` for the embedding, heads and MLP (the k-quants' 256-weight
    /// blocks need rows of a multiple of 256), fresh random weights and unit norms.
    pub fn widened(mut self, d: usize) -> Self {
        self.set("llama.embedding_length", Value::U32(d as u32));
        self.set("llama.feed_forward_length", Value::U32(d as u32));
        let wide = |v: usize| match v {
            D | 64 => d,
            v if v == D / 2 => d / 2,
            v => v,
        };
        for (seed, (_, t)) in self.tensors.iter_mut().enumerate() {
            let dims: Vec<usize> = t.shape().dims().iter().map(|&v| wide(v)).collect();
            *t = if dims.len() == 1 {
                let ones = Tensor::ones(dims[0], candle_core::DType::F32, &Device::Cpu).unwrap();
                QTensor::quantize(&ones, GgmlDType::F32).unwrap()
            } else {
                QTensor::quantize(&random(&dims, 100 + seed as u64), GgmlDType::F32).unwrap()
            };
        }
        self
    }

    pub fn set(&mut self, key: &str, value: Value) {
        self.metadata.retain(|(k, _)| k != key);
        self.metadata.push((key.into(), value));
    }

    pub fn remove(&mut self, key: &str) {
        self.metadata.retain(|(k, _)| k != key);
    }

    pub fn replace_tensor(&mut self, name: &str, t: QTensor) {
        self.tensors.retain(|(n, _)| n != name);
        self.tensors.push((name.into(), t));
    }

    pub fn bytes(&self) -> Vec<u8> {
        let md: Vec<(&str, &Value)> = self.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let ts: Vec<(&str, &QTensor)> = self.tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut out = std::io::Cursor::new(Vec::new());
        gguf_file::write(&mut out, &md, &ts).unwrap();
        out.into_inner()
    }
}

/// Random weights in a given shape and type, for replacing a tensor.
pub fn random_tensor(shape: &[usize], dtype: GgmlDType) -> QTensor {
    QTensor::quantize(&random(shape, 99), dtype).unwrap()
}
