//! A link that names a model by URL rather than by preset asks before downloading it: the download
//! shows the visitor's address to that host and can be large, and a hostile file is best not
//! fetched automatically. The question shows the host and, where the server says, the size
//! (`lifecycle.rs` holds the link's model and asks the server).

use crate::lifecycle::Lifecycle;
use crate::presets::megabytes;
use leptos::prelude::*;
use loupe_protocol::MAX_MODEL_BYTES;

#[component]
pub fn LinkModelQuestion() -> impl IntoView {
    let life = expect_context::<Lifecycle>();
    let load = move |_| life.accept_link_model();
    let default = move |_| life.decline_link_model();
    view! {
        {move || life.link_model.get().map(|m| {
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
