//! Getting a model file as a `Blob`: from the browser's model store (`store.rs`), by download
//! (`download.rs`), or a dropped file. The engine reads the blob slice by slice (`blob_reader.rs`);
//! a download is kept only once it has parsed (`store::keep`).

use crate::store::{stored, LoadError};
use loupe_protocol::{too_large_message as too_large, MAX_MODEL_BYTES};
use web_sys::Blob;

/// The model at `url` and whether it came from the browser's storage (a fresh download is not
/// stored yet: the caller stores it once it has parsed).
pub async fn fetch_model(url: &str) -> Result<(Blob, bool), LoadError> {
    if let Some(blob) = stored(url).await? {
        return Ok((blob, true));
    }
    Ok((crate::download::download(url).await?, false))
}

pub fn check_file_size(file: &web_sys::File) -> Result<(), LoadError> {
    let size = file.size() as u64;
    if size > MAX_MODEL_BYTES {
        return Err(too_large(size).into());
    }
    Ok(())
}
