//! An answer's tokens go through the one-token kernels (`kernels/matvec.rs`: blocks unpacked in SIMD
//! lanes), a figure's through the many-token path (whole slices dequantized, then a GEMM). Both must
//! give the same next-token distribution, for each block type with a kernel. The same test runs in
//! headless Chromium (`scripts/test-wasm.sh`), where the kernels are SIMD128 code.

mod common;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;
use common::*;
use loupe_lens::{Engine, LensOptions, Precision, Prompt, Record, TemplateChoice};

/// A tiny model whose every matrix (and the tied unembedding) is of `dtype`: 32 wide, or 256 for
/// the k-quants' 256-weight blocks.
fn tiny_in(dtype: GgmlDType) -> Engine {
    let mut g = TinyGguf::byte_level(64);
    if dtype.block_size() > D {
        g = g.widened(dtype.block_size());
    }
    for (_, t) in g.tensors.iter_mut() {
        if t.shape().dims().len() == 2 {
            let dense = t.dequantize(&Device::Cpu).unwrap();
            *t = QTensor::quantize(&dense, dtype).unwrap();
        }
    }
    Engine::load(&g.bytes()).unwrap()
}

fn entropy_and_top(logits: &[f32]) -> (f64, u32, f64) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let z: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let p = |l: f32| (l as f64 - max).exp() / z;
    let entropy = -logits.iter().map(|&l| p(l)).filter(|&p| p > 0.0).map(|p| p * p.ln()).sum::<f64>();
    let top = (0..logits.len()).max_by(|&a, &b| logits[a].total_cmp(&logits[b])).unwrap();
    (entropy, top as u32, p(logits[top]))
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn one_token_steps_give_the_whole_sequence_logits() {
    use GgmlDType::*;
    for dtype in [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2K, Q3K, Q4K, Q5K, Q6K] {
        let mut engine = tiny_in(dtype);
        let prompt = Prompt::Raw { raw: "hello, hell".into() };
        let ids = engine.prepare(&prompt, &TemplateChoice::FromFile).unwrap().ids;
        // Answer first (its KV cache is the model's), recording the logits after each step.
        let mut answer = engine.begin_answer(&ids, 5, &Default::default(), Precision::Exact).unwrap();
        let mut steps = Vec::new();
        let mut sequence = ids.clone();
        while let Some(token) = engine.next_answer_token(&mut answer).unwrap() {
            sequence.push(token);
            steps.push((sequence.clone(), answer.logits().to_vec()));
        }
        // The last token ends the answer, so no logits follow it.
        steps.pop();
        assert!(!steps.is_empty(), "{dtype:?}: no step");
        for (seq, logits) in steps {
            let rows = engine.forward(&seq, Precision::Exact, Record::Blocks).unwrap();
            let grid = engine.lens(&rows, &LensOptions::default(), &|| false).unwrap();
            let (r, p) = (grid.n_rows - 1, grid.n_positions - 1);
            let (entropy, top, top_prob) = entropy_and_top(&logits);
            assert!(
                (entropy - grid.entropy[r][p] as f64).abs() < 1e-4,
                "{dtype:?}: {entropy} vs {}",
                grid.entropy[r][p]
            );
            assert!((top_prob - grid.top_probs[r][p][0] as f64).abs() < 1e-5, "{dtype:?}: top-1 probability");
            assert_eq!(top, grid.top_ids[r][p][0], "{dtype:?}: top-1");
        }
    }
}
