//! The lens's one matrix product in wasm32: a tile of logits `z[cell][j] = x[cell] · w[j]` for
//! final-normed cells `x` `[cells, d]` and dequantized vocabulary rows `w` `[width, d]`, both
//! row-major, so each output is a dot product of two contiguous rows.
//!
//! Natively candle's GEMM (AVX-512 kernels) is faster and is used instead; in the browser this
//! register-blocked SIMD128 kernel reaches more than the generic one. It works on blocks of cells
//! that stay in L2 and walks the tile's rows four at a time: each step of the 2×4 micro-kernel loads
//! two cell vectors and four row vectors and does eight multiply-adds into eight accumulators, which
//! is what fits the 16 vector registers V8 allocates without spilling.

use super::simd::{madd, sum4, zero, V4};

/// Cells per block: 128 rows of up to d = 1024 floats is 512 KiB, within L2.
const CELL_BLOCK: usize = 128;

/// `z` `[cells, width]` from `x` `[cells, d]` and `w` `[width, d]`. Any `d`: the lens's is a
/// multiple of 4, attention's key counts need not be (the last `d % 4` terms are added one by one).
#[cfg_attr(all(target_arch = "wasm32", feature = "relaxed"), target_feature(enable = "relaxed-simd"))]
pub fn tile_logits(x: &[f32], w: &[f32], cells: usize, width: usize, d: usize, z: &mut [f32]) {
    // The micro-kernel reads by pointer, so every bound is checked here, once.
    assert!(x.len() >= cells * d && w.len() >= width * d && z.len() >= cells * width);
    for c0 in (0..cells).step_by(CELL_BLOCK) {
        let c1 = (c0 + CELL_BLOCK).min(cells);
        let mut j = 0;
        while j + 4 <= width {
            let mut c = c0;
            while c + 2 <= c1 {
                micro::<2, 4>(x, w, c, j, d, width, z);
                c += 2;
            }
            if c < c1 {
                micro::<1, 4>(x, w, c, j, d, width, z);
            }
            j += 4;
        }
        for j in j..width {
            for c in c0..c1 {
                micro::<1, 1>(x, w, c, j, d, width, z);
            }
        }
    }
}

/// Outputs for cells `c..c + R` and rows `j..j + C` (within the bounds `tile_logits` checked).
#[cfg_attr(not(all(target_arch = "wasm32", feature = "relaxed")), inline(always))]
#[cfg_attr(all(target_arch = "wasm32", feature = "relaxed"), inline, target_feature(enable = "relaxed-simd"))]
fn micro<const R: usize, const C: usize>(
    x: &[f32],
    w: &[f32],
    c: usize,
    j: usize,
    d: usize,
    width: usize,
    z: &mut [f32],
) {
    let mut acc = [[zero(); C]; R];
    let xs: [*const f32; R] = std::array::from_fn(|r| x[(c + r) * d..].as_ptr());
    let ws: [*const f32; C] = std::array::from_fn(|q| w[(j + q) * d..].as_ptr());
    let mut k = 0;
    while k + 4 <= d {
        // SAFETY: rows c + r and j + q hold d floats each, and k + 4 <= d.
        let xv: [V4; R] = std::array::from_fn(|r| unsafe { V4::load_ptr(xs[r].add(k)) });
        let wv: [V4; C] = std::array::from_fn(|q| unsafe { V4::load_ptr(ws[q].add(k)) });
        for r in 0..R {
            for q in 0..C {
                acc[r][q] = madd(acc[r][q], xv[r], wv[q]);
            }
        }
        k += 4;
    }
    for r in 0..R {
        for q in 0..C {
            let tail: f32 = (k..d).map(|t| x[(c + r) * d + t] * w[(j + q) * d + t]).sum();
            z[(c + r) * width + j + q] = sum4(acc[r][q]) + tail;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_the_naive_product_at_every_edge() {
        for d in [12, 13, 1, 3] {
            check(d);
        }
    }

    fn check(d: usize) {
        let (cells, width) = (7, 11);
        let x: Vec<f32> = (0..cells * d).map(|i| ((i * 37 % 17) as f32 - 8.0) / 5.0).collect();
        let w: Vec<f32> = (0..width * d).map(|i| ((i * 53 % 19) as f32 - 9.0) / 7.0).collect();
        let mut z = vec![0f32; cells * width];
        tile_logits(&x, &w, cells, width, d, &mut z);
        for c in 0..cells {
            for j in 0..width {
                let want: f32 = (0..d).map(|k| x[c * d + k] * w[j * d + k]).sum();
                assert!((z[c * width + j] - want).abs() < 1e-4, "({c}, {j}): {} vs {want}", z[c * width + j]);
            }
        }
    }
}
