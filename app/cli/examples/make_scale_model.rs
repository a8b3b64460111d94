//! Writes a GGUF with the shapes of a real model and random weights, for scale checks that need no
//! model hub: memory and time of loading and lensing a Llama-3.2-1B- or Llama-3.1-8B-class file in
//! the browser (the 8B one streamed).
//!
//!   cargo run --release -p loupe-cli --example make_scale_model -- OUT.gguf [SHAPE] [q8_0|q4_0]
//!
//! SHAPE: llama3.2-1b (default; tied embeddings), llama3.1-8b (untied output), llama3-tiny (two
//! small blocks with Llama 3's structure: GQA, `rope_freqs`, untied output; for tests), smoke.
//!
//! The vocabulary is byte-level GPT-2 symbols padded with unused tokens to the real size, so the
//! unembedding (what the lens costs) has the real shape; ChatML control tokens make chat prompts work.

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

struct Shape {
    blocks: usize,
    d: usize,
    ffn: usize,
    heads: usize,
    kv_heads: usize,
    vocab: usize,
    /// A separate `output.weight` (Llama 3.1 8B), else tied to the embedding (Llama 3.2 1B).
    untied: bool,
}

fn random(shape: &[usize], seed: u64, scale: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 * scale
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = args.first().expect("usage: make_scale_model OUT.gguf [SHAPE] [q8_0|q4_0]");
    let s = match args.get(1).map(String::as_str).unwrap_or("llama3.2-1b") {
        "llama3.2-1b" => Shape { blocks: 16, d: 2048, ffn: 8192, heads: 32, kv_heads: 8, vocab: 128256, untied: false },
        "llama3.1-8b" => Shape { blocks: 32, d: 4096, ffn: 14336, heads: 32, kv_heads: 8, vocab: 128256, untied: true },
        "llama3-tiny" => Shape { blocks: 2, d: 256, ffn: 768, heads: 8, kv_heads: 2, vocab: 4096, untied: true },
        "smoke" => Shape { blocks: 2, d: 256, ffn: 512, heads: 4, kv_heads: 2, vocab: 4096, untied: false },
        other => panic!("unknown shape {other}"),
    };
    let dtype = match args.get(2).map(String::as_str).unwrap_or("q8_0") {
        "q8_0" => GgmlDType::Q8_0,
        "q4_0" => GgmlDType::Q4_0,
        other => panic!("unknown type {other} (q8_0 or q4_0)"),
    };
    let head_dim = s.d / s.heads;
    let mut tokens: Vec<String> = loupe_lens::tokenizer::byte_symbols().iter().map(char::to_string).collect();
    let mut types = vec![1i32; tokens.len()];
    for special in ["<|im_start|>", "<|im_end|>"] {
        tokens.push(special.into());
        types.push(3);
    }
    while tokens.len() < s.vocab {
        tokens.push(format!("<unused_{}>", tokens.len()));
        types.push(5);
    }
    let strings = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
    let u32v = |n: usize| Value::U32(n as u32);
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("general.name", Value::String(format!("random {}-block llama, d={}", s.blocks, s.d))),
        ("llama.block_count", u32v(s.blocks)),
        ("llama.context_length", u32v(8192)),
        ("llama.embedding_length", u32v(s.d)),
        ("llama.feed_forward_length", u32v(s.ffn)),
        ("llama.attention.head_count", u32v(s.heads)),
        ("llama.attention.head_count_kv", u32v(s.kv_heads)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("llama.rope.freq_base", Value::F32(500_000.0)),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("llama-bpe".into())),
        ("tokenizer.ggml.tokens", strings(tokens)),
        ("tokenizer.ggml.token_type", Value::Array(types.into_iter().map(Value::I32).collect())),
        ("tokenizer.ggml.merges", strings(Vec::new())),
        ("tokenizer.ggml.eos_token_id", u32v(257)),
        ("tokenizer.chat_template", Value::String(loupe_lens::template::CHATML.into())),
    ];
    let q8 = |shape: &[usize], seed: u64| QTensor::quantize(&random(shape, seed, 0.05), dtype).unwrap();
    let ones = |n: usize| {
        QTensor::quantize(&Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).unwrap(), GgmlDType::F32).unwrap()
    };
    let mut tensors: Vec<(String, QTensor)> =
        vec![("token_embd.weight".into(), q8(&[s.vocab, s.d], 1)), ("output_norm.weight".into(), ones(s.d))];
    if s.untied {
        tensors.push(("output.weight".into(), q8(&[s.vocab, s.d], 2)));
    }
    // Llama 3.1's rope scaling (factor 8, low 1, high 4, original context 8192), as
    // convert_hf_to_gguf.py writes it.
    let factors: Vec<f32> = (0..head_dim / 2)
        .map(|i| {
            let freq = 1.0 / 500_000f32.powf(2.0 * i as f32 / head_dim as f32);
            let wavelen = 2.0 * std::f32::consts::PI / freq;
            let (low, high) = (8192.0 / 1.0, 8192.0 / 4.0);
            if wavelen < high {
                1.0
            } else if wavelen > low {
                8.0
            } else {
                let smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
                1.0 / ((1.0 - smooth) / 8.0 + smooth)
            }
        })
        .collect();
    let factors = Tensor::from_vec(factors, head_dim / 2, &Device::Cpu).unwrap();
    tensors.push(("rope_freqs.weight".into(), QTensor::quantize(&factors, GgmlDType::F32).unwrap()));
    for b in 0..s.blocks {
        let p = |n: &str| format!("blk.{b}.{n}");
        let seed = 100 * (b as u64 + 1);
        tensors.push((p("attn_norm.weight"), ones(s.d)));
        tensors.push((p("ffn_norm.weight"), ones(s.d)));
        tensors.push((p("attn_q.weight"), q8(&[s.heads * head_dim, s.d], seed + 1)));
        tensors.push((p("attn_k.weight"), q8(&[s.kv_heads * head_dim, s.d], seed + 2)));
        tensors.push((p("attn_v.weight"), q8(&[s.kv_heads * head_dim, s.d], seed + 3)));
        tensors.push((p("attn_output.weight"), q8(&[s.d, s.heads * head_dim], seed + 4)));
        tensors.push((p("ffn_gate.weight"), q8(&[s.ffn, s.d], seed + 5)));
        tensors.push((p("ffn_up.weight"), q8(&[s.ffn, s.d], seed + 6)));
        tensors.push((p("ffn_down.weight"), q8(&[s.d, s.ffn], seed + 7)));
    }
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).expect("cannot create the output file"));
    gguf_file::write(&mut file, &md, &ts).expect("cannot write the GGUF");
    println!("wrote {out}");
}
