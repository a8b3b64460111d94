//! The page's root: builds the state and its lifecycle from the URL, starts the worker, lays out the panels: the
//! compact controls above, the figure under them, taking the rest of the page.

use crate::figure_view::FigureView;
use crate::lifecycle::Lifecycle;
use crate::link_model::LinkModelQuestion;
use crate::model_panel::ModelPanel;
use crate::prompt_panel::PromptPanel;
use crate::state::AppState;
use crate::url_state;
use leptos::prelude::*;

#[component]
pub fn App() -> impl IntoView {
    let link = url_state::read();
    let life = Lifecycle::new(&link);
    let state = life.state;
    provide_context(state);
    provide_context(life);
    life.boot(&link);
    // Presentation mode restyles the whole page (controls hidden, larger text).
    Effect::new(move |_| {
        let present = state.present.get();
        if let Some(body) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()) {
            let _ = body.class_list().toggle_with_force("present", present);
        }
    });
    view! {
        <header>
            <h1>"Loupe"</h1>
            <p class="tagline">"A logit lens for language models, computed in your browser."</p>
        </header>
        <main>
            <div class="controls" id="controls">
                <ModelPanel/>
                <PromptPanel/>
            </div>
            <Messages/>
            <FigureView/>
        </main>
        <footer>
            "Each cell decodes one layer's residual stream at one position through the model's final norm and unembedding. "
            "Nothing leaves this page: the model runs in a Web Worker."
        </footer>
    }
}

#[component]
fn Messages() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <Show when=move || state.error.get().is_some()>
            <div class="error" role="alert" id="error">
                <strong>"Error: "</strong>
                <span>{move || state.error.get().unwrap_or_default()}</span>
                <button on:click=move |_| state.error.set(None)>"Dismiss"</button>
            </div>
        </Show>
        <LinkModelQuestion/>
        <Show when=move || state.shell.update_ready.get()>
            <div class="notice" id="update-ready">
                "A new version of Loupe is ready. "
                <button on:click=move |_| state.shell.apply_update()>"Reload to update"</button>
            </div>
        </Show>
        <Show when=move || state.notice.get().is_some()>
            <div class="notice" id="notice">{move || state.notice.get().unwrap_or_default()}</div>
        </Show>
    }
}
