//! Quantized linear layers in two precisions, the norms and the activations around them.

use crate::error::Result;
use crate::gguf::GgufFile;
use crate::kernels::{dequantize_rows, matmul_nt, matvec};
use crate::Precision;
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use std::sync::Arc;

/// Weights dequantized at a time by exact precision's linear layers: 8 MiB of f32.
const EXACT_TILE_FLOATS: usize = 1 << 21;

/// `y = x W^T + b` with W kept quantized.
pub struct Linear {
    weight: Arc<QTensor>,
    quantized: QMatMul,
    bias: Option<Tensor>,
}

impl Linear {
    pub fn load(g: &GgufFile, name: &str, out_dim: usize, in_dim: usize, bias: bool) -> Result<Self> {
        let weight = Arc::new(g.tensor(&format!("{name}.weight"), &[out_dim, in_dim])?);
        let quantized = QMatMul::from_arc(weight.clone())?;
        let bias = if bias { Some(vector(g, &format!("{name}.bias"), out_dim)?) } else { None };
        Ok(Self { weight, quantized, bias })
    }

    pub fn forward(&self, x: &Tensor, precision: Precision) -> Result<Tensor> {
        let (inner, out) = (x.dim(x.rank() - 1)?, self.weight.shape().dims()[0]);
        let rows = x.elem_count() / inner;
        let y = match precision {
            // One token (an answer's next one): each block unpacked in registers against f32
            // activations, the same weights as the many-token path below, so both precisions take it.
            _ if rows == 1 && matvec::supports(self.weight.dtype()) => {
                let mut dims = x.dims().to_vec();
                *dims.last_mut().expect("a linear layer's input has a last dimension") = out;
                let y = matvec::matvec(&self.weight, &x.flatten_all()?.to_vec1::<f32>()?)?;
                Tensor::from_vec(y, dims, &Device::Cpu)?
            }
            // One token of a type without a kernel, fast: llama.cpp's arithmetic (activations
            // quantized to 8 bits), which skips dequantizing the whole matrix. For many tokens it is
            // the slower one (9× in a browser, 5× natively at 36 tokens), so a figure's forward pass
            // is f32 in both precisions.
            Precision::Fast if rows == 1 => self.quantized.forward(x)?,
            // The PyTorch definition: f32 activations against the dequantized weight, a slice of
            // output rows at a time. A whole matrix in f32 (235 MB for an 8B model's MLP) would
            // raise the high-water mark of wasm memory, which is never given back.
            _ => {
                let mut dims = x.dims().to_vec();
                *dims.last_mut().expect("a linear layer's input has a last dimension") = out;
                let flat = x.reshape((rows, inner))?;
                let step = (EXACT_TILE_FLOATS / inner).max(16);
                let mut parts = (0..out)
                    .step_by(step)
                    .map(|first| {
                        let w = dequantize_rows(&self.weight, first..(first + step).min(out))?;
                        matmul_nt(&flat, &w)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let y = if parts.len() == 1 { parts.pop().expect("one part") } else { Tensor::cat(&parts, 1)? };
                y.reshape(dims)?
            }
        };
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

/// A 1-D f32 tensor of length `len` (norm weights, biases).
pub fn vector(g: &GgufFile, name: &str, len: usize) -> Result<Tensor> {
    Ok(g.tensor(name, &[len])?.dequantize(&Device::Cpu)?)
}

pub struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    pub fn load(g: &GgufFile, name: &str, len: usize, eps: f32) -> Result<Self> {
        Ok(Self { weight: vector(g, &format!("{name}.weight"), len)?, eps })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::rms_norm(&x.contiguous()?, &self.weight, self.eps)?)
    }
}

/// The GELU of Gemma (tanh approximation).
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    Ok(x.gelu()?)
}

pub fn silu(x: &Tensor) -> Result<Tensor> {
    Ok(candle_nn::ops::silu(x)?)
}
