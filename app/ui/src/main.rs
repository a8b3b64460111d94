//! Loupe's page (Leptos, client-side rendered). It never does model math: the worker computes,
//! this draws. Its wasm does not link candle.

mod app;
mod draw;
mod export;
mod figure_data;
mod figure_view;
mod labels;
mod layout;
mod model_panel;
mod presets;
mod prompt_panel;
mod scale;
mod url_state;
mod worker_client;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
