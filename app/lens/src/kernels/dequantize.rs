//! Rows of a quantized table, alone: the lens walks the unembedding a tile of rows at a time and the
//! linear layers their weights a slice at a time, so a whole matrix is never held in f32.

use crate::error::Result;
use crate::quantized::with_rows;
use candle_core::quantized::{ggml_file::qtensor_from_ggml, QTensor};
use candle_core::{Device, Tensor};
use std::ops::Range;

/// Rows `rows` of a 2-D quantized table `[n, d]`, still quantized (a copy of just those bytes).
pub fn table_rows(table: &QTensor, rows: Range<usize>) -> Result<QTensor> {
    let n = rows.len();
    Ok(with_rows(table, rows, |bytes, d| qtensor_from_ggml(table.dtype(), bytes, vec![n, d], &Device::Cpu))??)
}

/// Dequantizes rows `rows` of a 2-D quantized table without touching the others.
pub fn dequantize_rows(table: &QTensor, rows: Range<usize>) -> Result<Tensor> {
    Ok(table_rows(table, rows)?.dequantize(&Device::Cpu)?)
}
