//! The page URL carries the model and the prompt, so a link reproduces the view:
//! `?model=<preset id or GGUF URL>&chat=...&system=...` or `&raw=...`, plus `track`, `answer`,
//! `precision`, `lens_workers`.

use web_sys::UrlSearchParams;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct UrlState {
    pub model: Option<String>,
    pub chat: Option<String>,
    pub system: Option<String>,
    pub raw: Option<String>,
    pub track: Option<String>,
    pub answer: Option<usize>,
    pub precision: Option<String>,
    /// Extra lens workers (`lens_workers`); absent = decided from the number of cores.
    pub lens_workers: Option<usize>,
}

fn params() -> Option<UrlSearchParams> {
    let search = web_sys::window()?.location().search().ok()?;
    UrlSearchParams::new_with_str(&search).ok()
}

pub fn read() -> UrlState {
    let Some(p) = params() else { return UrlState::default() };
    let get = |k: &str| p.get(k).filter(|v| !v.is_empty());
    UrlState {
        model: get("model"),
        chat: get("chat"),
        system: get("system"),
        raw: get("raw"),
        track: get("track"),
        answer: get("answer").and_then(|v| v.parse().ok()),
        precision: get("precision"),
        lens_workers: get("lens_workers").and_then(|v| v.parse().ok()),
    }
}

pub fn write(s: &UrlState) {
    let Ok(p) = UrlSearchParams::new() else { return };
    let set = |k: &str, v: &Option<String>| {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            p.set(k, v);
        }
    };
    set("model", &s.model);
    set("chat", &s.chat);
    set("system", &s.system);
    set("raw", &s.raw);
    set("track", &s.track);
    set("answer", &s.answer.filter(|&n| n > 0).map(|n| n.to_string()));
    set("precision", &s.precision);
    set("lens_workers", &s.lens_workers.map(|n| n.to_string()));
    let query: String = p.to_string().into();
    if let Some(w) = web_sys::window() {
        let path = w.location().pathname().unwrap_or_default();
        let _ = w.history().and_then(|h| h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&format!("{path}?{query}"))));
    }
}
