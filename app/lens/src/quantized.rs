//! Quantized tensors written in place: the storage is allocated once, in its final block type, and
//! the caller fills its bytes (from a file, a `Blob`, another worker's message). Reading a tensor
//! the usual way holds its bytes twice (a raw buffer, then the blocks copied from it), and since
//! wasm memory never shrinks, that peak would stay for the tab's life.

use crate::error::{LensError, Result};
use candle_core::quantized::ggml_file::qtensor_from_ggml;
use candle_core::quantized::k_quants::{
    BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8K, BlockQ8_0,
    BlockQ8_1, GgmlType,
};
use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::Device;
use std::ops::Range;

/// Bytes a tensor of `dtype` and `dims` takes, if the dims are whole blocks and do not overflow.
pub fn byte_size(dtype: GgmlDType, dims: &[usize]) -> Result<usize> {
    let elems = dims.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
    match elems {
        Some(n) if n % dtype.block_size() == 0 => (n / dtype.block_size())
            .checked_mul(dtype.type_size())
            .ok_or_else(|| LensError::Corrupt(format!("a {dtype:?} tensor of shape {dims:?} is too large"))),
        _ => Err(LensError::Corrupt(format!("shape {dims:?} is not whole {dtype:?} blocks or is too large"))),
    }
}

/// Hands `read` the raw bytes of rows `rows` of a 2-D quantized table `[n, d]` (borrowed from the
/// table, not copied), with `d`.
pub fn with_rows<T>(table: &QTensor, rows: Range<usize>, read: impl FnOnce(&[u8], usize) -> T) -> Result<T> {
    let (n, d) = table.shape().dims2()?;
    if rows.start > rows.end || rows.end > n {
        return Err(LensError::InvalidRequest(format!("rows {rows:?} outside a table of {n}")));
    }
    let row_bytes = byte_size(table.dtype(), &[1, d])?;
    let data = table.data()?;
    Ok(read(&data[rows.start * row_bytes..rows.end * row_bytes], d))
}

/// A tensor of `dtype` and `dims` whose bytes (in the file's layout) `fill` writes.
pub fn filled(dtype: GgmlDType, dims: &[usize], fill: impl FnOnce(&mut [u8]) -> Result<()>) -> Result<QTensor> {
    let size = byte_size(dtype, dims)?;
    macro_rules! blocks {
        ($block:ty) => {{
            let mut blocks = vec![<$block as GgmlType>::zeros(); size / std::mem::size_of::<$block>()];
            // SAFETY: the blocks are plain data (integers and f16) in the file's layout (candle reads
            // GGUF by reinterpreting bytes as these types), and `blocks` is ours alone.
            let bytes = unsafe { std::slice::from_raw_parts_mut(blocks.as_mut_ptr() as *mut u8, size) };
            fill(bytes)?;
            QTensor::new(QStorage::Cpu(Box::new(blocks)), dims)?
        }};
    }
    Ok(match dtype {
        GgmlDType::Q4_0 => blocks!(BlockQ4_0),
        GgmlDType::Q4_1 => blocks!(BlockQ4_1),
        GgmlDType::Q5_0 => blocks!(BlockQ5_0),
        GgmlDType::Q5_1 => blocks!(BlockQ5_1),
        GgmlDType::Q8_0 => blocks!(BlockQ8_0),
        GgmlDType::Q8_1 => blocks!(BlockQ8_1),
        GgmlDType::Q2K => blocks!(BlockQ2K),
        GgmlDType::Q3K => blocks!(BlockQ3K),
        GgmlDType::Q4K => blocks!(BlockQ4K),
        GgmlDType::Q5K => blocks!(BlockQ5K),
        GgmlDType::Q6K => blocks!(BlockQ6K),
        GgmlDType::Q8K => blocks!(BlockQ8K),
        // Float tensors (norms, biases, the odd f16 model) go through a buffer.
        GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16 => {
            let mut raw = vec![0u8; size];
            fill(&mut raw)?;
            qtensor_from_ggml(dtype, &raw, dims.to_vec(), &Device::Cpu)?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

    #[test]
    fn filled_tensors_equal_those_read_from_bytes() {
        let x = Tensor::randn(0f32, 1.0, (4, 256), &Device::Cpu).unwrap();
        for dtype in [GgmlDType::Q8_0, GgmlDType::Q4_1, GgmlDType::Q4K, GgmlDType::Q6K, GgmlDType::F32] {
            let q = QTensor::quantize(&x, dtype).unwrap();
            let bytes = q.data().unwrap().into_owned();
            let back = filled(dtype, &[4, 256], |buf| {
                buf.copy_from_slice(&bytes);
                Ok(())
            })
            .unwrap();
            let (a, b) = (q.dequantize(&Device::Cpu).unwrap(), back.dequantize(&Device::Cpu).unwrap());
            let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert_eq!(diff, 0.0, "{dtype:?}");
        }
        assert!(byte_size(GgmlDType::Q8_0, &[usize::MAX, 64]).is_err());
        assert!(byte_size(GgmlDType::Q8_0, &[3, 5]).is_err());
    }
}
