//! Asking: a chat message (with an optional system message) rendered by the model's template, or
//! raw text; example prompts; run options; and the tokens, shown as soon as they are known.

use crate::app::AppState;
use crate::labels::display;
use leptos::prelude::*;

const EXAMPLES: &[(&str, bool)] = &[
    ("What is the capital of Australia?", true),
    ("Who wrote Pride and Prejudice?", true),
    ("What is 17 times 3?", true),
    ("Translate 'good morning' into French.", true),
    ("The Eiffel Tower is in the city of", false),
];

#[component]
pub fn PromptPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    // Tokens follow the text as it is typed.
    Effect::new(move |_| {
        state.user.track();
        state.system.track();
        state.raw.track();
        state.chat_mode.track();
        state.model.track();
        state.preview_tokens();
    });
    let on_key = move |ev: web_sys::KeyboardEvent| {
        if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
            ev.prevent_default();
            state.run();
        }
    };
    view! {
        <section class="panel" id="prompt-panel">
            <h2>"Prompt"</h2>
            <div class="row modes">
                <label><input type="radio" name="mode" id="mode-chat" prop:checked=move || state.chat_mode.get() on:change=move |_| state.chat_mode.set(true)/>" Chat (model's template)"</label>
                <label><input type="radio" name="mode" id="mode-raw" prop:checked=move || !state.chat_mode.get() on:change=move |_| state.chat_mode.set(false)/>" Raw text"</label>
            </div>
            <Show when=move || state.chat_mode.get()
                fallback=move || view! {
                    <textarea id="raw" rows="3" prop:value=move || state.raw.get() on:input=move |ev| state.raw.set(event_target_value(&ev)) on:keydown=on_key></textarea>
                }>
                <input id="system" type="text" placeholder="System message (optional)" prop:value=move || state.system.get() on:input=move |ev| state.system.set(event_target_value(&ev))/>
                <textarea id="user" rows="3" prop:value=move || state.user.get() on:input=move |ev| state.user.set(event_target_value(&ev)) on:keydown=on_key></textarea>
            </Show>
            <div class="row examples">
                "Examples: "
                {EXAMPLES.iter().map(|&(text, chat)| view! {
                    <button class="example" on:click=move |_| {
                        state.chat_mode.set(chat);
                        if chat { state.user.set(text.into()) } else { state.raw.set(text.into()) }
                    }>{text}</button>
                }).collect_view()}
            </div>
            <div class="row options">
                <label>"Track tokens "<input id="track" type="text" placeholder=" Canberra, Sydney" title="comma-separated; spaces count: ' Canberra' is the token with a leading space"
                    prop:value=move || state.track.get() on:input=move |ev| state.track.set(event_target_value(&ev))/></label>
                <label>"Top-k "<input id="top-k" type="number" min="1" max="20" prop:value=move || state.top_k.get().to_string()
                    on:input=move |ev| state.top_k.set(event_target_value(&ev).parse::<usize>().unwrap_or(5).clamp(1, 20))/></label>
                <label>"Precision "<select id="precision" on:change=move |ev| state.precision.set(event_target_value(&ev))>
                    <option value="exact" selected=move || state.precision.get() == "exact">"exact (f32, as PyTorch)"</option>
                    <option value="fast" selected=move || state.precision.get() == "fast">"fast (8-bit activations, as llama.cpp)"</option>
                </select></label>
                <label>"Let the model answer "<input id="answer" type="number" min="0" max="256" prop:value=move || state.answer.get().to_string()
                    on:input=move |ev| state.answer.set(event_target_value(&ev).parse::<usize>().unwrap_or(0).min(256))/>" tokens"</label>
            </div>
            <div class="row">
                <button id="run" class="primary" on:click=move |_| state.run()
                    disabled=move || state.running.get() || state.loading.get() || state.model.get().is_none()>"Run the lens"</button>
                <button id="cancel-run" on:click=move |_| state.cancel() disabled=move || !state.running.get()>"Cancel"</button>
                <span class="status" id="run-status">{move || {
                    let f = state.figure.get();
                    if state.running.get() {
                        format!("computing… {} of {} rows", f.rows_done(), f.n_rows)
                    } else if f.done {
                        format!("done: forward {:.2} s, lens {:.2} s", f.forward_s, f.lens_s)
                    } else {
                        String::new()
                    }
                }}</span>
            </div>
            <TokenStrip/>
        </section>
    }
}

/// The tokens of the current text, template tokens boxed.
#[component]
fn TokenStrip() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <div class="tokens" id="tokens">
            {move || {
                let tokens = state.preview.get();
                let count = tokens.len();
                let chips = tokens.into_iter().map(|t| {
                    let class = if t.template { "tok template" } else { "tok" };
                    view! { <span class=class title=format!("id {} · {}", t.id, t.piece)>{display(&t.text)}</span> }
                }).collect_view();
                view! { <span class="count">{format!("{count} tokens: ")}</span>{chips} }
            }}
        </div>
    }
}
