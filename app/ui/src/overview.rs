//! The overview of the whole sequence (A in the seed's composite): every layer at every position,
//! one column of cells per screen pixel at most, with the magnified range framed in its colour and
//! the zoomed column marked in its own. Painted against `Painter`, so the screen and the exports
//! show the same picture.

use crate::figure_data::FigureData;
use crate::paint::Painter;
use crate::scale::{css, Scale, COLUMN_COLOUR, RANGE_COLOUR};

pub const OVERVIEW_H: f64 = 80.0;

/// Paints the overview into the box (x0, y0, width, OVERVIEW_H).
pub fn paint(
    p: &mut dyn Painter,
    (x0, y0, width): (f64, f64, f64),
    fig: &FigureData,
    scale: &Scale,
    range: (usize, usize),
    column: Option<usize>,
) {
    let height = OVERVIEW_H;
    p.fill_rect(x0, y0, width, height, "#fff");
    let (n, rows) = (fig.n_positions(), fig.n_rows());
    if n == 0 || rows == 0 {
        return;
    }
    // At most one bucket per pixel, each showing its first position (nearest-neighbour, as an image
    // would be scaled); runs of one colour along a row become one rectangle, which keeps the SVG small.
    let buckets = n.min(width.floor().max(1.0) as usize);
    let x = |p: usize| x0 + p as f64 / n as f64 * width;
    let row_h = height / rows as f64;
    for r in 0..rows {
        let y = y0 + (rows - 1 - r) as f64 * row_h;
        let mut run: Option<(usize, [u8; 3])> = None;
        for b in 0..=buckets {
            let colour = (b < buckets).then(|| scale.colour(fig.value(scale.metric, r, b * n / buckets)));
            match (run, colour) {
                (Some((_, c)), Some(next)) if c == next => {}
                (previous, next) => {
                    if let Some((from, c)) = previous {
                        let (left, right) = (x(from * n / buckets), x(b * n / buckets));
                        p.fill_rect(left, y, right - left + 0.3, row_h + 0.3, &css(c));
                    }
                    run = next.map(|c| (b, c));
                }
            }
        }
    }
    p.fill_rect(x0, y0, x(range.0) - x0, height, "rgba(0,0,0,0.28)");
    p.fill_rect(x(range.1), y0, x0 + width - x(range.1), height, "rgba(0,0,0,0.28)");
    p.stroke_rect(
        x(range.0) + 1.0,
        y0 + 1.0,
        (x(range.1) - x(range.0) - 2.0).max(1.0),
        height - 2.0,
        RANGE_COLOUR,
        2.0,
    );
    let prompt_len = fig.prompt_len();
    if prompt_len > 0 && prompt_len < n {
        p.line((x(prompt_len), y0), (x(prompt_len), y0 + height), "#000", 1.0, true);
    }
    if let Some(c) = column.filter(|&c| c < n) {
        p.fill_rect(x(c), y0, (x(c + 1) - x(c)).max(2.0), height, COLUMN_COLOUR);
    }
}

/// The position under an x coordinate of an overview `width` pixels wide.
pub fn position_at(x: f64, width: f64, n_positions: usize) -> usize {
    let n = n_positions.max(1);
    ((x / width) * n as f64).floor().clamp(0.0, (n - 1) as f64) as usize
}
