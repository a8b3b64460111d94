//! What the page does with each worker event. Events of an older run are dropped, so a slow reply
//! can never change the figure of the current one.

use crate::figure_data::FigureData;
use crate::layout::default_range;
use crate::presets;
use crate::state::{now_ms, AppState, Progress};
use leptos::prelude::*;
use loupe_protocol::{Event, Request};

impl AppState {
    pub(crate) fn on_event(&self, event: Event) {
        let current = self.figure.with_untracked(|f| f.run);
        match event {
            Event::Ready => self.on_ready(),
            Event::Progress { loaded, total, stage } => self.progress.update(|p| {
                let started_ms = p.as_ref().map(|p| p.started_ms).unwrap_or_else(now_ms);
                *p = Some(Progress { stage, loaded, total, started_ms });
            }),
            Event::ModelLoaded { info } => {
                self.loading.set(false);
                self.progress.set(None);
                let loaded = self.source.get_value().map(|s| (s, self.model_key.get_untracked()));
                self.last_loaded.set_value(loaded);
                if let Some(message) = self.after_restore.try_update_value(Option::take).flatten() {
                    self.error.set(Some(message));
                }
                if info.from_cache {
                    self.notice.set(Some(format!("{} loaded from browser storage", info.name)));
                }
                self.model.set(Some(info));
                self.send(&Request::ListCache);
                self.shell.keep_for_offline();
                if self.autorun.get_untracked() {
                    self.autorun.set(false);
                    match self.link_pin.get_untracked() {
                        Some(prompt) => {
                            self.link_pin.set(None);
                            self.run_pinned_first(prompt);
                        }
                        None => self.run(),
                    }
                } else {
                    self.preview_tokens();
                }
            }
            Event::Unloaded => self.model.set(None),
            // A half-typed prompt that does not tokenize yet (`error` is set): keep the last tokens.
            Event::Preview { tokens, error: None } => self.preview.set(tokens),
            Event::Sequence { run, sequence } if run == current => {
                let n = sequence.len();
                self.preview.set(sequence.token_info.clone());
                self.figure.update(|f| f.set_sequence(sequence));
                self.range.set(default_range(n, self.window.get_untracked()));
            }
            Event::AnswerToken { run, token } if run == current => {
                self.figure.update(|f| f.push_answer_token(token));
                let n = self.figure.with_untracked(FigureData::n_positions);
                self.range.set(default_range(n, self.window.get_untracked()));
            }
            Event::Tracked { run, tokens } if run == current => self.figure.update(|f| f.set_tracked(tokens)),
            Event::Rows { run, first_row, first_position, rows } if run == current => {
                let mut failed = None;
                self.figure.update(|f| failed = f.put_cells(first_row, first_position, rows).err());
                if let Some(e) = failed {
                    self.error.set(Some(format!("the worker sent rows that do not fit the figure: {e}")));
                }
            }
            Event::Done { run, timings } if run == current => {
                self.running.set(false);
                self.reloads_after_crash.set(0);
                let broken = self.figure.with_untracked(FigureData::not_a_number);
                if broken > 0 {
                    let all = self.figure.with_untracked(|f| f.n_rows() * f.n_positions());
                    self.notice.set(Some(format!(
                        "{broken} of {all} cells are not a number: the model's numbers broke there (its weights or settings). They are drawn dark and hatched."
                    )));
                }
                self.figure.update(|f| {
                    f.done = true;
                    f.report.timings = timings;
                });
                self.compare_when_done();
                self.continue_link();
                self.tour_after_run();
            }
            Event::Cancelled { run } if run.is_none() || run == Some(current) => {
                self.running.set(false);
                self.pin_then_run.set(false);
                if run.is_none() {
                    self.loading.set(false);
                    self.progress.set(None);
                }
                self.notice.set(Some("cancelled".into()));
                self.end_tour();
            }
            Event::Error { run, message } if run.is_none() || run == Some(current) => {
                self.running.set(false);
                self.pin_then_run.set(false);
                // A new model that failed to load left the previous one in the worker: it is the
                // one to reload after a restart.
                if run.is_none() && self.loading.get_untracked() && self.model.with_untracked(Option::is_some) {
                    if let Some((source, key)) = self.last_loaded.get_value() {
                        self.source.set_value(Some(source));
                        self.model_key.set(key);
                    }
                }
                if run.is_none() {
                    self.loading.set(false);
                    self.progress.set(None);
                }
                self.error.set(Some(message));
                self.end_tour();
            }
            Event::CacheList { entries } => self.cache.set(entries),
            Event::Notice { message } => self.notice.set(Some(message)),
            _ => {} // events of an older run
        }
    }

    /// The worker is up: configure it, then load the model of the link, the last source (after a
    /// restart), or the default.
    fn on_ready(&self) {
        self.send(&Request::Configure {
            lens_workers: self.lens_workers,
            resident_limit: self.resident_limit,
            fast_int8: self.fast_int8,
        });
        self.send(&Request::ListCache);
        if !self.load_when_ready.get_untracked() {
            return;
        }
        if self.source.with_value(Option::is_some) {
            return self.load_source();
        }
        let key = self.model_key.get_untracked();
        match presets::find(&key) {
            Some(p) => self.load_url(key.clone(), p.url.into(), p.name.into()),
            None if key.contains("://") || key.ends_with(".gguf") => self.ask_about_link_model(key),
            None => {
                self.notice.set(Some(format!("unknown model `{key}` in the link; loading the default")));
                self.load_default();
            }
        }
    }
}
