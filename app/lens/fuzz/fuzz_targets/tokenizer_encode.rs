//! Any text through a real tokenizer (SmolLM2's byte-level BPE, from `models/`): encoding never
//! panics, and every token's span lies inside the text, in order (the template boxing relies on
//! it). Not a round trip: a byte whose symbol the vocabulary lacks (SmolLM2 has no `\x04`) is
//! dropped, as transformers drops it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loupe_lens::Engine;

thread_local! {
    // Loaded once per fuzzing process (libFuzzer runs inputs on one thread).
    static ENGINE: Engine = {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../models/SmolLM2-135M-Instruct.Q4_1.gguf");
        let bytes = std::fs::read(path).expect("models/ holds SmolLM2 (scripts/fetch-models.sh)");
        Engine::load(&bytes).expect("SmolLM2 loads")
    };
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    ENGINE.with(|engine| {
        let tokenizer = &engine.tokenizer;
        if let Ok(encoded) = tokenizer.encode(&text) {
            let mut previous = 0;
            for e in &encoded {
                assert!(e.span.start <= e.span.end && e.span.end <= text.len(), "{:?} in {} bytes", e.span, text.len());
                assert!(e.span.start >= previous, "spans in order: {:?} after {previous}", e.span);
                previous = e.span.start;
            }
            let ids: Vec<u32> = encoded.iter().map(|e| e.id).collect();
            let _ = tokenizer.decode(&ids);
        }
    });
});
