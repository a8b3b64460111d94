//! What the page does with each worker event: the figure fills in here; loading, a run's end and
//! failures go to `lifecycle.rs`. Events of an older run are dropped, so a slow reply can never
//! change the figure of the current one.

use crate::figure_data::FigureData;
use crate::layout::default_range;
use crate::lifecycle::Lifecycle;
use crate::state::{now_ms, Progress};
use leptos::prelude::*;
use loupe_protocol::Event;

impl Lifecycle {
    pub(crate) fn on_event(&self, event: Event) {
        let s = self.state;
        let current = s.figure.with_untracked(|f| f.run);
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
            Event::Sequence { run, sequence } if run == current => {
                let n = sequence.len();
                s.preview.set(sequence.token_info.clone());
                s.figure.update(|f| f.set_sequence(sequence));
                s.range.set(default_range(n, s.window.get_untracked()));
            }
            Event::AnswerToken { run, token } if run == current => {
                s.figure.update(|f| f.push_answer_token(token));
                let n = s.figure.with_untracked(FigureData::n_positions);
                s.range.set(default_range(n, s.window.get_untracked()));
            }
            Event::Tracked { run, tokens } if run == current => s.figure.update(|f| f.set_tracked(tokens)),
            Event::Rows { run, first_row, first_position, rows } if run == current => {
                let mut failed = None;
                s.figure.update(|f| failed = f.put_cells(first_row, first_position, rows).err());
                if let Some(e) = failed {
                    s.error.set(Some(format!("the worker sent rows that do not fit the figure: {e}")));
                }
            }
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
}
