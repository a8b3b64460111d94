//! What the page does with each worker event: the figure fills in here; loading, a run's end and
//! failures go to `lifecycle.rs`. Events of an older run are dropped, so a slow reply can never
//! change the figure of the current one.

use crate::figure_data::FigureData;
use crate::layout::default_range;
use crate::lifecycle::Lifecycle;
use crate::state::{now_ms, Progress};
use leptos::prelude::*;
use loupe_protocol::{Event, RunStep};

impl Lifecycle {
    pub(crate) fn on_event(&self, event: Event) {
        let s = self.state;
        let current = s.figure.with_untracked(|f| f.run);
        let event = match event.into_run_step() {
            Ok((run, step)) if run == current => return self.run_step(step),
            Ok(_) => return, // a step of an older run
            Err(event) => *event,
        };
        match event {
            Event::Ready => self.on_ready(),
            Event::Progress { loaded, total, stage } => s.progress.update(|p| {
                let started_ms = p.as_ref().map(|p| p.started_ms).unwrap_or_else(now_ms);
                *p = Some(Progress { stage, loaded, total, started_ms });
            }),
            Event::ModelLoaded { info } => self.model_loaded(info),
            Event::Unloaded => s.model.set(None),
            // A half-typed prompt that does not tokenize yet (`error` is set): keep the last tokens.
            Event::Preview { tokens, error: None } => s.preview.set(tokens),
            Event::Done { run, timings } if run == current => self.run_ended(run, timings),
            Event::Cancelled { run } if run.is_none() || run == Some(current) => self.run_stopped(run, None),
            Event::Error { run, message } if run.is_none() || run == Some(current) => {
                self.run_stopped(run, Some(message))
            }
            Event::CacheList { entries } => s.cache.set(entries),
            Event::Notice { message } => s.notice.set(Some(message)),
            _ => {} // events of an older run
        }
    }

    /// A step of the current run goes into its figure; a new sequence or answer token also moves
    /// the magnified range to the sequence's tail.
    fn run_step(&self, step: RunStep) {
        let s = self.state;
        if let RunStep::Sequence(sequence) = &step {
            s.preview.set(sequence.token_info.clone());
        }
        let lengthens = matches!(step, RunStep::Sequence(_) | RunStep::AnswerToken(_));
        let mut refused = None;
        s.figure.update(|f| refused = f.apply(step).err());
        if let Some(e) = refused {
            s.error.set(Some(format!("the worker sent rows that do not fit the figure: {e}")));
        }
        if lengthens {
            let n = s.figure.with_untracked(FigureData::n_positions);
            s.range.set(default_range(n, s.window.get_untracked()));
        }
    }
}
