//! The tour "Rehearsal at dummy tokens" on the page: while its runs go on (`lifecycle.rs` runs the
//! seed's question, then again with the candidates found tracked), it says what it waits for; then
//! it walks through the captioned steps of `tour.rs`, each setting what the figure shows.

use crate::lifecycle::Lifecycle;
use crate::state::AppState;
use crate::tour::{self, TourPhase};
use leptos::prelude::*;

#[component]
pub fn TourPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let life = expect_context::<Lifecycle>();
    let tour = state.tour;
    let count = move || tour.steps.with(Vec::len);
    let is_last = move || tour.step.get() + 1 >= count();
    view! {
        <Show when=move || tour.phase.get() != TourPhase::Off>
            <div class="tour" id="tour" role="region" aria-label="guided tour"
                data-phase=move || format!("{:?}", tour.phase.get()) data-step=move || tour.step.get().to_string()
                data-steps=move || count().to_string()
                data-focus=move || state.focus.get().map(|(r, p)| format!("{r},{p}")).unwrap_or_default()>
                {move || match tour.phase.get() {
                    TourPhase::FirstRun => view! { <p class="tour-wait">"Rehearsal at dummy tokens: asking the model “"{tour::QUESTION}"” and letting it answer…"</p> }.into_any(),
                    TourPhase::Tracking => view! { <p class="tour-wait">{move || format!(
                        "Tracking the candidates found at the template's positions: {}…",
                        state.figure.with(|f| f.report.question.track.join(" ").replace(['Ġ', '▁'], " "))
                    )}</p> }.into_any(),
                    _ => {
                        let i = tour.step.get();
                        let step = tour.steps.with(|s| s.get(i).cloned());
                        view! {
                            <div class="tour-step">
                                <h3><span class="tour-count">{format!("Step {} of {}", i + 1, count())}</span>" "{step.as_ref().map(|s| s.title.clone())}</h3>
                                <p id="tour-caption">{step.map(|s| s.caption)}</p>
                            </div>
                        }.into_any()
                    }
                }}
                <div class="tour-buttons">
                    <button id="tour-back" disabled=move || tour.phase.get() != TourPhase::Steps || tour.step.get() == 0
                        on:click=move |_| state.show_tour_step(tour.step.get_untracked().saturating_sub(1))>"Back"</button>
                    <button id="tour-next" class="primary" disabled=move || tour.phase.get() != TourPhase::Steps || is_last()
                        on:click=move |_| state.show_tour_step(tour.step.get_untracked() + 1)>"Next"</button>
                    <button id="tour-close" on:click=move |_| life.end_tour()>"Close the tour"</button>
                </div>
            </div>
        </Show>
    }
}
