//! Four f32 lanes: SIMD128 in wasm32, a plain array elsewhere (which the native compiler vectorizes
//! on its own), so the kernels above are written once and tested natively.
//!
//! With the `relaxed` feature (the worker's relaxed-SIMD twin), `madd` is `f32x4.relaxed_madd`, which
//! engines compile to one fused multiply-add where the CPU has FMA. Every function that inlines it
//! must carry the same `target_feature` (see `gemm.rs`), or LLVM calls it instead of inlining it.
//!
//! The one f32 vector of every kernel here: GEMM, matvec, and the scaling of `int8.rs`'s integer sums
//! (`simd_int8.rs` holds only the integer lanes).

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes {
    use core::arch::wasm32::*;

    #[derive(Clone, Copy)]
    pub struct V4(pub(in crate::kernels) v128);

    impl V4 {
        /// # Safety
        /// Four floats must be readable at `p` (wasm loads need no alignment).
        #[inline(always)]
        pub unsafe fn load_ptr(p: *const f32) -> Self {
            V4(v128_load(p as *const v128))
        }

        /// The first four floats of `v`.
        #[inline(always)]
        pub fn load(v: &[f32]) -> Self {
            assert!(v.len() >= 4);
            // SAFETY: four floats are readable (checked above).
            unsafe { Self::load_ptr(v.as_ptr()) }
        }

        #[inline(always)]
        pub fn times(self, s: f32) -> Self {
            V4(f32x4_mul(self.0, f32x4_splat(s)))
        }

        #[inline(always)]
        pub fn to_array(self) -> [f32; 4] {
            [
                f32x4_extract_lane::<0>(self.0),
                f32x4_extract_lane::<1>(self.0),
                f32x4_extract_lane::<2>(self.0),
                f32x4_extract_lane::<3>(self.0),
            ]
        }
    }

    #[inline(always)]
    pub fn zero() -> V4 {
        V4(f32x4_splat(0.0))
    }

    #[inline(always)]
    pub fn splat(v: f32) -> V4 {
        V4(f32x4_splat(v))
    }

    /// 16 signed bytes as four vectors of their values.
    #[inline(always)]
    fn widen(v: v128) -> [V4; 4] {
        let (low, high) = (i16x8_extend_low_i8x16(v), i16x8_extend_high_i8x16(v));
        [
            V4(f32x4_convert_i32x4(i32x4_extend_low_i16x8(low))),
            V4(f32x4_convert_i32x4(i32x4_extend_high_i16x8(low))),
            V4(f32x4_convert_i32x4(i32x4_extend_low_i16x8(high))),
            V4(f32x4_convert_i32x4(i32x4_extend_high_i16x8(high))),
        ]
    }

    /// The 32 values of a 4-bit block's 16 bytes (low nibbles are elements 0..16, high nibbles
    /// 16..32, ggml's order), each minus `offset` (8 for Q4_0, 0 for Q4_1), as eight vectors.
    ///
    /// # Safety
    /// 16 bytes must be readable at `p`.
    #[inline(always)]
    pub unsafe fn nibbles(p: *const u8, offset: u8) -> [V4; 8] {
        let bytes = v128_load(p as *const v128);
        let low = i8x16_sub(v128_and(bytes, u8x16_splat(0x0F)), i8x16_splat(offset as i8));
        let high = i8x16_sub(u8x16_shr(bytes, 4), i8x16_splat(offset as i8));
        let (a, b) = (widen(low), widen(high));
        [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]
    }

    /// 16 signed bytes as four vectors.
    ///
    /// # Safety
    /// 16 bytes must be readable at `p`.
    #[inline(always)]
    pub unsafe fn signed_bytes16(p: *const u8) -> [V4; 4] {
        widen(v128_load(p as *const v128))
    }

    /// 32 signed bytes as eight vectors.
    ///
    /// # Safety
    /// 32 bytes must be readable at `p`.
    #[inline(always)]
    pub unsafe fn signed_bytes(p: *const u8) -> [V4; 8] {
        let (a, b) = (widen(v128_load(p as *const v128)), widen(v128_load(p.add(16) as *const v128)));
        [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]
    }

    #[cfg(not(feature = "relaxed"))]
    #[inline(always)]
    pub fn madd(acc: V4, a: V4, b: V4) -> V4 {
        V4(f32x4_add(acc.0, f32x4_mul(a.0, b.0)))
    }

    /// a·b + acc, fused or not as the engine chooses (both round within an ulp of the exact sum).
    #[cfg(feature = "relaxed")]
    #[inline]
    #[target_feature(enable = "relaxed-simd")]
    pub fn madd(acc: V4, a: V4, b: V4) -> V4 {
        V4(f32x4_relaxed_madd(a.0, b.0, acc.0))
    }

    #[inline(always)]
    pub fn sum4(v: V4) -> f32 {
        (f32x4_extract_lane::<0>(v.0) + f32x4_extract_lane::<1>(v.0))
            + (f32x4_extract_lane::<2>(v.0) + f32x4_extract_lane::<3>(v.0))
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod lanes {
    #[derive(Clone, Copy)]
    pub struct V4(pub(in crate::kernels) [f32; 4]);

    impl V4 {
        /// # Safety
        /// Four floats must be readable at `p`.
        #[inline(always)]
        pub unsafe fn load_ptr(p: *const f32) -> Self {
            V4([*p, *p.add(1), *p.add(2), *p.add(3)])
        }

        #[inline(always)]
        pub fn load(v: &[f32]) -> Self {
            V4([v[0], v[1], v[2], v[3]])
        }

        #[inline(always)]
        pub fn times(self, s: f32) -> Self {
            V4(self.0.map(|v| v * s))
        }

        #[inline(always)]
        pub fn to_array(self) -> [f32; 4] {
            self.0
        }
    }

    #[inline(always)]
    pub fn zero() -> V4 {
        V4([0.0; 4])
    }

    #[inline(always)]
    pub fn splat(v: f32) -> V4 {
        V4([v; 4])
    }

    /// See the SIMD128 twin.
    ///
    /// # Safety
    /// 16 bytes must be readable at `p`.
    #[inline(always)]
    pub unsafe fn nibbles(p: *const u8, offset: u8) -> [V4; 8] {
        let bytes = std::slice::from_raw_parts(p, 16);
        let value = |j: usize| {
            let b = bytes[j % 16];
            (if j < 16 { b & 0x0F } else { b >> 4 }) as f32 - offset as f32
        };
        std::array::from_fn(|v| V4(std::array::from_fn(|l| value(4 * v + l))))
    }

    /// See the SIMD128 twin.
    ///
    /// # Safety
    /// 16 bytes must be readable at `p`.
    #[inline(always)]
    pub unsafe fn signed_bytes16(p: *const u8) -> [V4; 4] {
        let bytes = std::slice::from_raw_parts(p, 16);
        std::array::from_fn(|v| V4(std::array::from_fn(|l| bytes[4 * v + l] as i8 as f32)))
    }

    /// See the SIMD128 twin.
    ///
    /// # Safety
    /// 32 bytes must be readable at `p`.
    #[inline(always)]
    pub unsafe fn signed_bytes(p: *const u8) -> [V4; 8] {
        let bytes = std::slice::from_raw_parts(p, 32);
        std::array::from_fn(|v| V4(std::array::from_fn(|l| bytes[4 * v + l] as i8 as f32)))
    }

    #[inline(always)]
    pub fn madd(acc: V4, a: V4, b: V4) -> V4 {
        V4(std::array::from_fn(|i| acc.0[i] + a.0[i] * b.0[i]))
    }

    #[inline(always)]
    pub fn sum4(v: V4) -> f32 {
        (v.0[0] + v.0[1]) + (v.0[2] + v.0[3])
    }
}

pub use lanes::{madd, nibbles, signed_bytes, signed_bytes16, splat, sum4, zero, V4};
