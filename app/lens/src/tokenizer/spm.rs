//! SentencePiece BPE: spaces become `▁`, the text is split into characters, and the adjacent pair
//! whose concatenation is the best-ranked vocabulary entry is merged until none is left. Characters
//! outside the vocabulary fall back to `<0xXX>` byte tokens.
//!
//! The rank is the score for classic SentencePiece files. Gemma's files store merge ranks with
//! placeholders punched through them (every whitespace-run token scores -1000) and spell space runs
//! with real spaces; for those the vocabulary order is the merge order and runs are respelled as `▁`,
//! which is what Hugging Face's GGUF converter does.

use super::Encoded;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

const SPACE: char = '▁';
const TOKEN_TYPE_BYTE: i32 = 6;

pub struct SentencePieceBpe {
    ids: HashMap<String, u32>,
    rank: Vec<f32>,
    bytes: [Option<u32>; 256],
    unk: Option<u32>,
    add_space_prefix: bool,
}

#[derive(PartialEq)]
struct Candidate {
    rank: f32,
    left: usize,
    right: usize,
    len: usize,
}
impl Eq for Candidate {}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        // Best rank first; on ties the leftmost pair.
        self.rank.total_cmp(&other.rank).then(other.left.cmp(&self.left))
    }
}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

struct Symbol {
    start: usize,
    end: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

impl SentencePieceBpe {
    pub fn new(pieces: &[String], scores: &[f32], types: &[i32], unk: Option<u32>, add_space_prefix: bool) -> Self {
        let gemma = pieces.iter().any(|p| !p.is_empty() && p.chars().all(|c| c == ' '));
        let mut ids = HashMap::with_capacity(pieces.len());
        let mut bytes = [None; 256];
        for (i, p) in pieces.iter().enumerate() {
            let spelled = if gemma && p.chars().all(|c| c == ' ') && !p.is_empty() {
                SPACE.to_string().repeat(p.chars().count())
            } else {
                p.clone()
            };
            if types.get(i) == Some(&TOKEN_TYPE_BYTE) {
                if let Some(b) = parse_byte_piece(p) {
                    bytes[b as usize] = Some(i as u32);
                }
            }
            ids.entry(spelled).or_insert(i as u32);
        }
        let rank = if gemma { (0..pieces.len()).map(|i| -(i as f32)).collect() } else { scores.to_vec() };
        Self { ids, rank, bytes, unk, add_space_prefix }
    }

    /// Encodes a stretch of text with no control tokens in it; `at_start` says it begins the input.
    pub fn encode(&self, text: &str, offset: usize, at_start: bool, out: &mut Vec<Encoded>) {
        // Normalized text; for each of its characters, where it starts in it and its original span.
        let mut norm = String::with_capacity(text.len() + 3);
        let mut starts: Vec<usize> = Vec::new();
        let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
        if self.add_space_prefix && at_start {
            starts.push(0);
            spans.push(offset..offset);
            norm.push(SPACE);
        }
        for (i, c) in text.char_indices() {
            starts.push(norm.len());
            spans.push(offset + i..offset + i + c.len_utf8());
            norm.push(if c == ' ' { SPACE } else { c });
        }
        let mut symbols: Vec<Symbol> = (0..starts.len())
            .map(|k| Symbol {
                start: starts[k],
                end: starts.get(k + 1).copied().unwrap_or(norm.len()),
                prev: k.checked_sub(1),
                next: if k + 1 < starts.len() { Some(k + 1) } else { None },
            })
            .collect();
        let mut queue = BinaryHeap::new();
        let push = |queue: &mut BinaryHeap<Candidate>, symbols: &[Symbol], left: usize, right: usize| {
            let (l, r) = (&symbols[left], &symbols[right]);
            if !self.ids.contains_key(&norm[l.start..l.end]) || !self.ids.contains_key(&norm[r.start..r.end]) {
                return;
            }
            if let Some(&id) = self.ids.get(&norm[l.start..r.end]) {
                queue.push(Candidate { rank: self.rank[id as usize], left, right, len: r.end - l.start });
            }
        };
        for k in 1..symbols.len() {
            push(&mut queue, &symbols, k - 1, k);
        }
        while let Some(c) = queue.pop() {
            let (l, r) = (&symbols[c.left], &symbols[c.right]);
            // Stale: one side was merged away or grew since this pair was queued.
            if l.end == l.start || r.end == r.start || l.next != Some(c.right) || r.end - l.start != c.len {
                continue;
            }
            let (r_end, r_next) = (r.end, r.next);
            symbols[c.left].end = r_end;
            symbols[c.left].next = r_next;
            symbols[c.right].start = symbols[c.right].end; // mark as merged away
            spans[c.left].end = spans[c.right].end;
            if let Some(n) = r_next {
                symbols[n].prev = Some(c.left);
            }
            if let Some(p) = symbols[c.left].prev {
                push(&mut queue, &symbols, p, c.left);
            }
            if let Some(n) = r_next {
                push(&mut queue, &symbols, c.left, n);
            }
        }
        let mut k = if symbols.is_empty() { None } else { Some(0) };
        while let Some(i) = k {
            let s = &symbols[i];
            let piece = &norm[s.start..s.end];
            let span = spans[i].clone();
            if let Some(&id) = self.ids.get(piece) {
                out.push(Encoded { id, span });
            } else if piece.bytes().all(|b| self.bytes[b as usize].is_some()) {
                for b in piece.bytes() {
                    out.push(Encoded { id: self.bytes[b as usize].unwrap(), span: span.clone() });
                }
            } else if let Some(unk) = self.unk {
                out.push(Encoded { id: unk, span });
            }
            k = s.next;
        }
    }
}

fn parse_byte_piece(p: &str) -> Option<u8> {
    let hex = p.strip_prefix("<0x")?.strip_suffix('>')?;
    u8::from_str_radix(hex, 16).ok()
}

pub fn piece_to_bytes(piece: &str) -> Vec<u8> {
    if let Some(b) = parse_byte_piece(piece) {
        return vec![b];
    }
    piece.replace(SPACE, " ").into_bytes()
}
