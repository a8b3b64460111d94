//! Canvas 2D drawing of the figure: the overview as one pixel per cell scaled up, the magnified
//! view with cell labels and the token axis, and the colour legend. Token strings are drawn with
//! fillText, never parsed as markup.

use crate::figure_data::{FigureData, Metric};
use crate::labels::fit;
use crate::layout::{self, Layout};
use crate::scale::{css, text_colour, Scale};
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

pub const LABEL_FONT: &str = "11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
pub const TEMPLATE_COLOUR: &str = "#c25e00";

pub fn context(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas.get_context("2d").ok().flatten()?.dyn_into().ok()
}

fn device_ratio() -> f64 {
    web_sys::window().map(|w| w.device_pixel_ratio()).unwrap_or(1.0).max(1.0)
}

/// Sizes a canvas for `css_w × css_h` CSS pixels at the device's resolution; returns its context
/// scaled so drawing uses CSS pixels.
pub fn prepare(canvas: &HtmlCanvasElement, css_w: f64, css_h: f64) -> Option<CanvasRenderingContext2d> {
    let ratio = device_ratio();
    canvas.set_width((css_w * ratio).round() as u32);
    canvas.set_height((css_h * ratio).round() as u32);
    let style = canvas.style();
    let _ = style.set_property("width", &format!("{css_w}px"));
    let _ = style.set_property("height", &format!("{css_h}px"));
    let ctx = context(canvas)?;
    let _ = ctx.set_transform(ratio, 0.0, 0.0, ratio, 0.0, 0.0);
    Some(ctx)
}

/// The overview: every position and row, one pixel per cell, stretched to the canvas, with the
/// magnified range and the zoomed column marked.
pub fn overview(canvas: &HtmlCanvasElement, width: f64, height: f64, fig: &FigureData, scale: &Scale, range: (usize, usize), column: Option<usize>) {
    let Some(ctx) = prepare(canvas, width, height) else { return };
    ctx.clear_rect(0.0, 0.0, width, height);
    let (n, rows) = (fig.n_positions(), fig.n_rows);
    if n == 0 || rows == 0 {
        return;
    }
    let mut pixels = vec![0u8; n * rows * 4];
    for r in 0..rows {
        let y = rows - 1 - r;
        for p in 0..n {
            let c = scale.colour(fig.value(scale.metric, r, p));
            let i = (y * n + p) * 4;
            pixels[i..i + 4].copy_from_slice(&[c[0], c[1], c[2], 255]);
        }
    }
    let Ok(image) = web_sys::ImageData::new_with_u8_clamped_array_and_sh(Clamped(&pixels), n as u32, rows as u32) else { return };
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let Ok(off) = document.create_element("canvas") else { return };
    let off: HtmlCanvasElement = off.unchecked_into();
    off.set_width(n as u32);
    off.set_height(rows as u32);
    let Some(off_ctx) = context(&off) else { return };
    let _ = off_ctx.put_image_data(&image, 0.0, 0.0);
    ctx.set_image_smoothing_enabled(false);
    let _ = ctx.draw_image_with_html_canvas_element_and_dw_and_dh(&off, 0.0, 0.0, width, height);

    let x = |p: usize| p as f64 / n as f64 * width;
    ctx.set_fill_style_str("rgba(0,0,0,0.28)");
    ctx.fill_rect(0.0, 0.0, x(range.0), height);
    ctx.fill_rect(x(range.1), 0.0, width - x(range.1), height);
    ctx.set_stroke_style_str("#111");
    ctx.set_line_width(2.0);
    ctx.stroke_rect(x(range.0) + 1.0, 1.0, (x(range.1) - x(range.0) - 2.0).max(1.0), height - 2.0);
    if fig.prompt_len > 0 && fig.prompt_len < n {
        ctx.set_stroke_style_str("#000");
        ctx.set_line_width(1.0);
        let _ = ctx.set_line_dash(&js_sys::Array::of2(&4.into(), &3.into()));
        ctx.begin_path();
        ctx.move_to(x(fig.prompt_len), 0.0);
        ctx.line_to(x(fig.prompt_len), height);
        ctx.stroke();
        let _ = ctx.set_line_dash(&js_sys::Array::new());
    }
    if let Some(c) = column.filter(|&c| c < n) {
        ctx.set_fill_style_str("rgba(255,200,0,0.9)");
        ctx.fill_rect(x(c), 0.0, (x(c + 1) - x(c)).max(2.0), height);
    }
}

/// The magnified range: coloured cells labelled with their top-1 token, layer numbers, and the
/// tokens along the x axis with chat-template tokens boxed.
pub fn magnified(ctx: &CanvasRenderingContext2d, l: &Layout, fig: &FigureData, scale: &Scale, column: Option<usize>) {
    ctx.set_fill_style_str("#fff");
    ctx.fill_rect(0.0, 0.0, l.width, l.height());
    ctx.set_font(LABEL_FONT);
    ctx.set_text_baseline("middle");
    let chars = l.label_chars();
    for r in 0..l.n_rows {
        let y = l.y(r);
        for p in l.start..l.end {
            let colour = scale.colour(fig.value(scale.metric, r, p));
            ctx.set_fill_style_str(&css(colour));
            let x = l.x(p);
            ctx.fill_rect(x, y, l.cell_w + 0.5, layout::ROW_H + 0.5);
            if l.labelled() {
                if let Some(top) = fig.top1_text(r, p) {
                    ctx.set_fill_style_str(text_colour(colour));
                    ctx.set_text_align("center");
                    let _ = ctx.fill_text(&fit(top, chars), x + l.cell_w / 2.0, y + layout::ROW_H / 2.0 + 0.5);
                }
            }
        }
    }
    // Layer numbers: every row when they fit, the ends always.
    ctx.set_fill_style_str("#333");
    ctx.set_text_align("right");
    let every = if l.n_rows > 40 { 5 } else { 1 };
    for r in 0..l.n_rows {
        if r % every == 0 || r == l.n_rows - 1 {
            let _ = ctx.fill_text(&layout::row_label(r), layout::LEFT - 6.0, l.y(r) + layout::ROW_H / 2.0);
        }
    }
    // Prompt / answer boundary.
    if fig.prompt_len > l.start && fig.prompt_len < l.end {
        let x = l.x(fig.prompt_len);
        ctx.set_stroke_style_str("#000");
        ctx.set_line_width(2.0);
        ctx.begin_path();
        ctx.move_to(x, layout::TOP);
        ctx.line_to(x, l.grid_bottom() + 6.0);
        ctx.stroke();
    }
    if let Some(c) = column.filter(|&c| c >= l.start && c < l.end) {
        ctx.set_stroke_style_str("#111");
        ctx.set_line_width(2.0);
        ctx.stroke_rect(l.x(c) + 1.0, layout::TOP + 1.0, l.cell_w - 2.0, l.grid_bottom() - layout::TOP - 2.0);
    }
    axis(ctx, l, fig);
}

/// Tokens under their columns, rotated; template tokens boxed so the dummy positions stand out.
fn axis(ctx: &CanvasRenderingContext2d, l: &Layout, fig: &FigureData) {
    let every = (12.0 / l.cell_w).ceil().max(1.0) as usize;
    let angle = -std::f64::consts::FRAC_PI_3;
    for p in (l.start..l.end).filter(|p| (p - l.start) % every == 0) {
        let Some(t) = fig.tokens.get(p) else { continue };
        let label = fit(&t.text, 14);
        let (x, y) = (l.x(p) + l.cell_w / 2.0, l.grid_bottom() + 6.0);
        ctx.save();
        let _ = ctx.translate(x, y);
        let _ = ctx.rotate(angle);
        ctx.set_text_align("right");
        ctx.set_text_baseline("middle");
        let w = ctx.measure_text(&label).map(|m| m.width()).unwrap_or(label.chars().count() as f64 * layout::CHAR_W);
        if t.template {
            ctx.set_stroke_style_str(TEMPLATE_COLOUR);
            ctx.set_line_width(1.0);
            ctx.stroke_rect(-w - 3.0, -7.0, w + 5.0, 14.0);
            ctx.set_fill_style_str(TEMPLATE_COLOUR);
        } else if p >= fig.prompt_len && fig.prompt_len > 0 {
            ctx.set_fill_style_str("#0b5394");
        } else {
            ctx.set_fill_style_str("#111");
        }
        let _ = ctx.fill_text(&label, 0.0, 0.0);
        ctx.restore();
    }
}

/// The colour bar with ticks and title; for entropy, ln V (the uniform distribution) is marked.
pub fn legend(ctx: &CanvasRenderingContext2d, x0: f64, y0: f64, width: f64, scale: &Scale, ln_vocab: Option<f32>) {
    let bar_h = 12.0;
    ctx.set_font("12px system-ui, sans-serif");
    ctx.set_fill_style_str("#111");
    ctx.set_text_align("left");
    ctx.set_text_baseline("alphabetic");
    let _ = ctx.fill_text(&scale.title, x0, y0 + 11.0);
    let top = y0 + 16.0;
    let steps = width.max(1.0) as usize;
    for i in 0..steps {
        let t = i as f32 / (steps - 1).max(1) as f32;
        ctx.set_fill_style_str(&css(scale.bar_colour(t)));
        ctx.fill_rect(x0 + i as f64, top, 1.5, bar_h);
    }
    ctx.set_stroke_style_str("#555");
    ctx.set_line_width(1.0);
    ctx.stroke_rect(x0, top, width, bar_h);
    ctx.set_font("11px system-ui, sans-serif");
    ctx.set_fill_style_str("#111");
    ctx.set_text_align("center");
    for (v, label) in scale.ticks() {
        let x = x0 + scale.along(v) as f64 * width;
        ctx.begin_path();
        ctx.move_to(x, top + bar_h);
        ctx.line_to(x, top + bar_h + 4.0);
        ctx.stroke();
        let _ = ctx.fill_text(&label, x, top + bar_h + 15.0);
    }
    // ln V, the entropy of the uniform distribution: marked on the bar, or at its end when beyond.
    if let (Metric::Entropy, Some(ln_v)) = (scale.metric, ln_vocab) {
        let inside = ln_v <= scale.max;
        let x = x0 + (ln_v / scale.max).min(1.0) as f64 * width;
        ctx.set_stroke_style_str("#000");
        ctx.set_line_width(2.0);
        ctx.begin_path();
        ctx.move_to(x, top - 3.0);
        ctx.line_to(x, top + bar_h + 3.0);
        ctx.stroke();
        let label = if inside { format!("ln V = {ln_v:.2}") } else { format!("ln V = {ln_v:.2} →") };
        ctx.set_text_align("right");
        let _ = ctx.fill_text(&label, x0 + width, top - 4.0);
    }
}

pub const LEGEND_H: f64 = 50.0;
