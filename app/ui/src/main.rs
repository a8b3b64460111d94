//! `loupe-ui`: Loupe's page (Leptos, client-side rendered). It never does model math and its wasm
//! does not link candle: the worker computes, this draws.
//!
//! Main types: `AppState` (`state.rs`, every signal the view reads), `Lifecycle` (`lifecycle.rs`:
//! the worker, loading, runs and what follows each, cancel, crash recovery; `events.rs` applies
//! the worker's events),
//! `QuestionForm` (the fields that make a `Question`), `FigureData` (the run's `LensReport` as it
//! fills in) and `Painter` (`paint/`, one drawing trait for the canvas and the SVG export, used by
//! `figure_paint.rs`).

mod app;
mod compare;
mod compare_panel;
mod events;
mod export;
mod figure_data;
mod figure_details;
mod figure_paint;
mod figure_view;
mod layout;
mod lifecycle;
mod link_model;
mod model_panel;
mod offline;
mod overview;
mod paint;
mod presets;
mod prompt_panel;
mod question_form;
mod reports;
mod scale;
mod state;
mod tour;
mod tour_panel;
mod trajectory;
mod url_state;
mod worker_client;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
