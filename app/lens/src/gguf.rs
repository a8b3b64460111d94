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
        check_alignment(&mut source)?;
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

    /// Drops the array values of keys starting with `prefix` (once what they describe is built).
    pub fn drop_arrays(&mut self, prefix: &str) {
        self.content.metadata.retain(|k, v| !(k.starts_with(prefix) && matches!(v, Value::Array(_))));
        self.content.metadata.shrink_to_fit();
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

/// candle rounds the data offset up to `general.alignment` without checking it, and divides by
/// zero on a 0. So the metadata is walked once before candle reads it, values skipped, and an
/// alignment llama.cpp would refuse too (0, or not a power of two) is refused here. Anything else
/// odd on the way is left for candle's reader to name.
fn check_alignment<R: Read + Seek>(source: &mut BufReader<R>) -> Result<()> {
    match find_alignment(source) {
        Ok(Some(alignment)) if !alignment.is_power_of_two() => Err(LensError::BadMetadata {
            key: "general.alignment".into(),
            why: format!("{alignment} is not a power of two"),
        }),
        _ => Ok(()),
    }
}

const ALIGNMENT_KEY: &[u8; 17] = b"general.alignment";

/// The value of `general.alignment`, where the header has one of an integer type candle reads.
fn find_alignment<R: Read + Seek>(s: &mut BufReader<R>) -> std::io::Result<Option<u64>> {
    let magic_version: [u8; 8] = read_bytes(s)?;
    // Version 1 wrote 32-bit counts and lengths, later versions 64-bit.
    let wide = u32::from_le_bytes([magic_version[4], magic_version[5], magic_version[6], magic_version[7]]) >= 2;
    let _tensors = read_count(s, wide)?;
    let entries = read_count(s, wide)?;
    for _ in 0..entries {
        let key_len = read_count(s, wide)?;
        let is_alignment = if key_len == ALIGNMENT_KEY.len() as u64 {
            read_bytes::<17>(s)? == *ALIGNMENT_KEY
        } else {
            skip(s, key_len)?;
            false
        };
        let value_type = read_u32(s)?;
        if is_alignment {
            return Ok(match value_type {
                0 | 1 => Some(read_bytes::<1>(s)?[0] as u64),
                2 | 3 => Some(u16::from_le_bytes(read_bytes(s)?) as u64),
                4 | 5 => Some(read_u32(s)? as u64),
                _ => None,
            });
        }
        skip_value(s, value_type, wide, 0)?;
    }
    Ok(None)
}

fn skip_value<R: Read + Seek>(s: &mut BufReader<R>, value_type: u32, wide: bool, depth: u32) -> std::io::Result<()> {
    let invalid = || std::io::Error::from(std::io::ErrorKind::InvalidData);
    match value_type {
        8 => {
            let len = read_count(s, wide)?;
            skip(s, len)
        }
        9 if depth < 4 => {
            let element_type = read_u32(s)?;
            let count = read_count(s, wide)?;
            match fixed_size(element_type) {
                Some(size) => skip(s, count.checked_mul(size).ok_or_else(invalid)?),
                // Each element reads at least its length, so a count past the file's end fails there.
                None => (0..count).try_for_each(|_| skip_value(s, element_type, wide, depth + 1)),
            }
        }
        other => skip(s, fixed_size(other).ok_or_else(invalid)?),
    }
}

/// Bytes of a scalar of GGUF value type `t`.
fn fixed_size(t: u32) -> Option<u64> {
    match t {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

fn read_bytes<const N: usize>(s: &mut impl Read) -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    s.read_exact(&mut b)?;
    Ok(b)
}

fn read_u32(s: &mut impl Read) -> std::io::Result<u32> {
    Ok(u32::from_le_bytes(read_bytes(s)?))
}

fn read_count(s: &mut impl Read, wide: bool) -> std::io::Result<u64> {
    if wide {
        Ok(u64::from_le_bytes(read_bytes(s)?))
    } else {
        read_u32(s).map(u64::from)
    }
}

/// Moves past `n` bytes within the buffer where it can (a seek that empties the buffer would be a
/// new read of a `Blob` in the browser). Past the end is allowed; the next read fails there.
fn skip<R: Read + Seek>(s: &mut BufReader<R>, n: u64) -> std::io::Result<()> {
    s.seek_relative(i64::try_from(n).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?)
}
