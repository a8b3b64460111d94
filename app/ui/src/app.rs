//! The page: its state, what happens on each worker event, and the layout of the panels.

use crate::figure_data::{FigureData, Metric};
use crate::figure_view::FigureView;
use crate::layout::default_range;
use crate::model_panel::ModelPanel;
use crate::presets;
use crate::prompt_panel::PromptPanel;
use crate::url_state::{self, UrlState};
use crate::worker_client;
use leptos::prelude::*;
use loupe_protocol::{CachedModel, Event, ModelInfo, PromptSpec, Request, RunOptions, TokenInfo};
use std::cell::RefCell;
use std::rc::Rc;

/// Positions shown in the magnified view by default.
pub const MAGNIFIED_WINDOW: usize = 40;

#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub stage: String,
    pub loaded: u64,
    pub total: Option<u64>,
    /// `performance.now()` when the transfer started, for the speed.
    pub started_ms: f64,
}

/// Where the current model came from, to load it again after the worker restarts.
#[derive(Clone)]
pub enum ModelSource {
    Url { url: String, name: String },
    File(web_sys::File),
}

thread_local! {
    static SOURCE: RefCell<Option<ModelSource>> = const { RefCell::new(None) };
}

/// Every signal of the page; `Copy`, so closures take it freely.
#[derive(Clone, Copy)]
pub struct AppState {
    pub model: RwSignal<Option<ModelInfo>>,
    /// Preset id or URL of the model, for the page URL.
    pub model_key: RwSignal<String>,
    pub progress: RwSignal<Option<Progress>>,
    pub loading: RwSignal<bool>,
    pub running: RwSignal<bool>,
    pub error: RwSignal<Option<String>>,
    pub notice: RwSignal<Option<String>>,
    pub figure: RwSignal<FigureData>,
    pub preview: RwSignal<Vec<TokenInfo>>,
    pub cache: RwSignal<Vec<CachedModel>>,
    pub chat_mode: RwSignal<bool>,
    pub user: RwSignal<String>,
    pub system: RwSignal<String>,
    pub raw: RwSignal<String>,
    pub track: RwSignal<String>,
    pub top_k: RwSignal<usize>,
    pub precision: RwSignal<String>,
    pub answer: RwSignal<usize>,
    pub metric: RwSignal<Metric>,
    pub vmax: RwSignal<f32>,
    pub range: RwSignal<(usize, usize)>,
    pub column: RwSignal<Option<usize>>,
    next_run: RwSignal<u64>,
    /// Counts model loads, so a stale cancel deadline cannot stop a newer one.
    load_epoch: RwSignal<u64>,
    /// Run to start as soon as a model is loaded (a shared link).
    autorun: RwSignal<bool>,
    lens_workers: Option<usize>,
}

pub fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or(0.0)
}

fn absolute(url: &str) -> String {
    let base = web_sys::window().and_then(|w| w.location().href().ok()).unwrap_or_default();
    web_sys::Url::new_with_base(url, &base).map(|u| u.href()).unwrap_or_else(|_| url.to_string())
}

impl AppState {
    fn new(initial: &UrlState) -> Self {
        Self {
            model: RwSignal::new(None),
            model_key: RwSignal::new(initial.model.clone().unwrap_or_else(|| presets::DEFAULT_ID.into())),
            progress: RwSignal::new(None),
            loading: RwSignal::new(false),
            running: RwSignal::new(false),
            error: RwSignal::new(None),
            notice: RwSignal::new(None),
            figure: RwSignal::new(FigureData::default()),
            preview: RwSignal::new(Vec::new()),
            cache: RwSignal::new(Vec::new()),
            chat_mode: RwSignal::new(initial.raw.is_none()),
            user: RwSignal::new(initial.chat.clone().unwrap_or_else(|| "What is the capital of Australia?".into())),
            system: RwSignal::new(initial.system.clone().unwrap_or_default()),
            raw: RwSignal::new(initial.raw.clone().unwrap_or_else(|| "The Eiffel Tower is in the city of".into())),
            track: RwSignal::new(initial.track.clone().unwrap_or_default()),
            top_k: RwSignal::new(5),
            precision: RwSignal::new(initial.precision.clone().filter(|p| p == "fast" || p == "exact").unwrap_or_else(|| "exact".into())),
            answer: RwSignal::new(initial.answer.unwrap_or(0)),
            metric: RwSignal::new(Metric::Entropy),
            vmax: RwSignal::new(10.0),
            range: RwSignal::new((0, 0)),
            column: RwSignal::new(None),
            next_run: RwSignal::new(1),
            load_epoch: RwSignal::new(0),
            autorun: RwSignal::new(initial.chat.is_some() || initial.raw.is_some()),
            lens_workers: initial.lens_workers,
        }
    }

    pub fn prompt_spec(&self) -> PromptSpec {
        if self.chat_mode.get_untracked() {
            let system = self.system.get_untracked();
            PromptSpec { chat: Some(self.user.get_untracked()), system: (!system.trim().is_empty()).then_some(system), ..Default::default() }
        } else {
            PromptSpec { raw: Some(self.raw.get_untracked()), ..Default::default() }
        }
    }

    /// Tracked strings: comma-separated, spaces kept (` Canberra, Sydney` tracks ` Canberra` and ` Sydney`).
    pub fn tracked_strings(&self) -> Vec<String> {
        self.track.get_untracked().split(',').filter(|s| !s.trim().is_empty()).map(str::to_owned).collect()
    }

    /// Loads a model by URL (a preset or any GGUF address).
    pub fn load_url(&self, key: String, url: String, name: String) {
        let url = absolute(&url);
        self.model_key.set(key);
        SOURCE.with(|s| *s.borrow_mut() = Some(ModelSource::Url { url: url.clone(), name: name.clone() }));
        self.begin_load();
        worker_client::send(&Request::LoadUrl { url, name });
    }

    pub fn load_file(&self, file: web_sys::File) {
        let name = file.name();
        if file.size() as u64 > loupe_protocol::MAX_MODEL_BYTES {
            self.error.set(Some(loupe_protocol::too_large_message(file.size() as u64)));
            return;
        }
        self.model_key.set(String::new());
        SOURCE.with(|s| *s.borrow_mut() = Some(ModelSource::File(file.clone())));
        self.begin_load();
        worker_client::send_file(&Request::LoadFile { name }, &file);
    }

    fn begin_load(&self) {
        self.load_epoch.update(|e| *e += 1);
        self.error.set(None);
        self.notice.set(None);
        self.loading.set(true);
        self.progress.set(Some(Progress { stage: "starting".into(), loaded: 0, total: None, started_ms: now_ms() }));
    }

    fn reload_source(&self) {
        match SOURCE.with(|s| s.borrow().clone()) {
            Some(ModelSource::Url { url, name }) => {
                self.begin_load();
                worker_client::send(&Request::LoadUrl { url, name });
            }
            Some(ModelSource::File(file)) => {
                self.begin_load();
                worker_client::send_file(&Request::LoadFile { name: file.name() }, &file);
            }
            None => {}
        }
    }

    pub fn run(&self) {
        let Some(model) = self.model.get_untracked() else {
            self.error.set(Some("load a model first".into()));
            return;
        };
        if self.loading.get_untracked() {
            return;
        }
        let run = self.next_run.get_untracked();
        self.next_run.set(run + 1);
        let prompt = self.prompt_spec();
        let options = RunOptions {
            top_k: self.top_k.get_untracked(),
            track: self.tracked_strings(),
            precision: self.precision.get_untracked(),
            answer_tokens: self.answer.get_untracked(),
            ..Default::default()
        };
        self.error.set(None);
        self.notice.set(None);
        self.running.set(true);
        self.column.set(None);
        self.figure.set(FigureData {
            run,
            n_rows: model.n_rows,
            rows: vec![None; model.n_rows],
            model: Some(model),
            precision: options.precision.clone(),
            prompt: prompt.clone(),
            ..Default::default()
        });
        if matches!(self.metric.get_untracked(), Metric::TrackedProbability(i) | Metric::TrackedRank(i) if i >= options.track.len()) {
            self.metric.set(Metric::Entropy);
        }
        url_state::write(&UrlState {
            model: Some(self.model_key.get_untracked()).filter(|k| !k.is_empty()),
            chat: prompt.chat.clone(),
            system: prompt.system.clone(),
            raw: prompt.raw.clone(),
            track: Some(self.track.get_untracked()),
            answer: Some(options.answer_tokens),
            precision: Some(options.precision.clone()),
            lens_workers: self.lens_workers,
        });
        worker_client::send(&Request::Run { run, prompt, options });
    }

    /// Asks the worker to stop; if that same run or load is still going after a while (the worker
    /// is inside one long step), restarts the worker.
    pub fn cancel(&self) {
        worker_client::send(&Request::Cancel);
        let state = *self;
        let run = self.figure.with_untracked(|f| f.run);
        let load = self.load_epoch.get_untracked();
        let deadline = Closure::once_into_js(move || {
            let same_run = state.running.get_untracked() && state.figure.with_untracked(|f| f.run) == run;
            let same_load = state.loading.get_untracked() && state.load_epoch.get_untracked() == load;
            if same_run || same_load {
                state.running.set(false);
                state.notice.set(Some("stopped the worker; the model is loading again".into()));
                state.restart_worker();
            }
        });
        let _ = web_sys::window().unwrap().set_timeout_with_callback_and_timeout_and_arguments_0(deadline.unchecked_ref(), 3000);
    }

    pub fn preview_tokens(&self) {
        if self.model.get_untracked().is_some() && !self.running.get_untracked() && !self.loading.get_untracked() {
            worker_client::send(&Request::Tokenize { run: 0, prompt: self.prompt_spec() });
        }
    }

    pub fn start_worker(&self) {
        let state = *self;
        let on_event: Rc<dyn Fn(Event)> = Rc::new(move |e| state.on_event(e));
        let on_crash: Rc<dyn Fn(String)> = Rc::new(move |detail| {
            state.running.set(false);
            state.error.set(Some(format!(
                "the model worker stopped ({detail}); this is usually the browser running out of memory for this model. Loupe restarted it; the model is loading again."
            )));
            state.restart_worker();
        });
        if let Err(e) = worker_client::start(on_event, on_crash) {
            self.error.set(Some(e));
        }
    }

    fn restart_worker(&self) {
        self.model.set(None);
        self.loading.set(true);
        self.start_worker();
    }

    fn on_event(&self, event: Event) {
        let current = self.figure.with_untracked(|f| f.run);
        match event {
            Event::Ready => {
                worker_client::send(&Request::Configure { lens_workers: self.lens_workers });
                worker_client::send(&Request::ListCache);
                if SOURCE.with(|s| s.borrow().is_some()) {
                    self.reload_source();
                } else {
                    let key = self.model_key.get_untracked();
                    match presets::find(&key) {
                        Some(p) => self.load_url(key.clone(), p.url.into(), p.name.into()),
                        None if key.contains("://") || key.ends_with(".gguf") => self.load_url(key.clone(), key.clone(), key.rsplit('/').next().unwrap_or("model").into()),
                        None => {
                            let p = presets::find(presets::DEFAULT_ID).unwrap();
                            self.notice.set(Some(format!("unknown model `{key}` in the link; loading the default")));
                            self.load_url(p.id.into(), p.url.into(), p.name.into());
                        }
                    }
                }
            }
            Event::Progress { loaded, total, stage } => self.progress.update(|p| {
                let started_ms = p.as_ref().map(|p| p.started_ms).unwrap_or_else(now_ms);
                *p = Some(Progress { stage, loaded, total, started_ms });
            }),
            Event::ModelLoaded { info } => {
                self.loading.set(false);
                self.progress.set(None);
                if info.from_cache {
                    self.notice.set(Some(format!("{} loaded from browser storage", info.name)));
                }
                self.model.set(Some(info));
                worker_client::send(&Request::ListCache);
                if self.autorun.get_untracked() {
                    self.autorun.set(false);
                    self.run();
                } else {
                    self.preview_tokens();
                }
            }
            Event::Unloaded => self.model.set(None),
            Event::Tokens { run: 0, tokens, .. } => self.preview.set(tokens),
            Event::Tokens { run, text, tokens, template, prompt_len } if run == current => {
                let n = tokens.len();
                self.preview.set(tokens.clone());
                self.figure.update(|f| {
                    f.text = text;
                    f.tokens = tokens;
                    f.prompt.template = template;
                    f.prompt_len = prompt_len;
                });
                self.range.set(default_range(n, MAGNIFIED_WINDOW));
            }
            Event::AnswerToken { run, token } if run == current => {
                self.figure.update(|f| f.tokens.push(token));
                let n = self.figure.with_untracked(|f| f.tokens.len());
                self.range.set(default_range(n, MAGNIFIED_WINDOW));
            }
            Event::Tracked { run, tokens } if run == current => self.figure.update(|f| f.tracked = tokens),
            Event::Rows { run, n_rows, rows } if run == current => self.figure.update(|f| {
                if f.rows.len() != n_rows {
                    f.rows = vec![None; n_rows];
                    f.n_rows = n_rows;
                }
                for row in rows {
                    let r = row.row;
                    if r < n_rows {
                        f.rows[r] = Some(row);
                    }
                }
            }),
            Event::Done { run, timings } if run == current => {
                self.running.set(false);
                self.figure.update(|f| {
                    f.done = true;
                    f.forward_s = timings.forward;
                    f.lens_s = timings.lens;
                });
            }
            Event::Cancelled { .. } => {
                self.running.set(false);
                self.loading.set(false);
                self.progress.set(None);
                self.notice.set(Some("cancelled".into()));
            }
            Event::Error { run, message } => {
                if run == Some(0) {
                    return; // a preview of a half-typed prompt: say nothing
                }
                self.running.set(false);
                if run.is_none() {
                    self.loading.set(false);
                    self.progress.set(None);
                }
                self.error.set(Some(message));
            }
            Event::CacheList { entries } => self.cache.set(entries),
            _ => {} // events of an older run
        }
    }
}

use wasm_bindgen::prelude::*;

#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new(&url_state::read());
    provide_context(state);
    state.start_worker();
    if let Some(storage) = web_sys::window().map(|w| w.navigator().storage()) {
        // Ask the browser not to evict stored models under storage pressure.
        let _ = storage.persist();
    }
    view! {
        <header>
            <h1>"Loupe"</h1>
            <p class="tagline">"A logit lens for small language models, computed in your browser."</p>
        </header>
        <main>
            <ModelPanel/>
            <PromptPanel/>
            <Messages/>
            <FigureView/>
        </main>
        <footer>
            "Each cell decodes one layer's residual stream at one position through the model's final norm and unembedding. "
            "Nothing leaves this page: the model runs in a Web Worker."
        </footer>
    }
}

#[component]
fn Messages() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <Show when=move || state.error.get().is_some()>
            <div class="error" role="alert" id="error">
                <strong>"Error: "</strong>
                <span>{move || state.error.get().unwrap_or_default()}</span>
                <button on:click=move |_| state.error.set(None)>"Dismiss"</button>
            </div>
        </Show>
        <Show when=move || state.notice.get().is_some()>
            <div class="notice" id="notice">{move || state.notice.get().unwrap_or_default()}</div>
        </Show>
    }
}
