//! `loupe`: the logit lens of a GGUF chat model on the command line.
//!
//!   loupe --model FILE (--chat TEXT [--system TEXT] | --raw TEXT) [--template NAME|FILE]
//!         [--top-k N] [--track TOKEN...] [--precision fast|exact] [--generate N] [--json OUT]
//!
//! The flags (clap) make a `Question` (`args.rs`); the engine's recipe runs it (`Engine::ask`, the
//! same as in the browser's worker), its steps folded into a `LensReport`, printed as a readable
//! summary (`summary.rs`) and optionally written as JSON (the same schema as the page's export and
//! the reference files). Any bad input exits with status 1 and one line on stderr.

mod args;
mod memory_budget;
mod summary;
mod template_deadline;

use args::Args;
use loupe_lens::protocol::{LensReport, RunStep, Timings};
use loupe_lens::{block_on, Engine, LensError, Runner, Vocabulary};
use std::time::Instant;

#[global_allocator]
static ALLOCATOR: memory_budget::Budgeted = memory_budget::Budgeted;

fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => return,
        Err(e) => fail(&e),
    };
    let file_bytes = std::fs::metadata(&args.model).map(|m| m.len()).unwrap_or(0);
    memory_budget::set_limit(args.memory_limit.unwrap_or_else(|| memory_budget::default_limit(file_bytes)));
    let deadline = args.template_timeout.map_or(template_deadline::DEFAULT, std::time::Duration::from_secs);
    template_deadline::watch(deadline, fail);
    if let Err(e) = run(&args) {
        fail(&e);
    }
}

fn fail(msg: &str) -> ! {
    let one_line = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    eprintln!("loupe: error: {one_line}");
    std::process::exit(1);
}

fn run(a: &Args) -> Result<(), String> {
    let q = &a.question;
    let t0 = Instant::now();
    let mut engine = if a.streamed {
        let file = std::fs::File::open(&a.model).map_err(|e| format!("cannot read {}: {e}", a.model))?;
        Engine::read_streamed(std::io::BufReader::new(file))
    } else {
        let bytes = std::fs::read(&a.model).map_err(|e| format!("cannot read {}: {e}", a.model))?;
        Engine::load(&bytes)
    }
    .map_err(|e| format!("{}: {e}", a.model))?;
    let load = t0.elapsed().as_secs_f64();

    let n_rows = q.n_rows(engine.model.hyper.n_layers);
    let report = LensReport::begin(
        file_name(&a.model),
        engine.model.architecture.clone(),
        engine.vocab_size(),
        q.clone(),
        n_rows,
    );
    let mut run = CliRun { report, start: Instant::now(), prompt_text: None };
    let timings = block_on(engine.ask(q, &mut run)).map_err(|e| e.to_string())?;
    let report = LensReport { timings: Timings { load, ..timings }, ..run.report };
    summary::print(&report, &engine.name);
    if let Some(path) = &a.json {
        let json = serde_json::to_string(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("cannot write {path}: {e}"))?;
        println!("wrote {path}");
    }
    Ok(())
}

/// The command line's run of a question: every step folded into its report as it comes, the
/// answer printed once written; every other choice the recipe's default (one part of every cell,
/// the whole vocabulary here).
struct CliRun {
    report: LensReport,
    start: Instant,
    /// Bytes of the prompt's text, once its sequence came: what follows in the next one is the answer.
    prompt_text: Option<usize>,
}

impl Vocabulary for CliRun {}

impl Runner for CliRun {
    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn step(&mut self, step: RunStep) -> loupe_lens::Result<()> {
        if let RunStep::Sequence(sequence) = &step {
            match self.prompt_text {
                None => self.prompt_text = Some(sequence.text.len()),
                Some(prompt) => println!("answer: {:?}", &sequence.text[prompt..]),
            }
        }
        self.report.apply(step).map_err(LensError::Compute)
    }
}

fn file_name(path: &str) -> String {
    std::path::Path::new(path).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
}
