//! Colour scales. "Certain" is always the low end of the map (low entropy, high probability, rank 1,
//! small KL): blue in the diverging red–white–blue map of the papers, dark purple in the
//! colour-blind-safe viridis map. Probabilities and ranks are on log scales (a linear 0–1 scale
//! paints nearly every cell of a tracked token the same). Each metric's range and legend title.

use crate::figure_data::Metric;

/// The magnified range's colour: its frame, and its window on the overview (B in the seed).
pub const RANGE_COLOUR: &str = "#7b3294";
/// The zoomed column's colour: its list's frame, and its mark on both grids (C in the seed).
pub const COLUMN_COLOUR: &str = "#1a9641";

/// The colour map.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Palette {
    /// RdBu-like, as in the seed figure: blue certain, white middle, red uncertain.
    #[default]
    Diverging,
    /// Viridis: dark purple certain, yellow uncertain; readable with any colour vision.
    Viridis,
}

type Anchors = [(f32, [u8; 3]); 5];

const DIVERGING: Anchors = [
    (0.0, [33, 102, 172]),
    (0.25, [103, 169, 207]),
    (0.5, [247, 247, 247]),
    (0.75, [239, 138, 98]),
    (1.0, [178, 24, 43]),
];

const VIRIDIS: Anchors =
    [(0.0, [68, 1, 84]), (0.25, [59, 82, 139]), (0.5, [33, 145, 140]), (0.75, [94, 201, 98]), (1.0, [253, 231, 37])];

/// A cell whose value is not a number (the model's numbers broke): dark, and hatched on the grid.
pub const NOT_A_NUMBER: [u8; 3] = [60, 60, 60];
pub const PENDING: [u8; 3] = [226, 226, 226];

/// Smallest probability the log scale shows; anything below is drawn as this.
pub const MIN_PROBABILITY: f32 = 1e-6;

fn interpolate(anchors: &Anchors, t: f32) -> [u8; 3] {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 1.0 };
    for w in anchors.windows(2) {
        let ((t0, c0), (t1, c1)) = (w[0], w[1]);
        if t <= t1 {
            let f = (t - t0) / (t1 - t0);
            return [0, 1, 2].map(|i| (c0[i] as f32 + f * (c1[i] as f32 - c0[i] as f32)).round() as u8);
        }
    }
    anchors[4].1
}

/// Colour at `t` in [0, 1] (0 = certain, 1 = uncertain).
pub fn colour_at(palette: Palette, t: f32) -> [u8; 3] {
    match palette {
        Palette::Diverging => interpolate(&DIVERGING, t),
        Palette::Viridis => interpolate(&VIRIDIS, t),
    }
}

pub fn css(c: [u8; 3]) -> String {
    format!("rgb({},{},{})", c[0], c[1], c[2])
}

/// Dark text on light cells, light text on dark ones.
pub fn text_colour(c: [u8; 3]) -> &'static str {
    let luminance = 0.299 * c[0] as f32 + 0.587 * c[1] as f32 + 0.114 * c[2] as f32;
    if luminance < 120.0 {
        "#fff"
    } else {
        "#111"
    }
}

/// How a metric maps to colour.
#[derive(Clone, Debug, PartialEq)]
pub struct Scale {
    pub metric: Metric,
    /// Upper end of the range (entropy and KL in nats; rank as a vocabulary size).
    pub max: f32,
    pub title: String,
    pub palette: Palette,
}

/// Where a probability sits from 0 (`MIN_PROBABILITY`) to 1 (certain), on a log scale.
fn log_probability(p: f32) -> f32 {
    (p.max(MIN_PROBABILITY).log10() - MIN_PROBABILITY.log10()) / -MIN_PROBABILITY.log10()
}

impl Scale {
    fn is_probability(&self) -> bool {
        matches!(self.metric, Metric::TopProbability | Metric::TrackedProbability(_))
    }

    /// Position in [0, 1] along the colour map (0 = certain).
    pub fn position(&self, v: f32) -> f32 {
        match self.metric {
            Metric::Entropy | Metric::KlToLast => v / self.max.max(1e-6),
            Metric::TopProbability | Metric::TrackedProbability(_) => 1.0 - log_probability(v),
            // Ranks on a log scale: rank 1 is certain, rank V the other end.
            Metric::TrackedRank(_) => v.max(1.0).ln() / self.max.max(2.0).ln(),
            // Changes centre on white: less entropy (or a likelier token) than the pinned run is blue.
            Metric::EntropyChange => (0.5 + v / (2.0 * self.max.max(1e-6))).clamp(0.0, 1.0),
            Metric::LogProbabilityChange(_) => (0.5 - v / (2.0 * self.max.max(1e-6))).clamp(0.0, 1.0),
        }
    }

    pub fn colour(&self, v: Option<f32>) -> [u8; 3] {
        match v {
            Some(v) if v.is_nan() => NOT_A_NUMBER,
            Some(v) => colour_at(self.palette, self.position(v)),
            None => PENDING,
        }
    }

    /// Legend ticks as (value, label).
    pub fn ticks(&self) -> Vec<(f32, String)> {
        match self.metric {
            Metric::Entropy | Metric::KlToLast => {
                let step = if self.max > 12.0 {
                    5.0
                } else if self.max > 4.0 {
                    2.0
                } else {
                    0.5
                };
                let mut v = 0.0;
                let mut out = Vec::new();
                while v <= self.max + 1e-3 {
                    out.push((v, format!("{v}")));
                    v += step;
                }
                out
            }
            Metric::TopProbability | Metric::TrackedProbability(_) => {
                [(1e-6, "1e-6"), (1e-4, "1e-4"), (1e-2, "0.01"), (1.0, "1")].map(|(v, l)| (v, l.to_string())).to_vec()
            }
            Metric::EntropyChange | Metric::LogProbabilityChange(_) => {
                let m = self.max;
                [-m, -m / 2.0, 0.0, m / 2.0, m]
                    .map(|v| (v, if v == 0.0 { "0".into() } else { format!("{v:+}") }))
                    .to_vec()
            }
            Metric::TrackedRank(_) => {
                let mut out = Vec::new();
                let mut v = 1.0f32;
                while v <= self.max {
                    out.push((v, format!("{v}")));
                    v *= 10.0;
                }
                out
            }
        }
    }

    /// Colour at `t` in [0, 1] along the legend bar. Probabilities run from the smallest (left) to
    /// 1 (right), the other metrics from certain (left) to uncertain.
    pub fn bar_colour(&self, t: f32) -> [u8; 3] {
        let reversed = self.is_probability() || matches!(self.metric, Metric::LogProbabilityChange(_));
        colour_at(self.palette, if reversed { 1.0 - t } else { t })
    }

    /// Where a tick sits along the bar, in [0, 1] from the left.
    pub fn along(&self, v: f32) -> f32 {
        match self.metric {
            _ if self.is_probability() => log_probability(v),
            // The bar runs from the most negative change (left) to the most positive.
            Metric::LogProbabilityChange(_) => 1.0 - self.position(v),
            _ => self.position(v),
        }
    }
}

/// Formats a cell value for tooltips.
pub fn format_value(metric: Metric, v: f32) -> String {
    match metric {
        Metric::TrackedRank(_) => format!("{}", v as u32),
        Metric::TopProbability | Metric::TrackedProbability(_) if v < 1e-3 => format!("{v:.2e}"),
        _ => format!("{v:.3}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_are_blue_and_red_and_middle_white() {
        let d = |t| colour_at(Palette::Diverging, t);
        assert_eq!(d(0.0), [33, 102, 172]);
        assert_eq!(d(1.0), [178, 24, 43]);
        assert_eq!(d(0.5), [247, 247, 247]);
        assert_eq!(d(f32::NAN), [178, 24, 43]);
        assert_eq!(colour_at(Palette::Viridis, 0.0), [68, 1, 84]);
    }

    #[test]
    fn certainty_is_the_low_end_for_every_metric() {
        let s = |metric, max| Scale { metric, max, title: String::new(), palette: Palette::Diverging };
        assert!(s(Metric::Entropy, 10.0).position(0.0) == 0.0);
        assert!(s(Metric::TopProbability, 1.0).position(1.0) == 0.0);
        assert!((s(Metric::TopProbability, 1.0).position(1e-6) - 1.0).abs() < 1e-6);
        assert!((s(Metric::TrackedProbability(0), 1.0).position(1e-3) - 0.5).abs() < 1e-6, "log scale");
        assert!(s(Metric::TrackedRank(0), 49152.0).position(1.0) == 0.0);
        assert!((s(Metric::TrackedRank(0), 49152.0).position(49152.0) - 1.0).abs() < 1e-6);
        let p = s(Metric::TopProbability, 1.0);
        assert!((p.along(1e-2) - 2.0 / 3.0).abs() < 1e-6);
    }
}
