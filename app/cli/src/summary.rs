//! The human-readable summary of a report: per position, the token and the top-1 and entropy of a
//! few rows, then the tracked tokens.

use loupe_lens::protocol::token_label::fit;
use loupe_lens::protocol::LensReport;

pub fn print(r: &LensReport, model_name: &str) {
    let g = &r.grid;
    let last = g.n_rows - 1;
    let shown: Vec<usize> = {
        let mut v = vec![0, last / 4, last / 2, 3 * last / 4, last];
        v.dedup();
        v
    };
    println!(
        "{} ({}, {} blocks, {} precision): {} tokens",
        if model_name.is_empty() { &r.model } else { model_name },
        r.architecture,
        if r.question.inside_blocks { last / 2 } else { last },
        r.question.precision.name(),
        r.sequence.len()
    );
    print!("{:>4} {:<14}", "pos", "token");
    for row in &shown {
        print!(" | {:<18}", format!("row {}: top-1 (H)", r.question.row_label(*row)));
    }
    println!();
    for p in 0..g.n_positions {
        let t = &r.sequence.token_info[p];
        let mark = if t.template { "*" } else { " " };
        print!("{p:>4} {mark}{:<13}", fit(&t.text, 12));
        for &row in &shown {
            let top = g.top_texts[row][p].first().map(String::as_str).unwrap_or_default();
            print!(" | {:<12} {:>5.2}", fit(top, 12), g.entropy[row][p]);
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
    println!("timings: load {:.2} s, forward {:.2} s, lens {:.2} s", r.timings.load, r.timings.forward, r.timings.lens);
}
