//! The three real models' tokenizers, built from their GGUF metadata, against the ids Hugging Face
//! transformers gives for the same files on varied text (`fixtures/tokenizer`, written by
//! `scripts/make-tokenizer-fixtures.py`).

mod common;

use common::*;
use loupe_lens::gguf::GgufFile;
use loupe_lens::tokenizer::Tokenizer;

fn check(model: &str, fixture_name: &str) {
    let bytes = model_bytes(model);
    let tokenizer = Tokenizer::from_gguf(&GgufFile::parse(&bytes).unwrap()).unwrap();
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(&format!("tokenizer/{fixture_name}.json"))).unwrap())
            .unwrap();
    let mut failures = Vec::new();
    for case in record["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        let encoded = tokenizer.encode(text).unwrap();
        let got: Vec<u32> = encoded.iter().map(|e| e.id).collect();
        if got != want {
            let show = |ids: &[u32]| ids.iter().map(|&i| tokenizer.piece(i).to_string()).collect::<Vec<_>>();
            failures.push(format!("{text:?}\n  want {:?}\n  got  {:?}", show(&want), show(&got)));
        }
        // Spans cover the text in order, so the UI can tell template tokens from message tokens.
        let mut previous_start = 0;
        for e in &encoded {
            assert!(
                e.span.start >= previous_start && e.span.start <= e.span.end && e.span.end <= text.len(),
                "{text:?}: span {:?}",
                e.span
            );
            previous_start = e.span.start;
        }
    }
    assert!(failures.is_empty(), "{model}: {} mismatches:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn smollm2_tokenizer_matches_transformers() {
    check(SMOLLM2, "smollm2");
}

#[test]
fn qwen25_tokenizer_matches_transformers() {
    check(QWEN25, "qwen2.5");
}

#[test]
fn gemma3_tokenizer_matches_transformers() {
    check(GEMMA3, "gemma3");
}
