//! The human-readable summary: per position, the token and the top-1 and entropy of a few rows.

use loupe_lens::protocol::LensReport;
use loupe_lens::Engine;

/// Shows a token on one line: leading space as `_`, newline as `\n`, long tokens cut.
pub fn display(text: &str) -> String {
    let mut s: String = text.replace('\n', "\\n").replace('\t', "\\t");
    if s.starts_with(' ') {
        s.replace_range(0..1, "_");
    }
    if s.chars().count() > 12 {
        s = s.chars().take(11).collect::<String>() + "…";
    }
    s
}

pub fn print(r: &LensReport, engine: &Engine) {
    let g = &r.grid;
    let last = g.n_rows - 1;
    let shown: Vec<usize> = {
        let mut v = vec![0, last / 4, last / 2, 3 * last / 4, last];
        v.dedup();
        v
    };
    println!(
        "{} ({}, {} blocks, {} precision): {} tokens",
        if engine.name.is_empty() { &r.model } else { &engine.name },
        r.architecture,
        last,
        r.precision,
        r.ids.len()
    );
    print!("{:>4} {:<14}", "pos", "token");
    for row in &shown {
        print!(" | {:<18}", format!("row {row}: top-1 (H)"));
    }
    println!();
    for p in 0..g.n_positions {
        let t = &r.token_info[p];
        let mark = if t.template { "*" } else { " " };
        print!("{p:>4} {mark}{:<13}", display(&t.text));
        for &row in &shown {
            let top = g.top_ids[row][p].first().map(|&id| engine.tokenizer.token_text(id)).unwrap_or_default();
            print!(" | {:<12} {:>5.2}", display(&top), g.entropy[row][p]);
        }
        println!();
    }
    for t in &g.tracked {
        let p = g.n_positions - 1;
        println!(
            "tracked {:?} (id {}) at the last position: prob {:.4} rank {} (last row), best layer rank {}",
            t.piece,
            t.id,
            t.prob[last][p],
            t.rank[last][p],
            t.rank.iter().map(|r| r[p]).min().unwrap_or(0)
        );
    }
    println!("* = written by the chat template; H = entropy in nats");
    println!(
        "timings: load {:.2} s, forward {:.2} s, lens {:.2} s",
        r.timings.load, r.timings.forward, r.timings.lens
    );
}
