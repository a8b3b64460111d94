//! `loupe`: the logit lens of a GGUF chat model on the command line.
//!
//!   loupe --model FILE (--chat TEXT [--system TEXT] | --raw TEXT) [--template NAME|FILE]
//!         [--top-k N] [--track TOKEN...] [--precision fast|exact] [--generate N] [--json OUT]
//!
//! The flags (clap) make a `Question` (`args.rs`); the answer is a `LensReport`, printed as a readable
//! summary (`summary.rs`) and optionally written as JSON (the same schema as the page's export and
//! the reference files). Any bad input exits with status 1 and one line on stderr.

mod args;
mod memory_budget;
mod summary;
mod template_deadline;

use args::Args;
use loupe_lens::protocol::{LensReport, Timings, REPORT_SCHEMA};
use loupe_lens::Engine;
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

    let mut sequence = engine.prepare(&q.prompt, &q.template).map_err(|e| e.to_string())?;
    if q.answer_tokens > 0 {
        let answer = engine
            .generate(&sequence.ids, q.answer_tokens, &q.sampling, q.precision, &mut |_| true)
            .map_err(|e| e.to_string())?;
        println!("answer: {:?}", engine.tokenizer.decode(&answer));
        engine.append_answer(&mut sequence, &answer);
    }
    let opts = engine.lens_options(q).map_err(|e| e.to_string())?;

    let t1 = Instant::now();
    let rows = engine.forward_for(&sequence.ids, q).map_err(|e| e.to_string())?;
    let forward = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let grid = engine.lens(&rows, &opts, &|| false).map_err(|e| e.to_string())?;
    let lens = t2.elapsed().as_secs_f64();

    let report = LensReport {
        schema: REPORT_SCHEMA,
        model: file_name(&a.model),
        architecture: engine.model.architecture.clone(),
        vocab: engine.vocab_size(),
        question: q.clone(),
        sequence,
        grid,
        timings: Timings { load, forward, lens },
    };
    summary::print(&report, &engine.name);
    if let Some(path) = &a.json {
        let json = serde_json::to_string(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("cannot write {path}: {e}"))?;
        println!("wrote {path}");
    }
    Ok(())
}

fn file_name(path: &str) -> String {
    std::path::Path::new(path).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
}
