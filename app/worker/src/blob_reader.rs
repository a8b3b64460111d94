//! A `Read + Seek` over a `Blob` (a dropped `File`, a stored or just-downloaded model), reading
//! only the slices the engine asks for, with `FileReaderSync` (a worker may block). The engine reads
//! the header and then one tensor at a time, so the file is never copied whole into wasm memory.

use js_sys::Uint8Array;
use std::io::{Error, ErrorKind, Read, Seek, SeekFrom};
use web_sys::{Blob, FileReaderSync};

/// Bytes asked of the browser at a time: a tensor is read in pieces, so the JS side holds at most
/// this much of it at once.
const MAX_READ: u64 = 16 << 20;

pub struct BlobReader {
    blob: Blob,
    reader: FileReaderSync,
    pos: u64,
    size: u64,
}

impl BlobReader {
    pub fn new(blob: Blob) -> Result<Self, String> {
        let reader = FileReaderSync::new().map_err(|e| format!("cannot read files here: {e:?}"))?;
        let size = blob.size() as u64;
        Ok(Self { blob, reader, pos: 0, size })
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let end = (self.pos + (buf.len() as u64).min(MAX_READ)).min(self.size);
        if end <= self.pos {
            return Ok(0);
        }
        let slice = self
            .blob
            .slice_with_f64_and_f64(self.pos as f64, end as f64)
            .map_err(|e| Error::other(format!("{e:?}")))?;
        let bytes = self.reader.read_as_array_buffer(&slice).map_err(|e| Error::other(format!("{e:?}")))?;
        let n = (end - self.pos) as usize;
        Uint8Array::new(&bytes).copy_to(&mut buf[..n]);
        self.pos = end;
        Ok(n)
    }
}

impl Seek for BlobReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| Error::new(ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}
