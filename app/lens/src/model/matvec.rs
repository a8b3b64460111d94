//! One token's activations against a quantized matrix, each block unpacked in registers. An
//! answer's next token reads every weight once; dequantizing whole matrices to f32 first, then
//! reading them back, was three quarters of its time (`perf`, SmolLM2 natively).
//!
//! Each block's integers are widened to f32 in SIMD lanes (`simd::nibbles`, `simd::signed_bytes`),
//! multiplied with the activations, and the block's scale applied once to the block's sum:
//! `Σ (q·d)·x = d·Σ q·x` (and `+ m·Σ x` for Q4_1's offset). The weights are exactly candle's
//! dequantized ones; only the order of the f32 roundings differs from the many-token path.

use crate::error::{LensError, Result};
use crate::lens::simd::{madd, nibbles, signed_bytes, splat, sum4, zero, V4};
use candle_core::quantized::{GgmlDType, QTensor};
use half::f16;

/// Elements per block of the types below.
const BLOCK: usize = 32;

/// Block types with a kernel here; others are dequantized by the caller.
pub fn supports(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q8_0 | GgmlDType::Q4_0 | GgmlDType::Q4_1)
}

/// `W x` for a quantized `[out, inner]` matrix `W` (a type that `supports`) and one row `x`.
pub fn matvec(weight: &QTensor, x: &[f32]) -> Result<Vec<f32>> {
    let (out, inner) = weight.shape().dims2()?;
    if inner != x.len() || inner % BLOCK != 0 {
        return Err(LensError::InvalidRequest(format!("a {out}×{inner} matrix times a vector of {}", x.len())));
    }
    let dtype = weight.dtype();
    let data = weight.data()?;
    let row_bytes = inner / BLOCK * dtype.type_size();
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
        let (out, inner) = (7, 4 * BLOCK);
        let values: Vec<f32> = (0..out * inner).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
        let x: Vec<f32> = (0..inner).map(|i| ((i * 13 % 29) as f32 - 14.0) / 9.0).collect();
        let dense = Tensor::from_vec(values, (out, inner), &Device::Cpu).unwrap();
        for dtype in [GgmlDType::Q8_0, GgmlDType::Q4_0, GgmlDType::Q4_1] {
            let q = QTensor::quantize(&dense, dtype).unwrap();
            let w = q.dequantize(&Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
            let y = matvec(&q, &x).unwrap();
            for (o, row) in w.iter().enumerate() {
                let expected: f64 = row.iter().zip(&x).map(|(&a, &b)| a as f64 * b as f64).sum();
                assert!((y[o] as f64 - expected).abs() < 1e-4 * (1.0 + expected.abs()), "{dtype:?} row {o}");
            }
            // A one-hot x picks column c of W: every element in its place (nibble order, offsets).
            for c in [0, 5, BLOCK / 2, BLOCK + 3, inner - 1] {
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
        assert!(!supports(GgmlDType::Q6K) && matvec(&QTensor::quantize(&dense, GgmlDType::F32).unwrap(), &x).is_err());
    }
}
