//! The SVG back end of `Painter`: a standalone document with vector text (for papers). Every
//! string is escaped, so a token that looks like markup stays text.

use super::{Anchor, Painter, Text};
use std::fmt::Write;

pub struct SvgPainter {
    out: String,
}

impl SvgPainter {
    pub fn new(width: f64, height: f64) -> Self {
        let out = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">\n"
        );
        Self { out }
    }

    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }
}

impl Painter for SvgPainter {
    fn fill_rect(&mut self, x: f64, y: f64, w: f64, h: f64, colour: &str) {
        let _ = writeln!(
            self.out,
            "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{w:.2}\" height=\"{h:.2}\" fill=\"{colour}\"/>"
        );
    }

    fn stroke_rect(&mut self, x: f64, y: f64, w: f64, h: f64, colour: &str, line_width: f64) {
        let _ = writeln!(
            self.out,
            "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{w:.2}\" height=\"{h:.2}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{line_width}\"/>"
        );
    }

    fn line(&mut self, from: (f64, f64), to: (f64, f64), colour: &str, line_width: f64, dashed: bool) {
        let dash = if dashed { " stroke-dasharray=\"4 3\"" } else { "" };
        let _ = writeln!(
            self.out,
            "<line x1=\"{:.2}\" y1=\"{:.2}\" x2=\"{:.2}\" y2=\"{:.2}\" stroke=\"{colour}\" stroke-width=\"{line_width}\"{dash}/>",
            from.0, from.1, to.0, to.1
        );
    }

    fn text(&mut self, t: &Text) {
        let anchor = match t.anchor {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        };
        let _ = writeln!(
            self.out,
            "<text x=\"{:.2}\" y=\"{:.2}\" font-family=\"{}\" font-size=\"{}\" text-anchor=\"{anchor}\" fill=\"{}\">{}</text>",
            t.x,
            t.baseline_y(),
            t.font.family(),
            t.font.size,
            t.colour,
            xml_escape(t.text)
        );
    }

    fn rotated(&mut self, x: f64, y: f64, degrees: f64, draw: &mut dyn FnMut(&mut dyn Painter)) {
        let _ = writeln!(self.out, "<g transform=\"translate({x:.2},{y:.2}) rotate({degrees})\">");
        draw(self);
        self.out.push_str("</g>\n");
    }
}

/// Escapes text for SVG/XML; control characters (not allowed in XML) become U+FFFD.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paint::{Baseline, Font};

    #[test]
    fn markup_in_tokens_stays_text() {
        assert_eq!(xml_escape("<script>&\"'"), "&lt;script&gt;&amp;&quot;&apos;");
        let mut p = SvgPainter::new(10.0, 10.0);
        p.text(&Text {
            x: 0.0,
            y: 0.0,
            text: "<b>",
            font: Font::LABEL,
            colour: "#111",
            anchor: Anchor::Start,
            baseline: Baseline::Middle,
        });
        let svg = p.finish();
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"));
    }
}
