//! One token's activations against a quantized matrix, each block unpacked in registers. An
//! answer's next token reads every weight once; dequantizing whole matrices to f32 first, then
//! reading them back, was three quarters of its time (`perf`, SmolLM2 natively).
//!
//! Each block's integers are widened to f32 in SIMD lanes (`simd::nibbles`, `simd::signed_bytes`),
//! multiplied with the activations, and the block's scale applied once to the block's sum:
//! `Σ (q·d)·x = d·Σ q·x` (and `+ m·Σ x` for Q4_1's offset). The weights are exactly candle's
//! dequantized ones; only the order of the f32 roundings differs from the many-token path.
//!
//! The 32-weight blocks (Q4_0 … Q8_0) are unpacked straight into lanes; the k-quants' 256-weight
//! super-blocks are first unpacked into bytes and per-16 scales (`k_quants.rs`), then read the same
//! way, a group of 16 at a time.

use super::k_quants::{self, SuperBlock, Unpack, GROUP, SUPER};
use super::simd::{madd, nibbles, signed_bytes, signed_bytes16, splat, sum4, zero, V4};
use crate::error::{LensError, Result};
use candle_core::quantized::{GgmlDType, QTensor};
use half::f16;

/// Elements per block of the 32-weight types.
const BLOCK: usize = 32;

/// Block types with a kernel here; others are dequantized by the caller.
pub fn supports(dtype: GgmlDType) -> bool {
    use GgmlDType::*;
    matches!(dtype, Q8_0 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q2K | Q3K | Q4K | Q5K | Q6K)
}

/// `W x` for a quantized `[out, inner]` matrix `W` (a type that `supports`) and one row `x`.
pub fn matvec(weight: &QTensor, x: &[f32]) -> Result<Vec<f32>> {
    let (out, inner) = weight.shape().dims2()?;
    let dtype = weight.dtype();
    if inner != x.len() || inner % dtype.block_size() != 0 {
        return Err(LensError::InvalidRequest(format!("a {out}×{inner} matrix times a vector of {}", x.len())));
    }
    let data = weight.data()?;
    let row_bytes = inner / dtype.block_size() * dtype.type_size();
    if data.len() != out * row_bytes {
        return Err(LensError::Compute(format!("a {dtype:?} matrix of {out}×{inner} has {} bytes", data.len())));
    }
    let mut y = Vec::with_capacity(out);
    match dtype {
        GgmlDType::Q8_0 => rows(&data, row_bytes, x, &mut y, |block| {
            // d: f16, then 32 signed bytes; weight = q · d.
            // SAFETY: a Q8_0 block is 2 + 32 bytes.
            (scale(block, 0), unsafe { signed_bytes(block.as_ptr().add(2)) }, 0.0)
        }),
        GgmlDType::Q4_0 => rows(&data, row_bytes, x, &mut y, |block| {
            // d: f16, then 16 bytes of two nibbles; weight = (nibble − 8) · d.
            // SAFETY: a Q4_0 block is 2 + 16 bytes.
            (scale(block, 0), unsafe { nibbles(block.as_ptr().add(2), 8) }, 0.0)
        }),
        GgmlDType::Q4_1 => rows(&data, row_bytes, x, &mut y, |block| {
            // d and m: f16, then 16 bytes of two nibbles; weight = nibble · d + m.
            // SAFETY: a Q4_1 block is 4 + 16 bytes.
            (scale(block, 0), unsafe { nibbles(block.as_ptr().add(4), 0) }, scale(block, 2))
        }),
        GgmlDType::Q5_0 => rows(&data, row_bytes, x, &mut y, |block| {
            // d: f16, 4 bytes of fifth bits, then 16 bytes of nibbles; weight = (q − 16) · d.
            let q = five_bits(&block[2..6], &block[6..22], 16);
            // SAFETY: `q` holds 32 bytes.
            (scale(block, 0), unsafe { signed_bytes(q.as_ptr() as *const u8) }, 0.0)
        }),
        GgmlDType::Q5_1 => rows(&data, row_bytes, x, &mut y, |block| {
            // d and m: f16, 4 bytes of fifth bits, then 16 bytes of nibbles; weight = q · d + m.
            let q = five_bits(&block[4..8], &block[8..24], 0);
            // SAFETY: `q` holds 32 bytes.
            (scale(block, 0), unsafe { signed_bytes(q.as_ptr() as *const u8) }, scale(block, 2))
        }),
        GgmlDType::Q2K => super_block_rows(&data, row_bytes, x, &mut y, k_quants::q2k),
        GgmlDType::Q3K => super_block_rows(&data, row_bytes, x, &mut y, k_quants::q3k),
        GgmlDType::Q4K => super_block_rows(&data, row_bytes, x, &mut y, k_quants::q4k),
        GgmlDType::Q5K => super_block_rows(&data, row_bytes, x, &mut y, k_quants::q5k),
        GgmlDType::Q6K => super_block_rows(&data, row_bytes, x, &mut y, k_quants::q6k),
        other => return Err(LensError::InvalidRequest(format!("no one-row kernel for {other:?}"))),
    }
    Ok(y)
}

/// Pushes each row's dot product with `x` onto `y`. `unpack(block)` gives the block's scale `d`, its
/// 32 integers `q` as f32 lanes and its offset `m` (weight = q·d + m).
#[cfg_attr(not(all(target_arch = "wasm32", feature = "relaxed")), inline(always))]
#[cfg_attr(all(target_arch = "wasm32", feature = "relaxed"), inline, target_feature(enable = "relaxed-simd"))]
fn rows(data: &[u8], row_bytes: usize, x: &[f32], y: &mut Vec<f32>, unpack: impl Fn(&[u8]) -> (f32, [V4; 8], f32)) {
    let block_bytes = row_bytes / (x.len() / BLOCK);
    // Σx per block, for the offset of Q4_1 (m · Σx).
    let sums: Vec<f32> = x.chunks_exact(BLOCK).map(|c| c.iter().sum()).collect();
    for row in data.chunks_exact(row_bytes) {
        let (mut acc, mut offsets) = (zero(), 0f32);
        for ((block, xs), sum) in row.chunks_exact(block_bytes).zip(x.chunks_exact(BLOCK)).zip(&sums) {
            let (d, q, m) = unpack(block);
            let mut t = zero();
            for (i, q) in q.iter().enumerate() {
                // SAFETY: `xs` holds BLOCK = 8 × 4 floats.
                t = madd(t, *q, unsafe { V4::load_ptr(xs.as_ptr().add(4 * i)) });
            }
            acc = madd(acc, t, splat(d));
            if m != 0.0 {
                offsets += m * sum;
            }
        }
        y.push(sum4(acc) + offsets);
    }
}

/// Pushes each row's dot product with `x` onto `y`, for 256-weight super-blocks that `unpack`
/// turns into bytes and per-16 scales and offsets.
#[cfg_attr(not(all(target_arch = "wasm32", feature = "relaxed")), inline(always))]
#[cfg_attr(all(target_arch = "wasm32", feature = "relaxed"), inline, target_feature(enable = "relaxed-simd"))]
fn super_block_rows(data: &[u8], row_bytes: usize, x: &[f32], y: &mut Vec<f32>, unpack: Unpack) {
    let block_bytes = row_bytes / (x.len() / SUPER);
    // Σx per group, for the offsets (m · Σx).
    let sums: Vec<f32> = x.chunks_exact(GROUP).map(|c| c.iter().sum()).collect();
    let mut block = SuperBlock::default();
    for row in data.chunks_exact(row_bytes) {
        let (mut acc, mut offsets) = (zero(), 0f32);
        for ((bytes, xs), sums) in
            row.chunks_exact(block_bytes).zip(x.chunks_exact(SUPER)).zip(sums.chunks_exact(SUPER / GROUP))
        {
            unpack(bytes, &mut block);
            for (g, sum) in sums.iter().enumerate() {
                // SAFETY: group g's 16 bytes and 16 floats lie inside `block.q` and `xs`.
                let (q, xs) = unsafe {
                    (signed_bytes16(block.q.as_ptr().add(GROUP * g) as *const u8), xs.as_ptr().add(GROUP * g))
                };
                let mut t = zero();
                for (i, q) in q.iter().enumerate() {
                    // SAFETY: as above, 4 floats at 4i of the group's 16.
                    t = madd(t, *q, unsafe { V4::load_ptr(xs.add(4 * i)) });
                }
                acc = madd(acc, t, splat(block.d[g]));
                offsets += block.m[g] * sum;
            }
        }
        y.push(sum4(acc) + offsets);
    }
}

/// A Q5 block's 32 integers: nibbles `qs` (low nibbles first), fifth bits `qh` (little-endian,
/// bit j for weight j), minus `offset`.
#[inline(always)]
fn five_bits(qh: &[u8], qs: &[u8], offset: i8) -> [i8; BLOCK] {
    let high = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    let mut q = [0i8; BLOCK];
    for j in 0..BLOCK / 2 {
        let (low, up) = ((high >> j) & 1, (high >> (j + BLOCK / 2)) & 1);
        q[j] = ((qs[j] & 0x0F) | (low as u8) << 4) as i8 - offset;
        q[j + BLOCK / 2] = ((qs[j] >> 4) | (up as u8) << 4) as i8 - offset;
    }
    q
}

#[inline(always)]
fn scale(block: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([block[at], block[at + 1]]).to_f32()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    /// The product is candle's dequantized matrix times the vector, up to the order of f32 roundings.
    #[test]
    fn matches_the_dequantized_product() {
        let (out, inner) = (7, 2 * SUPER);
        let values: Vec<f32> = (0..out * inner).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
        let x: Vec<f32> = (0..inner).map(|i| ((i * 13 % 29) as f32 - 14.0) / 9.0).collect();
        let dense = Tensor::from_vec(values, (out, inner), &Device::Cpu).unwrap();
        use GgmlDType::*;
        for dtype in [Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2K, Q3K, Q4K, Q5K, Q6K] {
            let q = QTensor::quantize(&dense, dtype).unwrap();
            let w = q.dequantize(&Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
            let y = matvec(&q, &x).unwrap();
            for (o, row) in w.iter().enumerate() {
                let expected: f64 = row.iter().zip(&x).map(|(&a, &b)| a as f64 * b as f64).sum();
                assert!((y[o] as f64 - expected).abs() < 1e-4 * (1.0 + expected.abs()), "{dtype:?} row {o}");
            }
            // A one-hot x picks column c of W: every element in its place (nibble order, offsets).
            for c in [0, 5, BLOCK / 2, BLOCK + 3, 100, SUPER / 2 + 7, SUPER + 200, inner - 1] {
                let mut hot = vec![0f32; inner];
                hot[c] = 1.0;
                let y = matvec(&q, &hot).unwrap();
                for (o, row) in w.iter().enumerate() {
                    assert!(
                        (y[o] - row[c]).abs() <= 1e-6 * (1.0 + row[c].abs()),
                        "{dtype:?} ({o}, {c}): {} vs {}",
                        y[o],
                        row[c]
                    );
                }
            }
        }
        // Types without a kernel here are left to the caller.
        assert!(!supports(GgmlDType::F16) && matvec(&QTensor::quantize(&dense, GgmlDType::F32).unwrap(), &x).is_err());
    }
}
