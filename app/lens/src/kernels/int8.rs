//! Fast precision's lens product: the final-normed cells and each tile of vocabulary rows quantized
//! to 8 bits and multiplied in integers, which relaxed SIMD's `i32x4.relaxed_dot_i8x16_i7x16_add_s`
//! does 16 multiply-adds at a time.
//!
//! - Cells: per block of `K` dimensions, 8-bit values `q ∈ [-127, 127]` (scale `max|x| / 127`), and
//!   per block the correction `-64 · Σ q` that undoes the rows' offset.
//! - Rows: per block of `K`, 7-bit values `q ∈ [-63, 63]` (scale `max|w| / 63`), stored as
//!   `q + 64 ∈ [1, 127]`: the relaxed dot's second operand must keep its top bit clear, or engines
//!   may read it signed or unsigned; in 0..=127 every engine gives the same sums. (One scale per
//!   row instead doubled the entropy error against PyTorch and flipped 3–5% of the top-1s.)
//! - `z[c][j] = Σ_b sx[c][b] · sw[j][b] · (corr[c][b] + Σ_{k ∈ b} xq[c][k] · wu[j][k])`.
//!
//! Rows are packed in groups of four, interleaved by four dimensions (`[group][k / 4][row][4]`), so
//! one dot of a cell's four values (repeated four times) against 16 packed bytes adds to four rows'
//! sums at once, one per lane: the block scales then apply to four rows with one vector multiply,
//! and no lane ever needs summing across.
//!
//! Integer sums are exact, so every build (relaxed, SIMD128, native) gives the same logits up to
//! the order of the f32 scaling. The rows are quantized tile by tile as the lens walks the
//! vocabulary, from the same f32 rows the exact lens uses: no packed table is kept, so fast
//! precision costs no memory (quantizing a tile is about 1/cells of multiplying it).

use super::simd::{madd, zero, V4};
use super::simd_int8::{dot, splat_i32, B16, I4};

/// Dimensions per scale; the model width must be a multiple (every model we meet is), else the
/// lens stays in f32.
pub const K: usize = 32;
/// Cells per block of the product: 128 cells of up to d = 8192 bytes stay within L2.
const CELL_BLOCK: usize = 128;

pub fn supported(d: usize) -> bool {
    d > 0 && d.is_multiple_of(K)
}

/// The scale that maps the largest magnitude of `v` to `top`, and its inverse (0 for an all-zero
/// block). NaN if any value is, so a broken cell stays NaN, shown as broken rather than certain.
fn scale_of(v: &[f32], top: f32) -> (f32, f32) {
    if v.iter().any(|x| x.is_nan()) {
        return (f32::NAN, 0.0);
    }
    let s = v.iter().fold(0f32, |m, x| m.max(x.abs())) / top;
    (s, if s > 0.0 { 1.0 / s } else { 0.0 })
}

/// `v · inv` rounded to the nearest integer within `±top` (`round_ties_even` is one wasm instruction).
fn level(v: f32, inv: f32, top: f32) -> i32 {
    (v * inv).round_ties_even().clamp(-top, top) as i32
}

/// Final-normed cells `[n, d]`, quantized once per lens part.
pub struct Cells {
    q: Vec<i8>,
    /// `[n][d / K]`.
    scale: Vec<f32>,
    /// `[n][d / K]`: `-64 · Σ q` over each block.
    corr: Vec<i32>,
    n: usize,
    d: usize,
}

impl Cells {
    pub fn quantize(x: &[f32], d: usize) -> Cells {
        assert!(supported(d) && x.len().is_multiple_of(d));
        let mut q = vec![0i8; x.len()];
        let (mut scale, mut corr) = (Vec::with_capacity(x.len() / K), Vec::with_capacity(x.len() / K));
        for (block, out) in x.chunks_exact(K).zip(q.chunks_exact_mut(K)) {
            let (s, inv) = scale_of(block, 127.0);
            for (o, &v) in out.iter_mut().zip(block) {
                *o = level(v, inv, 127.0) as i8;
            }
            corr.push(-64 * out.iter().map(|&v| v as i32).sum::<i32>());
            scale.push(s);
        }
        Cells { q, scale, corr, n: x.len() / d, d }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// A tile of vocabulary rows `[width, d]`, quantized from its f32 rows and packed in groups of 4.
pub struct Rows {
    /// `[group][d / 4][4 rows][4 dims]`; rows past `width` are zeros.
    q: Vec<u8>,
    /// `[group][d / K][4 rows]`.
    scale: Vec<f32>,
    width: usize,
    d: usize,
}

impl Rows {
    pub fn quantize(w: &[f32], d: usize) -> Rows {
        assert!(supported(d) && w.len().is_multiple_of(d));
        let (width, blocks) = (w.len() / d, d / K);
        let groups = width.div_ceil(4);
        let mut q = vec![64u8; groups * 4 * d];
        let mut scale = vec![0f32; groups * blocks * 4];
        for (j, row) in w.chunks_exact(d).enumerate() {
            let (g, lane) = (j / 4, j % 4);
            for (b, block) in row.chunks_exact(K).enumerate() {
                let (s, inv) = scale_of(block, 63.0);
                scale[(g * blocks + b) * 4 + lane] = s;
                for (i, &v) in block.iter().enumerate() {
                    let k = b * K + i;
                    q[(g * (d / 4) + k / 4) * 16 + lane * 4 + k % 4] = (level(v, inv, 63.0) + 64) as u8;
                }
            }
        }
        Rows { q, scale, width, d }
    }

    fn groups(&self) -> usize {
        self.width.div_ceil(4)
    }
}

/// `z` `[cells, width]` = the logits of every cell against every row.
#[cfg_attr(all(target_arch = "wasm32", feature = "relaxed"), target_feature(enable = "relaxed-simd"))]
pub fn tile_logits(cells: &Cells, rows: &Rows, z: &mut [f32]) {
    let (n, groups) = (cells.n, rows.groups());
    // The micro-kernel reads by pointer, so every bound is checked here, once.
    assert!(cells.d == rows.d && cells.q.len() >= n * cells.d && rows.q.len() >= groups * 4 * rows.d);
    assert!(cells.scale.len() >= n * cells.d / K && cells.corr.len() >= n * cells.d / K);
    assert!(rows.scale.len() >= groups * 4 * rows.d / K && z.len() >= n * rows.width);
    for c0 in (0..n).step_by(CELL_BLOCK) {
        let c1 = (c0 + CELL_BLOCK).min(n);
        let mut g = 0;
        while g + 2 <= groups {
            cells_against::<2>(cells, rows, c0..c1, g, z);
            g += 2;
        }
        if g < groups {
            cells_against::<1>(cells, rows, c0..c1, g, z);
        }
    }
}

/// Cells `range` against `G` groups of rows from group `g`, three cells at a time.
#[cfg_attr(not(all(target_arch = "wasm32", feature = "relaxed")), inline(always))]
#[cfg_attr(all(target_arch = "wasm32", feature = "relaxed"), inline, target_feature(enable = "relaxed-simd"))]
fn cells_against<const G: usize>(cells: &Cells, rows: &Rows, range: std::ops::Range<usize>, g: usize, z: &mut [f32]) {
    let mut c = range.start;
    while c + 2 <= range.end {
        micro::<2, G>(cells, rows, c, g, z);
        c += 2;
    }
    while c < range.end {
        micro::<1, G>(cells, rows, c, g, z);
        c += 1;
    }
}

/// Logits of cells `c..c + R` against the rows of groups `g..g + G`: per block, integer dots (each
/// lane one row's sum, starting at the cell's correction), then scaled by both blocks' scales into
/// f32, four rows per vector. 3 × 2 keeps the 15 live vectors within the 16 registers V8 allocates.
#[cfg_attr(not(all(target_arch = "wasm32", feature = "relaxed")), inline(always))]
#[cfg_attr(all(target_arch = "wasm32", feature = "relaxed"), inline, target_feature(enable = "relaxed-simd"))]
fn micro<const R: usize, const G: usize>(cells: &Cells, rows: &Rows, c: usize, g: usize, z: &mut [f32]) {
    let (d, blocks) = (cells.d, cells.d / K);
    let xs: [*const i8; R] = std::array::from_fn(|r| cells.q[(c + r) * d..].as_ptr());
    let ws: [*const u8; G] = std::array::from_fn(|h| rows.q[(g + h) * 4 * d..].as_ptr());
    let mut acc = [[zero(); G]; R];
    for b in 0..blocks {
        let mut sums: [[I4; G]; R] = std::array::from_fn(|r| [splat_i32(cells.corr[(c + r) * blocks + b]); G]);
        for k in (b * K..(b + 1) * K).step_by(4) {
            // SAFETY: groups g..g + G hold 4·d packed bytes each, and k + 4 <= d (checked in `tile_logits`).
            let wv: [B16; G] = std::array::from_fn(|h| unsafe { B16::load(ws[h].add(4 * k)) });
            for r in 0..R {
                // SAFETY: cell c + r holds d bytes, and k + 4 <= d.
                let xv = unsafe { B16::splat4(xs[r].add(k)) };
                for h in 0..G {
                    sums[r][h] = dot(sums[r][h], xv, wv[h]);
                }
            }
        }
        for r in 0..R {
            let sx = cells.scale[(c + r) * blocks + b];
            for h in 0..G {
                let at = ((g + h) * blocks + b) * 4;
                let sw = V4::load(&rows.scale[at..at + 4]);
                acc[r][h] = madd(acc[r][h], sums[r][h].to_f32(), sw.times(sx));
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (h, acc) in acc.iter().enumerate() {
            let first = 4 * (g + h);
            let lanes = acc.to_array();
            let n = rows.width.saturating_sub(first).min(4);
            let at = (c + r) * rows.width + first;
            z[at..at + n].copy_from_slice(&lanes[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudo-random values in [-2, 2], with a large outlier every 17th, as final-normed cells have.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = 0x9E37_79B9_7F4A_7C15 ^ seed;
        (0..n)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let v = (state % 4001) as f32 / 1000.0 - 2.0;
                if i % 17 == 0 {
                    8.0 * v
                } else {
                    v
                }
            })
            .collect()
    }

    /// The blocked integer product equals the same quantized numbers multiplied naively, at every
    /// edge of the micro-kernel (odd cells, odd rows), and stays close to the f32 product.
    impl Rows {
        /// Row `j`'s level at dimension `k`, unpacked.
        fn level(&self, j: usize, k: usize) -> i32 {
            self.q[((j / 4) * (self.d / 4) + k / 4) * 16 + (j % 4) * 4 + k % 4] as i32 - 64
        }

        fn scale_of(&self, j: usize, b: usize) -> f32 {
            self.scale[((j / 4) * (self.d / K) + b) * 4 + j % 4]
        }
    }

    #[test]
    fn equals_the_naive_quantized_product_and_approximates_f32() {
        let d = 2 * K;
        for (cells, width) in [(5, 7), (1, 1), (2, 2), (3, 1), (7, 13), (4, 8)] {
            let x = values(cells * d, 1);
            let w = values(width * d, 2);
            let (cx, rw) = (Cells::quantize(&x, d), Rows::quantize(&w, d));
            let mut z = vec![0f32; cells * width];
            tile_logits(&cx, &rw, &mut z);
            for c in 0..cells {
                for j in 0..width {
                    let mut want = 0f32;
                    for b in 0..d / K {
                        let dot: i32 = (b * K..(b + 1) * K).map(|k| cx.q[c * d + k] as i32 * rw.level(j, k)).sum();
                        want += cx.scale[c * (d / K) + b] * rw.scale_of(j, b) * dot as f32;
                    }
                    let got = z[c * width + j];
                    assert!((got - want).abs() <= 1e-4 * want.abs().max(1.0), "({c}, {j}): {got} vs {want}");
                    // Within a few percent of the sum's magnitude (the grids are 1/127 and 1/63 of
                    // each block's largest value).
                    let exact: f32 = (0..d).map(|k| x[c * d + k] * w[j * d + k]).sum();
                    let size: f32 = (0..d).map(|k| (x[c * d + k] * w[j * d + k]).abs()).sum();
                    assert!((got - exact).abs() <= 0.03 * size, "({c}, {j}): {got} vs f32 {exact} (size {size})");
                }
            }
        }
    }

    #[test]
    fn zero_and_nan_cells_stay_zero_and_nan() {
        let d = K;
        let mut x = vec![0f32; 2 * d];
        x[d + 3] = f32::NAN;
        let w = values(3 * d, 5);
        let mut z = vec![1f32; 6];
        tile_logits(&Cells::quantize(&x, d), &Rows::quantize(&w, d), &mut z);
        assert!(z[..3].iter().all(|&v| v == 0.0), "{z:?}");
        assert!(z[3..].iter().all(|v| v.is_nan()), "{z:?}");
    }
}
