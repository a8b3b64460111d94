//! `loupe`: the logit lens of a GGUF chat model on the command line.
//!
//!   loupe --model FILE (--chat TEXT [--system TEXT] | --raw TEXT) [--template NAME|FILE]
//!         [--top-k N] [--track TOKEN...] [--precision fast|exact] [--generate N] [--json OUT]
//!
//! Prints a readable summary and optionally writes the JSON report (same fields as the reference
//! files). Any bad input exits with status 1 and one line on stderr.

mod args;
mod summary;

use args::Args;
use loupe_lens::generate::Sampling;
use loupe_lens::protocol::{LensReport, Timings};
use loupe_lens::{Engine, LensOptions};
use std::time::Instant;

fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{}", args::USAGE);
            return;
        }
        Err(e) => fail(&e),
    };
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
    let t0 = Instant::now();
    let bytes = std::fs::read(&a.model).map_err(|e| format!("cannot read {}: {e}", a.model))?;
    let mut engine = Engine::load(&bytes).map_err(|e| format!("{}: {e}", a.model))?;
    drop(bytes);
    let load = t0.elapsed().as_secs_f64();

    let mut prepared = engine.prepare(&a.prompt, &a.template).map_err(|e| e.to_string())?;
    if a.generate > 0 {
        let sampling = Sampling { temperature: a.temperature, top_p: a.top_p, seed: a.seed };
        let answer = engine
            .generate(&prepared.ids, a.generate, &sampling, a.precision, &mut |_| true)
            .map_err(|e| e.to_string())?;
        println!("answer: {:?}", engine.tokenizer.decode(&answer));
        engine.append_answer(&mut prepared, &answer);
    }
    let track = engine.resolve_tracked(&a.track).map_err(|e| e.to_string())?;
    let opts = LensOptions { top_k: a.top_k, track };

    let t1 = Instant::now();
    let rows = engine.forward(&prepared.ids, a.precision).map_err(|e| e.to_string())?;
    let forward = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let grid = engine.lens(&rows, &opts, &|| false).map_err(|e| e.to_string())?;
    let lens = t2.elapsed().as_secs_f64();

    let piece = |id: &u32| engine.tokenizer.piece(*id).to_string();
    let report = LensReport {
        model: std::path::Path::new(&a.model)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        architecture: engine.model.architecture.clone(),
        precision: a.precision.name().into(),
        prompt: Engine::prompt_spec(&a.prompt, prepared.template.clone()),
        text: prepared.text.clone(),
        ids: prepared.ids.clone(),
        tokens: prepared.ids.iter().map(piece).collect(),
        token_info: prepared.tokens.clone(),
        top_tokens: grid.top_ids.iter().map(|r| r.iter().map(|c| c.iter().map(piece).collect()).collect()).collect(),
        grid,
        timings: Timings { load, forward, lens },
    };
    summary::print(&report, &engine);
    if let Some(path) = &a.json {
        let json = serde_json::to_string(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("cannot write {path}: {e}"))?;
        println!("wrote {path}");
    }
    Ok(())
}
