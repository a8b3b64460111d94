//! The figure panel: the overview of the whole sequence (drag to pick the magnified range, click to
//! recentre it), the magnified range (hover for details, click for the column zoom), the legend and
//! the exports. Drawing is `overview.rs` and `figure_paint.rs`; the details are `figure_details.rs`.

use crate::export;
use crate::figure_data::{FigureData, Metric};
use crate::figure_details::{ColumnZoom, MetricControls, Tooltip};
use crate::figure_paint;
use crate::layout::{row_label, Layout};
use crate::overview;
use crate::paint::canvas::CanvasPainter;
use crate::scale::{Palette, Scale};
use crate::state::AppState;
use leptos::html::{Canvas, Div};
use leptos::prelude::*;
use loupe_protocol::token_label::display;
use wasm_bindgen::JsCast;

fn scale_for(fig: &FigureData, metric: Metric, vmax: f32, palette: Palette) -> Scale {
    let token = |i: usize| fig.tracked().get(i).map(|t| display(&t.text)).unwrap_or_default();
    let (max, title) = match metric {
        Metric::Entropy => (vmax, "Entropy (nats)".to_string()),
        Metric::KlToLast => (vmax, "KL(last layer ‖ layer) (nats)".to_string()),
        Metric::TopProbability => (1.0, "Top-1 probability (log scale)".to_string()),
        Metric::TrackedProbability(i) => (1.0, format!("Probability of {} (log scale)", token(i))),
        Metric::TrackedRank(i) => (fig.report.vocab.max(2) as f32, format!("Rank of {} (log scale)", token(i))),
    };
    Scale { metric, max, title, palette }
}

/// A cell under the pointer: (row, position, client x, client y).
pub type Hover = Option<(usize, usize, f64, f64)>;

#[component]
pub fn FigureView() -> impl IntoView {
    let state = expect_context::<AppState>();
    let container = NodeRef::<Div>::new();
    let overview_canvas = NodeRef::<Canvas>::new();
    let magnified = NodeRef::<Canvas>::new();
    let legend = NodeRef::<Canvas>::new();
    let width = RwSignal::new(900.0f64);
    let hover = RwSignal::new(None);
    // The keyboard's cell (row, position): arrows move it, Enter opens its column, Escape closes.
    let focus = RwSignal::new(None::<(usize, usize)>);

    // Follow the container's width.
    let measure = move || {
        if let Some(el) = container.get_untracked() {
            let w = el.client_width() as f64;
            if w > 0.0 && (w - width.get_untracked()).abs() > 0.5 {
                width.set(w);
            }
        }
    };
    Effect::new(move |_| {
        container.track();
        measure();
    });
    let resize = window_event_listener(leptos::ev::resize, move |_| measure());
    on_cleanup(move || resize.remove());

    let scale = Memo::new(move |_| {
        state.figure.with(|f| scale_for(f, state.metric.get(), state.vmax.get(), state.palette.get()))
    });
    let layout_now = move || {
        let (start, end) = state.range.get();
        Layout::new(width.get(), start, end.max(start + 1), state.figure.with(FigureData::n_rows))
    };

    // Redraw whenever data, colouring, range, column or width change.
    Effect::new(move |_| {
        let (w, range, column, s) = (width.get(), state.range.get(), state.column.get(), scale.get());
        let focus = focus.get();
        state.figure.with(|fig| {
            if let Some(c) = overview_canvas.get() {
                overview::draw(&c, w, fig, &s, range, column);
            }
            if let Some(c) = magnified.get() {
                let l = Layout::new(w, range.0, range.1.max(range.0 + 1), fig.n_rows());
                if let Some(mut p) = CanvasPainter::for_screen(&c, w, l.height()) {
                    figure_paint::magnified(&mut p, &l, fig, &s, column, focus);
                }
            }
            if let Some(c) = legend.get() {
                let legend_w = figure_paint::LEGEND_W + 100.0;
                if let Some(mut p) = CanvasPainter::for_screen(&c, legend_w, figure_paint::LEGEND_H) {
                    figure_paint::legend(&mut p, 10.0, 2.0, legend_w - 40.0, &s, fig.ln_vocab());
                }
            }
        });
    });

    // Overview brush: drag to choose the magnified range; a click recentres it.
    let drag_from = RwSignal::new(None::<(usize, f64)>);
    let overview_pos = move |ev: &web_sys::PointerEvent| -> usize {
        let n = state.figure.with_untracked(FigureData::n_positions).max(1);
        let x = ev.offset_x() as f64;
        ((x / width.get_untracked()) * n as f64).floor().clamp(0.0, (n - 1) as f64) as usize
    };
    let on_down = move |ev: web_sys::PointerEvent| {
        if let Some(t) = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) {
            let _ = t.set_pointer_capture(ev.pointer_id());
        }
        drag_from.set(Some((overview_pos(&ev), ev.offset_x() as f64)));
    };
    let on_move = move |ev: web_sys::PointerEvent| {
        if let Some((from, x0)) = drag_from.get_untracked() {
            if (ev.offset_x() as f64 - x0).abs() > 3.0 {
                let to = overview_pos(&ev);
                state.range.set((from.min(to), from.max(to) + 1));
            }
        }
    };
    let on_up = move |ev: web_sys::PointerEvent| {
        if let Some((_, x0)) = drag_from.get_untracked() {
            if (ev.offset_x() as f64 - x0).abs() <= 3.0 {
                let n = state.figure.with_untracked(FigureData::n_positions);
                let (s, e) = state.range.get_untracked();
                let span = (e - s).max(1).min(n);
                let start = overview_pos(&ev).saturating_sub(span / 2).min(n.saturating_sub(span));
                state.range.set((start, start + span));
            }
        }
        drag_from.set(None);
    };

    let on_hover = move |ev: web_sys::MouseEvent| {
        let cell = layout_now().cell_at(ev.offset_x() as f64, ev.offset_y() as f64);
        hover.set(cell.map(|(r, p)| (r, p, ev.client_x() as f64, ev.client_y() as f64)));
    };
    let on_click = move |ev: web_sys::MouseEvent| {
        if let Some(p) = layout_now().position_at(ev.offset_x() as f64) {
            state.column.set(Some(p));
        }
    };

    let on_key = move |ev: web_sys::KeyboardEvent| {
        let (n_rows, n) = state.figure.with_untracked(|f| (f.n_rows(), f.n_positions()));
        if n == 0 || n_rows == 0 {
            return;
        }
        let (start, end) = state.range.get_untracked();
        let (r, p) = focus.get_untracked().unwrap_or((n_rows - 1, end.saturating_sub(1).min(n - 1)));
        let next = match ev.key().as_str() {
            "ArrowUp" => ((r + 1).min(n_rows - 1), p),
            "ArrowDown" => (r.saturating_sub(1), p),
            "ArrowLeft" => (r, p.saturating_sub(1)),
            "ArrowRight" => (r, (p + 1).min(n - 1)),
            "Enter" | " " => {
                ev.prevent_default();
                focus.set(Some((r, p)));
                return state.column.set(Some(p));
            }
            "Escape" => return state.column.set(None),
            _ => return,
        };
        ev.prevent_default();
        focus.set(Some(next));
        // The magnified range follows the focus.
        let span = end.saturating_sub(start).max(1);
        if next.1 < start {
            state.range.set((next.1, next.1 + span));
        } else if next.1 >= end {
            state.range.set((next.1 + 1 - span, next.1 + 1));
        }
    };
    let announcement = move || {
        let (r, p) = focus.get()?;
        state.figure.with(|f| {
            let token = f.tokens().get(p).map(|t| display(&t.text)).unwrap_or_default();
            let entropy = f.value(Metric::Entropy, r, p)?;
            let top = f.top(r, p).first().map(|t| display(&t.1)).unwrap_or_default();
            Some(format!("layer {}, position {p} {token}: top-1 {top}, entropy {entropy:.2} nats", row_label(r)))
        })
    };

    let file_stem = move || {
        let model = state.figure.with_untracked(|f| f.report.model.trim_end_matches(".gguf").to_string());
        format!("loupe-{}", model.replace(|c: char| !c.is_ascii_alphanumeric(), "-"))
    };
    let export_json = move |_| {
        let json = state.figure.with_untracked(export::json);
        export::download(&format!("{}.json", file_stem()), "application/json", &json);
    };
    let export_svg = move |_| {
        let svg = state.figure.with_untracked(|f| export::svg(f, &scale.get_untracked(), &layout_now()));
        export::download(&format!("{}.svg", file_stem()), "image/svg+xml", &svg);
    };
    let export_png = move |_| {
        state
            .figure
            .with_untracked(|f| export::png(&format!("{}.png", file_stem()), f, &scale.get_untracked(), &layout_now()));
    };
    let has_rows = move || state.figure.with(|f| f.rows_done() > 0);

    view! {
        <section class="panel figure" id="figure"
            data-n-rows=move || state.figure.with(|f| f.n_rows().to_string())
            data-n-positions=move || state.figure.with(|f| f.n_positions().to_string())
            data-rows-done=move || state.figure.with(|f| f.rows_done().to_string())
            data-complete=move || state.figure.with(|f| (f.complete() && f.done).to_string())
            data-range=move || { let (a, b) = state.range.get(); format!("{a},{b}") }
            data-template-positions=move || state.figure.with(|f| f.tokens().iter().enumerate().filter(|(_, t)| t.template).map(|(i, _)| i.to_string()).collect::<Vec<_>>().join(","))>
            <div class="figure-head">
                <h2>"Logit lens"</h2>
                <MetricControls/>
                <canvas node_ref=legend id="legend" aria-label="colour legend"></canvas>
            </div>
            <p class="hint">"Rows are layers: the embedding output (0) at the bottom, the model's own output on top. Columns are token positions. Boxed tokens on the axis come from the chat template. Drag on the overview to magnify; hover a cell for details; click a column to list every layer's top tokens."</p>
            <Show when=move || state.figure.with(|f| f.tokens().is_empty()) && !state.running.get()>
                <p class="empty" id="figure-empty">"Press “Run the lens” to decode every layer at every position of the prompt above."</p>
            </Show>
            <div node_ref=container class="canvas-box">
                <canvas node_ref=overview_canvas id="overview" aria-label="overview of all positions"
                    on:pointerdown=on_down on:pointermove=on_move on:pointerup=on_up></canvas>
                <canvas node_ref=magnified id="magnified" tabindex="0"
                    aria-label="magnified range: arrow keys move between cells, Enter lists the column's top tokens, Escape closes the list"
                    on:mousemove=on_hover on:mouseleave=move |_| hover.set(None) on:click=on_click on:keydown=on_key></canvas>
                <div id="focus-announce" class="sr-only" aria-live="polite">{announcement}</div>
            </div>
            <div class="row exports">
                <label class="file">"Open a saved figure (.json) "
                    <input id="open-report" type="file" accept=".json,application/json" on:change=move |ev: web_sys::Event| {
                        let input: web_sys::HtmlInputElement = ev.target().unwrap().unchecked_into();
                        if let Some(file) = input.files().and_then(|f| f.get(0)) {
                            state.open_report_file(file);
                        }
                        input.set_value("");
                    }/>
                </label>
                <button id="export-svg" on:click=export_svg disabled=move || !has_rows()>"Export SVG"</button>
                <button id="export-png" on:click=export_png disabled=move || !has_rows()>"Export PNG"</button>
                <button id="export-json" on:click=export_json disabled=move || !state.figure.with(FigureData::complete)>"Export JSON"</button>
            </div>
            <Tooltip hover=hover scale=scale/>
            <ColumnZoom/>
        </section>
    }
}
