//! Any text as a conversation, the way the page's paste and `loupe --messages` read one, and as a
//! link's query: reading never panics, and whatever reads is written back and read again the same
//! (the JSON form, the prompt's own JSON, the link's query pairs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use loupe_lens::protocol::conversation;
use loupe_lens::protocol::query::{from_query, to_query};
use loupe_lens::protocol::{Prompt, Question};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(messages) = conversation::parse(&text) {
        assert_eq!(conversation::parse(&conversation::to_json(&messages)).as_ref(), Ok(&messages));
        let prompt = Prompt::Chat { messages };
        let json = serde_json::to_string(&prompt).expect("a prompt serializes");
        assert_eq!(serde_json::from_str::<Prompt>(&json).expect("and reads back"), prompt);
        let q = Question { prompt, ..Default::default() };
        let pairs = to_query(&q);
        let (again, notes) = from_query(pairs.iter().map(|(k, v)| (*k, v.as_str())));
        assert_eq!((again, notes), (Some(q), Vec::new()));
    }
    // The same text as a link's query: `key=value&...`, read as the page reads its address.
    let pairs: Vec<(&str, &str)> = text.split('&').map(|pair| pair.split_once('=').unwrap_or((pair, ""))).collect();
    if let (Some(q), _) = from_query(pairs) {
        let written = to_query(&q);
        let (again, _) = from_query(written.iter().map(|(k, v)| (*k, v.as_str())));
        assert_eq!(again, Some(q), "a link's question survives being written again");
    }
});
