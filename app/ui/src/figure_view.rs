//! The figure panel, laid out as the seed's composite: the overview of the whole sequence on top
//! (drag to pick the magnified range, click to recentre it), the magnified range framed below it
//! (hover for details, click or Enter for a column), and beside it the legend and the zoomed column.
//! Drawing is `overview.rs` and `figure_paint.rs`; the details are `figure_details.rs`. In
//! presentation mode the same drawing is shown `PRESENT_ZOOM` times larger.

use crate::export;
use crate::figure_data::{FigureData, Metric};
use crate::figure_details::{ColumnZoom, MetricControls, Tooltip};
use crate::figure_paint;
use crate::layout::{self, Layout};
use crate::lifecycle::Lifecycle;
use crate::overview::{self, OVERVIEW_H};
use crate::paint::canvas::CanvasPainter;
use crate::paint::Painter;
use crate::scale::{Palette, Scale};
use crate::state::AppState;
use crate::tour_panel::TourPanel;
use leptos::html::{Canvas, Div};
use leptos::prelude::*;
use loupe_protocol::token_label::display;
use wasm_bindgen::JsCast;

/// How much larger presentation mode draws the figure.
pub const PRESENT_ZOOM: f64 = 1.5;

fn scale_for(fig: &FigureData, metric: Metric, vmax: f32, palette: Palette) -> Scale {
    let token = |i: usize| fig.tracked().get(i).map(|t| display(&t.text)).unwrap_or_default();
    let (max, title) = match metric {
        Metric::Entropy => (vmax, "Entropy (nats)".to_string()),
        Metric::KlToLast => (vmax, "KL(last layer ‖ layer) (nats)".to_string()),
        Metric::TopProbability => (1.0, "Top-1 probability (log scale)".to_string()),
        Metric::TrackedProbability(i) => (1.0, format!("Probability of {} (log scale)", token(i))),
        Metric::TrackedRank(i) => (fig.report.vocab.max(2) as f32, format!("Rank of {} (log scale)", token(i))),
        Metric::EntropyChange => (vmax / 2.0, "Entropy change (nats): this run − pinned run".to_string()),
        Metric::LogProbabilityChange(i) => (vmax, format!("Change in ln p({}): this run − pinned run", token(i))),
    };
    Scale { metric, max, title, palette }
}

#[component]
pub fn FigureView() -> impl IntoView {
    let state = expect_context::<AppState>();
    let life = expect_context::<Lifecycle>();
    let container = NodeRef::<Div>::new();
    let overview_canvas = NodeRef::<Canvas>::new();
    let magnified = NodeRef::<Canvas>::new();
    let legend = NodeRef::<Canvas>::new();
    // The figure area's width in CSS pixels.
    let css_width = RwSignal::new(900.0f64);
    let hover = RwSignal::new(None);
    let focus = state.focus;
    let zoom = move || if state.present.get() { PRESENT_ZOOM } else { 1.0 };
    // The figure's own width (figure pixels), and the magnified view's.
    let total = move || css_width.get() / zoom();
    let side_by_side = move || total() >= layout::SIDE_BY_SIDE_MIN;
    let magnified_w = move || layout::magnified_width(total());

    // Follow the container's width.
    let measure = move || {
        if let Some(el) = container.get_untracked() {
            let w = el.client_width() as f64;
            if w > 0.0 && (w - css_width.get_untracked()).abs() > 0.5 {
                css_width.set(w);
            }
        }
    };
    Effect::new(move |_| {
        container.track();
        state.present.track();
        measure();
    });
    let resize = window_event_listener(leptos::ev::resize, move |_| measure());
    on_cleanup(move || resize.remove());
    // The legible window follows the width; a figure on screen keeps its end in view.
    Effect::new(move |_| {
        let window = layout::legible_window(magnified_w());
        if window != state.window.get_untracked() {
            state.window.set(window);
            let n = state.figure.with_untracked(FigureData::n_positions);
            let (_, end) = state.range.get_untracked();
            if n > 0 {
                let end = end.clamp(window.min(n), n);
                state.range.set((end.saturating_sub(window), end));
            }
        }
    });

    // While the lens fills in, the positions brought into view are lensed next.
    Effect::new(move |_| {
        let (start, end) = state.range.get();
        life.lens_next(start, end);
    });

    let scale = Memo::new(move |_| {
        state.figure.with(|f| scale_for(f, state.metric.get(), state.vmax.get(), state.palette.get()))
    });
    let layout_now = move || {
        let (start, end) = state.range.get();
        Layout::new(magnified_w(), start, end.max(start + 1), state.figure.with(FigureData::n_rows))
    };

    // Redraw whenever data, colouring, range, column, focus, width or zoom change.
    Effect::new(move |_| {
        let (k, l, column, s, focus) = (zoom(), layout_now(), state.column.get(), scale.get(), focus.get());
        let (range, total) = (state.range.get(), total());
        state.figure.with(|fig| {
            if let Some(c) = overview_canvas.get() {
                if let Some(mut p) = CanvasPainter::for_screen(&c, total, OVERVIEW_H, k) {
                    overview::paint(&mut p, (0.0, 0.0, total), fig, &s, range, column);
                }
            }
            if let Some(c) = magnified.get() {
                if let Some(mut p) = CanvasPainter::for_screen(&c, l.width, l.height(), k) {
                    figure_paint::magnified(&mut p, &l, fig, &s, column, focus);
                }
            }
            if let Some(c) = legend.get() {
                let legend_w = figure_paint::LEGEND_W + 30.0;
                if let Some(mut p) = CanvasPainter::for_screen(&c, legend_w, figure_paint::LEGEND_H, k) {
                    p.fill_rect(0.0, 0.0, legend_w, figure_paint::LEGEND_H, "#fff");
                    figure_paint::legend(&mut p, 10.0, 2.0, figure_paint::LEGEND_W, &s, fig.ln_vocab());
                }
            }
        });
    });

    // Overview brush: drag to choose the magnified range; a click recentres it.
    let drag_from = RwSignal::new(None::<(usize, f64)>);
    let overview_pos = move |ev: &web_sys::PointerEvent| -> usize {
        let n = state.figure.with_untracked(FigureData::n_positions);
        overview::position_at(ev.offset_x() as f64, css_width.get_untracked(), n)
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

    // Pointer coordinates are CSS pixels; the layout is in figure pixels.
    let at = move |ev: &web_sys::MouseEvent| (ev.offset_x() as f64 / zoom(), ev.offset_y() as f64 / zoom());
    let on_hover = move |ev: web_sys::MouseEvent| {
        let (x, y) = at(&ev);
        let cell = layout_now().cell_at(x, y);
        hover.set(cell.map(|(r, p)| (r, p, ev.client_x() as f64, ev.client_y() as f64)));
    };
    let on_click = move |ev: web_sys::MouseEvent| {
        if let Some(p) = layout_now().position_at(at(&ev).0) {
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
            Some(format!("layer {}, position {p} {token}: top-1 {top}, entropy {entropy:.2} nats", f.row_label(r)))
        })
    };

    let file_stem = move || {
        let model = state.figure.with_untracked(|f| f.report.model.trim_end_matches(".gguf").to_string());
        format!("loupe-{}", model.replace(|c: char| !c.is_ascii_alphanumeric(), "-"))
    };
    // The exports show the composite as laid out for a full-size screen, whatever the zoom.
    let export_layout = move || {
        let (start, end) = state.range.get_untracked();
        let n_rows = state.figure.with_untracked(FigureData::n_rows);
        Layout::new(
            layout::magnified_width(css_width.get_untracked().max(layout::SIDE_BY_SIDE_MIN)),
            start,
            end.max(start + 1),
            n_rows,
        )
    };
    let export_json = move |_| {
        let json = state.figure.with_untracked(export::json);
        export::download(&format!("{}.json", file_stem()), "application/json", &json);
    };
    let export_svg = move |_| {
        let column = state.column.get_untracked();
        let svg = state.figure.with_untracked(|f| export::svg(f, &scale.get_untracked(), &export_layout(), column));
        export::download(&format!("{}.svg", file_stem()), "image/svg+xml", &svg);
    };
    let export_png = move |_| {
        let column = state.column.get_untracked();
        state.figure.with_untracked(|f| {
            export::png(&format!("{}.png", file_stem()), f, &scale.get_untracked(), &export_layout(), column)
        });
    };
    let has_rows = move || state.figure.with(|f| f.cells_done().0 > 0);

    view! {
        <section class="panel figure" id="figure"
            data-n-rows=move || state.figure.with(|f| f.n_rows().to_string())
            data-n-positions=move || state.figure.with(|f| f.n_positions().to_string())
            data-rows-done=move || state.figure.with(|f| f.rows_done().to_string())
            data-cells-done=move || state.figure.with(|f| f.cells_done().0.to_string())
            data-complete=move || state.figure.with(|f| (f.complete() && f.done).to_string())
            data-range=move || { let (a, b) = state.range.get(); format!("{a},{b}") }
            data-range-done=move || { let (a, b) = state.range.get(); state.figure.with(|f| f.has_positions(a..b).to_string()) }
            data-template-positions=move || state.figure.with(|f| f.tokens().iter().enumerate().filter(|(_, t)| t.template).map(|(i, _)| i.to_string()).collect::<Vec<_>>().join(","))>
            <div class="figure-head">
                <h2>"Logit lens"</h2>
                <MetricControls/>
                <span class="spacer"></span>
                <button id="start-tour" on:click=move |_| life.start_tour() disabled=move || state.running.get()
                    title="Runs “What is the capital of Australia?”, tracks the answer's candidates, and explains the figure step by step">"Tour: rehearsal at dummy tokens"</button>
                <button id="present" aria-pressed=move || state.present.get().to_string()
                    on:click=move |_| state.present.update(|p| *p = !*p)>
                    {move || if state.present.get() { "Leave presentation" } else { "Presentation mode" }}
                </button>
            </div>
            <TourPanel/>
            <Show when=move || state.figure.with(|f| f.tokens().is_empty()) && !state.running.get()>
                <p class="empty" id="figure-empty">"Press “Run the lens” to decode every layer at every position of the prompt, or take the tour."</p>
            </Show>
            <div node_ref=container class="composite" class:side-by-side=side_by_side>
                <canvas node_ref=overview_canvas id="overview" aria-label="overview of all positions: drag to choose the magnified range"
                    on:pointerdown=on_down on:pointermove=on_move on:pointerup=on_up></canvas>
                <div class="composite-body">
                    // The grid's geometry in figure pixels (CSS pixels are `data-zoom` times larger),
                    // from the layout that draws and hit-tests it: tests point at a cell with it.
                    <canvas node_ref=magnified id="magnified" tabindex="0" data-zoom=move || zoom().to_string()
                        data-grid-left={layout::LEFT} data-grid-top={layout::TOP} data-cell-h={layout::ROW_H}
                        data-cell-w=move || layout_now().cell_w data-first-pos=move || layout_now().start
                        aria-label="magnified range: arrow keys move between cells, Enter lists the column's top tokens, Escape closes the list"
                        on:mousemove=on_hover on:mouseleave=move |_| hover.set(None) on:click=on_click on:keydown=on_key></canvas>
                    <aside class="side">
                        <canvas node_ref=legend id="legend" aria-label="colour legend"></canvas>
                        <ColumnZoom/>
                        <Show when=move || state.column.get().is_none() && has_rows()>
                            <p class="hint">"Click a column (or press Enter on a cell) to list every layer's top tokens here."</p>
                        </Show>
                    </aside>
                </div>
                <div id="focus-announce" class="sr-only" aria-live="polite">{announcement}</div>
            </div>
            <p class="hint">"Rows are layers: the embedding output (0) at the bottom, the model's own output on top. Columns are token positions; boxed tokens come from the chat template. Drag on the overview to magnify; hover a cell for details; click a column for its top tokens; click a token there to track it."</p>
            <crate::compare_panel::ComparePanel/>
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
        </section>
    }
}
