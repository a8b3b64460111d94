//! A GGUF file: its header read with candle, typed metadata getters with clear errors, and tensors
//! checked against the shapes the model expects before any byte is copied.

use crate::error::{candle_message, LensError, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;
use std::io::Cursor;

pub struct GgufFile<'a> {
    content: Content,
    bytes: &'a [u8],
}

impl<'a> GgufFile<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() < 4 || &bytes[..4] != b"GGUF" {
            return Err(LensError::NotGguf("it does not start with the GGUF magic bytes".into()));
        }
        let content = Content::read(&mut Cursor::new(bytes)).map_err(|e| {
            let msg = candle_message(&e);
            if msg.contains("unknown dtype") {
                LensError::UnsupportedTensorType(msg)
            } else if msg.contains("unsupported magic/version") {
                LensError::NotGguf(msg)
            } else {
                LensError::Corrupt(msg)
            }
        })?;
        Ok(Self { content, bytes })
    }

    pub fn architecture(&self) -> Result<String> {
        Ok(self.string("general.architecture")?.to_string())
    }

    pub fn has(&self, key: &str) -> bool {
        self.content.metadata.contains_key(key)
    }

    pub fn value(&self, key: &str) -> Result<&Value> {
        self.content.metadata.get(key).ok_or_else(|| LensError::MissingMetadata(key.to_string()))
    }

    fn bad(key: &str, why: impl std::fmt::Display) -> LensError {
        LensError::BadMetadata { key: key.to_string(), why: why.to_string() }
    }

    pub fn string(&self, key: &str) -> Result<&str> {
        self.value(key)?.to_string().map(|s| s.as_str()).map_err(|e| Self::bad(key, candle_message(&e)))
    }

    pub fn opt_string(&self, key: &str) -> Result<Option<&str>> {
        if self.has(key) {
            self.string(key).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Any integer type, as llama.cpp writes them inconsistently (u32, i32, u64).
    pub fn usize(&self, key: &str) -> Result<usize> {
        let v = self.value(key)?;
        let n: i64 = match v {
            Value::U8(x) => *x as i64,
            Value::I8(x) => *x as i64,
            Value::U16(x) => *x as i64,
            Value::I16(x) => *x as i64,
            Value::U32(x) => *x as i64,
            Value::I32(x) => *x as i64,
            Value::U64(x) => i64::try_from(*x).map_err(|e| Self::bad(key, e))?,
            Value::I64(x) => *x,
            _ => return Err(Self::bad(key, "expected an integer")),
        };
        usize::try_from(n).map_err(|_| Self::bad(key, format!("negative value {n}")))
    }

    pub fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        if self.has(key) {
            self.usize(key).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn f32(&self, key: &str) -> Result<f32> {
        match self.value(key)? {
            Value::F32(x) => Ok(*x),
            Value::F64(x) => Ok(*x as f32),
            _ => self.usize(key).map(|n| n as f32),
        }
    }

    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>> {
        if self.has(key) {
            self.f32(key).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.content.metadata.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(Self::bad(key, "expected a boolean")),
        }
    }

    pub fn array(&self, key: &str) -> Result<&Vec<Value>> {
        self.value(key)?.to_vec().map_err(|e| Self::bad(key, candle_message(&e)))
    }

    pub fn string_array(&self, key: &str) -> Result<Vec<&str>> {
        self.array(key)?
            .iter()
            .map(|v| v.to_string().map(|s| s.as_str()).map_err(|e| Self::bad(key, candle_message(&e))))
            .collect()
    }

    pub fn f32_array(&self, key: &str) -> Result<Vec<f32>> {
        self.array(key)?.iter().map(|v| v.to_f32().map_err(|e| Self::bad(key, candle_message(&e)))).collect()
    }

    pub fn i32_array(&self, key: &str) -> Result<Vec<i32>> {
        self.array(key)?.iter().map(|v| v.to_i32().map_err(|e| Self::bad(key, candle_message(&e)))).collect()
    }

    pub fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    pub fn tensor_shape(&self, name: &str) -> Option<&[usize]> {
        self.content.tensor_infos.get(name).map(|t| t.shape.dims())
    }

    pub fn tensor_dtype(&self, name: &str) -> Option<GgmlDType> {
        self.content.tensor_infos.get(name).map(|t| t.ggml_dtype)
    }

    /// Reads a tensor after checking it has `shape` (outermost first, as candle orders dims).
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<QTensor> {
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| LensError::Corrupt(format!("the tensor `{name}` is missing")))?;
        if info.shape.dims() != shape {
            return Err(LensError::Corrupt(format!(
                "the tensor `{name}` has shape {:?}, expected {:?}",
                info.shape.dims(),
                shape
            )));
        }
        info.read(&mut Cursor::new(self.bytes), self.content.tensor_data_offset, &Device::Cpu).map_err(|e| {
            let msg = candle_message(&e);
            if msg.contains("not supported") {
                LensError::UnsupportedTensorType(format!("tensor `{name}`: {msg}"))
            } else {
                LensError::Corrupt(format!("tensor `{name}`: {msg}"))
            }
        })
    }
}
