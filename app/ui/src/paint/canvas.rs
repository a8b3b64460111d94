//! The canvas back end of `Painter`: Canvas 2D calls (fillText for token strings, so they are never
//! parsed as markup).

use super::{Anchor, Painter, Text};
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

pub struct CanvasPainter {
    ctx: CanvasRenderingContext2d,
}

pub fn context(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas.get_context("2d").ok().flatten()?.dyn_into().ok()
}

impl CanvasPainter {
    /// Sizes `canvas` for `css_w × css_h` CSS pixels at `scale` device pixels each (the screen's
    /// ratio, or 2 for a sharp PNG) and paints in CSS pixels.
    pub fn sized(canvas: &HtmlCanvasElement, css_w: f64, css_h: f64, scale: f64) -> Option<Self> {
        canvas.set_width((css_w * scale).round() as u32);
        canvas.set_height((css_h * scale).round() as u32);
        let style = canvas.style();
        let _ = style.set_property("width", &format!("{css_w}px"));
        let _ = style.set_property("height", &format!("{css_h}px"));
        let ctx = context(canvas)?;
        let _ = ctx.set_transform(scale, 0.0, 0.0, scale, 0.0, 0.0);
        Some(Self { ctx })
    }

    /// Sizes for the screen: `w × h` figure pixels shown `zoom` times larger (presentation mode),
    /// at the device's pixel ratio.
    pub fn for_screen(canvas: &HtmlCanvasElement, w: f64, h: f64, zoom: f64) -> Option<Self> {
        let ratio = web_sys::window().map(|w| w.device_pixel_ratio()).unwrap_or(1.0).max(1.0);
        let painter = Self::sized(canvas, w * zoom, h * zoom, ratio)?;
        let _ = painter.ctx.set_transform(ratio * zoom, 0.0, 0.0, ratio * zoom, 0.0, 0.0);
        Some(painter)
    }
}

impl Painter for CanvasPainter {
    fn fill_rect(&mut self, x: f64, y: f64, w: f64, h: f64, colour: &str) {
        self.ctx.set_fill_style_str(colour);
        self.ctx.fill_rect(x, y, w, h);
    }

    fn stroke_rect(&mut self, x: f64, y: f64, w: f64, h: f64, colour: &str, line_width: f64) {
        self.ctx.set_stroke_style_str(colour);
        self.ctx.set_line_width(line_width);
        self.ctx.stroke_rect(x, y, w, h);
    }

    fn line(&mut self, from: (f64, f64), to: (f64, f64), colour: &str, line_width: f64, dashed: bool) {
        let ctx = &self.ctx;
        ctx.set_stroke_style_str(colour);
        ctx.set_line_width(line_width);
        if dashed {
            let _ = ctx.set_line_dash(&js_sys::Array::of2(&4.into(), &3.into()));
        }
        ctx.begin_path();
        ctx.move_to(from.0, from.1);
        ctx.line_to(to.0, to.1);
        ctx.stroke();
        if dashed {
            let _ = ctx.set_line_dash(&js_sys::Array::new());
        }
    }

    fn text(&mut self, t: &Text) {
        let ctx = &self.ctx;
        ctx.set_font(&format!("{}px {}", t.font.size, t.font.family()));
        ctx.set_fill_style_str(t.colour);
        ctx.set_text_align(match t.anchor {
            Anchor::Start => "left",
            Anchor::Middle => "center",
            Anchor::End => "right",
        });
        ctx.set_text_baseline("alphabetic");
        let _ = ctx.fill_text(t.text, t.x, t.baseline_y());
    }

    fn rotated(&mut self, x: f64, y: f64, degrees: f64, draw: &mut dyn FnMut(&mut dyn Painter)) {
        self.ctx.save();
        let _ = self.ctx.translate(x, y);
        let _ = self.ctx.rotate(degrees.to_radians());
        draw(self);
        self.ctx.restore();
    }
}
