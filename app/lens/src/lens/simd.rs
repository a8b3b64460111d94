//! Four f32 lanes: SIMD128 in wasm32, a plain array elsewhere (which the native compiler vectorizes
//! on its own), so the kernels above are written once and tested natively.
//!
//! With the `relaxed` feature (the worker's relaxed-SIMD twin), `madd` is `f32x4.relaxed_madd`, which
//! engines compile to one fused multiply-add where the CPU has FMA. Every function that inlines it
//! must carry the same `target_feature` (see `gemm.rs`), or LLVM calls it instead of inlining it.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes {
    use core::arch::wasm32::*;

    #[derive(Clone, Copy)]
    pub struct V4(v128);

    impl V4 {
        /// # Safety
        /// Four floats must be readable at `p` (wasm loads need no alignment).
        #[inline(always)]
        pub unsafe fn load_ptr(p: *const f32) -> Self {
            V4(v128_load(p as *const v128))
        }
    }

    #[inline(always)]
    pub fn zero() -> V4 {
        V4(f32x4_splat(0.0))
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
    pub struct V4([f32; 4]);

    impl V4 {
        /// # Safety
        /// Four floats must be readable at `p`.
        #[inline(always)]
        pub unsafe fn load_ptr(p: *const f32) -> Self {
            V4([*p, *p.add(1), *p.add(2), *p.add(3)])
        }
    }

    #[inline(always)]
    pub fn zero() -> V4 {
        V4([0.0; 4])
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

pub use lanes::{madd, sum4, zero, V4};
