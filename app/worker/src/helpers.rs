//! Splitting the lens across cores. The model worker starts helper workers (this same program),
//! gives each a slice of the unembedding's vocabulary once per model, and for every row group sends
//! them the final-normed cells; each returns its `LensPartial`, and partials merge into the lens.
//! Plain workers and messages: no SharedArrayBuffer, so no special headers on the static host.
//!
//! Helper side: `handle` answers the coordinator's messages inside a helper.

use crate::transport::scope;
use candle_core::{Device, Tensor};
use js_sys::{Float32Array, Reflect, Uint8Array};
use loupe_lens::lens::{LensInput, LensPartial, VocabSlice};
use loupe_lens::model::layers::{dtype_code, table_from_bytes, table_rows};
use loupe_lens::{Engine, LensError, LensJob};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::Range;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

const MAX_HELPERS: usize = 3;
/// Below this many logical cores no helpers start: the page needs a core too, and on a 2-core
/// machine two lens threads measured no faster than one (see the closing notes of issue 3).
const MIN_CORES_FOR_HELPERS: usize = 4;

/// Coordinator → helper, as JSON in the `helper` field; bytes ride in `bytes`.
#[derive(Serialize, Deserialize)]
enum ToHelper {
    /// `bytes`: the raw rows `first_id..first_id + rows` of the unembedding.
    Init { first_id: usize, rows: usize, d: usize, dtype: u32, softcap: Option<f32> },
    /// `bytes`: the final-normed cells `[n_rows · n_pos, d]` as f32.
    Lens { n_rows: usize, n_pos: usize, top_k: usize, track: Vec<u32>, tracked_logits: Vec<f32> },
}

/// Helper → coordinator.
#[derive(Serialize, Deserialize)]
enum FromHelper {
    Initialized,
    Partial(LensPartial),
    Failed(String),
}

// ---------- coordinator side ----------

struct Helper {
    worker: web_sys::Worker,
    vocab: Range<usize>,
    inbox: Rc<RefCell<VecDeque<Result<String, String>>>>,
    wake: Rc<RefCell<Option<js_sys::Function>>>,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl Helper {
    fn spawn() -> Result<Helper, String> {
        let url = scope().location().href();
        let loader = url.rsplit_once('/').map(|(dir, _)| format!("{dir}/loupe-worker_loader.js")).unwrap_or_default();
        let worker = web_sys::Worker::new(&loader).map_err(|e| format!("{e:?}"))?;
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
        Ok(Helper { worker, vocab: 0..0, inbox, wake, _on_message: on_message, _on_error: on_error })
    }

    async fn next(&self) -> Result<String, String> {
        loop {
            if let Some(item) = self.inbox.borrow_mut().pop_front() {
                return item;
            }
            let wake = self.wake.clone();
            let promise = js_sys::Promise::new(&mut |resolve, _| *wake.borrow_mut() = Some(resolve));
            let _ = JsFuture::from(promise).await;
        }
    }

    async fn reply(&self) -> Result<FromHelper, String> {
        let text = self.next().await?;
        serde_json::from_str(&text).map_err(|e| format!("unreadable helper reply: {e}"))
    }

    fn send(&self, message: &ToHelper, bytes: &JsValue) {
        let m = js_sys::Object::new();
        let _ = Reflect::set(&m, &"helper".into(), &serde_json::to_string(message).unwrap().into());
        let _ = Reflect::set(&m, &"bytes".into(), bytes);
        let _ = self.worker.post_message(&m);
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
}

thread_local! {
    static CONFIGURED: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Sets the number of helpers (from the page's `lens_workers` URL parameter); none = automatic.
pub fn configure(helpers: Option<usize>) {
    CONFIGURED.with(|c| c.set(helpers.map(|n| n.min(MAX_HELPERS))));
}

fn helper_count() -> usize {
    let cores = scope().navigator().hardware_concurrency() as usize;
    CONFIGURED.with(|c| c.get()).unwrap_or(if cores >= MIN_CORES_FOR_HELPERS { (cores - 1).min(MAX_HELPERS) } else { 0 })
}

/// Starts helpers for a newly loaded model and hands each its vocabulary slice; returns how many
/// run. Without helpers (few cores, or a failure) the coordinator decodes the whole vocabulary.
pub async fn start(engine: &Engine) -> usize {
    HELPERS.with(|h| h.borrow_mut().clear());
    let vocab = engine.model.unembedding.rows();
    OWN.with(|o| *o.borrow_mut() = 0..vocab);
    let wanted = helper_count();
    if wanted == 0 {
        return 0;
    }
    let parts = wanted + 1;
    let cut = |i: usize| vocab * i / parts;
    let table = &engine.model.unembedding.table;
    let d = table.shape().dims()[1];
    let mut started = Vec::new();
    for i in 1..parts {
        let Ok(mut helper) = Helper::spawn() else { break };
        helper.vocab = cut(i)..cut(i + 1);
        // The helper's program posts its own Ready first.
        if helper.next().await.is_err() {
            break;
        }
        let Ok(rows) = table_rows(table, helper.vocab.clone()) else { break };
        let Ok(data) = rows.data() else { break };
        let init = ToHelper::Init { first_id: helper.vocab.start, rows: helper.vocab.len(), d, dtype: dtype_code(table.dtype()), softcap: engine.model.final_softcap };
        helper.send(&init, &Uint8Array::from(&data[..]).into());
        match helper.reply().await {
            Ok(FromHelper::Initialized) => started.push(Rc::new(helper)),
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

/// The whole-vocabulary partial of `job`: helpers' slices and the coordinator's own, merged. A slice
/// whose helper fails is decoded here instead.
pub async fn lens(engine: &Engine, job: &LensJob, cancel: &dyn Fn() -> bool) -> Result<LensPartial, LensError> {
    let helpers: Vec<Rc<Helper>> = HELPERS.with(|h| h.borrow().clone());
    let vocab = engine.model.unembedding.rows();
    let own = OWN.with(|o| o.borrow().clone());
    let slice = VocabSlice::of(&engine.model);
    if !helpers.is_empty() {
        let input = &job.input;
        let cells = Float32Array::from(&input.normed.flatten_all()?.to_vec1::<f32>()?[..]);
        let message = ToHelper::Lens {
            n_rows: input.n_rows,
            n_pos: input.n_pos,
            top_k: input.top_k,
            track: input.track.clone(),
            tracked_logits: input.tracked_logits.clone(),
        };
        for h in &helpers {
            h.send(&message, &cells);
        }
        // Let the event loop dispatch those messages before this thread is busy with its own part;
        // otherwise the helpers may only start when it finishes.
        crate::transport::yield_now().await;
    }
    let mut whole = LensPartial::compute(&job.input, &slice, own.start..own.end.min(vocab), cancel)?;
    for h in &helpers {
        let part = match h.reply().await {
            Ok(FromHelper::Partial(p)) => p,
            _ => LensPartial::compute(&job.input, &slice, h.vocab.clone(), cancel)?,
        };
        whole.merge(&part)?;
    }
    Ok(whole)
}

// ---------- helper side ----------

thread_local! {
    static SLICE: RefCell<Option<(candle_core::quantized::QTensor, usize, Option<f32>)>> = const { RefCell::new(None) };
}

fn reply(message: &FromHelper) {
    let _ = scope().post_message(&serde_json::to_string(message).unwrap().into());
}

/// Answers one coordinator message (this worker is a helper).
pub fn handle(json: &str, bytes: JsValue) {
    let result = (|| -> Result<FromHelper, String> {
        match serde_json::from_str::<ToHelper>(json).map_err(|e| e.to_string())? {
            ToHelper::Init { first_id, rows, d, dtype, softcap } => {
                let data = Uint8Array::new(&bytes).to_vec();
                let table = table_from_bytes(dtype, &data, rows, d).map_err(|e| e.to_string())?;
                SLICE.with(|s| *s.borrow_mut() = Some((table, first_id, softcap)));
                Ok(FromHelper::Initialized)
            }
            ToHelper::Lens { n_rows, n_pos, top_k, track, tracked_logits } => SLICE.with(|s| {
                let s = s.borrow();
                let (table, first_id, softcap) = s.as_ref().ok_or("no vocabulary slice yet")?;
                let cells: Vec<f32> = Float32Array::new(&bytes).to_vec();
                let d = table.shape().dims()[1];
                let normed = Tensor::from_vec(cells, (n_rows * n_pos, d), &Device::Cpu).map_err(|e| e.to_string())?;
                let input = LensInput { normed, n_rows, n_pos, top_k, track, tracked_logits };
                let slice = VocabSlice { table, first_id: *first_id, softcap: *softcap };
                let rows = table.shape().dims()[0];
                LensPartial::compute(&input, &slice, 0..rows, &|| false).map(FromHelper::Partial).map_err(|e| e.to_string())
            }),
        }
    })();
    reply(&result.unwrap_or_else(FromHelper::Failed));
}
