//! The lens split across workers, as plain bytes: a slice of the unembedding's vocabulary (which a
//! helper reads from the model file once per model, where `vocab_slice_in_file` says it lies), and
//! the final-normed cells of a row group (sent per group). A worker that holds
//! a `OwnedVocabSlice` computes the `LensPartial` of its slice; partials merge in the coordinator.
//! Workers only move these bytes and headers; every tensor detail stays here.

use super::{LensInput, LensPartial, VocabSlice};
use crate::error::{LensError, Result};
use crate::model::Model;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// Every tensor type, by its index here, so a table can travel as bytes plus a number.
const DTYPES: [GgmlDType; 15] = [
    GgmlDType::F32,
    GgmlDType::F16,
    GgmlDType::BF16,
    GgmlDType::Q4_0,
    GgmlDType::Q4_1,
    GgmlDType::Q5_0,
    GgmlDType::Q5_1,
    GgmlDType::Q8_0,
    GgmlDType::Q8_1,
    GgmlDType::Q2K,
    GgmlDType::Q3K,
    GgmlDType::Q4K,
    GgmlDType::Q5K,
    GgmlDType::Q6K,
    GgmlDType::Q8K,
];

/// What accompanies the bytes of a vocabulary slice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SliceHeader {
    pub first_id: usize,
    pub rows: usize,
    pub d: usize,
    dtype: u32,
    softcap: Option<f32>,
}

/// Rows `range` of a model's unembedding as a header and where their bytes lie in the model file,
/// so a helper worker can read them from the file itself: nothing passes through the coordinator.
pub fn vocab_slice_in_file(model: &Model, range: Range<usize>) -> Result<(SliceHeader, u64)> {
    let table = &model.unembedding;
    let (n, d) = table.table.shape().dims2()?;
    if range.start > range.end || range.end > n {
        return Err(LensError::InvalidRequest(format!("rows {range:?} outside a table of {n}")));
    }
    let row_bytes = crate::quantized::byte_size(table.table.dtype(), &[1, d])? as u64;
    let dtype = DTYPES.iter().position(|&t| t == table.table.dtype()).unwrap_or(0) as u32;
    let header = SliceHeader { first_id: range.start, rows: range.len(), d, dtype, softcap: model.final_softcap };
    Ok((header, table.file_offset + range.start as u64 * row_bytes))
}

impl SliceHeader {
    fn ggml_dtype(&self) -> Result<GgmlDType> {
        DTYPES
            .get(self.dtype as usize)
            .copied()
            .ok_or_else(|| LensError::InvalidRequest(format!("tensor type code {}", self.dtype)))
    }

    /// The size of the slice's bytes.
    pub fn byte_len(&self) -> Result<usize> {
        crate::quantized::byte_size(self.ggml_dtype()?, &[self.rows, self.d])
    }
}

/// A vocabulary slice held by a helper worker.
pub struct OwnedVocabSlice {
    table: QTensor,
    first_id: usize,
    softcap: Option<f32>,
}

impl OwnedVocabSlice {
    pub fn from_bytes(h: &SliceHeader, bytes: &[u8]) -> Result<Self> {
        Self::filled(h, bytes.len(), |buf| {
            buf.copy_from_slice(bytes);
            Ok(())
        })
    }

    /// A slice of `len` bytes that `fill` writes straight into its storage (a helper reads them
    /// from the model file, with no buffer between).
    pub fn filled(h: &SliceHeader, len: usize, fill: impl FnOnce(&mut [u8]) -> Result<()>) -> Result<Self> {
        let dtype = h.ggml_dtype()?;
        let dims = [h.rows, h.d];
        if h.byte_len().ok() != Some(len) {
            return Err(LensError::InvalidRequest(format!(
                "{len} bytes are not a [{}, {}] {dtype:?} table",
                h.rows, h.d
            )));
        }
        let table = crate::quantized::filled(dtype, &dims, fill)?;
        Ok(Self { table, first_id: h.first_id, softcap: h.softcap })
    }

    /// The accumulators of this slice for a row group.
    pub fn compute(&self, input: &LensInput) -> Result<LensPartial> {
        let slice = VocabSlice { table: &self.table, first_id: self.first_id, softcap: self.softcap };
        LensPartial::compute(input, &slice, 0..slice.rows(), &|| false)
    }
}

/// What accompanies the cells of a row group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputHeader {
    n_rows: usize,
    n_pos: usize,
    d: usize,
    top_k: usize,
    track: Vec<u32>,
    tracked_logits: Vec<f32>,
    /// The integer product: the helper quantizes the cells as the coordinator did (`kernels/int8.rs`).
    #[serde(default)]
    int8: bool,
}

impl LensInput {
    /// The input as a header and its final-normed cells `[n_rows · n_pos, d]`.
    pub fn to_wire(&self) -> Result<(InputHeader, Vec<f32>)> {
        let header = InputHeader {
            n_rows: self.n_rows,
            n_pos: self.n_pos,
            d: self.normed.dim(1)?,
            top_k: self.top_k,
            track: self.track.clone(),
            tracked_logits: self.tracked_logits.clone(),
            int8: self.product() == super::Product::Int8,
        };
        Ok((header, self.normed.flatten_all()?.to_vec1::<f32>()?))
    }

    pub fn from_wire(h: InputHeader, cells: Vec<f32>) -> Result<Self> {
        let n_cells = h.n_rows.checked_mul(h.n_pos).filter(|&n| n > 0);
        let fits = n_cells.and_then(|n| n.checked_mul(h.d)) == Some(cells.len())
            && n_cells.and_then(|n| n.checked_mul(h.track.len())) == Some(h.tracked_logits.len());
        if !fits {
            return Err(LensError::InvalidRequest("lens cells of the wrong size".into()));
        }
        let normed = Tensor::from_vec(cells, (h.n_rows * h.n_pos, h.d), &Device::Cpu)?;
        let product = if h.int8 { super::Product::Int8 } else { super::Product::F32 };
        let quantized = super::quantize_cells(&normed, product)?;
        Ok(Self {
            normed,
            n_rows: h.n_rows,
            n_pos: h.n_pos,
            top_k: h.top_k,
            track: h.track,
            tracked_logits: h.tracked_logits,
            quantized,
        })
    }
}
