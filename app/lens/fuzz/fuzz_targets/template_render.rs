//! Any text as a chat template: rendering gives text or an error within the fuel and size limits,
//! never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loupe_lens::template::{render, ChatMessage};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else { return };
    let messages =
        [ChatMessage::new("system", "Be brief."), ChatMessage::new("user", "What is the capital of Australia?")];
    let _ = render(source, &messages, "<s>", "</s>", true);
});
