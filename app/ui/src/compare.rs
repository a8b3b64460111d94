//! Two runs side by side: how the cells of a run line up with a pinned one (their differences are
//! `figure_data.rs`'s `change`). Pure alignment over token spellings.
//! Pure data, no web types.
//!
//! Positions line up by token: identical sequences cell for cell; otherwise the longest common
//! subsequence of the two token sequences (the question inside and outside a chat template, the
//! shared template tail and answer of two questions), and the rest has no counterpart. Rows line up
//! by relative depth when the two models have different numbers of layers.

/// Token sequences longer than this (in cells of the alignment table) are aligned by their
/// shared suffix only, as a full alignment would take too long in the page.
const MAX_ALIGNMENT_CELLS: usize = 4_000_000;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Alignment {
    /// For each position of the current run, the pinned run's position with the same token.
    pub positions: Vec<Option<usize>>,
    /// For each row of the current run, the pinned run's row at the same relative depth.
    pub rows: Vec<usize>,
    /// What was done, in a sentence for the caption.
    pub how: String,
}

impl Alignment {
    pub fn matched(&self) -> usize {
        self.positions.iter().flatten().count()
    }
}

/// How `current`'s cells line up with `pinned`'s, from their token spellings and row counts.
pub fn align(pinned: &[String], current: &[String], pinned_rows: usize, current_rows: usize) -> Alignment {
    let (positions, by) = if pinned == current {
        ((0..current.len()).map(Some).collect(), "token for token (the same sequence)".to_string())
    } else if pinned.len().saturating_mul(current.len()) <= MAX_ALIGNMENT_CELLS {
        (common_subsequence(pinned, current), "by matching tokens (longest common subsequence)".to_string())
    } else {
        (shared_suffix(pinned, current), "by their shared suffix only (too long to align fully)".to_string())
    };
    let rows = (0..current_rows).map(|r| relative_row(r, current_rows, pinned_rows)).collect();
    let depth = if pinned_rows == current_rows {
        String::new()
    } else {
        format!("; rows by relative depth ({current_rows} rows against {pinned_rows})")
    };
    let mut a = Alignment { positions, rows, how: String::new() };
    a.how = format!("{} of {} positions matched {by}{depth}", a.matched(), current.len());
    a
}

/// Row `r` of `n` rows mapped to the row at the same relative depth among `m`.
fn relative_row(r: usize, n: usize, m: usize) -> usize {
    if n <= 1 || m == 0 {
        return 0;
    }
    ((r as f64 * (m - 1) as f64 / (n - 1) as f64).round() as usize).min(m - 1)
}

/// For each position of `b`, its partner in `a` under a longest common subsequence.
fn common_subsequence(a: &[String], b: &[String]) -> Vec<Option<usize>> {
    let (n, m) = (a.len(), b.len());
    // lengths[i][j]: LCS of a[i..] and b[j..], one flat table.
    let mut lengths = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lengths[at(i, j)] = if a[i] == b[j] {
                lengths[at(i + 1, j + 1)] + 1
            } else {
                lengths[at(i + 1, j)].max(lengths[at(i, j + 1)])
            };
        }
    }
    let mut out = vec![None; m];
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if a[i] == b[j] {
            out[j] = Some(i);
            i += 1;
            j += 1;
        } else if lengths[at(i + 1, j)] >= lengths[at(i, j + 1)] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// For each position of `b`, its partner in `a` within the tokens both sequences end with.
fn shared_suffix(a: &[String], b: &[String]) -> Vec<Option<usize>> {
    let shared = a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count();
    (0..b.len()).map(|j| (j + shared >= b.len()).then(|| a.len() - (b.len() - j))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn identical_sequences_align_cell_for_cell() {
        let a = align(&tokens("a b c"), &tokens("a b c"), 4, 4);
        assert_eq!(a.positions, vec![Some(0), Some(1), Some(2)]);
        assert_eq!(a.rows, vec![0, 1, 2, 3]);
        assert!(a.how.starts_with("3 of 3 positions matched token for token"), "{}", a.how);
    }

    #[test]
    fn a_question_inside_a_template_aligns_with_the_raw_question() {
        let chat = tokens("<s> user : What is it ? </s> assistant :");
        let raw = tokens("What is it ?");
        let a = align(&chat, &raw, 3, 3);
        assert_eq!(a.positions, vec![Some(3), Some(4), Some(5), Some(6)]);
        // And the other way round: the template tokens have no counterpart.
        let b = align(&raw, &chat, 3, 3);
        assert_eq!(b.matched(), 4);
        assert_eq!(b.positions[0], None);
        assert_eq!(b.positions[3], Some(0));
    }

    #[test]
    fn rows_line_up_by_relative_depth() {
        let a = align(&tokens("x"), &tokens("x"), 31, 25);
        assert_eq!(a.rows.len(), 25);
        assert_eq!((a.rows[0], a.rows[12], a.rows[24]), (0, 15, 30));
        assert!(a.how.contains("relative depth"));
    }

    #[test]
    fn long_sequences_fall_back_to_the_shared_suffix() {
        let a = shared_suffix(&tokens("p q x y"), &tokens("r x y"));
        assert_eq!(a, vec![None, Some(2), Some(3)]);
    }
}
