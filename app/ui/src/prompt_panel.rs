//! Asking: a chat message (with an optional system message) rendered by the model's template, or
//! raw text; example prompts; run options; and the tokens, shown as soon as they are known.

use crate::lifecycle::Lifecycle;
use crate::state::AppState;
use leptos::prelude::*;
use loupe_protocol::token_label::display;
use loupe_protocol::{Precision, MAX_ANSWER_TOKENS, MAX_TOP_K};

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
    let life = expect_context::<Lifecycle>();
    let streamed = move || state.model.with(|m| m.as_ref().is_some_and(|m| m.streamed));
    let form = state.form;
    // Tokens follow the text as it is typed.
    Effect::new(move |_| {
        form.track_prompt();
        state.model.track();
        life.preview_tokens();
    });
    let on_key = move |ev: web_sys::KeyboardEvent| {
        if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
            ev.prevent_default();
            life.run();
        }
    };
    view! {
        <section class="panel" id="prompt-panel">
            <div class="row modes">
                <h2>"Prompt"</h2>
                <label><input type="radio" name="mode" id="mode-chat" prop:checked=move || form.chat_mode.get() on:change=move |_| form.chat_mode.set(true)/>" Chat (model's template)"</label>
                <label><input type="radio" name="mode" id="mode-raw" prop:checked=move || !form.chat_mode.get() on:change=move |_| form.chat_mode.set(false)/>" Raw text"</label>
                <select id="examples" aria-label="example prompts" on:change=move |ev| {
                    let chosen = event_target_value(&ev);
                    if let Some(&(text, chat)) = EXAMPLES.iter().find(|(t, _)| *t == chosen) {
                        form.chat_mode.set(chat);
                        if chat { form.user.set(text.into()) } else { form.raw.set(text.into()) }
                    }
                }>
                    <option value="" selected>"Examples…"</option>
                    {EXAMPLES.iter().map(|&(text, chat)| view! { <option value=text>{if chat { text.to_string() } else { format!("{text} (raw)") }}</option> }).collect_view()}
                </select>
            </div>
            <Show when=move || form.chat_mode.get()
                fallback=move || view! {
                    <textarea id="raw" rows="2" aria-label="raw text" prop:value=move || form.raw.get() on:input=move |ev| form.raw.set(event_target_value(&ev)) on:keydown=on_key></textarea>
                }>
                <Show when=move || form.earlier.with(Vec::is_empty)
                    fallback=move || view! {
                        <p class="hint" id="earlier-turns">{move || format!("This question follows the {} earlier turns of the linked conversation.", form.earlier.with(Vec::len))}
                            " " <button on:click=move |_| form.earlier.set(Vec::new())>"Ask it alone"</button></p>
                    }>
                    <input id="system" type="text" aria-label="system message" placeholder="System message (optional)" prop:value=move || form.system.get() on:input=move |ev| form.system.set(event_target_value(&ev))/>
                </Show>
                <textarea id="user" rows="2" aria-label="user message" prop:value=move || form.user.get() on:input=move |ev| form.user.set(event_target_value(&ev)) on:keydown=on_key></textarea>
            </Show>
            <div class="row options">
                <label>"Track tokens "<input id="track" type="text" placeholder=" Canberra, Sydney" title="comma-separated; spaces count: ' Canberra' is the token with a leading space"
                    prop:value=move || form.track.get() on:input=move |ev| form.track.set(event_target_value(&ev))/></label>
                <label>"Top-k "<input id="top-k" type="number" min="1" max=MAX_TOP_K prop:value=move || form.top_k.get().to_string()
                    on:input=move |ev| form.top_k.set(event_target_value(&ev).parse::<usize>().unwrap_or(5).clamp(1, MAX_TOP_K))/></label>
                <label>"Precision "<select id="precision" title="exact: f32 as PyTorch; fast: 8-bit activations as llama.cpp" on:change=move |ev| form.precision.set(Precision::parse(&event_target_value(&ev)).unwrap_or_default())>
                    <option value="exact" selected=move || form.precision.get() == Precision::Exact>"exact (f32)"</option>
                    <option value="fast" selected=move || form.precision.get() == Precision::Fast>"fast (8-bit)"</option>
                </select></label>
                <label title=move || if streamed() { loupe_protocol::STREAMED_GENERATION } else { "" }>"Answer "<input id="answer" type="number" min="0" max=MAX_ANSWER_TOKENS prop:value=move || form.answer.get().to_string()
                    disabled=streamed
                    on:input=move |ev| form.answer.set(event_target_value(&ev).parse::<usize>().unwrap_or(0).min(MAX_ANSWER_TOKENS))/>" tokens"</label>
                <label title="Also decode the residual stream after each block's attention, between the blocks: rows 1a, 1m, 2a, …">
                    <input id="inside-blocks" type="checkbox" prop:checked=move || form.inside_blocks.get()
                        on:change=move |ev| form.inside_blocks.set(event_target_checked(&ev))/>" inside blocks"</label>
                <button id="run" class="primary" on:click=move |_| life.run()
                    disabled=move || state.running.get() || state.loading.get() || state.model.get().is_none()>"Run the lens"</button>
                <button id="cancel-run" on:click=move |_| life.cancel() disabled=move || !state.running.get()>"Cancel"</button>
                <span class="status" id="run-status">{move || {
                    let f = state.figure.read();
                    if state.running.get() {
                        let (done, all) = f.cells_done();
                        match (100 * done).checked_div(all) {
                            Some(percent) => format!("computing… {percent}% of the cells"),
                            None => "computing…".to_string(),
                        }
                    } else if f.done {
                        format!("done: forward {:.2} s, lens {:.2} s", f.report.timings.forward, f.report.timings.lens)
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
