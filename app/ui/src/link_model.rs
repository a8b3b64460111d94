//! A link that names a model by URL rather than by preset asks before downloading it: the download
//! shows the visitor's address to that host and can be large, and a hostile file is best not
//! fetched automatically. The question shows the host and, where the server says, the size.

use crate::presets::megabytes;
use crate::state::AppState;
use leptos::prelude::*;
use loupe_protocol::MAX_MODEL_BYTES;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[derive(Clone, Debug, PartialEq)]
pub struct LinkModel {
    /// The link's `model=` value, kept as the page URL's key.
    pub key: String,
    pub url: String,
    pub host: String,
    /// From a HEAD request's Content-Length; none when the server does not say.
    pub bytes: Option<u64>,
}

/// The size a HEAD request reports, if the server allows it.
async fn content_length(url: &str) -> Option<u64> {
    let init = web_sys::RequestInit::new();
    init.set_method("HEAD");
    let request = web_sys::Request::new_with_str_and_init(url, &init).ok()?;
    let response: web_sys::Response =
        JsFuture::from(web_sys::window()?.fetch_with_request(&request)).await.ok()?.unchecked_into();
    let length = response.ok().then(|| response.headers().get("content-length").ok().flatten())??;
    length.parse().ok()
}

impl AppState {
    /// Holds a link's model URL until the user agrees to download it.
    pub(crate) fn ask_about_link_model(&self, key: String) {
        let url = crate::state::absolute(&key);
        let host = web_sys::Url::new(&url).map(|u| u.host()).unwrap_or_else(|_| url.clone());
        self.link_model.set(Some(LinkModel { key, url: url.clone(), host, bytes: None }));
        let state = *self;
        wasm_bindgen_futures::spawn_local(async move {
            if let Some(bytes) = content_length(&url).await {
                state.link_model.update(|m| {
                    if let Some(m) = m.as_mut().filter(|m| m.url == url) {
                        m.bytes = Some(bytes);
                    }
                });
            }
        });
    }
}

#[component]
pub fn LinkModelQuestion() -> impl IntoView {
    let state = expect_context::<AppState>();
    let load = move |_| {
        if let Some(m) = state.link_model.get_untracked() {
            state.link_model.set(None);
            let name = m.url.rsplit('/').next().unwrap_or("model").split('?').next().unwrap_or("model").to_string();
            state.load_url(m.key, m.url, name);
        }
    };
    let default = move |_| {
        state.link_model.set(None);
        state.autorun.set(false);
        state.load_default();
    };
    view! {
        {move || state.link_model.get().map(|m| {
            let too_large = m.bytes.is_some_and(|b| b > MAX_MODEL_BYTES);
            let size = match m.bytes {
                Some(b) => megabytes(b),
                None => "size not given by the server".to_string(),
            };
            view! {
                <div class="notice" id="link-model" role="alertdialog" aria-label="download a model from a link?"
                    data-host=m.host.clone() data-bytes=m.bytes.map(|b| b.to_string()).unwrap_or_default()>
                    <p>"This link asks to download a model from "<strong>{m.host.clone()}</strong>" ("{size}"). "
                        "Downloading shows your address to that host; the file is then run only in this tab."</p>
                    <p class="url">{m.url.clone()}</p>
                    {too_large.then(|| view! { <p>{loupe_protocol::too_large_message(m.bytes.unwrap_or(0))}</p> })}
                    <button id="link-model-load" class="primary" disabled=too_large on:click=load>"Download and load it"</button>
                    " "
                    <button id="link-model-default" on:click=default>"Load the bundled model instead"</button>
                </div>
            }
        })}
    }
}
