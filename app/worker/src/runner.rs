//! The worker's jobs: load a model, preview tokens, and run a question (the engine's recipe,
//! `Engine::ask`, with the worker's `Runner`: steps posted, Cancel between them, the lens in parts
//! with the positions in view brought forward and shared with the helpers). One job runs at a time;
//! a new one waits for the previous to finish or be cancelled.

use crate::blob_reader::BlobReader;
use crate::loader;
use crate::store::{self, LoadError};
use crate::transport::{now_seconds, post, yield_now};
use loupe_lens::lens::LensPartial;
use loupe_lens::protocol::{Event, ModelInfo, Question, RunId, RunStep};
use loupe_lens::{Engine, LensError, LensJob, LensPart, Record, Runner, Vocabulary};
use std::cell::{Cell, RefCell};
use std::ops::Range;

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
    static BUSY: Cell<bool> = const { Cell::new(false) };
    static CANCEL: Cell<bool> = const { Cell::new(false) };
    /// Size of the loaded model's file, to judge whether a second one fits beside it.
    static LOADED_BYTES: Cell<u64> = const { Cell::new(0) };
    /// Files above this many bytes load streamed (`Request::Configure`); none = automatic.
    static RESIDENT_LIMIT: Cell<Option<u64>> = const { Cell::new(None) };
    static FAST_INT8: Cell<Option<bool>> = const { Cell::new(None) };
    static MEASURED_INT8: std::cell::OnceCell<bool> = const { std::cell::OnceCell::new() };
    /// The latest preview asked for while a job ran; answered when it ends.
    static PENDING_PREVIEW: RefCell<Option<Question>> = const { RefCell::new(None) };
    /// The positions the user last brought into view during a run (`Request::Focus`).
    static FOCUS: RefCell<Option<(RunId, Range<usize>)>> = const { RefCell::new(None) };
}

pub fn configure_residence(limit: Option<u64>) {
    RESIDENT_LIMIT.with(|l| l.set(limit));
}

/// Fast precision's lens product as a link asks (`fast_lens`); none = measured.
pub fn configure_fast_lens(int8: Option<bool>) {
    FAST_INT8.with(|f| f.set(int8));
}

/// Whether fast precision's lens multiplies in 8-bit integers: as configured, else whichever this
/// machine runs faster, measured once per worker (tens of milliseconds).
fn fast_int8() -> bool {
    if let Some(chosen) = FAST_INT8.with(|f| f.get()) {
        return chosen;
    }
    MEASURED_INT8.with(|m| *m.get_or_init(|| loupe_lens::lens::int8_is_faster(&now_seconds)))
}

/// The largest file held whole in memory: `RESIDENT_MAX_BYTES`, or a third of the device's memory
/// where the browser tells it (`navigator.deviceMemory`, GB, which browsers cap at 8) and that is
/// less. A link's `resident_limit` can only lower it: a larger file held whole would not fit.
fn resident_limit() -> u64 {
    let max = loupe_lens::protocol::RESIDENT_MAX_BYTES;
    if let Some(limit) = RESIDENT_LIMIT.with(|l| l.get()) {
        return limit.min(max);
    }
    let device = js_sys::Reflect::get(&crate::transport::scope().navigator(), &"deviceMemory".into())
        .ok()
        .and_then(|v| v.as_f64());
    let third = device.map(|gb| (gb * 1e9 / 3.0) as u64).unwrap_or(u64::MAX);
    max.min(third)
}

/// The user looks at other positions of run `run`: they come next.
pub fn focus(run: RunId, positions: Range<usize>) {
    FOCUS.with(|f| *f.borrow_mut() = Some((run, positions)));
}

/// Where the user last looked in run `run`, once.
fn take_focus(run: RunId) -> Option<Range<usize>> {
    FOCUS.with(|f| f.borrow_mut().take()).filter(|(r, _)| *r == run).map(|(_, positions)| positions)
}

pub fn cancel() {
    CANCEL.with(|c| c.set(true));
    crate::download::abort_download();
}

fn cancelled() -> bool {
    CANCEL.with(|c| c.get())
}

/// Marks the worker busy for a job's lifetime, waiting for the previous job first.
struct Job;

impl Job {
    async fn start() -> Job {
        while BUSY.with(|b| b.get()) {
            yield_now().await;
        }
        BUSY.with(|b| b.set(true));
        CANCEL.with(|c| c.set(false));
        Job
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        BUSY.with(|b| b.set(false));
        if let Some(question) = PENDING_PREVIEW.with(|p| p.borrow_mut().take()) {
            preview(question);
        }
    }
}

pub async fn load_url(url: String, name: String) {
    let _job = Job::start().await;
    let result = match loader::fetch_model(&url).await {
        Ok((blob, from_cache)) => {
            let file = url.rsplit('/').next().unwrap_or("").split('?').next().unwrap_or("").to_string();
            let loaded = install(&blob, name, url.clone(), file, from_cache).await;
            // Kept for the next visit only once it has parsed: a bad file is never stored, and a
            // stored one that no longer loads is removed rather than failing on every visit.
            match (loaded, from_cache) {
                (Ok(()), false) => {
                    store::keep(&url, &blob).await;
                    Ok(())
                }
                (Err(e), false) => {
                    store::forget(&url).await;
                    Err(e)
                }
                (Err(LoadError::Failed(why)), true) => {
                    let _ = store::clear(Some(&url)).await;
                    store::post_cache_list().await;
                    Err(LoadError::Failed(format!("{why} (the copy kept in this browser was removed)")))
                }
                (other, true) => other,
            }
        }
        Err(e) => Err(e),
    };
    report_load(result);
}

pub async fn load_file(file: web_sys::File, name: String) {
    let _job = Job::start().await;
    let result = match loader::check_file_size(&file) {
        Ok(()) => install(&file, name.clone(), format!("local file {name}"), name.clone(), false).await,
        Err(e) => Err(e),
    };
    report_load(result);
}

fn report_load(result: Result<(), LoadError>) {
    match result {
        Ok(()) => {}
        Err(LoadError::Cancelled) => post(&Event::Cancelled { run: None }),
        Err(LoadError::Failed(message)) => post(&Event::Error { run: None, message }),
    }
}

/// Loads the model in `blob`; `source` says where it came from and `file` is its file name, as
/// reports record it.
async fn install(
    blob: &web_sys::Blob,
    name: String,
    source: String,
    file: String,
    from_cache: bool,
) -> Result<(), LoadError> {
    let size = blob.size() as u64;
    post(&Event::Progress { loaded: size, total: Some(size), stage: "loading the model".into() });
    yield_now().await;
    let streamed = size > resident_limit();
    // Keep the current model if the new file turns out bad, unless both cannot fit in memory at once.
    let current = ENGINE.with(|e| e.borrow().is_some());
    let both = LOADED_BYTES.with(|b| b.get()) + size;
    if current && (streamed || both > loupe_lens::protocol::RESIDENT_MAX_BYTES) {
        ENGINE.with(|e| e.borrow_mut().take());
        post(&Event::Unloaded);
    }
    let reader = BlobReader::new(blob.clone())?;
    let engine = if streamed { Engine::read_streamed(reader) } else { Engine::read(reader) };
    let mut engine = engine.map_err(|e| e.to_string())?;
    LOADED_BYTES.with(|b| b.set(size));
    let int8 = fast_int8();
    engine.fast_product = if int8 { loupe_lens::Product::Int8 } else { loupe_lens::Product::F32 };
    let base = engine.info();
    let helpers = crate::lens_pool::start(&engine, blob).await;
    let info = ModelInfo {
        name: if base.name.is_empty() { name } else { base.name.clone() },
        source,
        file,
        bytes: size,
        from_cache,
        lens_threads: helpers + 1,
        simd: if int8 { format!("{} · fast lens in 8-bit integers", base.simd) } else { base.simd.clone() },
        ..base
    };
    ENGINE.with(|e| *e.borrow_mut() = Some(engine));
    post(&Event::ModelLoaded { info });
    // A streamed model's warm-up would read the whole file; its first figure pays the compile.
    if !streamed {
        warm_up().await;
    }
    Ok(())
}

/// Runs a one-token lens through every worker right after a load, while the user reads the page:
/// V8 first runs wasm through its baseline compiler and optimizes hot functions only once they have
/// run a while, so without this the first real run is up to 1.5× slower. A run asked for meanwhile
/// waits for it (it is part of the load job).
async fn warm_up() {
    let Some(mut engine) = ENGINE.with(|e| e.borrow_mut().take()) else { return };
    let result = async {
        let id = engine.tokenizer.bos.unwrap_or(0);
        let rows = engine.forward(&[id], loupe_lens::Precision::Exact, Record::Blocks)?;
        let part = LensPart { rows: 0..rows.len(), positions: 0..1 };
        let mut helpers = WorkerRun { run: RunId(0) };
        engine.lens_with(&rows, &part, &loupe_lens::LensOptions::default(), &mut helpers).await.map(|_| ())
    }
    .await;
    if let Err(e) = result {
        web_sys::console::warn_1(&format!("warm-up: {e}").into());
    }
    ENGINE.with(|e| *e.borrow_mut() = Some(engine));
}

/// Tokens only, at once (no model compute), so the page can show them while the user types.
pub fn preview(question: Question) {
    if BUSY.with(|b| b.get()) {
        PENDING_PREVIEW.with(|p| *p.borrow_mut() = Some(question));
        return;
    }
    ENGINE.with(|e| {
        let engine = e.borrow();
        let Some(engine) = engine.as_ref() else { return };
        match engine.prepare(&question.prompt, &question.template) {
            Ok(s) => post(&Event::Preview { tokens: s.token_info, error: None }),
            Err(e) => post(&Event::Preview { tokens: Vec::new(), error: Some(e.to_string()) }),
        }
    });
}

pub async fn run(run: RunId, question: Question) {
    let _job = Job::start().await;
    let Some(mut engine) = ENGINE.with(|e| e.borrow_mut().take()) else {
        post(&Event::Error { run: Some(run), message: "no model is loaded yet".into() });
        return;
    };
    let result = run_steps(&mut engine, run, &question).await;
    ENGINE.with(|e| *e.borrow_mut() = Some(engine));
    match result {
        Ok(()) => {}
        Err(LensError::Cancelled) => post(&Event::Cancelled { run: Some(run) }),
        Err(e) => post(&Event::Error { run: Some(run), message: e.to_string() }),
    }
}

async fn checkpoint() -> Result<(), LensError> {
    yield_now().await;
    if cancelled() {
        Err(LensError::Cancelled)
    } else {
        Ok(())
    }
}

async fn run_steps(engine: &mut Engine, run: RunId, q: &Question) -> Result<(), LensError> {
    let timings = engine.ask(q, &mut WorkerRun { run }).await?;
    post(&Event::Done { run, timings });
    Ok(())
}

/// The worker's run of a question (`Engine::ask`): each step posted to the page as it comes, a
/// yield and a look at Cancel between steps, the lens in `lens_plan`'s parts with the positions in
/// view brought forward, and each part's vocabulary shared with the helper workers.
struct WorkerRun {
    run: RunId,
}

impl Vocabulary for WorkerRun {
    async fn decode(&mut self, engine: &Engine, job: &LensJob) -> Result<LensPartial, LensError> {
        crate::lens_pool::lens(engine, job, &cancelled).await
    }
}

impl Runner for WorkerRun {
    fn now(&self) -> f64 {
        now_seconds()
    }

    fn step(&mut self, step: RunStep) -> Result<(), LensError> {
        post(&step.for_run(self.run));
        Ok(())
    }

    async fn checkpoint(&mut self) -> Result<(), LensError> {
        checkpoint().await
    }

    fn plan(&self, n_rows: usize, n_positions: usize) -> Vec<LensPart> {
        loupe_lens::lens_plan(n_rows, n_positions)
    }

    fn focus(&mut self) -> Option<Range<usize>> {
        take_focus(self.run)
    }
}
