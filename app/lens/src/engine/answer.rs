//! Letting the model answer: the prompt runs once and keeps its KV cache, then one token per step,
//! so a caller can yield between tokens (the worker does, to see a Cancel).

use super::Engine;
use crate::error::{LensError, Result};
use crate::generate::{sample, Rng};
use crate::lens::full_logits;
use candle_core::Tensor;
use loupe_protocol::{Precision, Sampling};

/// An answer in progress (see `Engine::begin_answer`).
pub struct Answer {
    sampling: Sampling,
    rng: Rng,
    stops: Vec<u32>,
    logits: Vec<f32>,
    remaining: usize,
    precision: Precision,
}

impl Answer {
    /// The logits the next token is sampled from.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }
}

impl Engine {
    /// The model's next-token logits after `ids`, through the same unembedding path as the lens.
    pub fn next_logits(&mut self, ids: &[u32], precision: Precision) -> Result<Vec<f32>> {
        self.model.clear_cache();
        let h = self.model.extend(ids, precision)?;
        self.logits_of_last(&h)
    }

    fn logits_of_last(&self, hidden: &Tensor) -> Result<Vec<f32>> {
        let last = hidden.narrow(0, hidden.dim(0)? - 1, 1)?;
        full_logits(&self.model, &self.model.final_norm(&last)?)
    }

    /// Tokens that end an answer: EOS and the usual end-of-turn markers present in the vocabulary.
    pub fn stop_tokens(&self) -> Vec<u32> {
        let mut stops: Vec<u32> = self.tokenizer.eos.into_iter().collect();
        for p in ["<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<end_of_turn>", "<|endoftext|>", "<|end|>", "</s>"] {
            if let Some(id) = self.tokenizer.id_of_piece(p) {
                if !stops.contains(&id) {
                    stops.push(id);
                }
            }
        }
        stops
    }

    /// Starts an answer after `ids`: runs the prompt and keeps its KV cache.
    pub fn begin_answer(
        &mut self,
        ids: &[u32],
        max_new: usize,
        sampling: &Sampling,
        precision: Precision,
    ) -> Result<Answer> {
        let logits = self.next_logits(ids, precision)?;
        let room = self.model.hyper.context.saturating_sub(ids.len());
        Ok(Answer {
            sampling: sampling.clone(),
            rng: Rng::new(sampling.seed),
            stops: self.stop_tokens(),
            logits,
            remaining: max_new.min(room),
            precision,
        })
    }

    /// The answer's next token, or none once it has ended (after a stop token, at the length limit,
    /// or at the end of the context).
    pub fn next_answer_token(&mut self, a: &mut Answer) -> Result<Option<u32>> {
        if a.remaining == 0 {
            return Ok(None);
        }
        // A NaN logit would otherwise make greedy decoding pick token 0 without a word.
        if a.logits.iter().any(|z| z.is_nan()) {
            return Err(LensError::Compute(
                "the model's output is not a number (NaN), so it cannot answer; its weights or settings are broken"
                    .into(),
            ));
        }
        let next = sample(&a.logits, &a.sampling, &mut a.rng);
        a.remaining -= 1;
        if a.stops.contains(&next) {
            a.remaining = 0;
        } else if a.remaining > 0 {
            let h = self.model.extend(&[next], a.precision)?;
            a.logits = self.logits_of_last(&h)?;
        }
        Ok(Some(next))
    }

    /// Lets the model continue `ids`; `on_token` sees each new token and returns false to stop.
    /// Returns the new tokens (the stop token included when one ended the answer).
    pub fn generate(
        &mut self,
        ids: &[u32],
        max_new: usize,
        sampling: &Sampling,
        precision: Precision,
        on_token: &mut dyn FnMut(u32) -> bool,
    ) -> Result<Vec<u32>> {
        let mut answer = self.begin_answer(ids, max_new, sampling, precision)?;
        let mut out = Vec::new();
        while let Some(next) = self.next_answer_token(&mut answer)? {
            out.push(next);
            if !on_token(next) {
                break;
            }
        }
        Ok(out)
    }
}
