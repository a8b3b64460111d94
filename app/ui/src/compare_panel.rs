//! The controls of the compare view: pin a run, compare the same question without its chat
//! template in one click, and the sentence saying how the two runs' cells line up.

use crate::figure_data::FigureData;
use crate::lifecycle::Lifecycle;
use crate::state::AppState;
use leptos::prelude::*;
use loupe_protocol::Prompt;

/// A prompt in a few words, for the caption.
fn summary(f: &FigureData) -> String {
    let prompt = &f.report.question.prompt;
    let (kind, text) = match prompt {
        Prompt::Chat { .. } if prompt.as_single_message().is_none() => {
            ("conversation", prompt.last_user_text().unwrap_or(""))
        }
        Prompt::Chat { .. } => ("chat", prompt.last_user_text().unwrap_or("")),
        Prompt::Raw { raw } => ("raw text", raw.as_str()),
    };
    let short: String = text.chars().take(60).collect();
    let more = if text.chars().count() > 60 { "…" } else { "" };
    format!("{kind} “{short}{more}” on {}", f.report.model)
}

#[component]
pub fn ComparePanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let life = expect_context::<Lifecycle>();
    let complete = move || state.figure.with(FigureData::complete);
    let is_chat = move || state.figure.with(|f| matches!(f.report.question.prompt, Prompt::Chat { .. }));
    let caption = move || {
        let pinned = state.pinned.get()?;
        let how = state.figure.with(|f| f.compare.as_ref().map(|c| c.alignment.how.clone()));
        Some(match how {
            Some(how) => format!(
                "Compared with the pinned run ({}): {how}. Colour by an entropy or log-probability change to see this run minus the pinned one; cells without a counterpart are hatched.",
                summary(&pinned)
            ),
            None => format!("Pinned: {}. The next complete run is compared with it.", summary(&pinned)),
        })
    };
    view! {
        <div class="row compare" id="compare-panel">
            <button id="pin-run" on:click=move |_| state.pin() disabled=move || !complete()
                title="Keep this run aside and compare the next runs with it">"Pin this run"</button>
            <button id="compare-raw" on:click=move |_| life.compare_without_template()
                disabled=move || !complete() || !is_chat() || state.running.get()
                title="Pin this chat run, then run the same user text as raw text, without the chat template, and show the difference">
                "Compare: same question without the chat template"</button>
            {move || state.pinned.with(Option::is_some).then(|| view! {
                <button id="swap-pinned" on:click=move |_| state.swap_pinned()
                    disabled=move || !complete() || state.running.get()
                    title="Show the pinned run, and pin this one (the change then reads the other way)">"Swap with the pinned run"</button>
                <button id="unpin" on:click=move |_| state.unpin()>"Unpin"</button>
            })}
            {move || caption().map(|c| view! { <span id="compare-info" class="caption">{c}</span> })}
        </div>
    }
}
