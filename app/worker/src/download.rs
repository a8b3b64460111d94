//! Downloading a model without holding it in memory: the body streams into a Cache Storage entry
//! of its own ("incoming"), counted on the way for progress, then is read back as a disk-backed
//! `Blob` for the engine. Once it has parsed, `store::keep` moves it to the model store; a file
//! that does not parse is dropped (`forget`), so a bad download is never kept. A dropped
//! connection is resumed where it stopped (`resumable`).

use crate::resumable::{interrupted, ResumableBody};
use crate::store::{forget, js_error, open_incoming, LoadError};
use crate::transport::{now_seconds, post, scope};
use js_sys::{Reflect, Uint8Array};
use loupe_protocol::{too_large_message as too_large, Event, MAX_MODEL_BYTES, RESIDENT_MAX_BYTES};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Blob, Cache, ReadableStream, Response};

thread_local! {
    static DOWNLOAD: RefCell<Option<web_sys::AbortController>> = const { RefCell::new(None) };
}

/// The download in progress, so a cancel can abort it.
fn set_download(controller: Option<web_sys::AbortController>) {
    DOWNLOAD.with(|d| *d.borrow_mut() = controller);
}

pub fn abort_download() {
    DOWNLOAD.with(|d| {
        if let Some(c) = d.borrow_mut().take() {
            c.abort();
        }
    });
}

pub async fn download(url: &str) -> Result<Blob, LoadError> {
    let controller = web_sys::AbortController::new().map_err(js_error)?;
    let signal = controller.signal();
    set_download(Some(controller));
    let result = fetch_body(url, &signal).await;
    set_download(None);
    if result.is_err() {
        forget(url).await;
    }
    result
}

async fn fetch_body(url: &str, signal: &AbortSignal) -> Result<Blob, LoadError> {
    let Some(cache) = open_incoming().await else {
        // No Cache Storage (a private window may refuse it): the download is kept in memory.
        return fetch_to_memory(url, signal).await;
    };
    match fetch_to_store(&cache, url, signal).await? {
        Stored::Blob(blob) => Ok(blob),
        Stored::Refused(why) => {
            // Storage full or refused: the store stopped reading the body, so it is fetched once
            // more, into memory (files up to the resident limit only).
            web_sys::console::warn_1(
                &format!("the download could not be stored ({why}); fetching it into memory").into(),
            );
            fetch_to_memory(url, signal).await
        }
    }
}

/// What streaming a download into Cache Storage gave.
enum Stored {
    /// The stored body, read back as a disk-backed blob.
    Blob(Blob),
    /// Storage refused the body (quota, private window); the download stopped there.
    Refused(String),
}

/// The response's body and announced length, once the status and size are acceptable.
async fn open(url: &str, signal: &AbortSignal) -> Result<(ResumableBody, Option<u64>), LoadError> {
    let init = web_sys::RequestInit::new();
    init.set_signal(Some(signal));
    let response: Response = JsFuture::from(scope().fetch_with_str_and_init(url, &init))
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
        abort_download();
        return Err(too_large(t).into());
    }
    Ok((ResumableBody::new(url, signal.clone(), &response)?, total))
}

/// Why a download the browser will not store cannot be held in memory instead.
fn not_storable(bytes: u64) -> LoadError {
    format!(
        "this browser refused to store the download, and at {:.2} GB or more it is too large to hold in memory; allow this site to store data (or leave private browsing), or pick a smaller model",
        bytes as f64 / 1e9
    )
    .into()
}

async fn fetch_to_memory(url: &str, signal: &AbortSignal) -> Result<Blob, LoadError> {
    let (body, total) = open(url, signal).await?;
    // Without storage the whole file would sit in memory, beside the weights read from it.
    if let Some(t) = total.filter(|&t| t > RESIDENT_MAX_BYTES) {
        abort_download();
        return Err(not_storable(t));
    }
    let chunks = js_sys::Array::new();
    count(body, total, RESIDENT_MAX_BYTES, |chunk| {
        chunks.push(chunk);
    })
    .await?;
    Ok(Blob::new_with_u8_array_sequence(&chunks).map_err(js_error)?)
}

async fn fetch_to_store(cache: &Cache, url: &str, signal: &AbortSignal) -> Result<Stored, LoadError> {
    let (body, total) = open(url, signal).await?;
    // The store pulls the body through a counter (progress and the size checks). Teeing it instead
    // let the counted branch run ahead of the disk and queue the rest in memory: 3.8 GB for a
    // 4.5 GB file from a fast server. Pulling keeps the download at the store's pace.
    let counted = Counted::new(body, total, MAX_MODEL_BYTES)?;
    let stored = Response::new_with_opt_readable_stream(Some(&counted.stream)).map_err(js_error)?;
    let put = JsFuture::from(cache.put_with_str(url, &stored)).await;
    counted.outcome()?;
    if let Err(e) = put {
        return Ok(Stored::Refused(js_error(e)));
    }
    let kept: Response =
        JsFuture::from(cache.match_with_str(url)).await.map_err(js_error)?.dyn_into().map_err(js_error)?;
    let blob = JsFuture::from(kept.blob().map_err(js_error)?).await.map_err(js_error)?;
    Ok(Stored::Blob(blob.unchecked_into()))
}

/// A body re-streamed chunk by chunk as its reader pulls, counted on the way (see `Tally`).
struct Counted {
    stream: ReadableStream,
    tally: Rc<RefCell<Tally>>,
    // The stream calls these while it lives; dropped with it.
    _pull: Closure<dyn FnMut(JsValue) -> js_sys::Promise>,
    _cancel: Closure<dyn FnMut(JsValue)>,
}

impl Counted {
    fn new(body: ResumableBody, total: Option<u64>, limit: u64) -> Result<Self, LoadError> {
        let tally = Rc::new(RefCell::new(Tally::new(total, limit)));
        let counter = tally.clone();
        // When the store gives up (quota), the network read stops too.
        let stopper = body.stopper();
        let cancel = Closure::<dyn FnMut(JsValue)>::new(move |_reason: JsValue| stopper.stop());
        // Taken out while a chunk is read: the store asks for one chunk at a time.
        let body = Rc::new(Cell::new(Some(body)));
        let pull = Closure::<dyn FnMut(JsValue) -> js_sys::Promise>::new(move |controller: JsValue| {
            let controller: web_sys::ReadableStreamDefaultController = controller.unchecked_into();
            let (body, tally) = (body.clone(), counter.clone());
            wasm_bindgen_futures::future_to_promise(async move {
                let Some(mut reading) = body.take() else { return Ok(JsValue::UNDEFINED) };
                let step = match reading.read().await {
                    Ok(None) => tally.borrow_mut().finish().map(|()| None),
                    Ok(Some(value)) => tally.borrow_mut().add(value.length() as u64).map(|()| Some(value)),
                    Err(e) => Err(e),
                };
                let stopper = reading.stopper();
                body.set(Some(reading));
                match step {
                    Ok(Some(value)) => controller.enqueue_with_chunk(&value)?,
                    Ok(None) => controller.close()?,
                    Err(e) => {
                        tally.borrow_mut().error.get_or_insert(e);
                        stopper.stop();
                        controller.error_with_e(&JsValue::from_str("the download failed"));
                    }
                }
                Ok(JsValue::UNDEFINED)
            })
        });
        let source = js_sys::Object::new();
        Reflect::set(&source, &"pull".into(), pull.as_ref()).map_err(js_error)?;
        Reflect::set(&source, &"cancel".into(), cancel.as_ref()).map_err(js_error)?;
        // Pull one chunk only when the store asks: nothing queues ahead of the disk.
        let strategy = web_sys::QueuingStrategy::new();
        strategy.set_high_water_mark(0.0);
        let stream = ReadableStream::new_with_underlying_source_and_strategy(&source, &strategy).map_err(js_error)?;
        Ok(Self { stream, tally, _pull: pull, _cancel: cancel })
    }

    /// Why the body did not arrive whole, once the store has read it.
    fn outcome(&self) -> Result<(), LoadError> {
        match self.tally.borrow_mut().error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Bytes received against the announced length, with progress events on the way.
struct Tally {
    received: u64,
    total: Option<u64>,
    /// Bytes past which the body is refused.
    limit: u64,
    last_report: f64,
    error: Option<LoadError>,
}

impl Tally {
    fn new(total: Option<u64>, limit: u64) -> Self {
        Self { received: 0, total, limit, last_report: 0.0, error: None }
    }

    /// Counts a chunk; refuses the body once it is too large.
    fn add(&mut self, bytes: u64) -> Result<(), LoadError> {
        self.received += bytes;
        if self.received > self.limit {
            abort_download();
            return Err(if self.limit < MAX_MODEL_BYTES {
                not_storable(self.received)
            } else {
                too_large(self.received).into()
            });
        }
        let now = now_seconds();
        if now - self.last_report > 0.1 {
            self.last_report = now;
            post(&Event::Progress { loaded: self.received, total: self.total, stage: "downloading".into() });
        }
        Ok(())
    }

    /// The body ended: refuses it when it is short of its announced length.
    fn finish(&mut self) -> Result<(), LoadError> {
        if let Some(t) = self.total.filter(|&t| t != self.received) {
            return Err(format!("the download ended early: {} of {t} bytes arrived", self.received).into());
        }
        post(&Event::Progress { loaded: self.received, total: self.total, stage: "downloaded".into() });
        Ok(())
    }
}

/// Reads a body to its end, reporting progress and refusing it once it is too large or when it
/// ends short of its announced length. `each` sees every chunk.
async fn count(
    mut body: ResumableBody,
    total: Option<u64>,
    limit: u64,
    mut each: impl FnMut(&Uint8Array),
) -> Result<u64, LoadError> {
    let mut tally = Tally::new(total, limit);
    while let Some(value) = body.read().await? {
        each(&value);
        tally.add(value.length() as u64)?;
    }
    tally.finish()?;
    Ok(tally.received)
}
