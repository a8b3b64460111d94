//! The engine's arithmetic, below the models and the lens, which both call it: the one f32 vector
//! (`simd.rs`) and the integer one (`simd_int8.rs`), the wasm32 GEMM (`gemm.rs`), the one-token
//! product against quantized blocks (`matvec.rs`, `k_quants.rs`), fast precision's 8-bit product
//! (`int8.rs`), rows of quantized tables (`dequantize.rs`) and the per-tile reductions (`reduce.rs`).
//! Nothing here knows a model or a lens cell; it imports only `error` and `quantized`.

pub mod dequantize;
// The wasm32 GEMM (natively, candle's is faster); compiled natively only for its tests.
#[cfg(any(target_arch = "wasm32", test))]
mod gemm;
pub mod int8;
mod k_quants;
pub mod matvec;
pub mod reduce;
pub mod simd;
mod simd_int8;

pub use dequantize::{dequantize_rows, table_rows};

use crate::error::Result;
use candle_core::Tensor;

/// The vector instructions the wasm kernels were built with, for the model info line.
pub const SIMD: &str = if cfg!(all(target_arch = "wasm32", feature = "relaxed")) {
    "relaxed SIMD"
} else if cfg!(target_arch = "wasm32") {
    "SIMD128"
} else {
    "native"
};

/// `x · wᵀ` for `x` `[n, d]` and `w` `[m, d]` (a linear layer, a tile of logits): in wasm32 through
/// the SIMD128 kernel, natively through candle's GEMM.
pub fn matmul_nt(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    #[cfg(target_arch = "wasm32")]
    {
        let (n, m) = (x.dim(0)?, w.dim(0)?);
        let x = x.contiguous()?;
        Ok(Tensor::from_vec(matmul_nt_flat(&x, w)?, (n, m), &candle_core::Device::Cpu)?)
    }
    #[cfg(not(target_arch = "wasm32"))]
    Ok(x.matmul(&w.t()?)?)
}

/// `x · wᵀ` row-major, by the SIMD128 GEMM, for contiguous f32 `x` `[n, d]` and `w` `[m, d]`.
#[cfg(target_arch = "wasm32")]
pub fn matmul_nt_flat(x: &Tensor, w: &Tensor) -> Result<Vec<f32>> {
    use crate::error::LensError;
    use candle_core::{CpuStorage, Storage};
    let ((cells, d), width) = (x.dims2()?, w.dim(0)?);
    let (x_storage, x_layout) = x.storage_and_layout();
    let (w_storage, w_layout) = w.storage_and_layout();
    let mut z = vec![0f32; cells * width];
    match (&*x_storage, x_layout.contiguous_offsets(), &*w_storage, w_layout.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(xs)), Some((xa, xb)), Storage::Cpu(CpuStorage::F32(ws)), Some((wa, wb))) => {
            gemm::tile_logits(&xs[xa..xb], &ws[wa..wb], cells, width, d, &mut z)
        }
        _ => return Err(LensError::Compute("the lens expects contiguous f32 tensors".into())),
    }
    Ok(z)
}

/// `a · bᵀ` for each leading index: `[n, r, d]` by `[n, c, d]` gives `[n, r, c]` (attention's two
/// products). In the browser each product goes through the SIMD128 GEMM, as the linear layers do.
pub fn batched_matmul_nt(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    #[cfg(target_arch = "wasm32")]
    {
        let products =
            (0..a.dim(0)?).map(|i| matmul_nt(&a.get(i)?, &b.get(i)?.contiguous()?)).collect::<Result<Vec<_>>>()?;
        Ok(Tensor::stack(&products, 0)?)
    }
    #[cfg(not(target_arch = "wasm32"))]
    Ok(a.matmul(&b.transpose(1, 2)?)?)
}

/// A tile of logits `[cells, width]` in 8-bit integers: `x` the quantized cells, `w` the tile's f32
/// rows, quantized here (read in place: a copy of each tile first cost the integer lens 10% of its time).
pub fn int8_logits(x: &int8::Cells, w: &Tensor) -> Result<Vec<f32>> {
    use crate::error::LensError;
    use candle_core::{CpuStorage, Storage};
    let (width, d) = w.dims2()?;
    let (storage, layout) = w.storage_and_layout();
    let rows = match (&*storage, layout.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(ws)), Some((a, b))) => int8::Rows::quantize(&ws[a..b], d),
        _ => return Err(LensError::Compute("the lens expects contiguous f32 rows".into())),
    };
    let mut z = vec![0f32; x.len() * width];
    int8::tile_logits(x, &rows, &mut z);
    Ok(z)
}
