//! Getting model bytes: from the browser's Cache Storage, by download with progress (then stored),
//! or from a dropped file. Files too large for wasm32 memory are refused before their body is read.

use crate::transport::{post, scope};
use js_sys::{Reflect, Uint8Array};
use loupe_protocol::{too_large_message as too_large, CachedModel, Event, MAX_MODEL_BYTES};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, Response};

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

thread_local! {
    static DOWNLOAD: RefCell<Option<web_sys::AbortController>> = const { RefCell::new(None) };
}

fn js_error(e: JsValue) -> String {
    e.as_string()
        .or_else(|| Reflect::get(&e, &"message".into()).ok().and_then(|m| m.as_string()))
        .unwrap_or_else(|| format!("{e:?}"))
}

async fn open_cache() -> Option<Cache> {
    let caches = scope().caches().ok()?;
    JsFuture::from(caches.open(CACHE_NAME)).await.ok()?.dyn_into().ok()
}

pub fn abort_download() {
    DOWNLOAD.with(|d| {
        if let Some(c) = d.borrow_mut().take() {
            c.abort();
        }
    });
}

/// The bytes at `url`, and whether they came from the cache.
pub async fn fetch_model(url: &str) -> Result<(Vec<u8>, bool), LoadError> {
    let cache = open_cache().await;
    if let Some(cache) = &cache {
        let hit = JsFuture::from(cache.match_with_str(url)).await.map_err(js_error)?;
        if let Ok(response) = hit.dyn_into::<Response>() {
            post(&Event::Progress { loaded: 0, total: None, stage: "reading from browser storage".into() });
            let buffer = JsFuture::from(response.array_buffer().map_err(js_error)?).await.map_err(js_error)?;
            return Ok((Uint8Array::new(&buffer).to_vec(), true));
        }
    }
    let bytes = download(url).await?;
    if let Some(cache) = &cache {
        store(cache, url, &bytes).await;
    }
    Ok((bytes, false))
}

async fn download(url: &str) -> Result<Vec<u8>, LoadError> {
    let controller = web_sys::AbortController::new().map_err(js_error)?;
    let init = web_sys::RequestInit::new();
    init.set_signal(Some(&controller.signal()));
    DOWNLOAD.with(|d| *d.borrow_mut() = Some(controller));
    let result = read_body(url, &init).await;
    DOWNLOAD.with(|d| d.borrow_mut().take());
    result
}

async fn read_body(url: &str, init: &web_sys::RequestInit) -> Result<Vec<u8>, LoadError> {
    let response: Response = JsFuture::from(scope().fetch_with_str_and_init(url, init))
        .await
        .map_err(|e| format!("download failed ({}); check the address and your connection", js_error(e)))?
        .dyn_into()
        .map_err(js_error)?;
    if !response.ok() {
        return Err(format!("download failed: HTTP {} {} for {url}", response.status(), response.status_text()).into());
    }
    let total = response.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<u64>().ok());
    if let Some(t) = total.filter(|&t| t > MAX_MODEL_BYTES) {
        abort_download();
        return Err(too_large(t).into());
    }
    let body = response.body().ok_or_else(|| "the server sent no body".to_string())?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut bytes = Vec::with_capacity(total.unwrap_or(0) as usize);
    let mut last_report = 0.0;
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| {
            let msg = js_error(e);
            if msg.to_lowercase().contains("abort") {
                LoadError::Cancelled
            } else {
                LoadError::Failed(format!("download interrupted: {msg}"))
            }
        })?;
        if Reflect::get(&chunk, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true) {
            break;
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into()).map_err(js_error)?.unchecked_into();
        let start = bytes.len();
        bytes.resize(start + value.length() as usize, 0);
        value.copy_to(&mut bytes[start..]);
        if bytes.len() as u64 > MAX_MODEL_BYTES {
            abort_download();
            return Err(too_large(bytes.len() as u64).into());
        }
        let now = crate::transport::now_seconds();
        if now - last_report > 0.1 {
            last_report = now;
            post(&Event::Progress { loaded: bytes.len() as u64, total, stage: "downloading".into() });
        }
    }
    post(&Event::Progress { loaded: bytes.len() as u64, total, stage: "downloaded".into() });
    Ok(bytes)
}

async fn store(cache: &Cache, url: &str, bytes: &[u8]) {
    let body = Uint8Array::from(bytes);
    let init = web_sys::ResponseInit::new();
    let headers = web_sys::Headers::new().unwrap();
    let _ = headers.set(SIZE_HEADER, &bytes.len().to_string());
    let _ = headers.set("content-type", "application/octet-stream");
    init.set_headers(&headers);
    if let Ok(response) = Response::new_with_opt_buffer_source_and_init(Some(&body), &init) {
        if let Err(e) = JsFuture::from(cache.put_with_str(url, &response)).await {
            // Storage full or refused: the model still works, it just is not kept.
            web_sys::console::warn_1(&format!("model not stored: {}", js_error(e)).into());
        }
    }
}

pub async fn read_file(file: &web_sys::File) -> Result<Vec<u8>, LoadError> {
    let size = file.size() as u64;
    if size > MAX_MODEL_BYTES {
        return Err(too_large(size).into());
    }
    post(&Event::Progress { loaded: 0, total: Some(size), stage: "reading the file".into() });
    let buffer = JsFuture::from(file.array_buffer()).await.map_err(js_error)?;
    Ok(Uint8Array::new(&buffer).to_vec())
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
        Err(message) => post(&Event::Error { run: None, message }),
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
        }
    }
    Ok(())
}
