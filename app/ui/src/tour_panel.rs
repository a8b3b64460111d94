//! The tour "Rehearsal at dummy tokens" on the page: one click runs the seed's question on the
//! loaded model (the bundled one if none), tracks the candidates found in that run, runs again, then
//! walks through the captioned steps of `tour.rs`, each setting what the figure shows.

use crate::state::AppState;
use crate::tour::{self, Step};
use leptos::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TourPhase {
    Off,
    /// The seed's question is running (or waiting for the model).
    FirstRun,
    /// The candidates found in the first run are being tracked.
    Tracking,
    Steps,
}

#[derive(Clone, Copy)]
pub struct Tour {
    pub phase: RwSignal<TourPhase>,
    pub step: RwSignal<usize>,
    pub steps: RwSignal<Vec<Step>>,
}

impl Tour {
    pub fn new() -> Self {
        Self { phase: RwSignal::new(TourPhase::Off), step: RwSignal::new(0), steps: RwSignal::new(Vec::new()) }
    }
}

impl AppState {
    pub fn start_tour(&self) {
        if self.running.get_untracked() {
            return;
        }
        self.prepare_tour();
        if self.model.get_untracked().is_some() && !self.loading.get_untracked() {
            self.run();
        } else {
            self.autorun.set(true);
            if !self.loading.get_untracked() {
                self.load_default();
            }
        }
    }

    /// Puts the seed's question in the form; the first run of the tour is the next run.
    pub(crate) fn prepare_tour(&self) {
        let form = self.form;
        form.chat_mode.set(true);
        form.user.set(tour::QUESTION.into());
        form.system.set(String::new());
        form.track.set(String::new());
        form.answer.set(tour::ANSWER_TOKENS);
        self.tour.steps.set(Vec::new());
        self.tour.phase.set(TourPhase::FirstRun);
    }

    /// A run finished: the tour's first run leads to tracking its candidates, the second to the steps.
    pub(crate) fn tour_after_run(&self) {
        match self.tour.phase.get_untracked() {
            TourPhase::FirstRun => {
                let candidates = self.figure.with_untracked(tour::candidates);
                self.form.track.set(candidates.join(","));
                self.tour.phase.set(TourPhase::Tracking);
                self.run();
            }
            TourPhase::Tracking => {
                let steps = self.figure.with_untracked(|f| tour::steps(f, self.window.get_untracked()));
                self.tour.steps.set(steps);
                self.tour.phase.set(TourPhase::Steps);
                self.show_step(0);
            }
            _ => {}
        }
    }

    pub(crate) fn end_tour(&self) {
        self.tour.phase.set(TourPhase::Off);
    }

    fn show_step(&self, i: usize) {
        let Some(step) = self.tour.steps.with_untracked(|s| s.get(i).cloned()) else { return };
        self.tour.step.set(i);
        self.metric.set(step.metric);
        self.focus.set(step.focus);
        self.column.set(step.column);
        if let Some(range) = step.range {
            self.range.set(range);
        }
    }
}

#[component]
pub fn TourPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
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
                        on:click=move |_| state.show_step(tour.step.get_untracked().saturating_sub(1))>"Back"</button>
                    <button id="tour-next" class="primary" disabled=move || tour.phase.get() != TourPhase::Steps || is_last()
                        on:click=move |_| state.show_step(tour.step.get_untracked() + 1)>"Next"</button>
                    <button id="tour-close" on:click=move |_| state.end_tour()>"Close the tour"</button>
                </div>
            </div>
        </Show>
    }
}
