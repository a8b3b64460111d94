//! Any bytes as a GGUF model: loading gives a model or an error, never a panic, an abort or a hang;
//! a model that loads then renders, tokenizes and lenses a short prompt the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loupe_lens::{Engine, LensOptions, Precision, Prompt, Record, TemplateChoice};

fuzz_target!(|data: &[u8]| {
    let Ok(mut engine) = Engine::load(data) else { return };
    let prompt = Prompt::chat("What is the capital of Australia?");
    let Ok(sequence) = engine.prepare(&prompt, &TemplateChoice::FromFile) else { return };
    if sequence.ids.len() > 64 {
        return;
    }
    for precision in [Precision::Exact, Precision::Fast] {
        if let Ok(rows) = engine.forward(&sequence.ids, precision, Record::Blocks) {
            let _ = engine.lens(&rows, &LensOptions::default(), &|| false);
        }
    }
});
