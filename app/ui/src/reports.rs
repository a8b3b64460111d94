//! Opening a saved figure: a JSON report (the page's own export or `loupe --json`), from a file the
//! user opens or drops, or published beside the page and named by a link (`report=`). No model is
//! needed to show it.

use crate::figure_data::{FigureData, Metric};
use crate::state::{absolute, AppState};
use leptos::prelude::*;
use loupe_protocol::LensReport;

/// The body of a GET as text; an HTTP error or a network failure is a message.
/// A report of 3,000 positions with the lens inside blocks is about 40 MB of JSON.
const MAX_REPORT_BYTES: u64 = 256 << 20;

async fn fetch_text(url: &str) -> Result<String, String> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let window = web_sys::window().ok_or("no window")?;
    let failed = |e: wasm_bindgen::JsValue| {
        format!("it could not be fetched ({})", e.as_string().unwrap_or_else(|| format!("{e:?}")))
    };
    let response: web_sys::Response =
        JsFuture::from(window.fetch_with_str(url)).await.map_err(failed)?.unchecked_into();
    if !response.ok() {
        return Err(format!("the server answered HTTP {}", response.status()));
    }
    let announced = response.headers().get("content-length").ok().flatten().and_then(|n| n.parse::<u64>().ok());
    if let Some(n) = announced.filter(|&n| n > MAX_REPORT_BYTES) {
        return Err(format!("it is {n} bytes, more than the {MAX_REPORT_BYTES} a report may have"));
    }
    let text = JsFuture::from(response.text().map_err(failed)?).await.map_err(failed)?;
    text.as_string().ok_or_else(|| "it is not text".into())
}

impl AppState {
    /// Shows a saved report (the page's own export or `loupe --json`) without loading any model.
    pub fn open_report_file(&self, file: web_sys::File) {
        let state = *self;
        let name = file.name();
        wasm_bindgen_futures::spawn_local(async move {
            let text = wasm_bindgen_futures::JsFuture::from(file.text()).await.ok().and_then(|t| t.as_string());
            state.show_report(&name, text.ok_or_else(|| "it could not be read".to_string()));
        });
    }

    /// Shows a report published at `url` (a link's `report=`), so a static site can host figures.
    /// Only beside the page: a link must not make the visitor's browser fetch from any host unasked
    /// (the same reason a model link asks first).
    pub fn open_report_url(&self, url: String) {
        let state = *self;
        let target = absolute(&url);
        let page_origin = web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default();
        let target_origin = web_sys::Url::new(&target).map(|u| u.origin()).unwrap_or_default();
        if target_origin != page_origin {
            let why = format!(
                "a link opens only reports published beside this page, and this one is on {target_origin}; \
                 download it and open it here instead"
            );
            self.show_report(&url, Err(why));
            return;
        }
        wasm_bindgen_futures::spawn_local(async move {
            let text = fetch_text(&target).await;
            state.show_report(&url, text);
        });
    }

    fn show_report(&self, name: &str, text: Result<String, String>) {
        let opened = text
            .and_then(|t| serde_json::from_str::<LensReport>(&t).map_err(|e| format!("it is not a Loupe report ({e})")))
            .and_then(FigureData::opened);
        match opened {
            Ok(figure) => {
                let n = figure.n_positions();
                self.error.set(None);
                self.notice
                    .set(Some(format!("opened {name}: {}, {} positions (no model needed)", figure.report.model, n)));
                self.column.set(None);
                self.focus.set(None);
                self.metric.set(Metric::Entropy);
                self.preview.set(figure.tokens().to_vec());
                self.figure.set(figure);
                self.range.set(crate::layout::default_range(n, self.window.get_untracked()));
            }
            Err(why) => self.error.set(Some(format!("cannot open {name}: {why}"))),
        }
    }
}
