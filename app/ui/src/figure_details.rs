//! The figure's controls and read-outs: what colours the cells, the tooltip of the hovered cell,
//! and the column zoom listing every layer's top tokens at one position. Token strings are set as
//! text nodes, never as markup.

use crate::figure_data::Metric;
use crate::lifecycle::Lifecycle;
use crate::scale::{format_value, Palette, Scale};
use crate::state::AppState;
use crate::trajectory::{trajectories, TrajectoryChart};
use leptos::prelude::*;
use loupe_protocol::token_label::display;

/// A cell under the pointer: (row, position, client x, client y).
pub type Hover = Option<(usize, usize, f64, f64)>;

fn encode(m: Metric) -> String {
    match m {
        Metric::Entropy => "entropy".into(),
        Metric::TopProbability => "top1".into(),
        Metric::KlToLast => "kl".into(),
        Metric::TrackedProbability(i) => format!("prob:{i}"),
        Metric::TrackedRank(i) => format!("rank:{i}"),
        Metric::EntropyChange => "dentropy".into(),
        Metric::LogProbabilityChange(i) => format!("dlogp:{i}"),
    }
}

fn decode(s: &str) -> Metric {
    match s.split_once(':') {
        Some(("prob", i)) => Metric::TrackedProbability(i.parse().unwrap_or(0)),
        Some(("rank", i)) => Metric::TrackedRank(i.parse().unwrap_or(0)),
        Some(("dlogp", i)) => Metric::LogProbabilityChange(i.parse().unwrap_or(0)),
        _ => match s {
            "top1" => Metric::TopProbability,
            "kl" => Metric::KlToLast,
            "dentropy" => Metric::EntropyChange,
            _ => Metric::Entropy,
        },
    }
}

#[component]
pub fn MetricControls() -> impl IntoView {
    let state = expect_context::<AppState>();
    let options = move || {
        let mut options = vec![
            (Metric::Entropy, "entropy".to_string()),
            (Metric::TopProbability, "top-1 probability".to_string()),
            (Metric::KlToLast, "KL to the last layer".to_string()),
        ];
        let compared = state.figure.with(|f| f.compare.is_some());
        if compared {
            options.push((Metric::EntropyChange, "entropy change from the pinned run".to_string()));
        }
        for (i, t) in state.figure.with(|f| f.tracked().to_vec()).iter().enumerate() {
            options.push((Metric::TrackedProbability(i), format!("probability of {}", display(&t.text))));
            options.push((Metric::TrackedRank(i), format!("rank of {}", display(&t.text))));
            if compared {
                let label = format!("change in log-probability of {} from the pinned run", display(&t.text));
                options.push((Metric::LogProbabilityChange(i), label));
            }
        }
        let current = state.metric.get();
        options
            .into_iter()
            .map(|(m, label)| view! { <option value=encode(m) selected=current == m>{label}</option> })
            .collect_view()
    };
    view! {
        <label>"Colour by "
            <select id="metric" on:change=move |ev| state.metric.set(decode(&event_target_value(&ev)))>{options}</select>
        </label>
        <label>" colours "
            <select id="palette" on:change=move |ev| state.palette.set(if event_target_value(&ev) == "viridis" { Palette::Viridis } else { Palette::Diverging })>
                <option value="diverging" selected=move || state.palette.get() == Palette::Diverging>"red–blue (as in the papers)"</option>
                <option value="viridis" selected=move || state.palette.get() == Palette::Viridis>"colour-blind safe (viridis)"</option>
            </select>
        </label>
        <label>" max "
            <input id="vmax" type="number" min="0.5" max="20" step="0.5" prop:value=move || state.vmax.get().to_string()
                on:input=move |ev| {
                    if let Ok(v) = event_target_value(&ev).parse::<f32>() {
                        if v > 0.0 && v.is_finite() { state.vmax.set(v.min(100.0)) }
                    }
                }/>
        </label>
    }
}

/// Beside the pointer, flipped left or up where it would leave the window.
fn tooltip_position(x: f64, y: f64) -> String {
    let size = |v: Result<wasm_bindgen::JsValue, _>| v.ok().and_then(|v| v.as_f64()).unwrap_or(1e4);
    let (w, h) = web_sys::window().map(|w| (size(w.inner_width()), size(w.inner_height()))).unwrap_or((1e4, 1e4));
    let left = if x + 380.0 > w { (x - 374.0).max(0.0) } else { x + 14.0 };
    let top = if y + 200.0 > h { (y - 190.0).max(0.0) } else { y + 14.0 };
    format!("left:{left}px;top:{top}px")
}

/// Details of the hovered cell: layer, position, token, entropy, value and the top-k.
#[component]
pub fn Tooltip(hover: RwSignal<Hover>, scale: Memo<Scale>) -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        {move || hover.get().and_then(|(r, p, x, y)| state.figure.with(|f| {
            if !f.has_cell(r, p) {
                return None;
            }
            let token = f.tokens().get(p).map(|t| display(&t.text)).unwrap_or_default();
            let entropy = f.value(Metric::Entropy, r, p).unwrap_or(f32::NAN);
            let s = scale.get();
            let value = f.value(s.metric, r, p).map(|v| format_value(s.metric, v)).unwrap_or_default();
            let tops = f.top(r, p);
            let (top1_id, top1) = tops.first().map(|t| (t.0, t.1.clone())).unwrap_or_default();
            let layer = if r == 0 { "embedding (0)".to_string() } else if r + 1 == f.n_rows() { format!("{} (output)", f.row_label(r)) } else { f.row_label(r) };
            Some(view! {
                <div class="tooltip" id="tooltip" style=tooltip_position(x, y)
                    data-row=r data-pos=p data-entropy=format!("{entropy:.5}") data-top1=top1 data-top1-id=top1_id data-value=value.clone()>
                    <div><b>"layer "</b>{layer}<b>" · position "</b>{p}" "<code>{token}</code></div>
                    <div><b>"entropy "</b>{format!("{entropy:.3} nats")}{(s.metric != Metric::Entropy).then(|| format!(" · {}: {}", s.title, value))}</div>
                    <ol>{tops.into_iter().map(|(_, t, prob)| view! { <li><code>{display(&t)}</code>" "{format!("{prob:.3}")}</li> }).collect_view()}</ol>
                </div>
            })
        }))}
    }
}

/// Every layer's top tokens at the chosen position; clicking a token tracks it (and runs again).
#[component]
pub fn ColumnZoom() -> impl IntoView {
    let state = expect_context::<AppState>();
    let life = expect_context::<Lifecycle>();
    view! {
        {move || state.column.get().map(|p| state.figure.with(|f| {
            let title = match f.tokens().get(p) {
                Some(t) => format!("Position {p}: {}{}", display(&t.text), if t.template { " (chat template)" } else { "" }),
                None => format!("Position {p}"),
            };
            let can_track = state.model.with(Option::is_some) && !state.running.get();
            let rows = (0..f.n_rows()).rev().map(|r| {
                let entropy = f.value(Metric::Entropy, r, p);
                let pieces = f.top_pieces(r, p);
                let tops = f.top(r, p).into_iter().zip(pieces).map(|((_, t, prob), piece)| view! {
                    <button class="cand" disabled=!can_track title=format!("track {} (runs the lens again)", display(&t))
                        on:click=move |_| life.track_token(&piece)>
                        <code>{display(&t)}</code>" "{format!("{prob:.3}")}
                    </button>
                }).collect_view();
                view! {
                    <tr data-layer=r>
                        <th>{f.row_label(r)}</th>
                        <td class="h">{entropy.map(|h| format!("{h:.2}")).unwrap_or_else(|| "…".into())}</td>
                        <td>{tops}</td>
                    </tr>
                }
            }).collect_view();
            view! {
                <div class="zoom" id="column-zoom" data-pos=p>
                    <h3>{title}<button class="close" on:click=move |_| state.column.set(None) aria-label="close the column">"×"</button></h3>
                    <TrajectoryChart lines=trajectories(f, p) n_rows=f.n_rows()/>
                    <table><thead><tr><th>"layer"</th><th>"H (nats)"</th><th>"top tokens (click one to track it)"</th></tr></thead>
                    <tbody>{rows}</tbody></table>
                </div>
            }
        }))}
    }
}
