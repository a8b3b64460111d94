//! Picking a model: the bundled default, presets on Hugging Face, any GGUF URL, or a local file
//! (opened or dropped; read by the worker, never uploaded). Shows download progress and the models
//! kept in browser storage.

use crate::lifecycle::Lifecycle;
use crate::presets::{self, megabytes, PRESETS};
use crate::state::{now_ms, AppState};
use leptos::prelude::*;
use loupe_protocol::{too_large_message, Request, MAX_MODEL_BYTES, RESIDENT_MAX_BYTES};
use wasm_bindgen::JsCast;

#[component]
pub fn ModelPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let life = expect_context::<Lifecycle>();
    let choice = RwSignal::new(state.model_key.get_untracked());
    let url = RwSignal::new(String::new());

    let load_preset = move |_| {
        let id = choice.get_untracked();
        let Some(p) = presets::find(&id) else { return };
        if p.bytes > MAX_MODEL_BYTES {
            state.error.set(Some(too_large_message(p.bytes)));
            return;
        }
        life.load_url(p.id.into(), p.url.into(), p.name.into());
    };
    let load_url = move |_| {
        let u = url.get_untracked().trim().to_string();
        if u.is_empty() {
            return;
        }
        let name = u.rsplit('/').next().unwrap_or("model").split('?').next().unwrap_or("model").to_string();
        life.load_url(u.clone(), u, name);
    };
    let on_file = move |ev: web_sys::Event| {
        let input: web_sys::HtmlInputElement = ev.target().unwrap().unchecked_into();
        if let Some(file) = input.files().and_then(|f| f.get(0)) {
            life.load_file(file);
        }
        input.set_value("");
    };
    install_drop_target(state, life);

    view! {
        <section class="panel" id="model-panel">
            <h2>"Model"</h2>
            <div class="row">
                <select id="preset" aria-label="model" on:change=move |ev| choice.set(event_target_value(&ev))>
                    {PRESETS.iter().map(|p| {
                        let id = p.id;
                        let too_big = p.bytes > MAX_MODEL_BYTES;
                        let streamed = p.bytes > RESIDENT_MAX_BYTES;
                        view! {
                            <option value=id selected=move || choice.get() == id>
                                {format!("{} — {}, {}{}", p.name, megabytes(p.bytes), p.licence,
                                    if too_big { " (too large for a browser tab)" } else if streamed { " (streamed: lens only, no answers)" } else { "" })}
                            </option>
                        }
                    }).collect_view()}
                </select>
                <button id="load-preset" on:click=load_preset disabled=move || state.loading.get()>"Load"</button>
            </div>
            <div class="row">
                <input id="model-url" type="url" aria-label="GGUF address" placeholder="or a GGUF address: https://huggingface.co/…/model-Q8_0.gguf"
                    prop:value=move || url.get() on:input=move |ev| url.set(event_target_value(&ev)) />
                <button id="load-url" on:click=load_url disabled=move || state.loading.get()>"Load URL"</button>
            </div>
            <div class="row">
                <label class="file">"or a local .gguf (or drop it on the page): "
                    <input id="model-file" type="file" accept=".gguf" on:change=on_file />
                </label>
            </div>
            <Progress/>
            <div class="model-info" id="model-info">
                {move || match state.model.get() {
                    Some(m) => format!(
                        "{} · {} · {} layers + embedding · d={} · vocabulary {} · context {} · {} · {} · template: {} · lens threads: {} · {}",
                        // A preset's own name reads better than the file's `general.name`.
                        presets::find(&state.model_key.get()).map(|p| p.name.to_string()).unwrap_or(m.name), m.architecture, m.n_rows - 1, m.d_model, m.vocab, m.context, megabytes(m.bytes),
                        if m.streamed { "streamed from the file block by block (larger than the tab holds; lens only, no answers)" } else { "in memory" },
                        m.template, m.lens_threads, m.simd
                    ),
                    None if state.loading.get() => "loading…".to_string(),
                    None => "no model loaded".to_string(),
                }}
            </div>
            <StoredModels/>
        </section>
    }
}

#[component]
fn Progress() -> impl IntoView {
    let state = expect_context::<AppState>();
    let life = expect_context::<Lifecycle>();
    view! {
        <Show when=move || state.progress.get().is_some()>
            <div class="progress" id="progress">
                {move || {
                    let p = state.progress.get().unwrap();
                    let seconds = ((now_ms() - p.started_ms) / 1000.0).max(0.001);
                    let speed = p.loaded as f64 / seconds / 1e6;
                    let (value, max, text) = match p.total {
                        Some(t) if t > 0 => (p.loaded as f64, t as f64, format!(
                            "{}: {} of {} ({:.0}%) at {:.1} MB/s", p.stage, megabytes(p.loaded), megabytes(t), 100.0 * p.loaded as f64 / t as f64, speed)),
                        _ => (0.0, 1.0, format!("{}: {}", p.stage, megabytes(p.loaded))),
                    };
                    view! {
                        <progress value=value max=max></progress>
                        <span>{text}</span>
                    }
                }}
                <button id="cancel-load" on:click=move |_| life.cancel()>"Cancel"</button>
            </div>
        </Show>
    }
}

#[component]
fn StoredModels() -> impl IntoView {
    let state = expect_context::<AppState>();
    let life = expect_context::<Lifecycle>();
    view! {
        <details class="stored" id="stored-models">
            <summary>{move || format!("Stored in this browser ({})", state.cache.get().len())}</summary>
            <ul>
                {move || state.cache.get().into_iter().map(|entry| {
                    let url = entry.url.clone();
                    view! {
                        <li>
                            <span class="url">{entry.url.clone()}</span>
                            " · " {megabytes(entry.bytes)} " "
                            <button on:click=move |_| life.send(&Request::ClearCache { url: Some(url.clone()) })>"Delete"</button>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <button id="clear-storage" on:click=move |_| life.send(&Request::ClearCache { url: None })>"Delete all stored models"</button>
        </details>
    }
}

/// A `.gguf` dropped anywhere on the page is loaded like an opened file.
fn install_drop_target(state: AppState, life: Lifecycle) {
    let over = window_event_listener(leptos::ev::dragover, |ev: web_sys::DragEvent| ev.prevent_default());
    let drop = window_event_listener(leptos::ev::drop, move |ev: web_sys::DragEvent| {
        ev.prevent_default();
        if let Some(file) = ev.data_transfer().and_then(|d| d.files()).and_then(|f| f.get(0)) {
            if file.name().to_lowercase().ends_with(".json") {
                state.open_report_file(file);
            } else {
                life.load_file(file);
            }
        }
    });
    on_cleanup(move || {
        over.remove();
        drop.remove();
    });
}
