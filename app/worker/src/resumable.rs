//! A download's body that survives a dropped connection. When the network fails mid-way, the rest
//! is asked for again with `Range: bytes=N-` and the body goes on from there. A server that ignores
//! ranges sends the whole file again (200); the transfer then restarts from its first byte, and the
//! bytes already handed on are read past. A file that changed on the server in between (another
//! validator: ETag, else Last-Modified) is refused rather than spliced.
//!
//! Only `Range` is sent, never `If-Range`: `Range` alone is a CORS-safelisted header, so a
//! cross-origin host (Hugging Face's CDN) needs no preflight, and the validator is compared here.

use crate::store::{js_error, LoadError};
use crate::transport::{post, scope};
use js_sys::{Reflect, Uint8Array};
use loupe_protocol::Event;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, ReadableStreamDefaultReader, Response};

/// Failed reconnections in a row (no byte arriving in between) before the download gives up.
const RECONNECTIONS: u32 = 5;
/// The wait before the first reconnection; it doubles with each failure in a row.
const FIRST_WAIT_MS: i32 = 500;

/// Why a fetch failed: the user's Cancel, or a network error worth reconnecting after.
pub fn interrupted(e: JsValue) -> LoadError {
    let msg = js_error(e);
    if msg.to_lowercase().contains("abort") {
        LoadError::Cancelled
    } else {
        LoadError::Failed(format!("download interrupted: {msg}"))
    }
}

/// A response's body, read chunk by chunk, reconnecting when the connection drops.
pub struct ResumableBody {
    url: String,
    signal: AbortSignal,
    reader: Stopper,
    /// What identifies this version of the file: the first answer's ETag, else its Last-Modified.
    validator: Option<String>,
    /// Bytes handed on so far.
    received: u64,
    /// Bytes of a restarted transfer still to read past (they were handed on before the drop).
    skip: u64,
    /// Failed reconnections since the last byte arrived.
    failures: u32,
}

impl ResumableBody {
    /// The body of `response`, the first answer to a GET of `url` made with `signal`.
    pub fn new(url: &str, signal: AbortSignal, response: &Response) -> Result<Self, LoadError> {
        let body = response.body().ok_or_else(|| "the server sent no body".to_string())?;
        Ok(Self {
            url: url.to_string(),
            signal,
            reader: Stopper {
                reader: Rc::new(RefCell::new(body.get_reader().unchecked_into())),
                stopped: Rc::default(),
            },
            validator: validator(response),
            received: 0,
            skip: 0,
            failures: 0,
        })
    }

    /// The next chunk, none at the end of the file.
    pub async fn read(&mut self) -> Result<Option<Uint8Array>, LoadError> {
        loop {
            let reader = self.reader.reader.borrow().clone();
            let failed = match JsFuture::from(reader.read()).await {
                Ok(result) => match chunk(&result)? {
                    None => return Ok(None),
                    Some(value) => {
                        if let Some(value) = self.past_skip(value) {
                            self.failures = 0;
                            self.received += value.length() as u64;
                            return Ok(Some(value));
                        }
                        continue;
                    }
                },
                Err(e) => e,
            };
            match interrupted(failed) {
                LoadError::Failed(why) if !self.reader.stopped.get() => self.reconnect(why).await?,
                failed => return Err(failed),
            }
        }
    }

    /// What stops the network read when the consumer gives up, even while a read is under way.
    pub fn stopper(&self) -> Stopper {
        self.reader.clone()
    }

    /// What is left of `value` once a restarted transfer is past the bytes handed on before.
    fn past_skip(&mut self, value: Uint8Array) -> Option<Uint8Array> {
        let len = value.length() as u64;
        if self.skip >= len {
            self.skip -= len;
            return None;
        }
        let rest = value.subarray(self.skip as u32, value.length());
        self.skip = 0;
        Some(rest)
    }

    /// Asks for the rest of the file after the connection dropped, waiting longer after each failure.
    async fn reconnect(&mut self, why: String) -> Result<(), LoadError> {
        loop {
            if self.failures >= RECONNECTIONS {
                return Err(format!("{why} (gave up after {RECONNECTIONS} attempts to reconnect)").into());
            }
            self.failures += 1;
            post(&Event::Progress {
                loaded: self.received,
                total: None,
                stage: format!("connection lost, reconnecting (attempt {} of {RECONNECTIONS})", self.failures),
            });
            sleep(FIRST_WAIT_MS << (self.failures - 1)).await;
            if self.signal.aborted() || self.reader.stopped.get() {
                return Err(LoadError::Cancelled);
            }
            match self.ask_for_the_rest().await? {
                Answer::Resumed => return Ok(()),
                Answer::TryAgain(again) => web_sys::console::warn_1(&again.into()),
            }
        }
    }

    /// One request for the rest of the file. A network failure or a server error is worth another
    /// try; an answer that cannot continue this file (another version, a refusal) ends the download.
    async fn ask_for_the_rest(&mut self) -> Result<Answer, LoadError> {
        let init = web_sys::RequestInit::new();
        init.set_signal(Some(&self.signal));
        let headers = web_sys::Headers::new().map_err(js_error)?;
        headers.set("range", &format!("bytes={}-", self.received)).map_err(js_error)?;
        init.set_headers(&headers);
        let response: Response = match JsFuture::from(scope().fetch_with_str_and_init(&self.url, &init)).await {
            Ok(response) => response.dyn_into().map_err(js_error)?,
            Err(e) => {
                return match interrupted(e) {
                    LoadError::Failed(why) => Ok(Answer::TryAgain(why)),
                    cancelled => Err(cancelled),
                }
            }
        };
        let changed = match (&self.validator, validator(&response)) {
            (Some(before), Some(now)) => *before != now,
            _ => false,
        };
        if changed {
            return Err(LoadError::Failed("the file changed on the server while it downloaded; load it again".into()));
        }
        let skip = match response.status() {
            206 => match range_start(&response) {
                // Content-Range is unreadable cross-origin unless the host exposes it; a 206 to
                // `bytes=N-` starts at N.
                Some(start) if start != self.received => {
                    return Err(format!("the server resumed at byte {start}, not {}", self.received).into())
                }
                _ => 0,
            },
            200 => self.received,
            status @ 500.. => return Ok(Answer::TryAgain(format!("HTTP {status} on reconnecting"))),
            status => return Err(format!("HTTP {status} {} on reconnecting", response.status_text()).into()),
        };
        let body = response.body().ok_or_else(|| "the server sent no body".to_string())?;
        *self.reader.reader.borrow_mut() = body.get_reader().unchecked_into();
        self.skip = skip;
        Ok(Answer::Resumed)
    }
}

enum Answer {
    Resumed,
    /// Why this attempt failed; another may succeed.
    TryAgain(String),
}

/// The body's current network reader, shared with whoever may stop it.
#[derive(Clone)]
pub struct Stopper {
    reader: Rc<RefCell<ReadableStreamDefaultReader>>,
    stopped: Rc<Cell<bool>>,
}

impl Stopper {
    /// Stops the network read for good: no reconnection follows.
    pub fn stop(&self) {
        self.stopped.set(true);
        // On a body that already failed, cancel() rejects with that failure: awaited, so it is not
        // reported as unhandled.
        let cancelled = JsFuture::from(self.reader.borrow().cancel());
        wasm_bindgen_futures::spawn_local(async move {
            let _ = cancelled.await;
        });
    }
}

/// The bytes of a reader's `{done, value}` result, none at the end.
fn chunk(result: &JsValue) -> Result<Option<Uint8Array>, LoadError> {
    if Reflect::get(result, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true) {
        return Ok(None);
    }
    Ok(Some(Reflect::get(result, &"value".into()).map_err(js_error)?.unchecked_into()))
}

fn validator(response: &Response) -> Option<String> {
    let headers = response.headers();
    // A weak ETag (W/...) may stay the same across byte-different versions.
    let etag = headers.get("etag").ok().flatten().filter(|e| !e.starts_with("W/"));
    etag.or_else(|| headers.get("last-modified").ok().flatten())
}

/// The first byte of a 206 answer, from `Content-Range: bytes START-END/TOTAL`.
fn range_start(response: &Response) -> Option<u64> {
    let value = response.headers().get("content-range").ok().flatten()?;
    value.strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok()
}

async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}
