//! Colour scales: a diverging blue–white–red map where blue always means "certain" (low entropy,
//! high probability, low rank, small KL), and the range and legend title of each metric.

use crate::figure_data::Metric;

/// RdBu-like anchors from certain (blue) through white to uncertain (red).
const ANCHORS: [(f32, [u8; 3]); 5] = [
    (0.0, [33, 102, 172]),
    (0.25, [103, 169, 207]),
    (0.5, [247, 247, 247]),
    (0.75, [239, 138, 98]),
    (1.0, [178, 24, 43]),
];

pub const PENDING: [u8; 3] = [226, 226, 226];

/// Colour at `t` in [0, 1] (0 = blue, 1 = red).
pub fn diverging(t: f32) -> [u8; 3] {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 1.0 };
    for w in ANCHORS.windows(2) {
        let ((t0, c0), (t1, c1)) = (w[0], w[1]);
        if t <= t1 {
            let f = (t - t0) / (t1 - t0);
            return [0, 1, 2].map(|i| (c0[i] as f32 + f * (c1[i] as f32 - c0[i] as f32)).round() as u8);
        }
    }
    ANCHORS[4].1
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
}

impl Scale {
    /// Position in [0, 1] along the colour map (0 = certain).
    pub fn position(&self, v: f32) -> f32 {
        match self.metric {
            Metric::Entropy | Metric::KlToLast => v / self.max.max(1e-6),
            Metric::TopProbability | Metric::TrackedProbability(_) => 1.0 - v,
            // Ranks on a log scale: rank 1 is blue, rank V red.
            Metric::TrackedRank(_) => v.max(1.0).ln() / self.max.max(2.0).ln(),
        }
    }

    pub fn colour(&self, v: Option<f32>) -> [u8; 3] {
        match v {
            Some(v) => diverging(self.position(v)),
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
                [0.0, 0.25, 0.5, 0.75, 1.0].iter().map(|&v| (v, format!("{v}"))).collect()
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

    /// Colour at `t` in [0, 1] along the legend bar, which runs from value 0 (or rank 1) on the left.
    pub fn bar_colour(&self, t: f32) -> [u8; 3] {
        match self.metric {
            Metric::TopProbability | Metric::TrackedProbability(_) => diverging(1.0 - t),
            _ => diverging(t),
        }
    }

    /// Where a tick sits along the bar, in [0, 1] from left (value 0 or rank 1).
    pub fn along(&self, v: f32) -> f32 {
        match self.metric {
            Metric::TopProbability | Metric::TrackedProbability(_) => v,
            _ => self.position(v),
        }
    }
}

/// Formats a cell value for tooltips.
pub fn format_value(metric: Metric, v: f32) -> String {
    match metric {
        Metric::TrackedRank(_) => format!("{}", v as u32),
        Metric::TopProbability | Metric::TrackedProbability(_) => format!("{v:.3}"),
        _ => format!("{v:.3}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_are_blue_and_red_and_middle_white() {
        assert_eq!(diverging(0.0), [33, 102, 172]);
        assert_eq!(diverging(1.0), [178, 24, 43]);
        assert_eq!(diverging(0.5), [247, 247, 247]);
        assert_eq!(diverging(f32::NAN), [178, 24, 43]);
    }

    #[test]
    fn certainty_is_blue_for_every_metric() {
        let s = |metric, max| Scale { metric, max, title: String::new() };
        assert!(s(Metric::Entropy, 10.0).position(0.0) == 0.0);
        assert!(s(Metric::TopProbability, 1.0).position(1.0) == 0.0);
        assert!(s(Metric::TrackedRank(0), 49152.0).position(1.0) == 0.0);
        assert!((s(Metric::TrackedRank(0), 49152.0).position(49152.0) - 1.0).abs() < 1e-6);
    }
}
