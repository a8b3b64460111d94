//! The trajectory view of one column (the NDIF workbench's default beside the heatmap): every token
//! that is top-1 at some layer of the column, with its probability across layers. Probabilities come
//! from each cell's top-k, so a token outside a layer's top-k has no point there (it is below that
//! cell's k-th probability); tracking it gives every layer.

use crate::figure_data::FigureData;
use leptos::prelude::*;
use loupe_protocol::token_label::{display, fit};

/// One token's probability at each row of a column; none where it is outside the row's top-k.
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    pub id: u32,
    pub text: String,
    pub probs: Vec<Option<f32>>,
}

/// The distinct top-1 tokens of column `pos`, in the order they first become top-1 going up.
pub fn trajectories(fig: &FigureData, pos: usize) -> Vec<Trajectory> {
    let rows = fig.n_rows();
    let mut out: Vec<Trajectory> = Vec::new();
    for r in 0..rows {
        if let Some((id, text, _)) = fig.top(r, pos).first() {
            if !out.iter().any(|t| t.id == *id) {
                out.push(Trajectory { id: *id, text: text.clone(), probs: Vec::new() });
            }
        }
    }
    for t in &mut out {
        t.probs = (0..rows).map(|r| fig.top(r, pos).iter().find(|c| c.0 == t.id).map(|c| c.2)).collect();
    }
    out
}

/// Categorical colours (Okabe–Ito, readable by colour-blind viewers).
const COLOURS: [&str; 8] = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442"];
const W: f64 = 280.0;
const H: f64 = 120.0;
const PAD: f64 = 24.0;

/// The chart: x = layer (embedding on the left, output on the right), y = probability 0–1.
#[component]
pub fn TrajectoryChart(lines: Vec<Trajectory>, n_rows: usize) -> impl IntoView {
    let x = move |r: usize| PAD + r as f64 / (n_rows.max(2) - 1) as f64 * (W - PAD - 6.0);
    let y = |p: f32| 6.0 + (1.0 - p as f64) * (H - PAD - 6.0);
    // Unbroken stretches of each line (a gap where the token leaves the top-k).
    let segments = |probs: &[Option<f32>]| -> Vec<String> {
        let mut out = Vec::new();
        let mut current = Vec::new();
        for (r, p) in probs.iter().enumerate() {
            match p {
                Some(p) => current.push(format!("{:.1},{:.1}", x(r), y(*p))),
                None if !current.is_empty() => out.push(std::mem::take(&mut current).join(" ")),
                None => {}
            }
        }
        if !current.is_empty() {
            out.push(current.join(" "));
        }
        out
    };
    let shown: Vec<(usize, Trajectory)> = lines.into_iter().take(COLOURS.len()).enumerate().collect();
    let count = shown.len();
    let lines_svg = shown.clone();
    view! {
        <div class="trajectory" id="trajectory" data-lines=count>
            <svg width=W height=H role="img" aria-label="probability of each top-1 token across layers">
                <line x1=PAD y1=y(0.0) x2=W - 6.0 y2=y(0.0) stroke="#999"/>
                <line x1=PAD y1=y(0.0) x2=PAD y2=y(1.0) stroke="#999"/>
                <text x=PAD - 3.0 y=y(1.0) + 4.0 text-anchor="end" font-size="10">"1"</text>
                <text x=PAD - 3.0 y=y(0.0) text-anchor="end" font-size="10">"0"</text>
                <text x=PAD y=H - 8.0 font-size="10">"emb"</text>
                <text x=W - 6.0 y=H - 8.0 text-anchor="end" font-size="10">"output"</text>
                {lines_svg.iter().map(|(i, t)| {
                    let colour = COLOURS[*i];
                    segments(&t.probs).into_iter().map(|points| view! {
                        <polyline points=points fill="none" stroke=colour stroke-width="1.8"/>
                    }).collect_view()
                }).collect_view()}
            </svg>
            <div class="trajectory-keys">
                {shown.into_iter().map(|(i, t)| view! {
                    <span class="key" data-id=t.id><span class="swatch" style=format!("background:{}", COLOURS[i])></span><code>{fit(&display(&t.text), 14)}</code></span>
                }).collect_view()}
            </div>
        </div>
    }
}
