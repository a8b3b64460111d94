//! The pool of lens helper workers. The model worker starts helpers (this same program), gives each
//! a slice of the unembedding's vocabulary once per model (the model file and where the slice lies
//! in it: the helper reads the bytes itself), and for every row group sends them the
//! final-normed cells; each returns its `LensPartial`, and partials merge into the lens. This file
//! only moves headers and bytes (`loupe_lens::lens::wire` knows what they mean).
//! Plain workers and messages: no SharedArrayBuffer, so no special headers on the static host.
//!
//! Helper side: `handle` answers the coordinator's messages inside a helper.

use crate::blob_reader::BlobReader;
use crate::transport::{now_seconds, scope};
use js_sys::{Float32Array, Reflect};
use loupe_lens::lens::wire::{InputHeader, OwnedVocabSlice, SliceHeader};
use loupe_lens::lens::{LensInput, LensPartial};
use loupe_lens::{Engine, LensError, LensJob};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

const MAX_HELPERS: usize = 3;
/// While waiting for a helper, a Cancel is noticed within this many milliseconds.
const CANCEL_POLL_MS: i32 = 100;
/// A helper starting (and reading its slice, a few hundred MB for an 8B model) may take this long.
const START_SECONDS: f64 = 60.0;
/// A helper's share of a lens part is given up this long, plus 4× the coordinator's own share,
/// after the coordinator finished its own (the shares are equal, so a live helper is long done).
const GRACE_SECONDS: f64 = 10.0;

/// Coordinator → helper, as JSON in the `helper` field; bytes ride in `bytes`.
#[derive(Serialize, Deserialize)]
enum ToHelper {
    /// `bytes`: the model file (a `Blob`, shared, not copied); the helper's rows of the unembedding
    /// start at byte `offset`.
    Init { header: SliceHeader, offset: u64 },
    /// `bytes`: the final-normed cells of a row group, as f32. `job` numbers the request, so a
    /// reply left over from a cancelled run is never merged into a later one.
    Lens { job: u64, input: InputHeader },
}

/// Helper → coordinator.
#[derive(Serialize, Deserialize)]
enum FromHelper {
    Initialized,
    Partial {
        job: u64,
        partial: LensPartial,
    },
    /// `job`: the lens request that failed, so a failure left over from a cancelled run does not
    /// give up a helper that is working on the current one.
    Failed {
        job: Option<u64>,
        why: String,
    },
}

// ---------- coordinator side ----------

struct Helper {
    worker: web_sys::Worker,
    vocab: Range<usize>,
    /// It stopped answering (crashed, failed or timed out): terminated, and its slice decoded by
    /// the coordinator from then on.
    dead: std::cell::Cell<bool>,
    inbox: Rc<RefCell<VecDeque<Result<String, String>>>>,
    wake: Rc<RefCell<Option<js_sys::Function>>>,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl Helper {
    fn spawn() -> Result<Helper, String> {
        // This worker's own script, so a helper runs the same build (relaxed or SIMD128).
        let worker = web_sys::Worker::new(&scope().location().href()).map_err(|e| format!("{e:?}"))?;
        let inbox: Rc<RefCell<VecDeque<Result<String, String>>>> = Rc::default();
        let wake: Rc<RefCell<Option<js_sys::Function>>> = Rc::default();
        let deliver = {
            let (inbox, wake) = (inbox.clone(), wake.clone());
            move |item: Result<String, String>| {
                inbox.borrow_mut().push_back(item);
                if let Some(f) = wake.borrow_mut().take() {
                    let _ = f.call0(&JsValue::NULL);
                }
            }
        };
        let on_message = {
            let deliver = deliver.clone();
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                deliver(Ok(ev.data().as_string().unwrap_or_default()));
            })
        };
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
            ev.prevent_default();
            deliver(Err("a lens helper worker stopped".into()));
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(Helper {
            worker,
            vocab: 0..0,
            dead: Default::default(),
            inbox,
            wake,
            _on_message: on_message,
            _on_error: on_error,
        })
    }

    /// The next message, or none once `cancel` says so (checked at least every `CANCEL_POLL_MS`);
    /// an error once `deadline` (in `now_seconds`) has passed.
    async fn next(&self, cancel: &dyn Fn() -> bool, deadline: f64) -> Option<Result<String, String>> {
        loop {
            if let Some(item) = self.inbox.borrow_mut().pop_front() {
                return Some(item);
            }
            if cancel() {
                return None;
            }
            if now_seconds() > deadline {
                return Some(Err("a lens helper worker stopped answering".into()));
            }
            let wake = self.wake.clone();
            let promise = js_sys::Promise::new(&mut |resolve, _| {
                let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, CANCEL_POLL_MS);
                *wake.borrow_mut() = Some(resolve);
            });
            let _ = JsFuture::from(promise).await;
        }
    }

    async fn reply(&self, cancel: &dyn Fn() -> bool, deadline: f64) -> Option<Result<FromHelper, String>> {
        let text = self.next(cancel, deadline).await?;
        Some(text.and_then(|t| serde_json::from_str(&t).map_err(|e| format!("unreadable helper reply: {e}"))))
    }

    /// Sends `message` with `bytes`: a typed array, whose buffer is transferred, not copied, or a
    /// `Blob`, which the browser shares.
    fn send(&self, message: &ToHelper, bytes: &JsValue) {
        let m = js_sys::Object::new();
        let _ = Reflect::set(&m, &"helper".into(), &serde_json::to_string(message).unwrap_or_default().into());
        let _ = Reflect::set(&m, &"bytes".into(), bytes);
        let transfer = Reflect::get(bytes, &"buffer".into())
            .ok()
            .filter(|b| b.is_instance_of::<js_sys::ArrayBuffer>())
            .map(|b| js_sys::Array::of1(&b))
            .unwrap_or_default();
        let _ = self.worker.post_message_with_transfer(&m, &transfer);
    }
}

impl Helper {
    /// Stops using this helper, and says so once: the lens goes on with one worker fewer.
    fn give_up(&self, why: &str) {
        self.dead.set(true);
        self.worker.terminate();
        web_sys::console::warn_1(&format!("lens helper given up: {why}").into());
        crate::transport::post(&loupe_lens::protocol::Event::Notice {
            message: format!("a lens helper worker stopped ({why}); the lens goes on with one worker fewer"),
        });
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.worker.terminate();
    }
}

thread_local! {
    static HELPERS: RefCell<Vec<Rc<Helper>>> = const { RefCell::new(Vec::new()) };
    /// The coordinator's own share of the vocabulary.
    static OWN: RefCell<Range<usize>> = const { RefCell::new(0..usize::MAX) };
    static NEXT_JOB: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
    static CONFIGURED: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Sets the number of helpers (from the page's `lens_workers` URL parameter); none = automatic.
pub fn configure(helpers: Option<usize>) {
    CONFIGURED.with(|c| c.set(helpers.map(|n| n.min(MAX_HELPERS))));
}

fn helper_count() -> usize {
    let cores = scope().navigator().hardware_concurrency() as usize;
    // One worker per core: measured on 2 cores, one helper takes the lens to 0.52× (Qwen2.5-0.5B)
    // to 0.55× (SmolLM2) of one worker's time once both are warm (see `runner::warm_up`).
    CONFIGURED.with(|c| c.get()).unwrap_or(cores.saturating_sub(1).min(MAX_HELPERS))
}

/// Starts helpers for a newly loaded model (read from `file`) and hands each its vocabulary slice;
/// returns how many run. Without helpers (few cores, or a failure) the coordinator decodes the
/// whole vocabulary.
pub async fn start(engine: &Engine, file: &web_sys::Blob) -> usize {
    HELPERS.with(|h| h.borrow_mut().clear());
    let vocab = engine.vocab_size();
    OWN.with(|o| *o.borrow_mut() = 0..vocab);
    let wanted = helper_count();
    if wanted == 0 {
        return 0;
    }
    let parts = wanted + 1;
    let cut = |i: usize| vocab * i / parts;
    let mut started = Vec::new();
    for i in 1..parts {
        let Ok(mut helper) = Helper::spawn() else { break };
        helper.vocab = cut(i)..cut(i + 1);
        // The helper's program posts its own Ready first.
        if !matches!(helper.next(&|| false, now_seconds() + START_SECONDS).await, Some(Ok(_))) {
            break;
        }
        // The helper reads its rows from the file straight into its own memory: sending them as a
        // buffer held a JS copy in each worker until garbage collection (100 MiB for Gemma 3).
        let Ok((header, offset)) = engine.vocab_slice_in_file(helper.vocab.clone()) else { break };
        helper.send(&ToHelper::Init { header, offset }, file.as_ref());
        match helper.reply(&|| false, now_seconds() + START_SECONDS).await {
            Some(Ok(FromHelper::Initialized)) => started.push(Rc::new(helper)),
            _ => break,
        }
    }
    // Whatever the helpers do not cover, the coordinator does.
    let own_end = started.first().map(|h| h.vocab.start).unwrap_or(vocab);
    let covered_to = started.last().map(|h| h.vocab.end).unwrap_or(own_end);
    if covered_to != vocab {
        started.clear();
    }
    OWN.with(|o| *o.borrow_mut() = 0..if started.is_empty() { vocab } else { own_end });
    let count = started.len();
    HELPERS.with(|h| *h.borrow_mut() = started);
    count
}

/// The whole-vocabulary partial of `job`: helpers' slices and the coordinator's own, merged. A
/// helper that fails, dies or does not answer in time is given up, and its slice decoded here.
pub async fn lens(engine: &Engine, job: &LensJob, cancel: &dyn Fn() -> bool) -> Result<LensPartial, LensError> {
    let helpers: Vec<Rc<Helper>> = HELPERS.with(|h| h.borrow().clone());
    let own = OWN.with(|o| o.borrow().clone());
    let this_job = NEXT_JOB.with(|n| n.replace(n.get() + 1));
    let live: Vec<&Rc<Helper>> = helpers.iter().filter(|h| !h.dead.get()).collect();
    if !live.is_empty() {
        let (input, cells) = job.input.to_wire()?;
        let cells = Float32Array::from(&cells[..]);
        let message = ToHelper::Lens { job: this_job, input };
        for h in &live {
            // Each helper gets its own copy: a transferred buffer can be sent once.
            h.send(&message, &Float32Array::new(&cells));
        }
        // Let the event loop dispatch those messages before this thread is busy with its own part;
        // otherwise the helpers may only start when it finishes.
        crate::transport::yield_now().await;
    }
    let t0 = now_seconds();
    let mut whole = engine.compute_part(job, own, cancel)?;
    let deadline = now_seconds() + GRACE_SECONDS + 4.0 * (now_seconds() - t0);
    for h in &helpers {
        let part = loop {
            if h.dead.get() {
                break engine.compute_part(job, h.vocab.clone(), cancel)?;
            }
            match h.reply(cancel, deadline).await {
                None => return Err(LensError::Cancelled),
                // A reply to an earlier, cancelled request: dropped.
                Some(Ok(FromHelper::Partial { job, .. })) if job != this_job => continue,
                Some(Ok(FromHelper::Failed { job: Some(job), .. })) if job != this_job => continue,
                Some(Ok(FromHelper::Partial { partial, .. })) => break partial,
                Some(Ok(FromHelper::Failed { why, .. })) | Some(Err(why)) => h.give_up(&why),
                Some(Ok(FromHelper::Initialized)) => h.give_up("an unexpected reply"),
            }
        };
        whole.merge(&part)?;
    }
    Ok(whole)
}

// ---------- helper side ----------

thread_local! {
    static SLICE: RefCell<Option<OwnedVocabSlice>> = const { RefCell::new(None) };
}

fn reply(message: &FromHelper) {
    // An unencodable reply arrives empty; the coordinator then decodes that slice itself.
    let json = serde_json::to_string(message).unwrap_or_default();
    let _ = scope().post_message(&json.into());
}

/// Answers one coordinator message (this worker is a helper).
pub fn handle(json: &str, bytes: JsValue) {
    let request = serde_json::from_str::<ToHelper>(json).map_err(|e| e.to_string());
    let job = match &request {
        Ok(ToHelper::Lens { job, .. }) => Some(*job),
        _ => None,
    };
    let result = (|| -> Result<FromHelper, String> {
        match request? {
            ToHelper::Init { header, offset } => {
                let mut file = BlobReader::new(bytes.dyn_into::<web_sys::Blob>().map_err(|_| "no model file came")?)?;
                let len = header.byte_len().map_err(|e| e.to_string())?;
                let slice = OwnedVocabSlice::filled(&header, len, |buf| {
                    file.seek(SeekFrom::Start(offset))
                        .and_then(|_| file.read_exact(buf))
                        .map_err(|e| LensError::Corrupt(format!("cannot read the vocabulary slice: {e}")))
                })
                .map_err(|e| e.to_string())?;
                SLICE.with(|s| *s.borrow_mut() = Some(slice));
                Ok(FromHelper::Initialized)
            }
            ToHelper::Lens { job, input } => SLICE.with(|s| {
                let s = s.borrow();
                let slice = s.as_ref().ok_or("no vocabulary slice yet")?;
                let input =
                    LensInput::from_wire(input, Float32Array::new(&bytes).to_vec()).map_err(|e| e.to_string())?;
                slice.compute(&input).map(|partial| FromHelper::Partial { job, partial }).map_err(|e| e.to_string())
            }),
        }
    })();
    reply(&result.unwrap_or_else(|why| FromHelper::Failed { job, why }));
}
