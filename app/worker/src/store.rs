//! The browser's model store (Cache Storage): models kept for the next visit ("models"), the
//! download in progress ("incoming", see `download.rs`), and the errors every part of loading
//! shares. Below `loader`, `download` and `resumable`, which all build on it.

use crate::transport::{post, scope};
use js_sys::Reflect;
use loupe_protocol::{CachedModel, Event};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, Cache, Response};

/// Why a load did not produce bytes.
#[derive(Debug)]
pub enum LoadError {
    /// The user cancelled the download.
    Cancelled,
    Failed(String),
}

impl From<String> for LoadError {
    fn from(message: String) -> Self {
        LoadError::Failed(message)
    }
}

const CACHE_NAME: &str = "loupe-models-v1";
/// The size header stored with each cached model, for the storage list.
const SIZE_HEADER: &str = "x-loupe-bytes";

/// Where a download streams before it has parsed.
const INCOMING: &str = "loupe-incoming-v1";

pub fn js_error(e: JsValue) -> String {
    e.as_string()
        .or_else(|| Reflect::get(&e, &"message".into()).ok().and_then(|m| m.as_string()))
        .unwrap_or_else(|| format!("{e:?}"))
}

/// A Cache Storage cache by name; none where the browser refuses storage (some private windows).
async fn open_cache_named(name: &str) -> Option<Cache> {
    let caches = scope().caches().ok()?;
    JsFuture::from(caches.open(name)).await.ok()?.dyn_into().ok()
}

/// The model store.
async fn open_cache() -> Option<Cache> {
    open_cache_named(CACHE_NAME).await
}

/// The store of downloads in progress.
pub async fn open_incoming() -> Option<Cache> {
    open_cache_named(INCOMING).await
}

/// The model stored under `url`, if any.
pub async fn stored(url: &str) -> Result<Option<Blob>, LoadError> {
    let Some(cache) = open_cache().await else { return Ok(None) };
    let hit = JsFuture::from(cache.match_with_str(url)).await.map_err(js_error)?;
    let Ok(response) = hit.dyn_into::<Response>() else { return Ok(None) };
    post(&Event::Progress { loaded: 0, total: None, stage: "reading from browser storage".into() });
    let blob = JsFuture::from(response.blob().map_err(js_error)?).await.map_err(js_error)?;
    Ok(Some(blob.unchecked_into()))
}

/// Drops what a download left in the incoming store for `url`.
pub async fn forget(url: &str) {
    if let Some(cache) = open_incoming().await {
        let _ = JsFuture::from(cache.delete_with_str(url)).await;
    }
}

/// Keeps a model that loaded for the next visit. Storage full or refused only means it is not kept.
pub async fn keep(url: &str, blob: &Blob) {
    let Some(cache) = open_cache().await else { return };
    if let Err(e) = put(&cache, url, blob).await {
        web_sys::console::warn_1(&format!("model not stored: {e}").into());
    }
    forget(url).await;
    post_cache_list().await;
}

/// Puts `blob` under `url` with the size header the storage list shows.
pub async fn put(cache: &Cache, url: &str, blob: &Blob) -> Result<(), String> {
    let init = web_sys::ResponseInit::new();
    let headers = web_sys::Headers::new().map_err(js_error)?;
    let _ = headers.set(SIZE_HEADER, &(blob.size() as u64).to_string());
    let _ = headers.set("content-type", "application/octet-stream");
    init.set_headers(&headers);
    let response = Response::new_with_opt_blob_and_init(Some(blob), &init).map_err(js_error)?;
    JsFuture::from(cache.put_with_str(url, &response)).await.map_err(js_error)?;
    Ok(())
}

pub async fn cache_list() -> Result<Vec<CachedModel>, String> {
    let Some(cache) = open_cache().await else { return Ok(Vec::new()) };
    let keys: js_sys::Array = JsFuture::from(cache.keys()).await.map_err(js_error)?.unchecked_into();
    let mut entries = Vec::new();
    for request in keys.iter() {
        let request: web_sys::Request = request.unchecked_into();
        let url = request.url();
        let bytes = match JsFuture::from(cache.match_with_request(&request)).await {
            Ok(r) => r
                .dyn_into::<Response>()
                .ok()
                .and_then(|r| r.headers().get(SIZE_HEADER).ok().flatten())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            Err(_) => 0,
        };
        entries.push(CachedModel { url, bytes });
    }
    Ok(entries)
}

pub async fn post_cache_list() {
    match cache_list().await {
        Ok(entries) => post(&Event::CacheList { entries }),
        // A notice, not an error: an error without a run ends the load or run the page waits for.
        Err(message) => post(&Event::Notice { message: format!("the model store could not be listed: {message}") }),
    }
}

pub async fn clear(url: Option<&str>) -> Result<(), String> {
    match url {
        Some(url) => {
            if let Some(cache) = open_cache().await {
                JsFuture::from(cache.delete_with_str(url)).await.map_err(js_error)?;
            }
        }
        None => {
            let caches = scope().caches().map_err(js_error)?;
            JsFuture::from(caches.delete(CACHE_NAME)).await.map_err(js_error)?;
            // What a download left when its tab closed or its worker died mid-way goes too.
            JsFuture::from(caches.delete(INCOMING)).await.map_err(js_error)?;
        }
    }
    Ok(())
}
