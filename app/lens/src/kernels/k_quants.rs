//! The k-quant super-blocks (llama.cpp's Q2_K … Q6_K: 256 weights each) unpacked into one shape the
//! one-token kernel reads: 256 small integers and, per group of 16, a scale and an offset, so that
//! weight `e` is `d[e / 16] · q[e] + m[e / 16]`, bit for bit candle's dequantized value.
//!
//! The byte layouts follow candle's `k_quants.rs` (`to_float` of each block type). The loops are
//! plain over fixed-size arrays, which LLVM turns into SIMD128 (or AVX) code on its own.

// Indexed loops mirror the byte layouts as llama.cpp documents them; iterators would hide the offsets.
#![allow(clippy::needless_range_loop)]

use half::f16;

/// Weights per super-block.
pub const SUPER: usize = 256;
/// Weights per scale group.
pub const GROUP: usize = 16;

/// One super-block, unpacked: weight `e` is `d[e / GROUP] · q[e] + m[e / GROUP]`.
pub struct SuperBlock {
    pub q: [i8; SUPER],
    pub d: [f32; SUPER / GROUP],
    pub m: [f32; SUPER / GROUP],
}

/// Reads one super-block's bytes into a [`SuperBlock`].
pub type Unpack = fn(&[u8], &mut SuperBlock);

impl Default for SuperBlock {
    fn default() -> Self {
        Self { q: [0; SUPER], d: [0.0; SUPER / GROUP], m: [0.0; SUPER / GROUP] }
    }
}

#[inline(always)]
fn half(block: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([block[at], block[at + 1]]).to_f32()
}

/// Q4_K and Q5_K's 6-bit scale and min of sub-block `j` (of 8, 32 weights each).
#[inline(always)]
fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// Sets the scales of Q4_K/Q5_K sub-block `j` (two groups of 16): weight = d·sc·q − dmin·m.
#[inline(always)]
fn set_sub_block(out: &mut SuperBlock, j: usize, d: f32, dmin: f32, scales: &[u8]) {
    let (sc, m) = scale_min_k4(j, scales);
    for g in [2 * j, 2 * j + 1] {
        out.d[g] = d * sc as f32;
        out.m[g] = -(dmin * m as f32);
    }
}

/// Q4_K: d, dmin (f16), 12 bytes of packed 6-bit scales and mins, 128 bytes of nibbles.
#[inline(always)]
pub fn q4k(block: &[u8], out: &mut SuperBlock) {
    let (d, dmin, scales, qs) = (half(block, 0), half(block, 2), &block[4..16], &block[16..144]);
    for c in 0..4 {
        set_sub_block(out, 2 * c, d, dmin, scales);
        set_sub_block(out, 2 * c + 1, d, dmin, scales);
        let qs = &qs[32 * c..32 * c + 32];
        for l in 0..32 {
            out.q[64 * c + l] = (qs[l] & 0x0F) as i8;
            out.q[64 * c + 32 + l] = (qs[l] >> 4) as i8;
        }
    }
}

/// Q5_K: Q4_K's layout with a fifth bit per weight in 32 bytes of `qh` before the nibbles.
#[inline(always)]
pub fn q5k(block: &[u8], out: &mut SuperBlock) {
    let (d, dmin, scales) = (half(block, 0), half(block, 2), &block[4..16]);
    let (qh, qs) = (&block[16..48], &block[48..176]);
    for c in 0..4 {
        set_sub_block(out, 2 * c, d, dmin, scales);
        set_sub_block(out, 2 * c + 1, d, dmin, scales);
        let qs = &qs[32 * c..32 * c + 32];
        for l in 0..32 {
            out.q[64 * c + l] = ((qs[l] & 0x0F) | (((qh[l] >> (2 * c)) & 1) << 4)) as i8;
            out.q[64 * c + 32 + l] = ((qs[l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4)) as i8;
        }
    }
}

/// Q6_K: 128 bytes of low nibbles, 64 bytes of high bit pairs, 16 signed scales, d (f16);
/// weight = d·scale·(q − 32).
#[inline(always)]
pub fn q6k(block: &[u8], out: &mut SuperBlock) {
    let (ql, qh, scales, d) = (&block[0..128], &block[128..192], &block[192..208], half(block, 208));
    for g in 0..16 {
        out.d[g] = d * scales[g] as i8 as f32;
        out.m[g] = 0.0;
    }
    for h in 0..2 {
        let (ql, qh, q) = (&ql[64 * h..64 * h + 64], &qh[32 * h..32 * h + 32], &mut out.q[128 * h..128 * h + 128]);
        for l in 0..32 {
            q[l] = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) as i8 - 32;
            q[l + 32] = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
            q[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
            q[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
        }
    }
}

/// Q3_K: 32 bytes of high-bit masks, 64 bytes of bit pairs, 12 bytes of packed 6-bit scales, d
/// (f16); weight = d·(scale − 32)·(q − 4 if its mask bit is clear).
#[inline(always)]
pub fn q3k(block: &[u8], out: &mut SuperBlock) {
    let (hmask, qs, scales, d) = (&block[0..32], &block[32..96], &block[96..108], half(block, 108));
    for g in 0..16 {
        // Low four bits from bytes 0..8 (low then high nibbles), high two from bytes 8..12.
        let low = if g < 8 { scales[g] & 0x0F } else { scales[g - 8] >> 4 };
        let high = (scales[8 + g % 4] >> (2 * (g / 4))) & 3;
        out.d[g] = d * (((low | (high << 4)) as i8) as f32 - 32.0);
        out.m[g] = 0.0;
    }
    for h in 0..2 {
        let qs = &qs[32 * h..32 * h + 32];
        for k in 0..4 {
            let bit = 1u8 << (4 * h + k);
            for j in 0..32 {
                let low = ((qs[j] >> (2 * k)) & 3) as i8;
                out.q[128 * h + 32 * k + j] = low - if hmask[j] & bit == 0 { 4 } else { 0 };
            }
        }
    }
}

/// Q2_K: 16 bytes of 4-bit scale and min pairs, 64 bytes of bit pairs, d and dmin (f16);
/// weight = d·(sc & 15)·q − dmin·(sc >> 4).
#[inline(always)]
pub fn q2k(block: &[u8], out: &mut SuperBlock) {
    let (scales, qs, d, dmin) = (&block[0..16], &block[16..80], half(block, 80), half(block, 82));
    for g in 0..16 {
        out.d[g] = d * (scales[g] & 0x0F) as f32;
        out.m[g] = -(dmin * (scales[g] >> 4) as f32);
    }
    for h in 0..2 {
        let qs = &qs[32 * h..32 * h + 32];
        for k in 0..4 {
            for j in 0..32 {
                out.q[128 * h + 32 * k + j] = ((qs[j] >> (2 * k)) & 3) as i8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};

    /// Every weight of every type, unpacked here, equals candle's dequantized one exactly.
    #[test]
    fn unpacked_weights_are_candles() {
        let values: Vec<f32> =
            (0..4 * SUPER).map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 97.0 * (1.0 + (i % 5) as f32)).collect();
        let dense = Tensor::from_vec(values, (4, SUPER), &Device::Cpu).unwrap();
        let types: [(GgmlDType, Unpack); 5] = [
            (GgmlDType::Q2K, q2k),
            (GgmlDType::Q3K, q3k),
            (GgmlDType::Q4K, q4k),
            (GgmlDType::Q5K, q5k),
            (GgmlDType::Q6K, q6k),
        ];
        for (dtype, unpack) in types {
            let q = QTensor::quantize(&dense, dtype).unwrap();
            let expected = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let data = q.data().unwrap();
            assert_eq!(data.len(), 4 * dtype.type_size(), "{dtype:?}");
            let mut block = SuperBlock::default();
            for (b, bytes) in data.chunks_exact(dtype.type_size()).enumerate() {
                unpack(bytes, &mut block);
                for e in 0..SUPER {
                    let w = block.d[e / GROUP] * block.q[e] as f32 + block.m[e / GROUP];
                    assert_eq!(w, expected[b * SUPER + e], "{dtype:?} block {b} weight {e}");
                }
            }
        }
    }
}
