//! The guided tour "Rehearsal at dummy tokens", computed from a finished run and never written for
//! one model: which tokens to track (the candidates), and the captioned steps with what each one
//! shows (colouring, focused cell, zoomed column, magnified range). Pure data, tested natively.

use crate::figure_data::{FigureData, Metric};
use std::collections::HashMap;

/// Where the tour on the page is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TourPhase {
    Off,
    /// The seed's question is running (or waiting for the model).
    FirstRun,
    /// The candidates found in the first run are being tracked.
    Tracking,
    Steps,
}

/// The seed's question.
pub const QUESTION: &str = "What is the capital of Australia?";
/// Enough answer tokens for the answer's first content words to appear.
pub const ANSWER_TOKENS: usize = 12;
/// Candidates tracked at most.
const MAX_CANDIDATES: usize = 10;
/// The answer's first content tokens, tracked whatever the template positions showed.
const FROM_ANSWER: usize = 2;
/// A rank this good counts as the candidate being "among the layer's guesses".
const GOOD_RANK: u32 = 10;

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub title: String,
    pub caption: String,
    pub metric: Metric,
    pub focus: Option<(usize, usize)>,
    pub column: Option<usize>,
    /// The magnified range to show, when the step needs particular positions in view.
    pub range: Option<(usize, usize)>,
}

/// Positions of the chat template between the user's message and the answer: the "dummy" tokens.
pub fn dummy_positions(fig: &FigureData) -> Vec<usize> {
    let tokens = fig.tokens();
    let end = fig.prompt_len().min(tokens.len());
    let last_content = (0..end).rev().find(|&p| !tokens[p].template);
    let from = last_content.map(|p| p + 1).unwrap_or(0);
    (from..end).filter(|&p| tokens[p].template).collect()
}

/// The layers the tour calls middle and late: from a third of the way up to just below the output.
fn middle_and_late(n_rows: usize) -> std::ops::Range<usize> {
    (n_rows / 3).max(1)..n_rows.saturating_sub(1)
}

/// A token worth tracking: a word or number, not whitespace, punctuation or a control token, and
/// free of the comma that separates the track list.
fn worth_tracking(piece: &str, text: &str) -> bool {
    let control = text.len() > 2 && text.starts_with('<') && text.ends_with('>') && !text.contains(' ');
    text.chars().any(char::is_alphanumeric)
        && !control
        && !text.contains('\u{fffd}')
        && !piece.contains(',')
        && !text.contains(',')
}

/// The answer's words that the prompt did not already contain: what rehearsal would foreshadow.
fn new_answer_words(fig: &FigureData) -> Vec<String> {
    let prompt = fig.report.sequence.token_info[..fig.prompt_len().min(fig.n_positions())]
        .iter()
        .map(|t| t.text.trim().to_lowercase())
        .collect::<Vec<_>>();
    let answer: String =
        fig.tokens().iter().skip(fig.prompt_len()).filter(|t| !t.special).map(|t| t.text.as_str()).collect();
    answer
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !prompt.contains(&w.to_lowercase()))
        .map(str::to_string)
        .collect()
}

/// Whether a token's text begins a word the answer brings (` C` and ` Can` foreshadow ` Canberra`).
fn foreshadows(text: &str, words: &[String]) -> bool {
    let t = text.trim();
    !t.is_empty() && words.iter().any(|w| w.starts_with(t))
}

/// Vocabulary spellings to track: the answer's first content tokens and the first tokens of the
/// first words it brings (` Canberra`), then the distinct top-1 tokens of the middle and late
/// layers at the dummy positions: those that begin a word of the answer first, then the most
/// frequent, so the list stays short on a long template.
pub fn candidates(fig: &FigureData) -> Vec<String> {
    let g = &fig.report.grid;
    let dummies = dummy_positions(fig);
    let words = new_answer_words(fig);
    let control: Vec<u32> = fig.tokens().iter().filter(|t| t.special || t.template).map(|t| t.id).collect();
    // piece -> (foreshadows the answer, times seen, first seen)
    let mut seen: HashMap<String, (bool, usize, usize)> = HashMap::new();
    for r in middle_and_late(fig.n_rows()).filter(|&r| fig.has_row(r)) {
        for &p in &dummies {
            let (Some(id), Some(piece), Some(text)) = (
                g.top_ids[r].get(p).and_then(|c| c.first()),
                g.top_tokens[r].get(p).and_then(|c| c.first()),
                g.top_texts[r].get(p).and_then(|c| c.first()),
            ) else {
                continue;
            };
            if worth_tracking(piece, text) && !control.contains(id) {
                let order = seen.len();
                seen.entry(piece.clone()).or_insert((foreshadows(text, &words), 0, order)).1 += 1;
            }
        }
    }
    let mut ranked: Vec<_> = seen.into_iter().collect();
    ranked.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(b.1 .1.cmp(&a.1 .1)).then(a.1 .2.cmp(&b.1 .2)));
    let content =
        || fig.tokens().iter().skip(fig.prompt_len()).filter(|t| !t.special && worth_tracking(&t.piece, &t.text));
    let first = content().take(FROM_ANSWER);
    let new_words = content().filter(|t| foreshadows(&t.text, &words)).take(FROM_ANSWER);
    let answer: Vec<String> = first.chain(new_words).map(|t| t.piece.clone()).collect();
    let mut chosen: Vec<String> = Vec::new();
    let from_template = ranked.into_iter().map(|(piece, _)| piece);
    for piece in answer.into_iter().chain(from_template) {
        if chosen.len() < MAX_CANDIDATES && !chosen.contains(&piece) {
            chosen.push(piece);
        }
    }
    chosen
}

/// Where a tracked token ranks best at the dummy positions below the output row:
/// (rank, row, position, probability). Ties go to the lowest layer, where it appears first.
fn best_at_dummies(fig: &FigureData, index: usize) -> Option<(u32, usize, usize, f32)> {
    let t = fig.tracked().get(index)?;
    let rows = 1..fig.n_rows().saturating_sub(1);
    let mut best: Option<(u32, usize, usize, f32)> = None;
    for r in rows.filter(|&r| fig.has_row(r)) {
        for p in dummy_positions(fig) {
            let (Some(&rank), Some(&prob)) = (t.rank[r].get(p), t.prob[r].get(p)) else { continue };
            if best.is_none_or(|b| rank < b.0) {
                best = Some((rank, r, p, prob));
            }
        }
    }
    best
}

/// The tracked token the tour points at: the best-ranked one at the dummy positions among those
/// that begin a word of the answer the prompt did not contain (rehearsal proper), else the
/// best-ranked of all.
fn featured(fig: &FigureData) -> Option<(usize, (u32, usize, usize, f32))> {
    let words = new_answer_words(fig);
    let scored: Vec<_> = (0..fig.tracked().len()).filter_map(|i| best_at_dummies(fig, i).map(|b| (i, b))).collect();
    let rehearsed =
        scored.iter().filter(|(i, _)| foreshadows(&fig.tracked()[*i].text, &words)).min_by_key(|(_, b)| b.0);
    rehearsed.or_else(|| scored.iter().min_by_key(|(_, b)| b.0)).copied()
}

/// A token's text in quotes for a caption: spaces kept, line breaks shown as `\n`.
fn quoted(text: &str) -> String {
    format!("“{}”", text.replace('\n', "\\n").replace('\t', "\\t").replace('\r', "\\r"))
}

fn token_at(fig: &FigureData, p: usize) -> String {
    fig.tokens().get(p).map(|t| quoted(&t.text)).unwrap_or_default()
}

fn top1_at(fig: &FigureData, r: usize, p: usize) -> String {
    fig.top1_text(r, p).map(quoted).unwrap_or_else(|| "—".into())
}

/// A range of about `window` positions ending just after `last`, inside the sequence.
fn range_ending_at(fig: &FigureData, last: usize, window: usize) -> (usize, usize) {
    let end = (last + 1 + window / 4).min(fig.n_positions()).max(last + 1);
    (end.saturating_sub(window), end)
}

/// The captioned steps for a finished run (with the candidates tracked). `window` is how many
/// positions the magnified view shows legibly.
pub fn steps(fig: &FigureData, window: usize) -> Vec<Step> {
    let (n_rows, n) = (fig.n_rows(), fig.n_positions());
    if n == 0 || n_rows < 2 || !fig.complete() {
        return Vec::new();
    }
    let out = n_rows - 1;
    let prompt_len = fig.prompt_len().min(n);
    let last_prompt = prompt_len.saturating_sub(1);
    let dummies = dummy_positions(fig);
    let answer: String = fig.tokens()[prompt_len..].iter().filter(|t| !t.special).map(|t| t.text.as_str()).collect();
    let tail = range_ending_at(fig, last_prompt, window);
    let mut steps = Vec::new();

    steps.push(Step {
        title: "Rows are layers".into(),
        caption: format!(
            "Each row decodes one layer's residual stream through the model's final norm and unembedding, as if the model stopped there. \
             The bottom row (emb 0) is the embedding output; each row above is one more block; the top row ({out}) is the model's real output. \
             This model has {} blocks. The framed cell is the output at the prompt's last position: it predicts {}.",
            out,
            top1_at(fig, out, last_prompt)
        ),
        metric: Metric::Entropy,
        focus: Some((out, last_prompt)),
        column: None,
        range: Some(tail),
    });

    let content = (0..prompt_len).rev().find(|&p| !fig.tokens()[p].template).unwrap_or(last_prompt);
    steps.push(Step {
        title: "Columns are positions".into(),
        caption: format!(
            "Each column is one token of the chat-formatted prompt ({prompt_len} tokens){}. A cell shows what that layer would predict as the next token. \
             The green column is the last word of the question, {}: the list beside the grid gives each layer's top tokens there.",
            if n > prompt_len { format!(", then the {} tokens of the model's answer in blue", n - prompt_len) } else { String::new() },
            token_at(fig, content)
        ),
        metric: Metric::Entropy,
        focus: None,
        column: Some(content),
        range: Some(tail),
    });

    let lowest = (1..out)
        .flat_map(|r| (tail.0..tail.1).map(move |p| (r, p)))
        .filter_map(|(r, p)| fig.value(Metric::Entropy, r, p).filter(|h| h.is_finite()).map(|h| (h, r, p)))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    let mean = |r: usize| {
        let v: Vec<f32> = (0..n).filter_map(|p| fig.value(Metric::Entropy, r, p)).filter(|h| h.is_finite()).collect();
        v.iter().sum::<f32>() / v.len().max(1) as f32
    };
    steps.push(Step {
        title: "Colour is entropy".into(),
        caption: format!(
            "Colour is the entropy of the decoded distribution, in nats: blue is confident, red is unsure, white in between. \
             A uniform guess over all {} tokens would be ln V = {:.1} nats. Averaged over positions, the embedding row has {:.1} nats and the output row {:.1}.{}",
            fig.report.vocab,
            fig.ln_vocab().unwrap_or(0.0),
            mean(0),
            mean(out),
            lowest
                .map(|(h, r, p)| format!(
                    " The framed cell is the most confident hidden layer in view: layer {}, at {}, {h:.2} nats on {}.",
                    fig.row_label(r),
                    token_at(fig, p),
                    top1_at(fig, r, p)
                ))
                .unwrap_or_default()
        ),
        metric: Metric::Entropy,
        focus: lowest.map(|(_, r, p)| (r, p)),
        column: None,
        range: Some(tail),
    });

    let names: Vec<String> = dummies.iter().map(|&p| token_at(fig, p)).collect();
    steps.push(Step {
        title: "Template tokens are dummy positions".into(),
        caption: if dummies.is_empty() {
            "This prompt has no chat-template tokens between the question and the answer, so there are no dummy positions to watch.".into()
        } else {
            format!(
                "The boxed tokens on the axis come from the chat template, not from the user: here {} between the question and the answer ({}). \
                 The model has nothing to copy at these positions, so its middle layers are free to rehearse what comes next. \
                 The green column is the last of them, where the answer starts.",
                dummies.len(),
                names.join(" ")
            )
        },
        metric: Metric::Entropy,
        focus: None,
        column: dummies.last().copied(),
        range: Some(tail),
    });

    let tracked: Vec<String> = fig.tracked().iter().map(|t| quoted(&t.text)).collect();
    let featured = featured(fig);
    match featured {
        Some((i, (rank, r, p, prob))) => {
            let token = quoted(&fig.tracked()[i].text);
            let first_good = (1..out).find(|&row| {
                dummies.iter().any(|&q| fig.tracked()[i].rank[row].get(q).is_some_and(|&k| k <= GOOD_RANK))
            });
            steps.push(Step {
                title: "Candidates before the answer".into(),
                caption: format!(
                    "Loupe tracked the candidates automatically: the distinct top tokens of the middle and late layers at the dummy positions, \
                     and the answer's first tokens ({}). Colour now shows the rank of {token} (1 = the layer's first choice). \
                     {}{}",
                    tracked.join(", "),
                    if rank <= GOOD_RANK {
                        format!("At {} (position {p}), layer {} already ranks it #{rank} (probability {prob:.3}), before the answer is written.", token_at(fig, p), fig.row_label(r))
                    } else {
                        format!("Its best rank at a dummy position is #{rank}, at {} (position {p}), layer {}: this model rehearses it only faintly.", token_at(fig, p), fig.row_label(r))
                    },
                    first_good
                        .map(|row| format!(" It is in the top {GOOD_RANK} at a dummy position from layer {} up.", fig.row_label(row)))
                        .unwrap_or_default()
                ),
                metric: Metric::TrackedRank(i),
                focus: Some((r, p)),
                column: Some(p),
                range: Some(tail),
            });
        }
        None => steps.push(Step {
            title: "Candidates before the answer".into(),
            caption: "No candidate could be tracked at the dummy positions of this run (the template's positions predicted only punctuation or control tokens).".into(),
            metric: Metric::Entropy,
            focus: None,
            column: dummies.last().copied(),
            range: Some(tail),
        }),
    }

    steps.push(Step {
        title: "The answer".into(),
        caption: if answer.trim().is_empty() {
            format!("The model's output at the last prompt position is {}: that is the first token it would write.", top1_at(fig, out, last_prompt))
        } else {
            let rehearsed = featured
                .filter(|(_, (rank, ..))| *rank <= GOOD_RANK)
                .map(|(i, (rank, r, p, _))| {
                    format!(
                        " Before any of it was written, layer {} at the dummy position {p} already had {} at rank #{rank}.",
                        fig.row_label(r),
                        quoted(&fig.tracked()[i].text)
                    )
                })
                .unwrap_or_default();
            format!(
                "The model then answered “{}”, its output row at the last prompt position having chosen {} first.{rehearsed} \
                 Try another question, click a token in the column list to track it, or colour by a tracked token's probability.",
                answer.trim(),
                top1_at(fig, out, last_prompt)
            )
        },
        metric: Metric::Entropy,
        focus: Some((out, last_prompt)),
        column: Some(last_prompt),
        range: Some(range_ending_at(fig, n - 1, window)),
    });
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_words_not_controls_or_punctuation() {
        assert!(worth_tracking("ĠCanberra", " Canberra"));
        assert!(worth_tracking("▁C", " C"));
        assert!(!worth_tracking("<|endoftext|>", "<|endoftext|>"));
        assert!(!worth_tracking("Ċ", "\n"));
        assert!(!worth_tracking("Ġ,", " ,"));
        assert!(!worth_tracking("Ã", "\u{fffd}"));
    }

    #[test]
    fn a_prefix_of_a_new_answer_word_foreshadows_it() {
        let words = vec!["Canberra".to_string()];
        assert!(foreshadows(" C", &words));
        assert!(foreshadows(" Can", &words));
        assert!(foreshadows(" Canberra", &words));
        assert!(!foreshadows(" Sydney", &words));
        assert!(!foreshadows(" ", &words));
    }

    #[test]
    fn captions_keep_spaces_and_show_line_breaks() {
        assert_eq!(quoted(" C"), "“ C”");
        assert_eq!(quoted("\n"), "“\\n”");
    }
}
