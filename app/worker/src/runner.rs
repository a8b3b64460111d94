//! The worker's jobs: load a model, tokenize, and run a lens (with an optional answer) in steps.
//! One job runs at a time; a new one waits for the previous to finish or be cancelled.

use crate::loader;
use crate::transport::{now_seconds, post, yield_now};
use loupe_lens::generate::Sampling;
use loupe_lens::protocol::{Event, LensRow, ModelInfo, PromptSpec, RunOptions, Timings};
use loupe_lens::{template, Engine, LensError, LensOptions, Precision, Prompt, TemplateChoice};
use std::cell::{Cell, RefCell};

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
    static BUSY: Cell<bool> = const { Cell::new(false) };
    static CANCEL: Cell<bool> = const { Cell::new(false) };
    /// Size of the loaded model's file, to judge whether a second one fits beside it.
    static LOADED_BYTES: Cell<u64> = const { Cell::new(0) };
}

/// Lens rows are computed and sent in about this many groups, so the figure fills in progressively.
const ROW_GROUPS: usize = 4;

pub fn cancel() {
    CANCEL.with(|c| c.set(true));
    loader::abort_download();
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
    }
}

pub async fn load_url(url: String, name: String) {
    let _job = Job::start().await;
    let result = async {
        let (bytes, from_cache) = loader::fetch_model(&url).await?;
        install(bytes, name, url.clone(), from_cache).await
    }
    .await;
    report_load(result);
}

pub async fn load_file(file: web_sys::File, name: String) {
    let _job = Job::start().await;
    let result = async {
        let bytes = loader::read_file(&file).await?;
        install(bytes, name.clone(), format!("local file {name}"), false).await
    }
    .await;
    report_load(result);
}

fn report_load(result: Result<(), String>) {
    if let Err(message) = result {
        if message == "cancelled" {
            post(&Event::Cancelled { run: None });
        } else {
            post(&Event::Error { run: None, message });
        }
    }
}

async fn install(bytes: Vec<u8>, name: String, source: String, from_cache: bool) -> Result<(), String> {
    post(&Event::Progress { loaded: bytes.len() as u64, total: Some(bytes.len() as u64), stage: "loading the model".into() });
    yield_now().await;
    // Keep the current model if the new file turns out bad, unless both cannot fit in memory at once.
    let current = ENGINE.with(|e| e.borrow().is_some());
    if current && LOADED_BYTES.with(|b| b.get()) + bytes.len() as u64 > loupe_protocol::MAX_MODEL_BYTES {
        ENGINE.with(|e| e.borrow_mut().take());
        post(&Event::Unloaded);
    }
    let engine = Engine::load(&bytes).map_err(|e| e.to_string())?;
    LOADED_BYTES.with(|b| b.set(bytes.len() as u64));
    let h = &engine.model.hyper;
    let template = match &engine.file_template {
        Some(_) => "file".to_string(),
        None => template::guess_builtin(|p| engine.tokenizer.id_of_piece(p).is_some()).to_string(),
    };
    let info = ModelInfo {
        name: if engine.name.is_empty() { name } else { engine.name.clone() },
        source,
        architecture: engine.model.architecture.clone(),
        n_rows: engine.model.n_rows(),
        d_model: h.d_model,
        vocab: h.vocab,
        context: h.context,
        bytes: bytes.len() as u64,
        template,
        from_cache,
        lens_threads: 1,
    };
    drop(bytes);
    let helpers = crate::helpers::start(&engine).await;
    let info = ModelInfo { lens_threads: helpers + 1, ..info };
    ENGINE.with(|e| *e.borrow_mut() = Some(engine));
    post(&Event::ModelLoaded { info });
    Ok(())
}

fn to_prompt(spec: &PromptSpec) -> Result<(Prompt, TemplateChoice), LensError> {
    let prompt = match (&spec.chat, &spec.raw) {
        (Some(user), _) => Prompt::Chat { system: spec.system.clone(), user: user.clone() },
        (None, Some(raw)) => Prompt::Raw(raw.clone()),
        (None, None) => return Err(LensError::EmptyPrompt),
    };
    let choice = match spec.template.as_deref() {
        None | Some("") | Some("file") => TemplateChoice::FromFile,
        Some(name) if template::builtin(name).is_some() => TemplateChoice::Builtin(name.into()),
        Some(source) => TemplateChoice::Custom(source.into()),
    };
    Ok((prompt, choice))
}

/// Tokens only, at once (no model compute), so the page can show them while the user types.
pub fn tokenize(run: u64, spec: PromptSpec) {
    if BUSY.with(|b| b.get()) {
        return; // the running job will send its own tokens
    }
    ENGINE.with(|e| {
        let engine = e.borrow();
        let Some(engine) = engine.as_ref() else { return };
        let result = to_prompt(&spec).and_then(|(p, c)| engine.prepare(&p, &c));
        match result {
            Ok(p) => post(&Event::Tokens { run, text: p.text, prompt_len: p.ids.len(), tokens: p.tokens, template: p.template }),
            Err(e) => post(&Event::Error { run: Some(run), message: e.to_string() }),
        }
    });
}

pub async fn run(run: u64, spec: PromptSpec, options: RunOptions) {
    let _job = Job::start().await;
    let Some(mut engine) = ENGINE.with(|e| e.borrow_mut().take()) else {
        post(&Event::Error { run: Some(run), message: "no model is loaded yet".into() });
        return;
    };
    let result = run_steps(&mut engine, run, &spec, &options).await;
    ENGINE.with(|e| *e.borrow_mut() = Some(engine));
    match result {
        Ok(()) => {}
        Err(LensError::Cancelled) => post(&Event::Cancelled { run: Some(run) }),
        Err(e) => post(&Event::Error { run: Some(run), message: e.to_string() }),
    }
}

async fn checkpoint() -> Result<(), LensError> {
    yield_now().await;
    if cancelled() { Err(LensError::Cancelled) } else { Ok(()) }
}

async fn run_steps(engine: &mut Engine, run: u64, spec: &PromptSpec, options: &RunOptions) -> Result<(), LensError> {
    let (prompt, choice) = to_prompt(spec)?;
    let precision = Precision::parse(&options.precision)
        .ok_or_else(|| LensError::InvalidRequest(format!("precision `{}`", options.precision)))?;
    let mut prepared = engine.prepare(&prompt, &choice)?;
    let prompt_len = prepared.ids.len();
    post(&Event::Tokens { run, text: prepared.text.clone(), tokens: prepared.tokens.clone(), template: prepared.template.clone(), prompt_len });
    let track = engine.resolve_tracked(&options.track)?;
    post(&Event::Tracked { run, tokens: track.iter().map(|&id| engine.token_info(id, false)).collect() });
    checkpoint().await?;

    if options.answer_tokens > 0 {
        let sampling = Sampling { temperature: options.temperature, top_p: options.top_p, seed: options.seed };
        let mut answer = engine.begin_answer(&prepared.ids, options.answer_tokens, &sampling, precision)?;
        let mut answer_ids = Vec::new();
        while let Some(next) = engine.next_answer_token(&mut answer)? {
            post(&Event::AnswerToken { run, token: engine.token_info(next, false) });
            answer_ids.push(next);
            checkpoint().await?;
        }
        engine.append_answer(&mut prepared, &answer_ids);
        post(&Event::Tokens { run, text: prepared.text.clone(), tokens: prepared.tokens.clone(), template: prepared.template.clone(), prompt_len });
    }

    let t0 = now_seconds();
    let rows = engine.forward(&prepared.ids, precision)?;
    let forward = now_seconds() - t0;
    checkpoint().await?;

    let t1 = now_seconds();
    let opts = LensOptions { top_k: options.top_k.clamp(1, 50), track };
    let n_rows = rows.len();
    let group = n_rows.div_ceil(ROW_GROUPS).max(1);
    let mut first = 0;
    while first < n_rows {
        let range = first..(first + group).min(n_rows);
        let job = engine.lens_job(&rows, range.clone(), &opts)?;
        let whole = crate::helpers::lens(engine, &job, &cancelled).await?;
        let grid = engine.finish_job(&job, whole);
        let piece = |id: &u32| engine.tokenizer.piece(*id).to_string();
        let text = |id: &u32| engine.tokenizer.token_text(*id);
        let rows_out: Vec<LensRow> = (0..grid.n_rows)
            .map(|i| LensRow {
                row: range.start + i,
                entropy: grid.entropy[i].clone(),
                top_pieces: grid.top_ids[i].iter().map(|c| c.iter().map(piece).collect()).collect(),
                top_texts: grid.top_ids[i].iter().map(|c| c.iter().map(text).collect()).collect(),
                top_ids: grid.top_ids[i].clone(),
                top_probs: grid.top_probs[i].clone(),
                kl_to_last: grid.kl_to_last[i].clone(),
                tracked_prob: grid.tracked.iter().map(|t| t.prob[i].clone()).collect(),
                tracked_rank: grid.tracked.iter().map(|t| t.rank[i].clone()).collect(),
            })
            .collect();
        post(&Event::Rows { run, n_rows, rows: rows_out });
        first = range.end;
        checkpoint().await?;
    }
    let lens = now_seconds() - t1;
    post(&Event::Done { run, timings: Timings { load: 0.0, forward, lens } });
    Ok(())
}
