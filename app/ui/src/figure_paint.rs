//! The figure drawn once, against `Painter`: the magnified range (coloured cells labelled with their
//! top-1 token, layer numbers, the prompt/answer divider, the chosen column), the token axis with
//! chat-template tokens boxed, the colour legend, the zoomed column's list, and the seed's composite
//! of them all with the overview. The screen, the SVG and the PNG all come from these functions.

use crate::figure_data::{FigureData, Metric};
use crate::layout::{self, Layout, GAP, SIDE_W};
use crate::overview::{self, OVERVIEW_H};
use crate::paint::{Anchor, Baseline, Font, Painter, Text};
use crate::scale::{css, text_colour, Scale, COLUMN_COLOUR, RANGE_COLOUR};
use loupe_protocol::token_label::{display, fit};

pub const TEMPLATE_COLOUR: &str = "#c25e00";
pub const ANSWER_COLOUR: &str = "#0b5394";
pub const INK: &str = "#111";
pub const LEGEND_H: f64 = 50.0;
/// Legend width beside the magnified view.
pub const LEGEND_W: f64 = SIDE_W - 40.0;
/// Line height of the painted column list.
const LIST_ROW_H: f64 = 15.0;
const LIST_HEAD_H: f64 = 36.0;

/// The magnified range with its axis; `column` is the zoomed position, `focus` the keyboard's cell.
pub fn magnified(
    p: &mut dyn Painter,
    l: &Layout,
    fig: &FigureData,
    scale: &Scale,
    column: Option<usize>,
    focus: Option<(usize, usize)>,
) {
    p.fill_rect(0.0, 0.0, l.width, l.height(), "#fff");
    let chars = l.label_chars();
    for r in 0..l.n_rows {
        let y = l.y(r);
        for pos in l.start..l.end {
            let value = fig.value(scale.metric, r, pos);
            let colour = scale.colour(value);
            let x = l.x(pos);
            p.fill_rect(x, y, l.cell_w + 0.5, layout::ROW_H + 0.5, &css(colour));
            if value.is_some_and(f32::is_nan) {
                // Hatched, so "not a number" never passes for a colour of the scale.
                p.line((x, y + layout::ROW_H), (x + l.cell_w.min(layout::ROW_H), y), "#ddd", 1.0, false);
                p.line(
                    (x + l.cell_w / 2.0, y + layout::ROW_H),
                    (x + l.cell_w, y + layout::ROW_H / 2.0),
                    "#ddd",
                    1.0,
                    false,
                );
            }
            if let Some(top) = fig.top1_text(r, pos).filter(|_| l.labelled()) {
                p.text(&Text {
                    x: x + l.cell_w / 2.0,
                    y: y + layout::ROW_H / 2.0 + 0.5,
                    text: &fit(top, chars),
                    font: Font::LABEL,
                    colour: text_colour(colour),
                    anchor: Anchor::Middle,
                    baseline: Baseline::Middle,
                });
            }
        }
    }
    // Layer names: every row (18 px rows leave room), every other one past 90 rows, the ends always.
    let every = if l.n_rows > 90 { 2 } else { 1 };
    for r in (0..l.n_rows).filter(|&r| r % every == 0 || r + 1 == l.n_rows) {
        let label = fig.row_label(r);
        p.text(&Text {
            x: layout::LEFT - 6.0,
            y: l.y(r) + layout::ROW_H / 2.0,
            text: &label,
            font: Font::LABEL,
            colour: "#333",
            anchor: Anchor::End,
            baseline: Baseline::Middle,
        });
    }
    let prompt_len = fig.prompt_len();
    if prompt_len > l.start && prompt_len < l.end {
        let x = l.x(prompt_len);
        p.line((x, layout::TOP), (x, l.grid_bottom() + 6.0), "#000", 2.0, false);
    }
    if let Some(c) = column.filter(|&c| c >= l.start && c < l.end) {
        let top = layout::TOP + 1.0;
        p.stroke_rect(l.x(c) + 1.0, top, l.cell_w - 2.0, l.grid_bottom() - top - 1.0, COLUMN_COLOUR, 3.0);
    }
    p.stroke_rect(1.0, 1.0, l.width - 2.0, l.height() - 2.0, RANGE_COLOUR, 2.0);
    if let Some((r, pos)) = focus.filter(|&(r, pos)| r < l.n_rows && pos >= l.start && pos < l.end) {
        p.stroke_rect(l.x(pos) + 1.5, l.y(r) + 1.5, l.cell_w - 3.0, layout::ROW_H - 3.0, "#ffb000", 3.0);
    }
    axis(p, l, fig);
}

/// Tokens under their columns, rotated; template tokens boxed so the dummy positions stand out,
/// the answer's tokens in blue.
fn axis(p: &mut dyn Painter, l: &Layout, fig: &FigureData) {
    let every = (12.0 / l.cell_w).ceil().max(1.0) as usize;
    let prompt_len = fig.prompt_len();
    for pos in (l.start..l.end).filter(|pos| (pos - l.start).is_multiple_of(every)) {
        let Some(t) = fig.tokens().get(pos) else { continue };
        let label = fit(&t.text, 14);
        let colour = if t.template {
            TEMPLATE_COLOUR
        } else if pos >= prompt_len && prompt_len > 0 {
            ANSWER_COLOUR
        } else {
            INK
        };
        let w = Font::LABEL.width(&label);
        p.rotated(l.x(pos) + l.cell_w / 2.0, l.grid_bottom() + 6.0, -60.0, &mut |p| {
            if t.template {
                p.stroke_rect(-w - 3.0, -7.0, w + 5.0, 14.0, TEMPLATE_COLOUR, 1.0);
            }
            p.text(&Text {
                x: 0.0,
                y: 0.0,
                text: &label,
                font: Font::LABEL,
                colour,
                anchor: Anchor::End,
                baseline: Baseline::Middle,
            });
        });
    }
}

/// The colour bar with ticks and title; for entropy, ln V (the uniform distribution) is marked,
/// at the bar's end with an arrow when it lies beyond the range.
pub fn legend(p: &mut dyn Painter, x0: f64, y0: f64, width: f64, scale: &Scale, ln_vocab: Option<f32>) {
    let (top, bar_h) = (y0 + 16.0, 12.0);
    fn title(text: &str, x: f64, y: f64, anchor: Anchor) -> Text<'_> {
        Text { x, y, text, font: Font::TITLE, colour: INK, anchor, baseline: Baseline::Alphabetic }
    }
    p.text(&title(&scale.title, x0, y0 + 11.0, Anchor::Start));
    let steps = 96;
    for i in 0..steps {
        let t = i as f32 / (steps - 1) as f32;
        let w = width / steps as f64;
        p.fill_rect(x0 + i as f64 * w, top, w + 0.4, bar_h, &css(scale.bar_colour(t)));
    }
    p.stroke_rect(x0, top, width, bar_h, "#555", 1.0);
    for (v, label) in scale.ticks() {
        let x = x0 + scale.along(v) as f64 * width;
        p.line((x, top + bar_h), (x, top + bar_h + 4.0), "#555", 1.0, false);
        p.text(&Text {
            x,
            y: top + bar_h + 15.0,
            text: &label,
            font: Font::LEGEND,
            colour: INK,
            anchor: Anchor::Middle,
            baseline: Baseline::Alphabetic,
        });
    }
    if let (Metric::Entropy, Some(ln_v)) = (scale.metric, ln_vocab) {
        let x = x0 + (ln_v / scale.max).min(1.0) as f64 * width;
        p.line((x, top - 3.0), (x, top + bar_h + 3.0), "#000", 2.0, false);
        let arrow = if ln_v > scale.max { " →" } else { "" };
        p.text(&title(&format!("ln V = {ln_v:.2}{arrow}"), x0 + width, y0 + 11.0, Anchor::End));
    }
}

/// The zoomed column as a list (the screen shows it as a table beside the grid): each layer's
/// entropy and top tokens, the output on top. Returns the height used.
pub fn column_list(p: &mut dyn Painter, (x0, y0, width): (f64, f64, f64), fig: &FigureData, pos: usize) -> f64 {
    let height = column_list_height(fig);
    p.fill_rect(x0, y0, width, height, "#fff");
    let token = fig.tokens().get(pos).map(|t| display(&t.text)).unwrap_or_default();
    let title = format!("Position {pos}: {}", fit(&token, 18));
    p.text(&text(x0 + 8.0, y0 + 12.0, &title, Font::TITLE, INK, Anchor::Start));
    let head = y0 + LIST_HEAD_H - 8.0;
    p.text(&text(x0 + 8.0, head, "layer", Font::LEGEND, "#555", Anchor::Start));
    p.text(&text(x0 + 74.0, head, "H", Font::LEGEND, "#555", Anchor::End));
    p.text(&text(x0 + 84.0, head, "top tokens", Font::LEGEND, "#555", Anchor::Start));
    let chars = ((width - 92.0) / 3.0 / Font::LABEL.width("m")).floor().max(3.0) as usize;
    for (i, r) in (0..fig.n_rows()).rev().enumerate() {
        let y = y0 + LIST_HEAD_H + (i as f64 + 0.5) * LIST_ROW_H;
        p.text(&text(x0 + 8.0, y, &fig.row_label(r), Font::LABEL, "#333", Anchor::Start));
        let entropy = fig.value(Metric::Entropy, r, pos).map(|h| format!("{h:.2}")).unwrap_or_else(|| "…".into());
        p.text(&text(x0 + 74.0, y, &entropy, Font::LABEL, INK, Anchor::End));
        let tops: Vec<String> = fig.top(r, pos).iter().take(3).map(|t| fit(&display(&t.1), chars)).collect();
        p.text(&text(x0 + 84.0, y, &tops.join(" "), Font::LABEL, INK, Anchor::Start));
    }
    p.stroke_rect(x0 + 1.0, y0 + 1.0, width - 2.0, height - 2.0, COLUMN_COLOUR, 2.0);
    height
}

fn text<'a>(x: f64, y: f64, text: &'a str, font: Font, colour: &'a str, anchor: Anchor) -> Text<'a> {
    Text { x, y, text, font, colour, anchor, baseline: Baseline::Middle }
}

pub fn column_list_height(fig: &FigureData) -> f64 {
    LIST_HEAD_H + fig.n_rows() as f64 * LIST_ROW_H + 6.0
}

/// The seed's composite, as the exports show it: the overview on top (A), the magnified range
/// framed below it (B) with the legend at its side, and the zoomed column's list beside it (C).
pub fn composite(p: &mut dyn Painter, l: &Layout, fig: &FigureData, scale: &Scale, column: Option<usize>) -> f64 {
    let width = composite_width(l);
    let height = composite_height(l, fig, column);
    p.fill_rect(0.0, 0.0, width, height, "#fff");
    overview::paint(p, (0.0, 0.0, width), fig, scale, (l.start, l.end), column);
    let top = OVERVIEW_H + GAP;
    p.rotated(0.0, top, 0.0, &mut |p| magnified(p, l, fig, scale, column, None));
    let side = l.width + GAP;
    legend(p, side + 10.0, top, LEGEND_W, scale, fig.ln_vocab());
    if let Some(pos) = column.filter(|&c| c < fig.n_positions()) {
        column_list(p, (side, top + LEGEND_H + GAP, SIDE_W), fig, pos);
    }
    height
}

pub fn composite_width(l: &Layout) -> f64 {
    l.width + GAP + SIDE_W
}

pub fn composite_height(l: &Layout, fig: &FigureData, column: Option<usize>) -> f64 {
    let side = LEGEND_H + column.map(|_| GAP + column_list_height(fig)).unwrap_or(0.0);
    OVERVIEW_H + GAP + l.height().max(side)
}
