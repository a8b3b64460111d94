//! Benchmark (not a test): forward-pass time, lens time and the lens kernel's effective GFLOP/s,
//! 2·(L+1)·T·d·V / lens seconds, for the reference prompts in both precisions, beside what this
//! machine's f32 GEMM reaches and its nominal SIMD peak.
//!
//!   cargo run --release -p loupe-cli --example bench [-- --repeat N]

use candle_core::{Device, Tensor};
use loupe_lens::kernels::dequantize_rows;
use loupe_lens::{Engine, LensOptions, Precision, Prompt, Record, TemplateChoice};
use std::time::Instant;

const CASES: &[(&str, &str, Option<&str>)] = &[
    ("SmolLM2-135M-Instruct.Q4_1.gguf", "chat", None),
    ("SmolLM2-135M-Instruct.Q4_1.gguf", "raw", None),
    ("qwen2.5-coder-0.5b-instruct.gguf", "chat", None),
    ("gemma-3-270m-q4_k_m.gguf", "chat", Some("gemma")),
    ("gemma-3-270m-q4_k_m.gguf", "raw", None),
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<T>(repeat: usize, mut f: impl FnMut() -> T) -> f64 {
    median(
        (0..repeat)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// What candle's f32 GEMM reaches here on a large, cache-friendly product.
fn gemm_gflops() -> f64 {
    let (m, k, n) = (1024, 1024, 1024);
    let a = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu).unwrap();
    let b = Tensor::randn(0f32, 1.0, (k, n), &Device::Cpu).unwrap();
    let s = time(5, || a.matmul(&b).unwrap());
    2.0 * (m * k * n) as f64 / s / 1e9
}

/// Cores × clock × FLOPs per cycle of the widest FMA this CPU has (2 FMA ports assumed).
fn nominal_peak() -> Option<(f64, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = cpuinfo.lines().find(|l| l.starts_with("cpu MHz"))?.split(':').nth(1)?.trim().parse().ok()?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    #[cfg(target_arch = "x86_64")]
    let (lanes, isa) = if std::is_x86_feature_detected!("avx512f") {
        (16.0, "AVX-512")
    } else if std::is_x86_feature_detected!("fma") {
        (8.0, "AVX2+FMA")
    } else {
        (4.0, "SSE")
    };
    #[cfg(not(target_arch = "x86_64"))]
    let (lanes, isa) = (4.0, "128-bit SIMD");
    let per_cycle = lanes * 2.0 * 2.0;
    Some((
        cores * mhz / 1000.0 * per_cycle,
        format!("{cores} cores × {:.2} GHz × {per_cycle} FLOP/cycle ({isa})", mhz / 1000.0),
    ))
}

fn main() {
    let repeat = std::env::args().skip_while(|a| a != "--repeat").nth(1).and_then(|v| v.parse().ok()).unwrap_or(3);
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let gemm = gemm_gflops();
    println!("f32 GEMM 1024³ (candle): {gemm:.1} GFLOP/s");
    let peak = nominal_peak();
    if let Some((p, how)) = &peak {
        println!("nominal SIMD peak: {p:.0} GFLOP/s = {how}");
    }
    println!(
        "\n{:<34} {:<5} {:>4} {:>3} {:>6} | {:>9} {:>8} {:>8} | {:>7} {:>8} {:>8}",
        "model", "mode", "prec", "T", "cells", "forward s", "lens s", "GFLOP/s", "% GEMM", "dequant", "gemm"
    );
    let mut loaded: Option<(String, Engine)> = None;
    for &(file, mode, template) in CASES {
        if loaded.as_ref().map(|(f, _)| f != file).unwrap_or(true) {
            let bytes = std::fs::read(dir.join(file)).expect("run scripts/fetch-models.sh first");
            loaded = Some((file.into(), Engine::load(&bytes).unwrap()));
        }
        let engine = &mut loaded.as_mut().unwrap().1;
        let prompt = match mode {
            "chat" => Prompt::chat("What is the capital of Australia?"),
            _ => Prompt::raw("The Eiffel Tower is in the city of"),
        };
        let choice = match template {
            Some(t) => TemplateChoice::Builtin(t.into()),
            None => TemplateChoice::FromFile,
        };
        let ids = engine.prepare(&prompt, &choice).unwrap().ids;
        let h = engine.model.hyper.clone();
        let cells = (h.n_layers + 1) * ids.len();
        let flop = 2.0 * cells as f64 * h.d_model as f64 * h.vocab as f64;
        for precision in [Precision::Fast, Precision::Exact] {
            let forward = time(repeat, || engine.forward(&ids, precision, Record::Blocks).unwrap());
            let rows = engine.forward(&ids, precision, Record::Blocks).unwrap();
            let lens = time(repeat, || engine.lens(&rows, &LensOptions::default(), &|| false).unwrap());
            // Where the lens time goes: dequantizing the unembedding, and the GEMM alone.
            let table = &engine.model.unembedding.table;
            let tile = 2048.min(h.vocab);
            let dequant = time(repeat, || {
                let mut v0 = 0;
                while v0 < h.vocab {
                    let v1 = (v0 + tile).min(h.vocab);
                    std::hint::black_box(dequantize_rows(table, v0..v1).unwrap());
                    v0 = v1;
                }
            });
            let x = Tensor::randn(0f32, 1.0, (cells, h.d_model), &Device::Cpu).unwrap();
            let w = dequantize_rows(table, 0..tile).unwrap();
            let gemm_only = time(repeat, || {
                for _ in 0..h.vocab.div_ceil(tile) {
                    std::hint::black_box(x.matmul(&w.t().unwrap()).unwrap());
                }
            });
            let gflops = flop / lens / 1e9;
            println!(
                "{:<34} {:<5} {:>4} {:>3} {:>6} | {:>9.3} {:>8.3} {:>8.1} | {:>6.0}% {:>7.3}s {:>7.3}s",
                file,
                mode,
                precision.name(),
                ids.len(),
                cells,
                forward,
                lens,
                gflops,
                100.0 * gflops / gemm,
                dequant,
                gemm_only
            );
        }
    }
    if let Some((p, _)) = peak {
        println!("\nlens GFLOP/s relative to the nominal peak {p:.0}: divide the GFLOP/s column by it; GEMM 1024³ reaches {:.0}% of it.", 100.0 * gemm / p);
    }
}
