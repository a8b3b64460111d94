//! Per-tile reductions written to vectorize: each keeps LANES independent partial results, since a
//! single running f32 sum or max is a serial dependency the compiler may not reorder into SIMD.

const LANES: usize = 8;

pub fn lanes_max(z: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; LANES];
    let chunks = z.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            m[i] = if c[i] > m[i] { c[i] } else { m[i] };
        }
    }
    rest.iter().chain(&m).copied().fold(f32::NEG_INFINITY, f32::max)
}

/// (Σ e^(z−m), Σ (z−m)·e^(z−m)) over a tile; terms are at most 1, a tile has at most a few thousand.
pub fn lanes_exp_sums(z: &[f32], m: f32) -> (f32, f32) {
    let (mut s0, mut s1) = ([0f32; LANES], [0f32; LANES]);
    let chunks = z.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            let d = c[i] - m;
            let e = exp_nonpositive(d);
            s0[i] += e;
            s1[i] += d * e;
        }
    }
    for &zj in rest {
        let d = zj - m;
        let e = exp_nonpositive(d);
        s0[0] += e;
        s1[0] += d * e;
    }
    (s0.iter().sum(), s1.iter().sum())
}

/// Σ w·(a − b) over a tile.
pub fn lanes_weighted_difference(a: &[f32], b: &[f32], w: &[f32]) -> f32 {
    let mut s = [0f32; LANES];
    let n = a.len() / LANES * LANES;
    for j in (0..n).step_by(LANES) {
        for i in 0..LANES {
            s[i] += w[j + i] * (a[j + i] - b[j + i]);
        }
    }
    let tail: f32 = (n..a.len()).map(|j| w[j] * (a[j] - b[j])).sum();
    s.iter().sum::<f32>() + tail
}

/// e^x for x ≤ 0 (0 below −87), written without branches or calls so that it vectorizes.
/// Range reduction x = n·ln2 + r, |r| ≤ ln2/2, then a degree-6 Taylor polynomial: relative error
/// about 2e-7, below f32 rounding of the sums it feeds.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    let x = x.max(-87.0);
    let n = (x * LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n as i32 + 127) << 23) as u32);
    p * scale
}

#[cfg(test)]
mod tests {
    use super::exp_nonpositive;

    #[test]
    fn fast_exp_matches_std() {
        let mut worst = 0f32;
        let mut x = 0f32;
        while x > -90.0 {
            let (a, b) = (exp_nonpositive(x), x.exp());
            if b > 1e-30 {
                worst = worst.max(((a - b) / b).abs());
            }
            x -= 0.0137;
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert!(exp_nonpositive(-1000.0) < 1e-37);
    }
}
