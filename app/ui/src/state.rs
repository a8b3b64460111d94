//! The page's state: every signal the view reads, in one `Copy` struct handed to components by
//! context, and what the view itself changes (pins, the tour's step). Loading, runs, cancel and
//! the worker are `lifecycle.rs`'s, which alone sets `loading`, `running` and the tour's phase;
//! opening a saved report is `reports.rs`'s.

use crate::figure_data::{FigureData, Metric};
use crate::offline::AppShell;
use crate::question_form::QuestionForm;
use crate::tour::{Step, TourPhase};
use crate::url_state::Link;
use leptos::prelude::*;
use loupe_protocol::{CachedModel, ModelInfo, TokenInfo};

#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub stage: String,
    pub loaded: u64,
    pub total: Option<u64>,
    /// `performance.now()` when the transfer started, for the speed.
    pub started_ms: f64,
}

/// The run's flags, read by the view; `lifecycle.rs` holds their write halves.
pub struct RunFlags {
    pub loading: ReadSignal<bool>,
    pub running: ReadSignal<bool>,
    pub tour_phase: ReadSignal<TourPhase>,
}

/// The tour on the page: its phase (set by `lifecycle.rs`), its steps and the one shown.
#[derive(Clone, Copy)]
pub struct Tour {
    pub phase: ReadSignal<TourPhase>,
    pub step: RwSignal<usize>,
    pub steps: RwSignal<Vec<Step>>,
}

#[derive(Clone, Copy)]
pub struct AppState {
    pub model: RwSignal<Option<ModelInfo>>,
    /// Preset id or URL of the model, for the page URL.
    pub model_key: RwSignal<String>,
    pub progress: RwSignal<Option<Progress>>,
    pub loading: ReadSignal<bool>,
    pub running: ReadSignal<bool>,
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
    pub shell: AppShell,
}

pub fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or(0.0)
}

pub(crate) fn absolute(url: &str) -> String {
    let base = web_sys::window().and_then(|w| w.location().href().ok()).unwrap_or_default();
    web_sys::Url::new_with_base(url, &base).map(|u| u.href()).unwrap_or_else(|_| url.to_string())
}

impl AppState {
    pub fn new(link: &Link, flags: RunFlags) -> Self {
        Self {
            model: RwSignal::new(None),
            model_key: RwSignal::new(link.model.clone().unwrap_or_else(|| crate::presets::DEFAULT_ID.into())),
            progress: RwSignal::new(None),
            loading: flags.loading,
            running: flags.running,
            error: RwSignal::new(None),
            notice: RwSignal::new((!link.notes.is_empty()).then(|| format!("in the link: {}", link.notes.join("; ")))),
            figure: RwSignal::new(FigureData::default()),
            preview: RwSignal::new(Vec::new()),
            cache: RwSignal::new(Vec::new()),
            form: QuestionForm::new(link.question.as_ref()),
            metric: RwSignal::new(Metric::Entropy),
            pinned: RwSignal::new(None),
            vmax: RwSignal::new(10.0),
            palette: RwSignal::new(crate::scale::Palette::Diverging),
            range: RwSignal::new((0, 0)),
            column: RwSignal::new(None),
            focus: RwSignal::new(None),
            window: RwSignal::new(40),
            present: RwSignal::new(link.present),
            tour: Tour { phase: flags.tour_phase, step: RwSignal::new(0), steps: RwSignal::new(Vec::new()) },
            shell: AppShell::register(),
        }
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

    /// Compares the run that just completed with the pinned one, if any.
    pub(crate) fn compare_with_pinned(&self) {
        if let Some(pinned) = self.pinned.get_untracked() {
            self.figure.update(|f| f.compare_with(pinned));
        }
    }

    /// Shows step `i` of the tour: what the figure colours, and the cell and range it points at.
    pub fn show_tour_step(&self, i: usize) {
        let Some(step) = self.tour.steps.with_untracked(|s| s.get(i).cloned()) else { return };
        self.tour.step.set(i);
        self.metric.set(step.metric);
        self.focus.set(step.focus);
        self.column.set(step.column);
        if let Some(range) = step.range {
            self.range.set(range);
        }
    }
}
