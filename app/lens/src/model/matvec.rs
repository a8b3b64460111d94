//! One token's activations against a quantized matrix, each block dequantized in registers. An
//! answer's next token reads every weight once; dequantizing whole matrices to f32 first, then
//! reading them back, was three quarters of its time (`perf`, SmolLM2 natively). The weights come
//! out bit-identical to candle's `to_float`, and the sums are f32 in a fixed order (eight lanes,
//! then the lanes in order), so every target gives the same numbers.

use crate::error::{LensError, Result};
use candle_core::quantized::{GgmlDType, QTensor};
use half::f16;

/// Elements per block of the types below.
const BLOCK: usize = 32;
/// Independent partial sums per row: enough for two SIMD128 registers (one AVX register).
const LANES: usize = 8;

/// Block types with a kernel here; others are dequantized by the caller.
pub fn supports(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q8_0 | GgmlDType::Q4_0 | GgmlDType::Q4_1)
}

/// `W x` for a quantized `[out, inner]` matrix `W` (a type that `supports`) and one row `x`.
pub fn matvec(weight: &QTensor, x: &[f32]) -> Result<Vec<f32>> {
    match weight.dtype() {
        GgmlDType::Q8_0 => rows_times(weight, x, q8_0),
        GgmlDType::Q4_0 => rows_times(weight, x, q4_0),
        GgmlDType::Q4_1 => rows_times(weight, x, q4_1),
        other => Err(LensError::InvalidRequest(format!("no one-row kernel for {other:?}"))),
    }
}

/// Generic over the block type's `dequantize` so that it inlines into the loop.
fn rows_times(weight: &QTensor, x: &[f32], dequantize: impl Fn(&[u8], &mut [f32; BLOCK])) -> Result<Vec<f32>> {
    let (out, inner) = weight.shape().dims2()?;
    if inner != x.len() || inner % BLOCK != 0 {
        return Err(LensError::InvalidRequest(format!("a {out}×{inner} matrix times a vector of {}", x.len())));
    }
    let block_bytes = weight.dtype().type_size();
    let data = weight.data()?;
    let mut w = [0f32; BLOCK];
    let y = data
        .chunks_exact(inner / BLOCK * block_bytes)
        .map(|row| {
            let mut acc = [0f32; LANES];
            for (block, xs) in row.chunks_exact(block_bytes).zip(x.chunks_exact(BLOCK)) {
                dequantize(block, &mut w);
                for (ws, xs) in w.chunks_exact(LANES).zip(xs.chunks_exact(LANES)) {
                    for (acc, (w, x)) in acc.iter_mut().zip(ws.iter().zip(xs)) {
                        *acc += w * x;
                    }
                }
            }
            acc.iter().sum::<f32>()
        })
        .collect();
    Ok(y)
}

#[inline(always)]
fn scale(block: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([block[at], block[at + 1]]).to_f32()
}

/// d: f16, then 32 signed bytes; weight = q · d.
#[inline(always)]
fn q8_0(block: &[u8], w: &mut [f32; BLOCK]) {
    let d = scale(block, 0);
    for (w, &q) in w.iter_mut().zip(&block[2..2 + BLOCK]) {
        *w = q as i8 as f32 * d;
    }
}

/// d: f16, then 16 bytes of two nibbles (elements j and j + 16); weight = (nibble − 8) · d.
#[inline(always)]
fn q4_0(block: &[u8], w: &mut [f32; BLOCK]) {
    let d = scale(block, 0);
    for (j, &q) in block[2..2 + BLOCK / 2].iter().enumerate() {
        w[j] = ((q & 0x0F) as i16 - 8) as f32 * d;
        w[j + BLOCK / 2] = ((q >> 4) as i16 - 8) as f32 * d;
    }
}

/// d and m: f16, then 16 bytes of two nibbles (elements j and j + 16); weight = nibble · d + m.
#[inline(always)]
fn q4_1(block: &[u8], w: &mut [f32; BLOCK]) {
    let (d, m) = (scale(block, 0), scale(block, 2));
    for (j, &q) in block[4..4 + BLOCK / 2].iter().enumerate() {
        w[j] = (q & 0x0F) as f32 * d + m;
        w[j + BLOCK / 2] = (q >> 4) as f32 * d + m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    /// Each kernel's weights equal candle's dequantization bit for bit, and the product is the
    /// dequantized matrix times the vector up to f32 summation order.
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
            // Bit-identical weights: a one-hot x picks column c of W exactly.
            for c in [0, 5, BLOCK / 2, BLOCK + 3, inner - 1] {
                let mut hot = vec![0f32; inner];
                hot[c] = 1.0;
                let y = matvec(&q, &hot).unwrap();
                for (o, row) in w.iter().enumerate() {
                    assert_eq!(y[o], row[c], "{dtype:?} ({o}, {c})");
                }
            }
        }
        // Types without a kernel here are left to the caller.
        assert!(!supports(GgmlDType::Q6K) && matvec(&QTensor::quantize(&dense, GgmlDType::F32).unwrap(), &x).is_err());
    }
}
