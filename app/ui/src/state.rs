//! The page's state (every signal, in one `Copy` struct handed to components by context) and the
//! actions the controls call: load a model, run, cancel, preview tokens. What happens when the
//! worker answers is in `events.rs`.

use crate::figure_data::{FigureData, Metric};
use crate::offline::AppShell;
use crate::question_form::QuestionForm;
use crate::tour_panel::Tour;
use crate::url_state::{self, Link};
use crate::worker_client::WorkerClient;
use leptos::prelude::*;
use loupe_protocol::{CachedModel, Event, LensReport, ModelInfo, Prompt, Question, Request, RunId, TokenInfo};
use std::rc::Rc;
use std::time::Duration;

/// How long a Cancel may take before the worker is restarted instead (it is inside one long step).
const CANCEL_GRACE: Duration = Duration::from_secs(3);

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

impl ModelSource {
    fn same_as(&self, other: &ModelSource) -> bool {
        match (self, other) {
            (ModelSource::Url { url: a, .. }, ModelSource::Url { url: b, .. }) => a == b,
            (ModelSource::File(a), ModelSource::File(b)) => a == b,
            _ => false,
        }
    }
}

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
    /// A complete run kept aside: each later run is compared with it (`compare.rs`).
    pub pinned: RwSignal<Option<FigureData>>,
    pub preview: RwSignal<Vec<TokenInfo>>,
    pub cache: RwSignal<Vec<CachedModel>>,
    pub form: QuestionForm,
    pub metric: RwSignal<Metric>,
    pub vmax: RwSignal<f32>,
    pub palette: RwSignal<crate::scale::Palette>,
    pub range: RwSignal<(usize, usize)>,
    pub column: RwSignal<Option<usize>>,
    /// The keyboard's (or the tour's) cell (row, position).
    pub focus: RwSignal<Option<(usize, usize)>>,
    /// How many positions the magnified view shows legibly at its current width.
    pub window: RwSignal<usize>,
    /// Presentation mode: controls hidden, the figure and its labels larger for a projector.
    pub present: RwSignal<bool>,
    pub tour: Tour,
    /// A link's model URL waiting for the user's consent to download it.
    pub link_model: RwSignal<Option<crate::link_model::LinkModel>>,
    pub(crate) next_run: RwSignal<u64>,
    /// Counts model loads, so a stale cancel deadline cannot stop a newer one.
    pub(crate) load_epoch: RwSignal<u64>,
    /// Run as soon as a model is loaded (a shared link).
    pub(crate) autorun: RwSignal<bool>,
    /// A link's pinned prompt (`pin_chat`, `pin_raw`), run first when the link runs.
    pub(crate) link_pin: RwSignal<Option<Prompt>>,
    /// The current run is a link's pinned one: when done, pin it and run the link's question.
    pub(crate) pin_then_run: RwSignal<bool>,
    pub(crate) lens_workers: Option<usize>,
    /// Files above this many bytes load streamed (`resident_limit` in the link; a test and expert knob).
    pub(crate) resident_limit: Option<u64>,
    /// Run the SIMD128 worker even where relaxed SIMD is available (`simd=baseline` in the link).
    pub(crate) baseline_simd: bool,
    /// Fast precision's lens product (`fast_lens=int8|f32`); none = measured by the worker.
    pub(crate) fast_int8: Option<bool>,
    pub(crate) source: StoredValue<Option<ModelSource>, LocalStorage>,
    /// The last model that loaded, and its preset key: put back when a new file kills the worker
    /// while loading (a file that exhausts memory), so a bad file never costs the user their model.
    pub(crate) last_loaded: StoredValue<Option<(ModelSource, String)>, LocalStorage>,
    /// What to say once that model is back (loading clears messages).
    pub(crate) after_restore: StoredValue<Option<String>>,
    /// Whether a (re)started worker loads a model as soon as it is up: not after a crash or a
    /// stuck load, which would only repeat it.
    pub(crate) load_when_ready: RwSignal<bool>,
    /// Set when a crash made the page reload the model; cleared when a run finishes. A second
    /// crash meanwhile is not followed by another reload.
    pub(crate) reloads_after_crash: RwSignal<u32>,
    worker: StoredValue<Option<WorkerClient>, LocalStorage>,
    pub shell: AppShell,
}

/// The body of a GET as text; an HTTP error or a network failure is a message.
/// A report of 3,000 positions with the lens inside blocks is about 40 MB of JSON.
const MAX_REPORT_BYTES: u64 = 256 << 20;

async fn fetch_text(url: &str) -> Result<String, String> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let window = web_sys::window().ok_or("no window")?;
    let failed = |e: wasm_bindgen::JsValue| {
        format!("it could not be fetched ({})", e.as_string().unwrap_or_else(|| format!("{e:?}")))
    };
    let response: web_sys::Response =
        JsFuture::from(window.fetch_with_str(url)).await.map_err(failed)?.unchecked_into();
    if !response.ok() {
        return Err(format!("the server answered HTTP {}", response.status()));
    }
    let announced = response.headers().get("content-length").ok().flatten().and_then(|n| n.parse::<u64>().ok());
    if let Some(n) = announced.filter(|&n| n > MAX_REPORT_BYTES) {
        return Err(format!("it is {n} bytes, more than the {MAX_REPORT_BYTES} a report may have"));
    }
    let text = JsFuture::from(response.text().map_err(failed)?).await.map_err(failed)?;
    text.as_string().ok_or_else(|| "it is not text".into())
}

pub fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or(0.0)
}

pub(crate) fn absolute(url: &str) -> String {
    let base = web_sys::window().and_then(|w| w.location().href().ok()).unwrap_or_default();
    web_sys::Url::new_with_base(url, &base).map(|u| u.href()).unwrap_or_else(|_| url.to_string())
}

impl AppState {
    pub fn new(link: &Link) -> Self {
        Self {
            model: RwSignal::new(None),
            model_key: RwSignal::new(link.model.clone().unwrap_or_else(|| crate::presets::DEFAULT_ID.into())),
            progress: RwSignal::new(None),
            loading: RwSignal::new(false),
            running: RwSignal::new(false),
            error: RwSignal::new(None),
            notice: RwSignal::new((!link.notes.is_empty()).then(|| format!("in the link: {}", link.notes.join("; ")))),
            figure: RwSignal::new(FigureData::default()),
            preview: RwSignal::new(Vec::new()),
            cache: RwSignal::new(Vec::new()),
            form: QuestionForm::new(link.question.as_ref()),
            metric: RwSignal::new(Metric::Entropy),
            pinned: RwSignal::new(None),
            link_pin: RwSignal::new(link.pinned.clone()),
            pin_then_run: RwSignal::new(false),
            vmax: RwSignal::new(10.0),
            palette: RwSignal::new(crate::scale::Palette::Diverging),
            range: RwSignal::new((0, 0)),
            column: RwSignal::new(None),
            focus: RwSignal::new(None),
            window: RwSignal::new(40),
            present: RwSignal::new(link.present),
            tour: Tour::new(),
            link_model: RwSignal::new(None),
            next_run: RwSignal::new(1),
            load_epoch: RwSignal::new(0),
            autorun: RwSignal::new(link.question.is_some()),
            lens_workers: link.lens_workers,
            resident_limit: link.resident_limit,
            baseline_simd: link.baseline_simd,
            fast_int8: link.fast_int8,
            source: StoredValue::new_local(None),
            last_loaded: StoredValue::new_local(None),
            after_restore: StoredValue::new(None),
            load_when_ready: RwSignal::new(true),
            reloads_after_crash: RwSignal::new(0),
            worker: StoredValue::new_local(None),
            shell: AppShell::register(),
        }
    }

    /// Loads a model by URL (a preset or any GGUF address).
    pub fn load_url(&self, key: String, url: String, name: String) {
        if self.busy_for_a_load() {
            return;
        }
        self.model_key.set(key);
        self.source.set_value(Some(ModelSource::Url { url: absolute(&url), name }));
        self.load_source();
    }

    /// Loads the bundled default preset.
    pub fn load_default(&self) {
        let p = crate::presets::find(crate::presets::DEFAULT_ID).expect("the default preset exists");
        self.load_url(p.id.into(), p.url.into(), p.name.into());
    }

    pub fn load_file(&self, file: web_sys::File) {
        if self.busy_for_a_load() {
            return;
        }
        if file.size() as u64 > loupe_protocol::MAX_MODEL_BYTES {
            self.error.set(Some(loupe_protocol::too_large_message(file.size() as u64)));
            return;
        }
        self.model_key.set(String::new());
        self.source.set_value(Some(ModelSource::File(file)));
        self.load_source();
    }

    /// One load at a time, and none during a run: a second request would queue behind the first in
    /// the worker, and the page would lose track of which model is the one that loaded.
    fn busy_for_a_load(&self) -> bool {
        let (loading, running) = (self.loading.get_untracked(), self.running.get_untracked());
        if loading || running {
            let what = if loading { "a model is loading" } else { "a run is going" };
            self.notice.set(Some(format!("{what}: wait for it or press Cancel, then load the new model")));
        }
        loading || running
    }

    /// (Re)loads the current model source, if any.
    pub(crate) fn load_source(&self) {
        let Some(source) = self.source.get_value() else { return };
        self.load_epoch.update(|e| *e += 1);
        self.error.set(None);
        self.notice.set(None);
        self.loading.set(true);
        self.progress.set(Some(Progress { stage: "starting".into(), loaded: 0, total: None, started_ms: now_ms() }));
        match source {
            ModelSource::Url { url, name } => self.send(&Request::LoadUrl { url, name }),
            ModelSource::File(file) => {
                self.worker
                    .with_value(|w| w.as_ref().map(|w| w.send_file(&Request::LoadFile { name: file.name() }, &file)));
            }
        }
    }

    pub fn run(&self) {
        self.run_question(self.form.question());
    }

    /// A link's pinned prompt runs first (with the link's other settings) and is pinned; then the
    /// link's own question runs and is compared with it.
    pub(crate) fn run_pinned_first(&self, prompt: Prompt) {
        let mut question = self.form.question();
        question.prompt = prompt;
        self.pin_then_run.set(true);
        if !self.run_question(question) {
            self.pin_then_run.set(false);
        }
    }

    /// After the pinned-first run of a link: pin it, then run the link's question.
    pub(crate) fn continue_link(&self) {
        if self.pin_then_run.get_untracked() {
            self.pin_then_run.set(false);
            self.pin();
            self.run();
        }
    }

    /// Starts a run of `question`; false when it could not start.
    fn run_question(&self, mut question: Question) -> bool {
        let Some(model) = self.model.get_untracked() else {
            self.error.set(Some("load a model first".into()));
            return false;
        };
        if self.loading.get_untracked() || self.running.get_untracked() {
            return false;
        }
        if let Err(e) = question.validate() {
            self.error.set(Some(e));
            return false;
        }
        // A streamed model does not answer (the Answer field says why); the report says 0.
        if model.streamed {
            question.answer_tokens = 0;
        }
        // The tour's captions describe its own run; a new question leaves the tour.
        if self.tour.phase.get_untracked() == crate::tour_panel::TourPhase::Steps {
            self.end_tour();
        }
        let run = RunId(self.next_run.get_untracked());
        self.next_run.set(run.0 + 1);
        self.error.set(None);
        self.notice.set(None);
        self.running.set(true);
        self.column.set(None);
        self.focus.set(None);
        if matches!(self.metric.get_untracked(), Metric::TrackedProbability(i) | Metric::TrackedRank(i) if i >= question.track.len())
        {
            self.metric.set(Metric::Entropy);
        }
        // A link's pinned run leaves the address alone: it still names the link's own question.
        if !self.pin_then_run.get_untracked() {
            let pinned = self.pinned.with_untracked(|p| p.as_ref().map(|f| f.report.question.prompt.clone()));
            url_state::write(&url_state::Written {
                model: &self.model_key.get_untracked(),
                question: &question,
                pinned: pinned.as_ref(),
                lens_workers: self.lens_workers,
                present: self.present.get_untracked(),
            });
        }
        self.figure.set(FigureData::new(run, model, question.clone()));
        self.send(&Request::Run { run, question });
        true
    }

    /// Keeps the current (complete) run aside; later runs are compared with it.
    pub fn pin(&self) {
        let mut run = self.figure.get_untracked();
        run.compare = None;
        self.pinned.set(Some(run.clone()));
        // The pinned run compared with itself: all zero, and the controls show up at once.
        self.figure.update(|f| f.compare_with(run));
    }

    /// Shows the pinned run and pins the current one: the two runs side by side, one at a time,
    /// with the change's sign turned round.
    pub fn swap_pinned(&self) {
        let Some(mut pinned) = self.pinned.get_untracked() else { return };
        if self.running.get_untracked() || !self.figure.with_untracked(FigureData::complete) {
            return;
        }
        let mut current = self.figure.get_untracked();
        current.compare = None;
        pinned.compare_with(current.clone());
        self.pinned.set(Some(current));
        self.column.set(None);
        self.focus.set(None);
        self.figure.set(pinned);
    }

    pub fn unpin(&self) {
        self.pinned.set(None);
        self.figure.update(|f| f.compare = None);
        if self.metric.get_untracked().is_change() {
            self.metric.set(Metric::Entropy);
        }
    }

    /// The control run a teacher wants beside a chat run: the same user text without the chat
    /// template, as raw text, compared cell by cell with the chat run (pinned).
    pub fn compare_without_template(&self) {
        if self.loading.get_untracked() || self.running.get_untracked() || self.model.with_untracked(Option::is_none) {
            return;
        }
        let Prompt::Chat { user, .. } = self.figure.with_untracked(|f| f.report.question.prompt.clone()) else {
            self.error.set(Some("the current run has no chat template to remove".into()));
            return;
        };
        self.pin();
        self.form.chat_mode.set(false);
        self.form.raw.set(user);
        self.run();
        self.metric.set(Metric::EntropyChange);
    }

    /// Compares the run that just completed with the pinned one, if any.
    pub(crate) fn compare_when_done(&self) {
        if let Some(pinned) = self.pinned.get_untracked() {
            self.figure.update(|f| f.compare_with(pinned));
        }
    }

    /// Adds a token (by its vocabulary spelling) to the tracked ones and runs the lens again.
    pub fn track_token(&self, piece: &str) {
        if self.model.get_untracked().is_none() {
            self.error.set(Some("load a model to track tokens: an opened report holds only what it tracked".into()));
            return;
        }
        let mut list = Question::parse_track_list(&self.form.track.get_untracked());
        if !list.iter().any(|t| t == piece) {
            list.push(piece.to_string());
        }
        self.form.track.set(list.join(","));
        let index = list.iter().position(|t| t == piece).unwrap_or(0);
        self.run();
        self.metric.set(Metric::TrackedProbability(index));
    }

    /// Asks the worker to stop; if that same run or load is still going after a grace period (the
    /// worker is inside one long step), restarts the worker: after a stuck run the model is loaded
    /// again, after a stuck load it is not (the load was what the user cancelled).
    pub fn cancel(&self) {
        self.send(&Request::Cancel);
        let state = *self;
        let run = self.figure.with_untracked(|f| f.run);
        let load = self.load_epoch.get_untracked();
        set_timeout(
            move || {
                let same_run = state.running.get_untracked() && state.figure.with_untracked(|f| f.run) == run;
                let same_load = state.loading.get_untracked() && state.load_epoch.get_untracked() == load;
                if same_load {
                    // A load that does not answer Cancel (a chat template that never ends) is given
                    // up with its worker; the model loaded before it comes back.
                    if !state.restore_previous(
                        "the new model did not stop loading when asked, so its worker was stopped and the model was not loaded;",
                    ) {
                        state.notice.set(Some("stopped the worker; no model is loaded".into()));
                        state.restart_worker(false);
                    }
                } else if same_run {
                    state.running.set(false);
                    state.notice.set(Some("stopped the worker; the model is loading again".into()));
                    state.restart_worker(true);
                }
            },
            CANCEL_GRACE,
        );
    }

    pub fn preview_tokens(&self) {
        if self.model.get_untracked().is_some() && !self.running.get_untracked() && !self.loading.get_untracked() {
            self.send(&Request::Preview { question: self.form.question() });
        }
    }

    /// Shows a saved report (the page's own export or `loupe --json`) without loading any model.
    pub fn open_report_file(&self, file: web_sys::File) {
        let state = *self;
        let name = file.name();
        wasm_bindgen_futures::spawn_local(async move {
            let text = wasm_bindgen_futures::JsFuture::from(file.text()).await.ok().and_then(|t| t.as_string());
            state.show_report(&name, text.ok_or_else(|| "it could not be read".to_string()));
        });
    }

    /// Shows a report published at `url` (a link's `report=`), so a static site can host figures.
    /// Only beside the page: a link must not make the visitor's browser fetch from any host unasked
    /// (the same reason a model link asks first).
    pub fn open_report_url(&self, url: String) {
        let state = *self;
        let target = absolute(&url);
        let page_origin = web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default();
        let target_origin = web_sys::Url::new(&target).map(|u| u.origin()).unwrap_or_default();
        if target_origin != page_origin {
            let why = format!(
                "a link opens only reports published beside this page, and this one is on {target_origin}; \
                 download it and open it here instead"
            );
            self.show_report(&url, Err(why));
            return;
        }
        wasm_bindgen_futures::spawn_local(async move {
            let text = fetch_text(&target).await;
            state.show_report(&url, text);
        });
    }

    fn show_report(&self, name: &str, text: Result<String, String>) {
        let opened = text
            .and_then(|t| serde_json::from_str::<LensReport>(&t).map_err(|e| format!("it is not a Loupe report ({e})")))
            .and_then(FigureData::opened);
        match opened {
            Ok(figure) => {
                let n = figure.n_positions();
                self.error.set(None);
                self.notice
                    .set(Some(format!("opened {name}: {}, {} positions (no model needed)", figure.report.model, n)));
                self.column.set(None);
                self.focus.set(None);
                self.metric.set(Metric::Entropy);
                self.preview.set(figure.tokens().to_vec());
                self.figure.set(figure);
                self.range.set(crate::layout::default_range(n, self.window.get_untracked()));
            }
            Err(why) => self.error.set(Some(format!("cannot open {name}: {why}"))),
        }
    }

    /// Positions brought into view while the run still fills in: the worker lenses them next.
    pub fn lens_next(&self, start: usize, end: usize) {
        let filling = self.figure.with_untracked(|f| (self.running.get_untracked() && !f.complete()).then_some(f.run));
        if let Some(run) = filling {
            self.send(&Request::Focus { run, start, end });
        }
    }

    /// Sends a request to the worker.
    pub fn send(&self, request: &Request) {
        self.worker.with_value(|w| w.as_ref().map(|w| w.send(request)));
    }

    pub fn start_worker(&self) {
        let state = *self;
        let on_event: Rc<dyn Fn(Event)> = Rc::new(move |e| state.on_event(e));
        let on_crash: Rc<dyn Fn(String)> = Rc::new(move |detail| {
            state.running.set(false);
            // A file that crashes the worker while loading would crash it again: never retried.
            // The model loaded before it, if any, is put back.
            let put_back = state.loading.get_untracked()
                && state.restore_previous(&format!(
                    "the model worker stopped while loading the new model ({detail}), usually because it needs more memory than the browser gives, or its file is hostile. It was not loaded again;"
                ));
            if put_back {
                return;
            }
            if state.loading.get_untracked() {
                state.error.set(Some(format!(
                    "the model worker stopped while loading this model ({detail}), usually because the browser ran out of memory for it. It was not loaded again; pick a smaller or more quantized file."
                )));
                state.restart_worker(false);
            } else if state.reloads_after_crash.get_untracked() > 0 {
                // It crashed again before any run finished: reloading would only loop.
                state.error.set(Some(format!(
                    "the model worker stopped again ({detail}) before a run could finish, so the model was not loaded a third time. Try a shorter prompt, or a smaller or more quantized model."
                )));
                state.restart_worker(false);
            } else {
                state.reloads_after_crash.set(1);
                state.error.set(Some(format!(
                    "the model worker stopped ({detail}); this is usually the browser running out of memory. Loupe restarted it; the model is loading again."
                )));
                state.restart_worker(true);
            }
        });
        // The old worker, if any, is terminated as its handle drops.
        self.worker.set_value(None);
        match WorkerClient::start(on_event, on_crash, self.baseline_simd) {
            Ok(client) => self.worker.set_value(Some(client)),
            Err(e) => self.error.set(Some(e)),
        }
    }

    /// A fresh worker with the model loaded before the one that was loading, if there was one;
    /// `why` opens the messages shown meanwhile and once it is back.
    fn restore_previous(&self, why: &str) -> bool {
        let previous = self
            .last_loaded
            .get_value()
            .filter(|(prev, _)| self.source.with_value(|now| now.as_ref().is_some_and(|now| !now.same_as(prev))));
        let Some((previous, key)) = previous else { return false };
        self.error.set(Some(format!("{why} the previous model is loading again.")));
        self.after_restore.set_value(Some(format!("{why} the previous model is back.")));
        self.model_key.set(key);
        self.source.set_value(Some(previous));
        self.restart_worker(true);
        true
    }

    /// A fresh worker; `reload` loads the current model again once it is up.
    fn restart_worker(&self, reload: bool) {
        self.model.set(None);
        self.progress.set(None);
        self.loading.set(reload && self.source.with_value(Option::is_some));
        self.load_when_ready.set(reload);
        if !reload {
            self.source.set_value(None);
            self.autorun.set(false);
        }
        self.start_worker();
    }
}
