//! The overview of the whole sequence: one pixel per cell, stretched to the canvas without
//! smoothing, with the magnified range and the zoomed column marked. Canvas only: at thousands of
//! positions an image is the right tool, and the exports show the magnified range instead.

use crate::figure_data::FigureData;
use crate::paint::canvas::{context, CanvasPainter};
use crate::paint::Painter;
use crate::scale::Scale;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::HtmlCanvasElement;

pub const OVERVIEW_H: f64 = 110.0;

pub fn draw(
    canvas: &HtmlCanvasElement,
    width: f64,
    fig: &FigureData,
    scale: &Scale,
    range: (usize, usize),
    column: Option<usize>,
) {
    let height = OVERVIEW_H;
    let Some(mut painter) = CanvasPainter::for_screen(canvas, width, height) else { return };
    painter.context().clear_rect(0.0, 0.0, width, height);
    let (n, rows) = (fig.n_positions(), fig.n_rows());
    if n == 0 || rows == 0 {
        return;
    }
    let Some(cells) = cell_image(fig, scale) else { return };
    let ctx = painter.context();
    ctx.set_image_smoothing_enabled(false);
    let _ = ctx.draw_image_with_html_canvas_element_and_dw_and_dh(&cells, 0.0, 0.0, width, height);

    let x = |p: usize| p as f64 / n as f64 * width;
    painter.fill_rect(0.0, 0.0, x(range.0), height, "rgba(0,0,0,0.28)");
    painter.fill_rect(x(range.1), 0.0, width - x(range.1), height, "rgba(0,0,0,0.28)");
    painter.stroke_rect(x(range.0) + 1.0, 1.0, (x(range.1) - x(range.0) - 2.0).max(1.0), height - 2.0, "#111", 2.0);
    let prompt_len = fig.prompt_len();
    if prompt_len > 0 && prompt_len < n {
        painter.line((x(prompt_len), 0.0), (x(prompt_len), height), "#000", 1.0, true);
    }
    if let Some(c) = column.filter(|&c| c < n) {
        painter.fill_rect(x(c), 0.0, (x(c + 1) - x(c)).max(2.0), height, "rgba(255,200,0,0.9)");
    }
}

/// An offscreen canvas with one pixel per cell, the output row on top.
fn cell_image(fig: &FigureData, scale: &Scale) -> Option<HtmlCanvasElement> {
    let (n, rows) = (fig.n_positions(), fig.n_rows());
    let mut pixels = vec![0u8; n * rows * 4];
    for r in 0..rows {
        let y = rows - 1 - r;
        for p in 0..n {
            let c = scale.colour(fig.value(scale.metric, r, p));
            let i = (y * n + p) * 4;
            pixels[i..i + 4].copy_from_slice(&[c[0], c[1], c[2], 255]);
        }
    }
    let image = web_sys::ImageData::new_with_u8_clamped_array_and_sh(Clamped(&pixels), n as u32, rows as u32).ok()?;
    let off: HtmlCanvasElement = web_sys::window()?.document()?.create_element("canvas").ok()?.unchecked_into();
    off.set_width(n as u32);
    off.set_height(rows as u32);
    context(&off)?.put_image_data(&image, 0.0, 0.0).ok()?;
    Some(off)
}
