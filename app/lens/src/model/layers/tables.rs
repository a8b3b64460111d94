//! Tables of vectors looked up by token id: the embedding and the unembedding, kept quantized.

use crate::error::{LensError, Result};
use crate::gguf::GgufFile;
use crate::kernels::dequantize_rows;
use candle_core::quantized::QTensor;
use candle_core::{Device, Tensor};
use std::rc::Rc;
use std::sync::Arc;

/// A table of vectors looked up by token id, kept quantized (the embedding, the unembedding).
pub struct QuantizedTable {
    pub table: Arc<QTensor>,
    /// Where row 0 starts in the model file.
    pub file_offset: u64,
}

impl QuantizedTable {
    /// The table `name`, checked to be `[rows, d]`.
    pub fn read(g: &GgufFile, name: &str, rows: usize, d: usize) -> Result<Self> {
        Ok(Self { table: Arc::new(g.tensor(name, &[rows, d])?), file_offset: g.tensor_file_offset(name)? })
    }

    pub fn rows(&self) -> usize {
        self.table.shape().dims()[0]
    }

    /// The vectors of `ids`, one row each, as `[ids.len(), d]` f32.
    pub fn lookup(&self, ids: &[u32]) -> Result<Tensor> {
        let rows = ids
            .iter()
            .map(|&id| {
                let id = id as usize;
                if id >= self.rows() {
                    return Err(outside_vocabulary(id, self.rows()));
                }
                dequantize_rows(&self.table, id..id + 1)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(&rows, 0)?)
    }
}

/// The token embedding: a table in memory, or (streamed mode, when the unembedding is a separate
/// tensor) rows read from the file as tokens need them, so it takes no memory at all.
pub enum Embedding {
    Table(QuantizedTable),
    File { file: Rc<GgufFile<'static>>, name: String, vocab: usize },
}

impl Embedding {
    /// The vectors of `ids`, one row each, as `[ids.len(), d]` f32.
    pub fn lookup(&self, ids: &[u32]) -> Result<Tensor> {
        match self {
            Embedding::Table(t) => t.lookup(ids),
            Embedding::File { file, name, vocab } => {
                let rows = ids
                    .iter()
                    .map(|&id| {
                        let id = id as usize;
                        if id >= *vocab {
                            return Err(outside_vocabulary(id, *vocab));
                        }
                        Ok(file.tensor_rows(name, id..id + 1)?.dequantize(&Device::Cpu)?)
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Tensor::cat(&rows, 0)?)
            }
        }
    }
}

fn outside_vocabulary(id: usize, vocab: usize) -> LensError {
    LensError::InvalidRequest(format!("token id {id} is outside the vocabulary of {vocab}"))
}
