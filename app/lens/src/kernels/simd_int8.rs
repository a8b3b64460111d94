//! The integer vectors of `int8.rs`: 16 bytes and 4 × i32 (the f32 lanes are `simd.rs`'s `V4`). Relaxed SIMD's
//! `i32x4.relaxed_dot_i8x16_i7x16_add_s` in the relaxed build, SIMD128's widening multiplies in the
//! baseline build, plain arrays natively (and in native tests). In every build lane `l` of a dot is
//! the sum of bytes `4l..4l + 4`, so each lane is one packed row's sum.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes {
    use crate::kernels::simd::V4;
    use core::arch::wasm32::*;

    #[derive(Clone, Copy)]
    pub struct B16(v128);
    #[derive(Clone, Copy)]
    pub struct I4(v128);

    impl B16 {
        /// # Safety
        /// 16 bytes must be readable at `p` (wasm loads need no alignment).
        #[inline(always)]
        pub unsafe fn load(p: *const u8) -> Self {
            B16(v128_load(p as *const v128))
        }

        /// The 4 bytes at `p`, four times.
        ///
        /// # Safety
        /// 4 bytes must be readable at `p`.
        #[inline(always)]
        pub unsafe fn splat4(p: *const i8) -> Self {
            B16(v128_load32_splat(p as *const u32))
        }
    }

    #[inline(always)]
    pub fn splat_i32(v: i32) -> I4 {
        I4(i32x4_splat(v))
    }

    /// `acc + Σ a·b` per lane of four bytes; `a` signed 8-bit, `b` in 0..=127.
    #[cfg(not(feature = "relaxed"))]
    #[inline(always)]
    pub fn dot(acc: I4, a: B16, b: B16) -> I4 {
        // |a·b| ≤ 127 · 127 fits i16; a pair of them fits i32. Lanes of `lo` are the halves of
        // rows 0, 0, 1, 1 and of `hi` rows 2, 2, 3, 3: the shuffles add the halves.
        let lo = i32x4_extadd_pairwise_i16x8(i16x8_extmul_low_i8x16(a.0, b.0));
        let hi = i32x4_extadd_pairwise_i16x8(i16x8_extmul_high_i8x16(a.0, b.0));
        let rows = i32x4_add(i32x4_shuffle::<0, 2, 4, 6>(lo, hi), i32x4_shuffle::<1, 3, 5, 7>(lo, hi));
        I4(i32x4_add(acc.0, rows))
    }

    #[cfg(feature = "relaxed")]
    #[inline]
    #[target_feature(enable = "relaxed-simd")]
    pub fn dot(acc: I4, a: B16, b: B16) -> I4 {
        I4(i32x4_relaxed_dot_i8x16_i7x16_add(a.0, b.0, acc.0))
    }

    impl I4 {
        #[inline(always)]
        pub fn to_f32(self) -> V4 {
            V4(f32x4_convert_i32x4(self.0))
        }
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod lanes {
    use crate::kernels::simd::V4;

    #[derive(Clone, Copy)]
    pub struct B16([i32; 16]);
    #[derive(Clone, Copy)]
    pub struct I4([i32; 4]);

    impl B16 {
        /// # Safety
        /// 16 bytes must be readable at `p`.
        #[inline(always)]
        pub unsafe fn load(p: *const u8) -> Self {
            B16(std::array::from_fn(|i| *p.add(i) as i32))
        }

        /// # Safety
        /// 4 bytes must be readable at `p`.
        #[inline(always)]
        pub unsafe fn splat4(p: *const i8) -> Self {
            B16(std::array::from_fn(|i| *p.add(i % 4) as i32))
        }
    }

    #[inline(always)]
    pub fn splat_i32(v: i32) -> I4 {
        I4([v; 4])
    }

    #[inline(always)]
    pub fn dot(acc: I4, a: B16, b: B16) -> I4 {
        I4(std::array::from_fn(|l| acc.0[l] + (0..4).map(|t| a.0[4 * l + t] * b.0[4 * l + t]).sum::<i32>()))
    }

    impl I4 {
        #[inline(always)]
        pub fn to_f32(self) -> V4 {
            V4(self.0.map(|v| v as f32))
        }
    }
}

pub use lanes::{dot, splat_i32, B16, I4};
