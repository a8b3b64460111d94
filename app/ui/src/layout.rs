//! Geometry of the magnified view, shared by the canvas drawing, hit-testing and the SVG export.
//! Rows run bottom to top: row 0 (the embedding output) at the bottom, the model's output on top.

/// Left margin for layer numbers, top padding, row height, and room for the rotated x-axis tokens.
pub const LEFT: f64 = 52.0;
pub const TOP: f64 = 8.0;
pub const ROW_H: f64 = 18.0;
pub const AXIS: f64 = 110.0;
pub const RIGHT: f64 = 8.0;
/// The column beside the magnified view (legend and zoomed column), and the gap before it.
pub const SIDE_W: f64 = 300.0;
pub const GAP: f64 = 12.0;
/// Below this width the side column goes under the magnified view on screen.
pub const SIDE_BY_SIDE_MIN: f64 = 760.0;
/// Cells narrower than this carry no label.
pub const MIN_LABEL_W: f64 = 26.0;
/// Average advance of the 11px monospace label font.
pub const CHAR_W: f64 = 6.6;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layout {
    pub start: usize,
    pub end: usize,
    pub n_rows: usize,
    pub cell_w: f64,
    pub width: f64,
}

impl Layout {
    pub fn new(width: f64, start: usize, end: usize, n_rows: usize) -> Self {
        let n = (end - start).max(1) as f64;
        let cell_w = ((width - LEFT - RIGHT) / n).max(1.0);
        Self { start, end, n_rows, cell_w, width }
    }

    pub fn height(&self) -> f64 {
        TOP + self.n_rows as f64 * ROW_H + AXIS
    }

    pub fn grid_bottom(&self) -> f64 {
        TOP + self.n_rows as f64 * ROW_H
    }

    pub fn x(&self, pos: usize) -> f64 {
        LEFT + (pos - self.start) as f64 * self.cell_w
    }

    pub fn y(&self, row: usize) -> f64 {
        TOP + (self.n_rows - 1 - row) as f64 * ROW_H
    }

    pub fn labelled(&self) -> bool {
        self.cell_w >= MIN_LABEL_W
    }

    pub fn label_chars(&self) -> usize {
        ((self.cell_w - 4.0) / CHAR_W).floor().max(1.0) as usize
    }

    /// The (row, position) under a point, if any.
    pub fn cell_at(&self, x: f64, y: f64) -> Option<(usize, usize)> {
        if x < LEFT || y < TOP || y >= self.grid_bottom() {
            return None;
        }
        let pos = self.start + ((x - LEFT) / self.cell_w) as usize;
        let from_top = ((y - TOP) / ROW_H) as usize;
        (pos < self.end && from_top < self.n_rows).then(|| (self.n_rows - 1 - from_top, pos))
    }

    /// The position under an x coordinate in the axis area too (for clicking on a token).
    pub fn position_at(&self, x: f64) -> Option<usize> {
        if x < LEFT {
            return None;
        }
        let pos = self.start + ((x - LEFT) / self.cell_w) as usize;
        (pos < self.end).then_some(pos)
    }
}

/// The magnified view's width in a figure area `total` pixels wide (CSS pixels over `zoom`).
pub fn magnified_width(total: f64) -> f64 {
    if total >= SIDE_BY_SIDE_MIN {
        total - SIDE_W - GAP
    } else {
        total
    }
}

/// How many positions fit in a magnified view `width` pixels wide with labels still legible.
pub fn legible_window(width: f64) -> usize {
    (((width - LEFT - RIGHT) / (MIN_LABEL_W + 4.0)).floor() as usize).clamp(8, 60)
}

/// The default magnified range: everything if it is short, else the last `window` positions, where
/// the template's dummy tokens and the answer are.
pub fn default_range(n_positions: usize, window: usize) -> (usize, usize) {
    (n_positions.saturating_sub(window), n_positions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_testing_inverts_the_layout() {
        let l = Layout::new(1000.0, 10, 30, 31);
        for (row, pos) in [(0, 10), (30, 29), (15, 20)] {
            let (x, y) = (l.x(pos) + 1.0, l.y(row) + 1.0);
            assert_eq!(l.cell_at(x, y), Some((row, pos)));
        }
        assert_eq!(l.cell_at(5.0, 50.0), None);
        assert_eq!(default_range(100, 40), (60, 100));
        assert_eq!(default_range(12, 40), (0, 12));
    }

    #[test]
    fn the_side_column_moves_under_the_grid_on_narrow_screens() {
        assert_eq!(magnified_width(1400.0), 1400.0 - SIDE_W - GAP);
        assert_eq!(magnified_width(600.0), 600.0);
        // A window of cells at least MIN_LABEL_W wide, so every cell keeps its label.
        let w = magnified_width(1400.0);
        assert!(Layout::new(w, 0, legible_window(w), 31).labelled());
    }
}
