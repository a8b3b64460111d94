//! One painter for the figure: a small drawing trait (`Painter`) with a canvas back end (the screen
//! and PNG export, `canvas.rs`) and an SVG back end (vector export, `svg.rs`). The figure itself is
//! drawn once, against the trait, in `figure_paint.rs`, so screen and exports cannot drift apart.

pub mod canvas;
pub mod svg;

/// A font the figure uses: the monospace of token labels or the sans-serif of the legend.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Font {
    pub size: f64,
    pub mono: bool,
}

impl Font {
    pub const LABEL: Font = Font { size: 11.0, mono: true };
    pub const LEGEND: Font = Font { size: 11.0, mono: false };
    pub const TITLE: Font = Font { size: 12.0, mono: false };

    pub fn family(&self) -> &'static str {
        if self.mono {
            "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"
        } else {
            "system-ui, sans-serif"
        }
    }

    /// An estimate of a text's width, the same for every back end so boxes and thinning agree.
    pub fn width(&self, text: &str) -> f64 {
        text.chars().count() as f64 * self.size * if self.mono { 0.6 } else { 0.55 }
    }
}

/// Where a text sits relative to its point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// Vertical placement: `Middle` centres the text on its y; `Baseline` puts its baseline there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Baseline {
    Middle,
    Alphabetic,
}

impl Text<'_> {
    /// The y of the text's alphabetic baseline. Both back ends draw on that baseline (the canvas's
    /// "middle" and SVG's "central" place glyphs differently), so their pixels agree.
    pub fn baseline_y(&self) -> f64 {
        match self.baseline {
            Baseline::Middle => self.y + 0.36 * self.font.size,
            Baseline::Alphabetic => self.y,
        }
    }
}

pub struct Text<'a> {
    pub x: f64,
    pub y: f64,
    pub text: &'a str,
    pub font: Font,
    pub colour: &'a str,
    pub anchor: Anchor,
    pub baseline: Baseline,
}

/// What the figure needs of a drawing surface, in CSS pixels. Colours are CSS colour strings.
/// Token strings reach `text` as plain text; back ends never interpret them as markup.
pub trait Painter {
    fn fill_rect(&mut self, x: f64, y: f64, w: f64, h: f64, colour: &str);
    fn stroke_rect(&mut self, x: f64, y: f64, w: f64, h: f64, colour: &str, line_width: f64);
    fn line(&mut self, from: (f64, f64), to: (f64, f64), colour: &str, line_width: f64, dashed: bool);
    fn text(&mut self, t: &Text);
    /// Draws `draw` in coordinates moved to (x, y) and rotated by `degrees` (clockwise).
    fn rotated(&mut self, x: f64, y: f64, degrees: f64, draw: &mut dyn FnMut(&mut dyn Painter));
}
