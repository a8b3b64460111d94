//! Picking the next token: greedy, or temperature with nucleus (top-p) sampling.

use loupe_protocol::Sampling;

/// A small deterministic generator (SplitMix64): reproducible answers for a given seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &z) in logits.iter().enumerate() {
        if z > logits[best] {
            best = i;
        }
    }
    best as u32
}

pub fn sample(logits: &[f32], s: &Sampling, rng: &mut Rng) -> u32 {
    if s.temperature <= 0.0 {
        return argmax(logits);
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(f64, u32)> =
        logits.iter().enumerate().map(|(i, &z)| ((((z - max) / s.temperature) as f64).exp(), i as u32)).collect();
    let total: f64 = probs.iter().map(|p| p.0).sum();
    probs.sort_by(|a, b| b.0.total_cmp(&a.0));
    // Smallest set of most probable tokens whose mass reaches top_p.
    let mut kept = 0;
    let mut mass = 0.0;
    for p in &probs {
        kept += 1;
        mass += p.0 / total;
        if mass >= s.top_p as f64 {
            break;
        }
    }
    let probs = &probs[..kept];
    let kept_total: f64 = probs.iter().map(|p| p.0).sum();
    let mut target = rng.next_f64() * kept_total;
    for &(p, id) in probs {
        if target < p {
            return id;
        }
        target -= p;
    }
    probs[kept - 1].1
}
