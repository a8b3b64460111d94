//! The recipe for a question (`Engine::ask`) on a tiny model: its steps come in the order a front
//! end needs them, the report they build equals the lens taken by hand, a plan of many parts (the
//! worker's) gives the same cells as one part (the command line's), the positions brought into view
//! come next, and a checkpoint that says Cancel stops the run.

mod common;

use common::*;
use loupe_lens::protocol::{LensReport, Question, RunStep};
use loupe_lens::{block_on, lens_plan, Engine, LensError, LensPart, Prompt, Record, Runner, Vocabulary};
use std::ops::Range;

/// A front end that keeps every step and folds it into a report, with the plan it is given.
struct Collect {
    report: LensReport,
    steps: Vec<&'static str>,
    parts: Vec<LensPart>,
    plan: fn(usize, usize) -> Vec<LensPart>,
    focus: Option<Range<usize>>,
    /// Checkpoints passed before the one that says Cancel.
    cancel_after: Option<usize>,
}

impl Collect {
    fn new(engine: &Engine, q: &Question, plan: fn(usize, usize) -> Vec<LensPart>) -> Self {
        let n_rows = q.n_rows(engine.model.hyper.n_layers);
        let report = LensReport::begin("tiny.gguf".into(), "llama".into(), engine.vocab_size(), q.clone(), n_rows);
        Self { report, steps: Vec::new(), parts: Vec::new(), plan, focus: None, cancel_after: None }
    }
}

impl Vocabulary for Collect {}

impl Runner for Collect {
    fn now(&self) -> f64 {
        0.0
    }

    fn step(&mut self, step: RunStep) -> loupe_lens::Result<()> {
        self.steps.push(match &step {
            RunStep::Sequence(_) => "sequence",
            RunStep::Tracked(_) => "tracked",
            RunStep::AnswerToken(_) => "answer token",
            RunStep::Cells { first_row, first_position, cells } => {
                let (rows, positions) = (cells.n_rows, cells.n_positions);
                self.parts.push(LensPart {
                    rows: *first_row..first_row + rows,
                    positions: *first_position..first_position + positions,
                });
                "cells"
            }
        });
        self.report.apply(step).map_err(LensError::Compute)
    }

    async fn checkpoint(&mut self) -> loupe_lens::Result<()> {
        match self.cancel_after.as_mut() {
            Some(0) => Err(LensError::Cancelled),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn plan(&self, n_rows: usize, n_positions: usize) -> Vec<LensPart> {
        (self.plan)(n_rows, n_positions)
    }

    fn focus(&mut self) -> Option<Range<usize>> {
        self.focus.take()
    }
}

fn whole(n_rows: usize, n_positions: usize) -> Vec<LensPart> {
    vec![LensPart { rows: 0..n_rows, positions: 0..n_positions }]
}

fn question(raw: &str, answer_tokens: usize) -> Question {
    Question { prompt: Prompt::Raw { raw: raw.into() }, track: vec!["e".into()], answer_tokens, ..Question::default() }
}

#[test]
fn a_question_gives_its_steps_in_order_and_the_lens_taken_by_hand() {
    let mut engine = Engine::load(&TinyGguf::byte_level(64).bytes()).unwrap();
    let q = question("hello, hello", 3);
    let mut run = Collect::new(&engine, &q, whole);
    block_on(engine.ask(&q, &mut run)).unwrap();
    let answered = run.steps.iter().filter(|s| **s == "answer token").count();
    assert!(answered > 0, "{:?}", run.steps);
    let mut expected = vec!["sequence", "tracked"];
    expected.extend(std::iter::repeat_n("answer token", answered));
    expected.extend(["sequence", "cells"]);
    assert_eq!(run.steps, expected);
    assert_eq!(run.report.validate(), Ok(()));
    // The same lens by hand: the forward pass of the whole sequence, every cell at once.
    let ids = run.report.sequence.ids.clone();
    let rows = engine.forward(&ids, q.precision, Record::of(&q)).unwrap();
    let by_hand = engine.lens(&rows, &engine.lens_options(&q).unwrap(), &|| false).unwrap();
    assert_eq!(run.report.grid, by_hand);
}

#[test]
fn the_workers_parts_give_the_command_lines_cells() {
    // Long enough for position ranges (over 256 tokens), with the positions in view brought forward.
    let text = "the quick brown fox jumps over the lazy dog; ".repeat(7);
    let q = question(&text, 0);
    let mut engine = Engine::load(&TinyGguf::byte_level(512).bytes()).unwrap();
    let mut one = Collect::new(&engine, &q, whole);
    block_on(engine.ask(&q, &mut one)).unwrap();
    let mut parts = Collect::new(&engine, &q, lens_plan);
    parts.focus = Some(10..20);
    block_on(engine.ask(&q, &mut parts)).unwrap();
    assert!(parts.parts.len() > 2, "{:?}", parts.parts);
    assert_eq!(parts.parts[0].positions, 10..20, "the positions in view come first");
    let (a, b) = (&one.report.grid, &parts.report.grid);
    assert_eq!(a.top_ids, b.top_ids);
    for (ra, rb) in a.entropy.iter().zip(&b.entropy) {
        for (x, y) in ra.iter().zip(rb) {
            assert!((x - y).abs() < 1e-4, "{x} against {y}");
        }
    }
}

#[test]
fn a_checkpoint_that_says_cancel_stops_the_run() {
    let mut engine = Engine::load(&TinyGguf::byte_level(64).bytes()).unwrap();
    let q = question("hello, hello", 0);
    let mut run = Collect::new(&engine, &q, lens_plan);
    // Past the tracked tokens and the forward pass, at the first part's end.
    run.cancel_after = Some(2);
    assert!(matches!(block_on(engine.ask(&q, &mut run)), Err(LensError::Cancelled)));
    assert_eq!(run.steps.iter().filter(|s| **s == "cells").count(), 1);
}
