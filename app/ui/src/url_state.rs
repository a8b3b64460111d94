//! The page URL carries the model and the question, so a link reproduces the view:
//! `?model=<preset id or GGUF URL>` plus the question's pairs (`loupe_protocol::query`: `chat`,
//! `system` or `raw`, `track`, `answer`, `precision`, ...), `lens_workers`, `simd=baseline` and
//! `fast_lens=int8|f32`. A teacher's link can
//! also open in presentation mode (`present=1`) and start the guided tour (`tour=1`); a static site
//! can show a saved figure with `report=<URL of a JSON report>`, without loading any model.

use loupe_protocol::conversation::MAX_LINK_CHARS;
use loupe_protocol::query::{from_query, to_query};
use loupe_protocol::{Prompt, Question};
use web_sys::UrlSearchParams;

/// At most this many extra lens workers, whatever a link asks.
pub const MAX_LENS_WORKERS: usize = 3;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Link {
    pub model: Option<String>,
    pub question: Option<Question>,
    /// Extra lens workers (`lens_workers`); absent = decided from the number of cores.
    pub lens_workers: Option<usize>,
    /// Bytes above which a model loads streamed (`resident_limit`); absent = automatic.
    pub resident_limit: Option<u64>,
    /// The SIMD128 worker even where relaxed SIMD runs (`simd=baseline`; tests and comparisons).
    pub baseline_simd: bool,
    /// Fast precision's lens product (`fast_lens=int8` or `f32`); absent = whichever this machine
    /// runs faster.
    pub fast_int8: Option<bool>,
    /// A run to pin and compare the link's question with (`pin_chat` + `pin_system`, `pin_conv`
    /// or `pin_raw`).
    pub pinned: Option<Prompt>,
    /// Open in presentation mode.
    pub present: bool,
    /// Start the guided tour once the page is up.
    pub tour: bool,
    /// A saved report to show instead of loading a model.
    pub report: Option<String>,
    /// What could not be read and was replaced by a default.
    pub notes: Vec<String>,
}

/// Below this not even a model's header and vocabulary fit.
const MIN_RESIDENT_LIMIT: u64 = 64 << 10;

pub fn read() -> Link {
    let pairs = current_pairs();
    let get = |k: &str| pairs.iter().find(|(key, v)| key == k && !v.is_empty()).map(|(_, v)| v.clone());
    let (question, mut notes) = from_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let lens_workers = get("lens_workers").and_then(|v| match v.parse::<usize>() {
        Ok(n) => Some(n.min(MAX_LENS_WORKERS)),
        Err(_) => {
            notes.push(format!("lens_workers `{v}` is not a number"));
            None
        }
    });
    let resident_limit = get("resident_limit").and_then(|v| match v.parse::<u64>() {
        Ok(n) if n < MIN_RESIDENT_LIMIT => {
            notes.push(format!("resident_limit {n} raised to {MIN_RESIDENT_LIMIT}"));
            Some(MIN_RESIDENT_LIMIT)
        }
        Ok(n) => Some(n),
        Err(_) => {
            notes.push(format!("resident_limit `{v}` is not a number of bytes"));
            None
        }
    });
    let pinned_pairs = pairs.iter().filter_map(|(k, v)| Some((k.strip_prefix("pin_")?, v.as_str())));
    let pinned = from_query(pinned_pairs).0.map(|q| q.prompt);
    let flag = |k: &str| get(k).is_some_and(|v| v != "0" && v != "false");
    Link {
        model: get("model"),
        question,
        lens_workers,
        resident_limit,
        baseline_simd: get("simd").is_some_and(|v| v == "baseline"),
        fast_int8: match get("fast_lens").as_deref() {
            Some("int8") => Some(true),
            Some("f32") => Some(false),
            Some(other) => {
                notes.push(format!("fast_lens `{other}` is neither int8 nor f32"));
                None
            }
            None => None,
        },
        pinned,
        present: flag("present"),
        tour: flag("tour"),
        report: get("report"),
        notes,
    }
}

fn current_pairs() -> Vec<(String, String)> {
    let Some(search) = web_sys::window().and_then(|w| w.location().search().ok()) else { return Vec::new() };
    let Ok(params) = UrlSearchParams::new_with_str(&search) else { return Vec::new() };
    let Ok(Some(entries)) = js_sys::try_iter(&params.entries()) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| {
            let pair = js_sys::Array::from(&entry);
            Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
        })
        .collect()
}

/// What the page's URL records of the current state.
pub struct Written<'a> {
    pub model: &'a str,
    pub question: &'a Question,
    /// The pinned run's prompt, as `pin_chat` (+ `pin_system`), `pin_conv` or `pin_raw`.
    pub pinned: Option<&'a Prompt>,
    pub lens_workers: Option<usize>,
    pub present: bool,
}

/// Writes the page's address; says so when the link has grown longer than links reliably keep
/// when shared (`MAX_LINK_CHARS`: a long conversation).
pub fn write(w: &Written) -> Option<String> {
    let Written { model, question, pinned, lens_workers, present } = *w;
    let Ok(p) = UrlSearchParams::new() else { return None };
    if !model.is_empty() {
        p.set("model", model);
    }
    for (key, value) in to_query(question) {
        p.set(key, &value);
    }
    if let Some(prompt) = pinned {
        let pinned = Question { prompt: prompt.clone(), ..Default::default() };
        for (key, value) in
            to_query(&pinned).into_iter().filter(|(k, _)| matches!(*k, "chat" | "system" | "conv" | "raw"))
        {
            p.set(&format!("pin_{key}"), &value);
        }
    }
    if let Some(n) = lens_workers {
        p.set("lens_workers", &n.to_string());
    }
    if present {
        p.set("present", "1");
    }
    let query: String = p.to_string().into();
    let w = web_sys::window()?;
    let path = w.location().pathname().unwrap_or_default();
    let url = format!("{path}?{query}");
    let _ = w.history().and_then(|h| h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url)));
    let length = w.location().origin().unwrap_or_default().len() + url.len();
    (length > MAX_LINK_CHARS).then(|| {
        format!(
            "this run's link is {length} characters, more than the {MAX_LINK_CHARS} that links reliably keep when shared: share the figure's JSON (Export JSON) instead"
        )
    })
}
