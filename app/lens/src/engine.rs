//! The engine a front end talks to: a loaded model with its tokenizer and chat template; turns a
//! prompt into tokens, tokens into a lens, and lets the model answer.

use crate::error::{LensError, Result};
use crate::generate::{sample, Rng, Sampling};
use crate::gguf::GgufFile;
use crate::lens::{full_logits, LensInput, LensOptions, LensPartial, VocabSlice};
use crate::model::Model;
use crate::template::{self, ChatMessage};
use crate::tokenizer::Tokenizer;
use crate::Precision;
use candle_core::Tensor;
use loupe_protocol::{LensGrid, PromptSpec, TokenInfo};
use std::ops::Range;

/// A lens computation split by vocabulary (see `Engine::lens_job`).
pub struct LensJob {
    pub input: LensInput,
    borrowed_last: bool,
}

/// An answer in progress (see `Engine::begin_answer`).
pub struct Answer {
    sampling: Sampling,
    rng: Rng,
    stops: Vec<u32>,
    logits: Vec<f32>,
    remaining: usize,
    precision: Precision,
}

/// What to feed the model.
#[derive(Clone, Debug, PartialEq)]
pub enum Prompt {
    /// A user message (with an optional system message), rendered with a chat template and with the
    /// generation prompt added.
    Chat { system: Option<String>, user: String },
    /// Plain text, BOS added where the model adds one.
    Raw(String),
}

/// Which chat template renders `Prompt::Chat`.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum TemplateChoice {
    /// The file's own; a fitting built-in where the file has none.
    #[default]
    FromFile,
    Builtin(String),
    /// Jinja source given by the user.
    Custom(String),
}

/// A prompt turned into text and tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    pub text: String,
    pub ids: Vec<u32>,
    pub tokens: Vec<TokenInfo>,
    /// Name of the template used ("file", a built-in, "custom"), none for raw text.
    pub template: Option<String>,
}

pub struct Engine {
    pub model: Model,
    pub tokenizer: Tokenizer,
    /// The file's `tokenizer.chat_template`, if any.
    pub file_template: Option<String>,
    /// `general.name`, or empty.
    pub name: String,
}

impl Engine {
    pub fn load(bytes: &[u8]) -> Result<Self> {
        let g = GgufFile::parse(bytes)?;
        let model = Model::load(&g)?;
        let tokenizer = Tokenizer::from_gguf(&g)?;
        if tokenizer.vocab_size() != model.unembedding.rows() {
            return Err(LensError::Corrupt(format!(
                "the tokenizer has {} tokens but the unembedding has {} rows",
                tokenizer.vocab_size(),
                model.unembedding.rows()
            )));
        }
        let file_template = g.opt_string("tokenizer.chat_template")?.map(str::to_owned);
        let name = g.opt_string("general.name")?.unwrap_or("").to_string();
        Ok(Self { model, tokenizer, file_template, name })
    }

    fn template_source(&self, choice: &TemplateChoice) -> Result<(String, String)> {
        Ok(match choice {
            TemplateChoice::FromFile => match &self.file_template {
                Some(t) => ("file".into(), t.clone()),
                None => {
                    let name = template::guess_builtin(|p| self.tokenizer.id_of_piece(p).is_some());
                    (name.into(), template::builtin(name).unwrap().into())
                }
            },
            TemplateChoice::Builtin(name) => match template::builtin(name) {
                Some(t) => (name.clone(), t.into()),
                None => {
                    return Err(LensError::Template(format!(
                        "no built-in template `{name}`; built-ins: {}",
                        template::BUILTIN_NAMES.join(", ")
                    )))
                }
            },
            TemplateChoice::Custom(src) => ("custom".into(), src.clone()),
        })
    }

    /// Renders and tokenizes a prompt; checks it is non-empty and fits the context.
    pub fn prepare(&self, prompt: &Prompt, choice: &TemplateChoice) -> Result<Prepared> {
        let tk = &self.tokenizer;
        let (text, content_spans, template_name, bos) = match prompt {
            Prompt::Chat { system, user } => {
                if user.trim().is_empty() {
                    return Err(LensError::EmptyPrompt);
                }
                let mut messages = Vec::new();
                if let Some(s) = system.as_ref().filter(|s| !s.trim().is_empty()) {
                    messages.push(ChatMessage::new("system", s));
                }
                messages.push(ChatMessage::new("user", user));
                let (name, source) = self.template_source(choice)?;
                let piece = |id: Option<u32>| id.map(|i| tk.piece(i).to_string()).unwrap_or_default();
                let r = template::render(&source, &messages, &piece(tk.bos), &piece(tk.eos), true)?;
                (r.text, r.content_spans, Some(name), None)
            }
            Prompt::Raw(text) => {
                if text.is_empty() {
                    return Err(LensError::EmptyPrompt);
                }
                let bos = if tk.add_bos { tk.bos } else { None };
                (text.clone(), vec![0..text.len()], None, bos)
            }
        };
        let encoded = tk.encode(&text)?;
        let mut tokens: Vec<TokenInfo> = Vec::with_capacity(encoded.len() + 1);
        if let Some(b) = bos {
            tokens.push(self.token_info(b, true));
        }
        for e in &encoded {
            let inside_content = content_spans.iter().any(|s| e.span.start < s.end && s.start < e.span.end);
            tokens.push(self.token_info(e.id, !inside_content));
        }
        let ids: Vec<u32> = tokens.iter().map(|t| t.id).collect();
        self.model.check_length(ids.len())?;
        Ok(Prepared { text, ids, tokens, template: template_name })
    }

    /// Extends a prepared prompt with the model's answer: its tokens, ids, and decoded text.
    pub fn append_answer(&self, prepared: &mut Prepared, answer: &[u32]) {
        prepared.tokens.extend(answer.iter().map(|&id| self.token_info(id, false)));
        prepared.ids.extend_from_slice(answer);
        prepared.text.push_str(&self.tokenizer.decode(answer));
    }

    pub fn token_info(&self, id: u32, template: bool) -> TokenInfo {
        let special = self.tokenizer.is_special(id);
        TokenInfo {
            id,
            piece: self.tokenizer.piece(id).to_string(),
            text: self.tokenizer.token_text(id),
            special,
            template: template || special,
        }
    }

    /// Token ids for user-typed strings to track: an exact vocabulary spelling, else the first token
    /// of the text's encoding (` Canberra` → `ĠCanberra`, or its first piece if it takes several).
    pub fn resolve_tracked(&self, words: &[String]) -> Result<Vec<u32>> {
        words
            .iter()
            .map(|w| {
                if let Some(id) = self.tokenizer.id_of_piece(w) {
                    return Ok(id);
                }
                self.tokenizer
                    .encode(w)?
                    .first()
                    .map(|e| e.id)
                    .ok_or_else(|| LensError::InvalidRequest(format!("`{w}` encodes to no token")))
            })
            .collect()
    }

    /// The residual stream of `ids`: `n_rows` tensors `[T, d]`.
    pub fn forward(&mut self, ids: &[u32], precision: Precision) -> Result<Vec<Tensor>> {
        self.model.residual_stream(ids, precision)
    }

    /// The lens of a residual stream from `forward`.
    pub fn lens(&self, rows: &[Tensor], opts: &LensOptions, cancel: &dyn Fn() -> bool) -> Result<LensGrid> {
        self.lens_rows(rows, 0..rows.len(), opts, cancel)
    }

    /// The lens of rows `range` of a residual stream, KL still measured against its last row; lets
    /// a front end show the figure row group by row group.
    pub fn lens_rows(&self, rows: &[Tensor], range: Range<usize>, opts: &LensOptions, cancel: &dyn Fn() -> bool) -> Result<LensGrid> {
        let job = self.lens_job(rows, range, opts)?;
        let slice = VocabSlice::of(&self.model);
        let whole = LensPartial::compute(&job.input, &slice, 0..self.model.unembedding.rows(), cancel)?;
        Ok(self.finish_job(&job, whole))
    }

    /// Prepares the lens of rows `range` so that parts of the vocabulary can be computed apart
    /// (`LensPartial::compute`), merged, and finished with `finish_job`.
    pub fn lens_job(&self, rows: &[Tensor], range: Range<usize>, opts: &LensOptions) -> Result<LensJob> {
        if range.is_empty() || range.end > rows.len() {
            return Err(LensError::InvalidRequest(format!("rows {range:?} of {}", rows.len())));
        }
        let last = rows.len() - 1;
        let mut subset = rows[range.clone()].to_vec();
        // KL needs the last row beside every group; it is decoded again and dropped after.
        let borrowed_last = !range.contains(&last);
        if borrowed_last {
            subset.push(rows[last].clone());
        }
        Ok(LensJob { input: LensInput::new(&self.model, &subset, opts)?, borrowed_last })
    }

    /// The grid of a job from the merged partials of its whole vocabulary.
    pub fn finish_job(&self, job: &LensJob, whole: LensPartial) -> LensGrid {
        let mut grid = whole.finish(&job.input.track);
        if job.borrowed_last {
            grid.n_rows -= 1;
            grid.entropy.pop();
            grid.top_ids.pop();
            grid.top_probs.pop();
            grid.kl_to_last.pop();
            for t in grid.tracked.iter_mut() {
                t.prob.pop();
                t.rank.pop();
            }
        }
        for t in grid.tracked.iter_mut() {
            t.piece = self.tokenizer.piece(t.id).to_string();
        }
        grid
    }

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
    pub fn begin_answer(&mut self, ids: &[u32], max_new: usize, sampling: &Sampling, precision: Precision) -> Result<Answer> {
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
    /// or at the end of the context). One step at a time, so a caller can yield between tokens.
    pub fn next_answer_token(&mut self, a: &mut Answer) -> Result<Option<u32>> {
        if a.remaining == 0 {
            return Ok(None);
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

    /// The `PromptSpec` recorded in reports for a prompt.
    pub fn prompt_spec(prompt: &Prompt, template: Option<String>) -> PromptSpec {
        match prompt {
            Prompt::Chat { system, user } => PromptSpec {
                chat: Some(user.clone()),
                system: system.clone(),
                raw: None,
                template,
            },
            Prompt::Raw(t) => PromptSpec { raw: Some(t.clone()), ..Default::default() },
        }
    }
}
