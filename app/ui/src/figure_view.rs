//! The three linked views of the figure: the overview of the whole sequence (drag to pick the
//! magnified range), the magnified range (hover for details, click for the column zoom), and the
//! column zoom listing every layer's top tokens. Plus the colour controls, legend and exports.

use crate::app::AppState;
use crate::draw;
use crate::export;
use crate::figure_data::{FigureData, Metric};
use crate::labels::display;
use crate::layout::Layout;
use crate::scale::{format_value, Scale};
use leptos::html::{Canvas, Div};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

const OVERVIEW_H: f64 = 110.0;

fn scale_for(fig: &FigureData, metric: Metric, vmax: f32) -> Scale {
    let token = |i: usize| fig.tracked.get(i).map(|t| display(&t.text)).unwrap_or_default();
    let (max, title) = match metric {
        Metric::Entropy => (vmax, "Entropy (nats)".to_string()),
        Metric::KlToLast => (vmax, "KL(last layer ‖ layer) (nats)".to_string()),
        Metric::TopProbability => (1.0, "Top-1 probability".to_string()),
        Metric::TrackedProbability(i) => (1.0, format!("Probability of {}", token(i))),
        Metric::TrackedRank(i) => (fig.model.as_ref().map(|m| m.vocab as f32).unwrap_or(1e5), format!("Rank of {} (log scale)", token(i))),
    };
    Scale { metric, max, title }
}

#[component]
pub fn FigureView() -> impl IntoView {
    let state = expect_context::<AppState>();
    let container = NodeRef::<Div>::new();
    let overview = NodeRef::<Canvas>::new();
    let magnified = NodeRef::<Canvas>::new();
    let legend = NodeRef::<Canvas>::new();
    let width = RwSignal::new(900.0f64);
    let hover = RwSignal::new(None::<(usize, usize, f64, f64)>);

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
    let on_resize = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(measure);
    let _ = web_sys::window().unwrap().add_event_listener_with_callback("resize", on_resize.as_ref().unchecked_ref());
    on_resize.forget();

    let scale = Memo::new(move |_| state.figure.with(|f| scale_for(f, state.metric.get(), state.vmax.get())));
    let layout_now = move || {
        let (start, end) = state.range.get();
        let n_rows = state.figure.with(|f| f.n_rows);
        Layout::new(width.get(), start, end.max(start + 1), n_rows)
    };

    // Redraw whenever data, colouring, range, column or width change.
    Effect::new(move |_| {
        let w = width.get();
        let range = state.range.get();
        let column = state.column.get();
        let s = scale.get();
        state.figure.with(|fig| {
            if let Some(c) = overview.get() {
                draw::overview(&c, w, OVERVIEW_H, fig, &s, range, column);
            }
            if let Some(c) = magnified.get() {
                let l = Layout::new(w, range.0, range.1.max(range.0 + 1), fig.n_rows);
                if let Some(ctx) = draw::prepare(&c, w, l.height()) {
                    draw::magnified(&ctx, &l, fig, &s, column);
                }
            }
            if let Some(c) = legend.get() {
                if let Some(ctx) = draw::prepare(&c, 420.0, draw::LEGEND_H) {
                    draw::legend(&ctx, 10.0, 2.0, 380.0, &s, fig.ln_vocab());
                }
            }
        });
    });

    // Overview brush: drag to choose the magnified range; a click recentres it.
    let drag_from = RwSignal::new(None::<(usize, f64)>);
    let overview_pos = move |ev: &web_sys::PointerEvent| -> usize {
        let n = state.figure.with_untracked(|f| f.n_positions()).max(1);
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
                let n = state.figure.with_untracked(|f| f.n_positions());
                let (s, e) = state.range.get_untracked();
                let span = (e - s).max(1).min(n);
                let centre = overview_pos(&ev);
                let start = centre.saturating_sub(span / 2).min(n.saturating_sub(span));
                state.range.set((start, start + span));
            }
        }
        drag_from.set(None);
    };

    let on_hover = move |ev: web_sys::MouseEvent| {
        let l = layout_now();
        hover.set(l.cell_at(ev.offset_x() as f64, ev.offset_y() as f64).map(|(r, p)| (r, p, ev.client_x() as f64, ev.client_y() as f64)));
    };
    let on_click = move |ev: web_sys::MouseEvent| {
        let l = layout_now();
        if let Some(p) = l.position_at(ev.offset_x() as f64) {
            state.column.set(Some(p));
        }
    };

    let file_stem = move || {
        let f = state.figure.get_untracked();
        let model = f.model.map(|m| m.name).unwrap_or_else(|| "model".into());
        format!("loupe-{}", model.replace(|c: char| !c.is_ascii_alphanumeric(), "-"))
    };
    let export_json = move |_| {
        let report = export::report(&state.figure.get_untracked());
        export::download(&format!("{}.json", file_stem()), "application/json", &serde_json::to_string(&report).unwrap());
    };
    let export_svg = move |_| {
        let svg = state.figure.with_untracked(|f| export::svg(f, &scale.get_untracked(), &layout_now()));
        export::download(&format!("{}.svg", file_stem()), "image/svg+xml", &svg);
    };
    let export_png = move |_| {
        state.figure.with_untracked(|f| export::png(&format!("{}.png", file_stem()), f, &scale.get_untracked(), &layout_now()));
    };

    view! {
        <section class="panel figure" id="figure"
            data-n-rows=move || state.figure.with(|f| f.n_rows.to_string())
            data-n-positions=move || state.figure.with(|f| f.n_positions().to_string())
            data-rows-done=move || state.figure.with(|f| f.rows_done().to_string())
            data-complete=move || state.figure.with(|f| (f.complete() && f.done).to_string())
            data-range=move || { let (a, b) = state.range.get(); format!("{a},{b}") }
            data-template-positions=move || state.figure.with(|f| f.tokens.iter().enumerate().filter(|(_, t)| t.template).map(|(i, _)| i.to_string()).collect::<Vec<_>>().join(","))>
            <div class="figure-head">
                <h2>"Logit lens"</h2>
                <MetricControls/>
                <canvas node_ref=legend id="legend" aria-label="colour legend"></canvas>
            </div>
            <p class="hint">"Rows are layers: the embedding output (0) at the bottom, the model's own output on top. Columns are token positions. Boxed tokens on the axis come from the chat template. Drag on the overview to magnify; hover a cell for details; click a column to list every layer's top tokens."</p>
            <Show when=move || state.figure.with(|f| f.tokens.is_empty()) && !state.running.get()>
                <p class="empty" id="figure-empty">"Press “Run the lens” to decode every layer at every position of the prompt above."</p>
            </Show>
            <div node_ref=container class="canvas-box">
                <canvas node_ref=overview id="overview" aria-label="overview of all positions"
                    on:pointerdown=on_down on:pointermove=on_move on:pointerup=on_up></canvas>
                <canvas node_ref=magnified id="magnified" aria-label="magnified range"
                    on:mousemove=on_hover on:mouseleave=move |_| hover.set(None) on:click=on_click></canvas>
            </div>
            <div class="row exports">
                <button id="export-svg" on:click=export_svg disabled=move || !state.figure.with(|f| f.rows_done() > 0)>"Export SVG"</button>
                <button id="export-png" on:click=export_png disabled=move || !state.figure.with(|f| f.rows_done() > 0)>"Export PNG"</button>
                <button id="export-json" on:click=export_json disabled=move || !state.figure.with(|f| f.complete())>"Export JSON"</button>
            </div>
            <Tooltip hover=hover scale=scale/>
            <ColumnZoom/>
        </section>
    }
}

#[component]
fn MetricControls() -> impl IntoView {
    let state = expect_context::<AppState>();
    let encode = |m: Metric| match m {
        Metric::Entropy => "entropy".to_string(),
        Metric::TopProbability => "top1".to_string(),
        Metric::KlToLast => "kl".to_string(),
        Metric::TrackedProbability(i) => format!("prob:{i}"),
        Metric::TrackedRank(i) => format!("rank:{i}"),
    };
    let decode = |s: &str| -> Metric {
        match s.split_once(':') {
            Some(("prob", i)) => Metric::TrackedProbability(i.parse().unwrap_or(0)),
            Some(("rank", i)) => Metric::TrackedRank(i.parse().unwrap_or(0)),
            _ => match s {
                "top1" => Metric::TopProbability,
                "kl" => Metric::KlToLast,
                _ => Metric::Entropy,
            },
        }
    };
    view! {
        <label>"Colour by "
            <select id="metric" on:change=move |ev| state.metric.set(decode(&event_target_value(&ev)))>
                {move || {
                    let current = state.metric.get();
                    let mut options = vec![(Metric::Entropy, "entropy".to_string()), (Metric::TopProbability, "top-1 probability".to_string()), (Metric::KlToLast, "KL to the last layer".to_string())];
                    for (i, t) in state.figure.with(|f| f.tracked.clone()).iter().enumerate() {
                        options.push((Metric::TrackedProbability(i), format!("probability of {}", display(&t.text))));
                        options.push((Metric::TrackedRank(i), format!("rank of {}", display(&t.text))));
                    }
                    options.into_iter().map(|(m, label)| view! { <option value=encode(m) selected=current == m>{label}</option> }).collect_view()
                }}
            </select>
        </label>
        <label>" max "
            <input id="vmax" type="number" min="0.5" max="20" step="0.5" prop:value=move || state.vmax.get().to_string()
                on:input=move |ev| {
                    if let Ok(v) = event_target_value(&ev).parse::<f32>() {
                        if v > 0.0 { state.vmax.set(v) }
                    }
                }/>
        </label>
    }
}

/// Beside the pointer, flipped left or up where it would leave the window.
fn tooltip_position(x: f64, y: f64) -> String {
    let (w, h) = web_sys::window()
        .map(|w| (w.inner_width().ok().and_then(|v| v.as_f64()).unwrap_or(1e4), w.inner_height().ok().and_then(|v| v.as_f64()).unwrap_or(1e4)))
        .unwrap_or((1e4, 1e4));
    let left = if x + 380.0 > w { (x - 374.0).max(0.0) } else { x + 14.0 };
    let top = if y + 200.0 > h { (y - 190.0).max(0.0) } else { y + 14.0 };
    format!("left:{left}px;top:{top}px")
}

/// Details of the hovered cell: layer, position, token, entropy, value and the top-k.
#[component]
fn Tooltip(hover: RwSignal<Option<(usize, usize, f64, f64)>>, scale: Memo<Scale>) -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        {move || hover.get().and_then(|(r, p, x, y)| state.figure.with(|f| {
            let row = f.row(r)?;
            let token = f.tokens.get(p).map(|t| display(&t.text)).unwrap_or_default();
            let entropy = row.entropy.get(p).copied().unwrap_or(f32::NAN);
            let s = scale.get();
            let value = f.value(s.metric, r, p).map(|v| format_value(s.metric, v)).unwrap_or_default();
            let tops: Vec<(String, f32)> = row.top_texts.get(p).cloned().unwrap_or_default().into_iter()
                .zip(row.top_probs.get(p).cloned().unwrap_or_default()).collect();
            let top1 = tops.first().map(|t| t.0.clone()).unwrap_or_default();
            let top1_id = row.top_ids.get(p).and_then(|c| c.first()).copied().unwrap_or(0);
            let layer = if r == 0 { "embedding (0)".to_string() } else if r + 1 == f.n_rows { format!("{r} (output)") } else { r.to_string() };
            Some(view! {
                <div class="tooltip" id="tooltip" style=tooltip_position(x, y)
                    data-row=r data-pos=p data-entropy=format!("{entropy:.5}") data-top1=top1 data-top1-id=top1_id data-value=value.clone()>
                    <div><b>"layer "</b>{layer}<b>" · position "</b>{p}" "<code>{token}</code></div>
                    <div><b>"entropy "</b>{format!("{entropy:.3} nats")}{(s.metric != Metric::Entropy).then(|| format!(" · {}: {}", s.title, value))}</div>
                    <ol>{tops.into_iter().map(|(t, prob)| view! { <li><code>{display(&t)}</code>" "{format!("{prob:.3}")}</li> }).collect_view()}</ol>
                </div>
            })
        }))}
    }
}

/// Every layer's top tokens at the chosen position.
#[component]
fn ColumnZoom() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        {move || state.column.get().map(|p| state.figure.with(|f| {
            let token = f.tokens.get(p).cloned();
            let title = match &token {
                Some(t) => format!("Position {p}: {}{}", display(&t.text), if t.template { " (chat template)" } else { "" }),
                None => format!("Position {p}"),
            };
            let rows = (0..f.n_rows).rev().map(|r| {
                let cells = f.row(r).map(|row| {
                    let texts = row.top_texts.get(p).cloned().unwrap_or_default();
                    let probs = row.top_probs.get(p).cloned().unwrap_or_default();
                    let entropy = row.entropy.get(p).copied().unwrap_or(f32::NAN);
                    (texts.into_iter().zip(probs).collect::<Vec<_>>(), entropy)
                });
                view! {
                    <tr data-layer=r>
                        <th>{crate::layout::row_label(r)}</th>
                        <td class="h">{cells.as_ref().map(|c| format!("{:.2}", c.1)).unwrap_or_else(|| "…".into())}</td>
                        <td>{cells.map(|c| c.0.into_iter().map(|(t, prob)| view! {
                            <span class="cand"><code>{display(&t)}</code>" "{format!("{prob:.3}")}</span>
                        }).collect_view())}</td>
                    </tr>
                }
            }).collect_view();
            view! {
                <div class="zoom" id="column-zoom" data-pos=p>
                    <h3>{title}<button on:click=move |_| state.column.set(None)>"Close"</button></h3>
                    <table><thead><tr><th>"layer"</th><th>"H (nats)"</th><th>"top tokens (probability)"</th></tr></thead>
                    <tbody>{rows}</tbody></table>
                </div>
            }
        }))}
    }
}

