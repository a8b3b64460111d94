//! The one owner of the page's run lifecycle: the worker (started, restarted after a crash or a
//! stuck step), loading a model (and putting the previous one back when a new one fails), runs and
//! what follows each, cancel, and the tour's progress. Only this file (and `events.rs`, its event
//! handler) sets `loading`, `running` or the tour's phase; panels read them from `AppState` and
//! call the actions here, which they get by context.
//!
//! A run is started with what should follow it (`AfterRun`), kept beside its id and consumed in one
//! place, `run_ended`, so a follow-up can never fire on another run, and at most one run starts
//! when one ends.

use crate::figure_data::{FigureData, Metric};
use crate::state::{absolute, now_ms, AppState, Progress, RunFlags};
use crate::tour::{self, TourPhase};
use crate::url_state::{self, Link};
use crate::worker_client::WorkerClient;
use leptos::prelude::*;
use loupe_protocol::{Event, ModelInfo, Prompt, Question, Request, RunId, Timings};
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// How long a Cancel may take before the worker is restarted instead (it is inside one long step).
const CANCEL_GRACE: Duration = Duration::from_secs(3);

/// What follows a run when it completes.
#[derive(Clone, Debug, PartialEq)]
pub enum AfterRun {
    Nothing,
    /// A link's pinned prompt: pin this run, then run the form's question, followed by the inner one.
    PinThenRun(Box<AfterRun>),
    /// The tour's first run: track the candidates found in it and run again (`TourSteps`).
    TourCandidates,
    /// The tour's run with its candidates tracked: show the captioned steps.
    TourSteps,
}

impl AfterRun {
    fn is_tour(&self) -> bool {
        match self {
            AfterRun::Nothing => false,
            AfterRun::PinThenRun(then) => then.is_tour(),
            AfterRun::TourCandidates | AfterRun::TourSteps => true,
        }
    }

    /// The same follow-up with the tour's part dropped (the tour was closed or failed).
    fn without_tour(self) -> AfterRun {
        match self {
            AfterRun::PinThenRun(then) => AfterRun::PinThenRun(Box::new(then.without_tour())),
            AfterRun::TourCandidates | AfterRun::TourSteps => AfterRun::Nothing,
            AfterRun::Nothing => AfterRun::Nothing,
        }
    }

    /// The tour panel's phase while a run with this follow-up goes on; a new question leaves the tour.
    fn tour_phase(&self) -> TourPhase {
        match self {
            AfterRun::TourSteps => TourPhase::Tracking,
            after if after.is_tour() => TourPhase::FirstRun,
            _ => TourPhase::Off,
        }
    }

    /// A link's pinned run leaves the address alone: it still names the link's own question.
    fn writes_url(&self) -> bool {
        !matches!(self, AfterRun::PinThenRun(_))
    }

    /// The follow-up without a link's pin step.
    fn without_pin(self) -> AfterRun {
        match self {
            AfterRun::PinThenRun(then) => *then,
            other => other,
        }
    }
}

/// A run to start: the form's question, with `prompt` in place of the form's (a link's pinned run).
#[derive(Clone, Debug, PartialEq)]
pub struct RunPlan {
    pub prompt: Option<Prompt>,
    pub after: AfterRun,
}

impl RunPlan {
    fn form(after: AfterRun) -> Self {
        Self { prompt: None, after }
    }

    /// What a link runs once its model is loaded: its question (after its pinned prompt, if any),
    /// or the tour.
    pub fn from_link(link: &Link) -> Option<Self> {
        let last = if link.tour {
            AfterRun::TourCandidates
        } else if link.question.is_some() {
            AfterRun::Nothing
        } else {
            return None;
        };
        Some(match &link.pinned {
            Some(prompt) => RunPlan { prompt: Some(prompt.clone()), after: AfterRun::PinThenRun(Box::new(last)) },
            None => RunPlan::form(last),
        })
    }
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

/// A link's model URL waiting for the user's consent to download it (`link_model.rs` asks).
#[derive(Clone, Debug, PartialEq)]
pub struct LinkModel {
    /// The link's `model=` value, kept as the page URL's key.
    pub key: String,
    pub url: String,
    pub host: String,
    /// From a HEAD request's Content-Length; none when the server does not say.
    pub bytes: Option<u64>,
}

/// The link's settings for every worker started.
#[derive(Clone, Copy)]
struct WorkerConfig {
    lens_workers: Option<usize>,
    /// Files above this many bytes load streamed (`resident_limit` in the link).
    resident_limit: Option<u64>,
    /// Run the SIMD128 worker even where relaxed SIMD is available (`simd=baseline`).
    baseline_simd: bool,
    /// Fast precision's lens product (`fast_lens=int8|f32`); none = measured by the worker.
    fast_int8: Option<bool>,
}

#[derive(Clone, Copy)]
pub struct Lifecycle {
    pub state: AppState,
    set_loading: WriteSignal<bool>,
    set_running: WriteSignal<bool>,
    set_tour_phase: WriteSignal<TourPhase>,
    /// A link's model URL waiting for consent.
    pub link_model: RwSignal<Option<LinkModel>>,
    /// Run once a model is loaded (a link, or the tour waiting for the bundled model).
    queued: StoredValue<Option<RunPlan>>,
    /// The current run's follow-up, beside its id.
    after: StoredValue<Option<(RunId, AfterRun)>>,
    next_run: StoredValue<u64>,
    /// Counts model loads, so a stale cancel deadline cannot stop a newer one.
    load_epoch: StoredValue<u64>,
    /// Whether a (re)started worker loads a model as soon as it is up: not after a crash or a
    /// stuck load, which would only repeat it.
    load_when_ready: StoredValue<bool>,
    /// Set when a crash made the page reload the model; cleared when a run finishes. A second
    /// crash meanwhile is not followed by another reload.
    reloads_after_crash: StoredValue<u32>,
    source: StoredValue<Option<ModelSource>, LocalStorage>,
    /// The last model that loaded, and its preset key: put back when a new file kills the worker
    /// while loading (a file that exhausts memory), so a bad file never costs the user their model.
    last_loaded: StoredValue<Option<(ModelSource, String)>, LocalStorage>,
    /// What to say once that model is back (loading clears messages).
    after_restore: StoredValue<Option<String>>,
    worker: StoredValue<Option<WorkerClient>, LocalStorage>,
    config: WorkerConfig,
}

impl Lifecycle {
    /// The page's state and its lifecycle, from the link; `boot` starts them.
    pub fn new(link: &Link) -> Self {
        let (loading, set_loading) = signal(false);
        let (running, set_running) = signal(false);
        let (tour_phase, set_tour_phase) = signal(TourPhase::Off);
        let state = AppState::new(link, RunFlags { loading, running, tour_phase });
        Self {
            state,
            set_loading,
            set_running,
            set_tour_phase,
            link_model: RwSignal::new(None),
            queued: StoredValue::new(RunPlan::from_link(link)),
            after: StoredValue::new(None),
            next_run: StoredValue::new(1),
            load_epoch: StoredValue::new(0),
            load_when_ready: StoredValue::new(true),
            reloads_after_crash: StoredValue::new(0),
            source: StoredValue::new_local(None),
            last_loaded: StoredValue::new_local(None),
            after_restore: StoredValue::new(None),
            worker: StoredValue::new_local(None),
            config: WorkerConfig {
                lens_workers: link.lens_workers,
                resident_limit: link.resident_limit,
                baseline_simd: link.baseline_simd,
                fast_int8: link.fast_int8,
            },
        }
    }

    /// Starts the page: the tour's question in the form for a tour link, a published report for a
    /// report link (no model needed), then the worker.
    pub fn boot(&self, link: &Link) {
        if link.tour {
            self.prepare_tour();
        } else if let Some(url) = link.report.clone() {
            self.load_when_ready.set_value(false);
            self.state.open_report_url(url);
        }
        self.start_worker();
    }

    // Loading.

    /// Loads a model by URL (a preset or any GGUF address).
    pub fn load_url(&self, key: String, url: String, name: String) {
        if self.busy_for_a_load() {
            return;
        }
        self.state.model_key.set(key);
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
            self.state.error.set(Some(loupe_protocol::too_large_message(file.size() as u64)));
            return;
        }
        self.state.model_key.set(String::new());
        self.source.set_value(Some(ModelSource::File(file)));
        self.load_source();
    }

    /// One load at a time, and none during a run: a second request would queue behind the first in
    /// the worker, and the page would lose track of which model is the one that loaded.
    fn busy_for_a_load(&self) -> bool {
        let (loading, running) = (self.state.loading.get_untracked(), self.state.running.get_untracked());
        if loading || running {
            let what = if loading { "a model is loading" } else { "a run is going" };
            self.state.notice.set(Some(format!("{what}: wait for it or press Cancel, then load the new model")));
        }
        loading || running
    }

    /// (Re)loads the current model source, if any.
    fn load_source(&self) {
        let Some(source) = self.source.get_value() else { return };
        self.load_epoch.update_value(|e| *e += 1);
        let s = self.state;
        s.error.set(None);
        s.notice.set(None);
        self.set_loading.set(true);
        s.progress.set(Some(Progress { stage: "starting".into(), loaded: 0, total: None, started_ms: now_ms() }));
        match source {
            ModelSource::Url { url, name } => self.send(&Request::LoadUrl { url, name }),
            ModelSource::File(file) => {
                self.worker
                    .with_value(|w| w.as_ref().map(|w| w.send_file(&Request::LoadFile { name: file.name() }, &file)));
            }
        }
    }

    /// The worker is up: configure it, then load the model of the link, the last source (after a
    /// restart), or the default.
    pub(crate) fn on_ready(&self) {
        let c = self.config;
        self.send(&Request::Configure {
            lens_workers: c.lens_workers,
            resident_limit: c.resident_limit,
            fast_int8: c.fast_int8,
        });
        self.send(&Request::ListCache);
        if !self.load_when_ready.get_value() {
            return;
        }
        if self.source.with_value(Option::is_some) {
            return self.load_source();
        }
        let key = self.state.model_key.get_untracked();
        match crate::presets::find(&key) {
            Some(p) => self.load_url(key.clone(), p.url.into(), p.name.into()),
            None if key.contains("://") || key.ends_with(".gguf") => self.ask_about_link_model(key),
            None => {
                self.state.notice.set(Some(format!("unknown model `{key}` in the link; loading the default")));
                self.load_default();
            }
        }
    }

    pub(crate) fn model_loaded(&self, info: ModelInfo) {
        let s = self.state;
        self.set_loading.set(false);
        s.progress.set(None);
        let loaded = self.source.get_value().map(|source| (source, s.model_key.get_untracked()));
        self.last_loaded.set_value(loaded);
        if let Some(message) = self.after_restore.try_update_value(Option::take).flatten() {
            s.error.set(Some(message));
        }
        if info.from_cache {
            s.notice.set(Some(format!("{} loaded from browser storage", info.name)));
        }
        s.model.set(Some(info));
        self.send(&Request::ListCache);
        s.shell.keep_for_offline();
        match self.queued.try_update_value(Option::take).flatten() {
            Some(plan) => {
                self.start_run(plan);
            }
            None => self.preview_tokens(),
        }
    }

    /// Holds a link's model URL until the user agrees to download it.
    fn ask_about_link_model(&self, key: String) {
        let url = absolute(&key);
        let host = web_sys::Url::new(&url).map(|u| u.host()).unwrap_or_else(|_| url.clone());
        self.link_model.set(Some(LinkModel { key, url: url.clone(), host, bytes: None }));
        let link_model = self.link_model;
        wasm_bindgen_futures::spawn_local(async move {
            if let Some(bytes) = content_length(&url).await {
                link_model.update(|m| {
                    if let Some(m) = m.as_mut().filter(|m| m.url == url) {
                        m.bytes = Some(bytes);
                    }
                });
            }
        });
    }

    /// The user agreed to download the link's model.
    pub fn accept_link_model(&self) {
        if let Some(m) = self.link_model.get_untracked() {
            self.link_model.set(None);
            let name = m.url.rsplit('/').next().unwrap_or("model").split('?').next().unwrap_or("model").to_string();
            self.load_url(m.key, m.url, name);
        }
    }

    /// The bundled model instead of the link's: a queued tour still runs, the link's question does not.
    pub fn decline_link_model(&self) {
        self.link_model.set(None);
        let tour = self.queued.with_value(|q| q.as_ref().filter(|p| p.after.is_tour()).map(|p| p.after.clone()));
        self.queued.set_value(tour.map(|after| RunPlan::form(after.without_pin())));
        self.load_default();
    }

    // Runs.

    pub fn run(&self) {
        self.start_run(RunPlan::form(AfterRun::Nothing));
    }

    /// Starts a run of the form's question (or the plan's prompt), with what follows it; false when
    /// it could not start (a refused tour run ends the tour rather than leave it waiting).
    fn start_run(&self, plan: RunPlan) -> bool {
        let s = self.state;
        let refuse = |why: Option<String>| {
            if let Some(why) = why {
                s.error.set(Some(why));
            }
            if plan.after.is_tour() {
                self.end_tour();
            }
            false
        };
        let Some(model) = s.model.get_untracked() else {
            return refuse(Some("load a model first".into()));
        };
        if s.loading.get_untracked() || s.running.get_untracked() {
            return refuse(None);
        }
        let mut question = s.form.question();
        if let Some(prompt) = plan.prompt.clone() {
            question.prompt = prompt;
        }
        if let Err(e) = question.validate() {
            return refuse(Some(e));
        }
        // A streamed model does not answer (the Answer field says why); the report says 0.
        if model.streamed {
            question.answer_tokens = 0;
        }
        // The tour's captions describe its own run; a new question leaves the tour.
        self.set_tour_phase.set(plan.after.tour_phase());
        let run = RunId(self.next_run.get_value());
        self.next_run.set_value(run.0 + 1);
        s.error.set(None);
        s.notice.set(None);
        self.set_running.set(true);
        s.column.set(None);
        s.focus.set(None);
        if matches!(s.metric.get_untracked(), Metric::TrackedProbability(i) | Metric::TrackedRank(i) if i >= question.track.len())
        {
            s.metric.set(Metric::Entropy);
        }
        if plan.after.writes_url() {
            let pinned = s.pinned.with_untracked(|p| p.as_ref().map(|f| f.report.question.prompt.clone()));
            let too_long = url_state::write(&url_state::Written {
                model: &s.model_key.get_untracked(),
                question: &question,
                pinned: pinned.as_ref(),
                lens_workers: self.config.lens_workers,
                present: s.present.get_untracked(),
            });
            s.notice.set(too_long);
        }
        s.figure.set(FigureData::new(run, model, question.clone()));
        self.after.set_value(Some((run, plan.after)));
        self.send(&Request::Run { run, question });
        true
    }

    /// The current run completed: compare it with the pinned one, then do what was to follow it.
    /// The one place a follow-up is consumed.
    pub(crate) fn run_ended(&self, run: RunId, timings: Timings) {
        let s = self.state;
        self.set_running.set(false);
        self.reloads_after_crash.set_value(0);
        let broken = s.figure.with_untracked(FigureData::not_a_number);
        if broken > 0 {
            let all = s.figure.with_untracked(|f| f.n_rows() * f.n_positions());
            s.notice.set(Some(format!(
                "{broken} of {all} cells are not a number: the model's numbers broke there (its weights or settings). They are drawn dark and hatched."
            )));
        }
        s.figure.update(|f| {
            f.done = true;
            f.report.timings = timings;
        });
        s.compare_with_pinned();
        let after = self.after.try_update_value(Option::take).flatten().filter(|(r, _)| *r == run).map(|(_, a)| a);
        match after.unwrap_or(AfterRun::Nothing) {
            AfterRun::Nothing => {}
            AfterRun::PinThenRun(then) => {
                s.pin();
                self.start_run(RunPlan::form(*then));
            }
            AfterRun::TourCandidates => {
                let candidates = s.figure.with_untracked(tour::candidates);
                s.form.track.set(candidates.join(","));
                self.start_run(RunPlan::form(AfterRun::TourSteps));
            }
            AfterRun::TourSteps => {
                let steps = s.figure.with_untracked(|f| tour::steps(f, s.window.get_untracked()));
                s.tour.steps.set(steps);
                self.set_tour_phase.set(TourPhase::Steps);
                s.show_tour_step(0);
            }
        }
    }

    /// A run or a load stopped without completing: cancelled (`error` none) or failed. Nothing
    /// that was to follow it happens.
    pub(crate) fn run_stopped(&self, run: Option<RunId>, error: Option<String>) {
        let s = self.state;
        self.set_running.set(false);
        self.after.set_value(None);
        let load = run.is_none();
        // A new model that failed to load left the previous one in the worker: it is the one to
        // reload after a restart.
        if load && error.is_some() && s.loading.get_untracked() && s.model.with_untracked(Option::is_some) {
            if let Some((source, key)) = self.last_loaded.get_value() {
                self.source.set_value(Some(source));
                s.model_key.set(key);
            }
        }
        if load {
            self.set_loading.set(false);
            s.progress.set(None);
        }
        match error {
            Some(message) => s.error.set(Some(message)),
            None => s.notice.set(Some("cancelled".into())),
        }
        self.end_tour();
    }

    /// The control run a teacher wants beside a chat run: the same user text without the chat
    /// template, as raw text, compared cell by cell with the chat run (pinned).
    pub fn compare_without_template(&self) {
        let s = self.state;
        if s.loading.get_untracked() || s.running.get_untracked() || s.model.with_untracked(Option::is_none) {
            return;
        }
        // A conversation's control is its last question as raw text.
        let Some(user) = s.figure.with_untracked(|f| f.report.question.prompt.last_user_text().map(str::to_string))
        else {
            s.error.set(Some("the current run has no chat template to remove".into()));
            return;
        };
        s.pin();
        s.form.chat_mode.set(false);
        s.form.raw.set(user);
        self.run();
        s.metric.set(Metric::EntropyChange);
    }

    /// Adds a token (by its vocabulary spelling) to the tracked ones and runs the lens again.
    pub fn track_token(&self, piece: &str) {
        let s = self.state;
        if s.model.get_untracked().is_none() {
            s.error.set(Some("load a model to track tokens: an opened report holds only what it tracked".into()));
            return;
        }
        let mut list = Question::parse_track_list(&s.form.track.get_untracked());
        if !list.iter().any(|t| t == piece) {
            list.push(piece.to_string());
        }
        s.form.track.set(list.join(","));
        let index = list.iter().position(|t| t == piece).unwrap_or(0);
        self.run();
        s.metric.set(Metric::TrackedProbability(index));
    }

    pub fn preview_tokens(&self) {
        let s = self.state;
        if s.model.get_untracked().is_some() && !s.running.get_untracked() && !s.loading.get_untracked() {
            self.send(&Request::Preview { question: s.form.question() });
        }
    }

    /// Positions brought into view while the run still fills in: the worker lenses them next.
    pub fn lens_next(&self, start: usize, end: usize) {
        let s = self.state;
        let filling = s.figure.with_untracked(|f| (s.running.get_untracked() && !f.complete()).then_some(f.run));
        if let Some(run) = filling {
            self.send(&Request::Focus { run, start, end });
        }
    }

    /// Sends a request to the worker.
    pub fn send(&self, request: &Request) {
        self.worker.with_value(|w| w.as_ref().map(|w| w.send(request)));
    }

    // Cancel, crash recovery, restore.

    /// Asks the worker to stop; if that same run or load is still going after a grace period (the
    /// worker is inside one long step), restarts the worker: after a stuck run the model is loaded
    /// again, after a stuck load it is not (the load was what the user cancelled).
    pub fn cancel(&self) {
        self.send(&Request::Cancel);
        let life = *self;
        let s = self.state;
        let run = s.figure.with_untracked(|f| f.run);
        let load = self.load_epoch.get_value();
        set_timeout(
            move || {
                let same_run = s.running.get_untracked() && s.figure.with_untracked(|f| f.run) == run;
                let same_load = s.loading.get_untracked() && life.load_epoch.get_value() == load;
                if same_load {
                    // A load that does not answer Cancel (a chat template that never ends) is given
                    // up with its worker; the model loaded before it comes back.
                    if !life.restore_previous(
                        "the new model did not stop loading when asked, so its worker was stopped and the model was not loaded;",
                    ) {
                        s.notice.set(Some("stopped the worker; no model is loaded".into()));
                        life.restart_worker(false);
                    }
                } else if same_run {
                    life.stop_run();
                    s.notice.set(Some("stopped the worker; the model is loading again".into()));
                    life.restart_worker(true);
                }
            },
            CANCEL_GRACE,
        );
    }

    /// The current run is over without its follow-up (its worker is gone).
    fn stop_run(&self) {
        self.set_running.set(false);
        if self.after.try_update_value(Option::take).flatten().is_some_and(|(_, after)| after.is_tour()) {
            self.end_tour();
        }
    }

    pub fn start_worker(&self) {
        let life = *self;
        let on_event: Rc<dyn Fn(Event)> = Rc::new(move |e| life.on_event(e));
        let on_crash: Rc<dyn Fn(String)> = Rc::new(move |detail| life.on_crash(detail));
        // The old worker, if any, is terminated as its handle drops.
        self.worker.set_value(None);
        match WorkerClient::start(on_event, on_crash, self.config.baseline_simd) {
            Ok(client) => self.worker.set_value(Some(client)),
            Err(e) => self.state.error.set(Some(e)),
        }
    }

    fn on_crash(&self, detail: String) {
        let s = self.state;
        self.stop_run();
        // A file that crashes the worker while loading would crash it again: never retried.
        // The model loaded before it, if any, is put back.
        let put_back = s.loading.get_untracked()
            && self.restore_previous(&format!(
                "the model worker stopped while loading the new model ({detail}), usually because it needs more memory than the browser gives, or its file is hostile. It was not loaded again;"
            ));
        if put_back {
            return;
        }
        if s.loading.get_untracked() {
            s.error.set(Some(format!(
                "the model worker stopped while loading this model ({detail}), usually because the browser ran out of memory for it. It was not loaded again; pick a smaller or more quantized file."
            )));
            self.restart_worker(false);
        } else if self.reloads_after_crash.get_value() > 0 {
            // It crashed again before any run finished: reloading would only loop.
            s.error.set(Some(format!(
                "the model worker stopped again ({detail}) before a run could finish, so the model was not loaded a third time. Try a shorter prompt, or a smaller or more quantized model."
            )));
            self.restart_worker(false);
        } else {
            self.reloads_after_crash.set_value(1);
            s.error.set(Some(format!(
                "the model worker stopped ({detail}); this is usually the browser running out of memory. Loupe restarted it; the model is loading again."
            )));
            self.restart_worker(true);
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
        self.state.error.set(Some(format!("{why} the previous model is loading again.")));
        self.after_restore.set_value(Some(format!("{why} the previous model is back.")));
        self.state.model_key.set(key);
        self.source.set_value(Some(previous));
        self.restart_worker(true);
        true
    }

    /// A fresh worker; `reload` loads the current model again once it is up.
    fn restart_worker(&self, reload: bool) {
        self.state.model.set(None);
        self.state.progress.set(None);
        self.set_loading.set(reload && self.source.with_value(Option::is_some));
        self.load_when_ready.set_value(reload);
        if !reload {
            self.source.set_value(None);
            self.queued.set_value(None);
            self.end_tour();
        }
        self.start_worker();
    }

    // The tour.

    /// The tour "Rehearsal at dummy tokens": the seed's question on the loaded model (the bundled
    /// one if none), then its candidates tracked, then the steps.
    pub fn start_tour(&self) {
        let s = self.state;
        if s.running.get_untracked() {
            return;
        }
        self.prepare_tour();
        let plan = RunPlan::form(AfterRun::TourCandidates);
        if s.model.get_untracked().is_some() && !s.loading.get_untracked() {
            self.start_run(plan);
        } else {
            self.queued.set_value(Some(plan));
            if !s.loading.get_untracked() {
                self.load_default();
            }
        }
    }

    /// Puts the seed's question in the form; the tour waits for its first run.
    fn prepare_tour(&self) {
        let form = self.state.form;
        form.chat_mode.set(true);
        form.user.set(tour::QUESTION.into());
        form.system.set(String::new());
        form.earlier.set(Vec::new());
        form.track.set(String::new());
        form.answer.set(tour::ANSWER_TOKENS);
        self.state.tour.steps.set(Vec::new());
        self.set_tour_phase.set(TourPhase::FirstRun);
    }

    /// Closes the tour: what was to follow for it is dropped (a plan that was only the tour, whole).
    pub fn end_tour(&self) {
        self.set_tour_phase.set(TourPhase::Off);
        self.queued.update_value(|queued| {
            if let Some(plan) = queued.take() {
                if !matches!(plan.after, AfterRun::TourCandidates | AfterRun::TourSteps) {
                    *queued = Some(RunPlan { after: plan.after.without_tour(), ..plan });
                }
            }
        });
        self.after.update_value(|a| {
            if let Some((_, after)) = a.as_mut() {
                *after = std::mem::replace(after, AfterRun::Nothing).without_tour();
            }
        });
    }
}

/// The size a HEAD request reports, if the server allows it.
async fn content_length(url: &str) -> Option<u64> {
    let init = web_sys::RequestInit::new();
    init.set_method("HEAD");
    let request = web_sys::Request::new_with_str_and_init(url, &init).ok()?;
    let response: web_sys::Response =
        JsFuture::from(web_sys::window()?.fetch_with_request(&request)).await.ok()?.unchecked_into();
    let length = response.ok().then(|| response.headers().get("content-length").ok().flatten())??;
    length.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(tour: bool, question: bool, pinned: bool) -> Link {
        Link {
            tour,
            question: question.then(Question::default),
            pinned: pinned.then(|| Prompt::Raw { raw: "pinned".into() }),
            ..Link::default()
        }
    }

    #[test]
    fn a_link_plans_its_runs() {
        let plan = RunPlan::from_link(&link(true, false, true)).unwrap();
        assert_eq!(plan.after, AfterRun::PinThenRun(Box::new(AfterRun::TourCandidates)));
        assert!(plan.prompt.is_some());
        let plan = RunPlan::from_link(&link(false, true, true)).unwrap();
        assert_eq!(plan.after, AfterRun::PinThenRun(Box::new(AfterRun::Nothing)));
        assert_eq!(RunPlan::from_link(&link(false, true, false)).unwrap(), RunPlan::form(AfterRun::Nothing));
        assert_eq!(RunPlan::from_link(&link(true, false, false)).unwrap(), RunPlan::form(AfterRun::TourCandidates));
        assert_eq!(RunPlan::from_link(&link(false, false, true)), None);
    }

    #[test]
    fn a_follow_up_names_the_tour_phase_and_drops_the_tour() {
        let pinned_tour = AfterRun::PinThenRun(Box::new(AfterRun::TourCandidates));
        assert_eq!(pinned_tour.tour_phase(), TourPhase::FirstRun);
        assert_eq!(AfterRun::TourSteps.tour_phase(), TourPhase::Tracking);
        assert_eq!(AfterRun::Nothing.tour_phase(), TourPhase::Off);
        assert!(!pinned_tour.writes_url() && AfterRun::TourSteps.writes_url());
        assert_eq!(pinned_tour.clone().without_tour(), AfterRun::PinThenRun(Box::new(AfterRun::Nothing)));
        assert_eq!(pinned_tour.without_pin(), AfterRun::TourCandidates);
    }
}
