//! Downloading a model without holding it in memory: the body streams into a Cache Storage entry
//! of its own ("incoming"), counted on the way for progress, then is read back as a disk-backed
//! `Blob` for the engine. Once it has parsed, `loader::store` moves it to the model store; a file
//! that does not parse is dropped (`forget`), so a bad download is never kept.

use crate::loader::{js_error, set_download, LoadError};
use crate::transport::{now_seconds, post, scope};
use js_sys::{Reflect, Uint8Array};
use loupe_protocol::{too_large_message as too_large, Event, MAX_MODEL_BYTES};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, Cache, ReadableStream, ReadableStreamDefaultReader, Response};

const INCOMING: &str = "loupe-incoming-v1";

async fn incoming() -> Option<Cache> {
    crate::loader::open_cache_named(INCOMING).await
}

fn interrupted(e: JsValue) -> LoadError {
    let msg = js_error(e);
    if msg.to_lowercase().contains("abort") {
        LoadError::Cancelled
    } else {
        LoadError::Failed(format!("download interrupted: {msg}"))
    }
}

pub async fn download(url: &str) -> Result<Blob, LoadError> {
    let controller = web_sys::AbortController::new().map_err(js_error)?;
    let init = web_sys::RequestInit::new();
    init.set_signal(Some(&controller.signal()));
    set_download(Some(controller));
    let result = fetch_body(url, &init).await;
    set_download(None);
    if result.is_err() {
        forget(url).await;
    }
    result
}

/// Drops what `download` left in the incoming store for `url`.
pub async fn forget(url: &str) {
    if let Some(cache) = incoming().await {
        let _ = JsFuture::from(cache.delete_with_str(url)).await;
    }
}

async fn fetch_body(url: &str, init: &web_sys::RequestInit) -> Result<Blob, LoadError> {
    let Some(cache) = incoming().await else {
        // No Cache Storage (a private window may refuse it): the download is kept in memory.
        return fetch_to_memory(url, init).await;
    };
    match fetch_to_store(&cache, url, init).await? {
        Stored::Blob(blob) => Ok(blob),
        Stored::Refused(why) => {
            // Storage full or refused: the whole body arrived but was not kept, so it is fetched
            // once more, into memory.
            web_sys::console::warn_1(
                &format!("the download could not be stored ({why}); fetching it into memory").into(),
            );
            fetch_to_memory(url, init).await
        }
    }
}

/// What streaming a download into Cache Storage gave.
enum Stored {
    /// The stored body, read back as a disk-backed blob.
    Blob(Blob),
    /// The body arrived whole, but storage refused it.
    Refused(String),
}

/// The response's body and announced length, once the status and size are acceptable.
async fn open(url: &str, init: &web_sys::RequestInit) -> Result<(ReadableStream, Option<u64>), LoadError> {
    let response: Response = JsFuture::from(scope().fetch_with_str_and_init(url, init))
        .await
        .map_err(|e| match interrupted(e) {
            LoadError::Failed(msg) => LoadError::Failed(format!("{msg}; check the address and your connection")),
            cancelled => cancelled,
        })?
        .dyn_into()
        .map_err(js_error)?;
    if !response.ok() {
        return Err(format!("download failed: HTTP {} {} for {url}", response.status(), response.status_text()).into());
    }
    let total = response.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<u64>().ok());
    if let Some(t) = total.filter(|&t| t > MAX_MODEL_BYTES) {
        crate::loader::abort_download();
        return Err(too_large(t).into());
    }
    let body = response.body().ok_or_else(|| "the server sent no body".to_string())?;
    Ok((body, total))
}

async fn fetch_to_memory(url: &str, init: &web_sys::RequestInit) -> Result<Blob, LoadError> {
    let (body, total) = open(url, init).await?;
    let chunks = js_sys::Array::new();
    count(&body, total, |chunk| {
        chunks.push(chunk);
    })
    .await?;
    Ok(Blob::new_with_u8_array_sequence(&chunks).map_err(js_error)?)
}

async fn fetch_to_store(cache: &Cache, url: &str, init: &web_sys::RequestInit) -> Result<Stored, LoadError> {
    let (body, total) = open(url, init).await?;
    // One branch streams to disk; the other is only counted, for progress and the size checks.
    let branches = body.tee();
    let (to_disk, to_count): (ReadableStream, ReadableStream) =
        (branches.get(0).unchecked_into(), branches.get(1).unchecked_into());
    let stored = Response::new_with_opt_readable_stream(Some(&to_disk)).map_err(js_error)?;
    let put = JsFuture::from(cache.put_with_str(url, &stored));
    count(&to_count, total, |_| {}).await?;
    if let Err(e) = put.await {
        return Ok(Stored::Refused(js_error(e)));
    }
    let kept: Response =
        JsFuture::from(cache.match_with_str(url)).await.map_err(js_error)?.dyn_into().map_err(js_error)?;
    let blob = JsFuture::from(kept.blob().map_err(js_error)?).await.map_err(js_error)?;
    Ok(Stored::Blob(blob.unchecked_into()))
}

/// Reads a body to its end, reporting progress and refusing it once it is too large or when it
/// ends short of its announced length. `each` sees every chunk.
async fn count(body: &ReadableStream, total: Option<u64>, mut each: impl FnMut(&Uint8Array)) -> Result<u64, LoadError> {
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut received = 0u64;
    let mut last_report = 0.0;
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(interrupted)?;
        if Reflect::get(&chunk, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true) {
            break;
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into()).map_err(js_error)?.unchecked_into();
        received += value.length() as u64;
        each(&value);
        if received > MAX_MODEL_BYTES {
            crate::loader::abort_download();
            return Err(too_large(received).into());
        }
        let now = now_seconds();
        if now - last_report > 0.1 {
            last_report = now;
            post(&Event::Progress { loaded: received, total, stage: "downloading".into() });
        }
    }
    if let Some(t) = total.filter(|&t| t != received) {
        return Err(format!("the download ended early: {received} of {t} bytes arrived").into());
    }
    post(&Event::Progress { loaded: received, total, stage: "downloaded".into() });
    Ok(received)
}
