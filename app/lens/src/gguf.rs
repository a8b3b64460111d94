//! A GGUF file: its header read with candle, typed metadata getters with clear errors, and tensors
//! checked against the shapes the model expects before any byte is copied.
//!
//! The file is read through any `Read + Seek` source, tensor by tensor, so a front end never needs
//! the whole file in memory: the browser worker reads slices of a `Blob`, the tests a byte slice.

use crate::error::{candle_message, LensError, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use std::cell::RefCell;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};

/// A source of file bytes.
pub trait Source: Read + Seek {}
impl<T: Read + Seek> Source for T {}

/// The header is read in many small pieces; buffering turns them into few reads of the source.
const HEADER_BUFFER: usize = 1 << 20;

pub struct GgufFile<'a> {
    content: Content,
    /// Unbuffered: tensors are read whole, each straight from the source.
    source: RefCell<Box<dyn Source + 'a>>,
}

impl<'a> GgufFile<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        Self::read(Cursor::new(bytes))
    }

    pub fn read(source: impl Source + 'a) -> Result<Self> {
        let mut boxed: Box<dyn Source + 'a> = Box::new(source);
        let mut source = BufReader::with_capacity(HEADER_BUFFER, &mut boxed);
        let mut magic = [0u8; 4];
        let read = source.read(&mut magic).map_err(|e| LensError::NotGguf(format!("it cannot be read: {e}")))?;
        if read < 4 || &magic != b"GGUF" {
            return Err(LensError::NotGguf("it does not start with the GGUF magic bytes".into()));
        }
        source.seek(SeekFrom::Start(0)).map_err(|e| LensError::Corrupt(e.to_string()))?;
        let content = Content::read(&mut source).map_err(|e| {
            let msg = candle_message(&e);
            if msg.contains("unknown dtype") {
                LensError::UnsupportedTensorType(msg)
            } else if msg.contains("unsupported magic/version") {
                LensError::NotGguf(msg)
            } else {
                LensError::Corrupt(msg)
            }
        })?;
        drop(source);
        Ok(Self { content, source: RefCell::new(boxed) })
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

    fn info(&self, name: &str) -> Result<&candle_core::quantized::gguf_file::TensorInfo> {
        self.content.tensor_infos.get(name).ok_or_else(|| LensError::Corrupt(format!("the tensor `{name}` is missing")))
    }

    /// Where a tensor's bytes start in the file (a helper worker reads its rows from there itself).
    pub fn tensor_file_offset(&self, name: &str) -> Result<u64> {
        let info = self.info(name)?;
        self.content
            .tensor_data_offset
            .checked_add(info.offset)
            .ok_or_else(|| LensError::Corrupt(format!("tensor `{name}`: offset overflows")))
    }

    /// Reads a tensor after checking it has `shape` (outermost first, as candle orders dims).
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<QTensor> {
        let info = self.info(name)?;
        if info.shape.dims() != shape {
            return Err(LensError::Corrupt(format!(
                "the tensor `{name}` has shape {:?}, expected {:?}",
                info.shape.dims(),
                shape
            )));
        }
        self.read_at(name, info.offset, info.ggml_dtype, shape)
    }

    /// Rows `rows` of a 2-D tensor, read alone (an embedding's rows, in streamed mode).
    pub fn tensor_rows(&self, name: &str, rows: std::ops::Range<usize>) -> Result<QTensor> {
        let info = self.info(name)?;
        let &[n, d] = info.shape.dims() else {
            return Err(LensError::Corrupt(format!("the tensor `{name}` is not a table")));
        };
        if rows.start > rows.end || rows.end > n {
            return Err(LensError::InvalidRequest(format!("rows {rows:?} outside the {n} of `{name}`")));
        }
        let row_bytes = crate::quantized::byte_size(info.ggml_dtype, &[1, d])? as u64;
        self.read_at(name, info.offset.saturating_add(rows.start as u64 * row_bytes), info.ggml_dtype, &[rows.len(), d])
    }

    /// Reads a tensor of `dtype` and `shape` at `offset` in the data section.
    fn read_at(&self, name: &str, offset: u64, dtype: GgmlDType, shape: &[usize]) -> Result<QTensor> {
        // Read straight into the tensor's storage: the bytes are never held twice.
        let corrupt = |why: String| LensError::Corrupt(format!("tensor `{name}`: {why}"));
        let size = crate::quantized::byte_size(dtype, shape)?;
        let start =
            self.content.tensor_data_offset.checked_add(offset).ok_or_else(|| corrupt("offset overflows".into()))?;
        let mut source = self.source.borrow_mut();
        let file_size = source.seek(SeekFrom::End(0)).map_err(|e| corrupt(e.to_string()))?;
        if start.saturating_add(size as u64) > file_size {
            return Err(corrupt(format!(
                "needs {size} bytes at offset {start}, the file has {file_size}: it is truncated"
            )));
        }
        source.seek(SeekFrom::Start(start)).map_err(|e| corrupt(e.to_string()))?;
        crate::quantized::filled(dtype, shape, |buf| source.read_exact(buf).map_err(|e| corrupt(e.to_string())))
    }
}
