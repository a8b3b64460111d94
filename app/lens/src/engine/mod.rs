//! The engine a front end talks to: a loaded model with its tokenizer and chat template. It turns
//! a question's prompt into a `Sequence` (here), lets the model answer (`answer.rs`), and the
//! sequence into a lens (`lensing.rs`); `recipe.rs` is the whole question, for every front end.

mod answer;
mod lensing;
mod recipe;

pub use answer::Answer;
pub use lensing::{bring_forward, lens_plan, LensJob, LensPart};
pub use recipe::{block_on, Here, Runner, Vocabulary};

use crate::error::{LensError, Result};
use crate::gguf::{GgufFile, Source};
use crate::model::Model;
use crate::template::{self, ChatMessage};
use crate::tokenizer::Tokenizer;
use loupe_protocol::{ModelInfo, Prompt, Sequence, TemplateChoice, TokenInfo};

pub struct Engine {
    pub model: Model,
    pub tokenizer: Tokenizer,
    /// The file's `tokenizer.chat_template`, if any.
    pub file_template: Option<String>,
    /// `general.name`, or empty.
    pub name: String,
    /// Fast precision's lens product (`Product::for_precision`); f32 unless a front end that
    /// measured the integer one faster sets it.
    pub fast_product: crate::lens::Product,
}

impl Engine {
    pub fn load(bytes: &[u8]) -> Result<Self> {
        Self::read(std::io::Cursor::new(bytes))
    }

    /// Loads from any seekable source, tensor by tensor: the file is never held whole.
    pub fn read(source: impl Source) -> Result<Self> {
        let (g, tokenizer) = Self::header_and_tokenizer(source)?;
        let model = Model::load(&g)?;
        Self::assemble(&g, tokenizer, model)
    }

    /// Keeps `source` and reads each block from it when a forward pass needs it (see
    /// `Model::load_streamed`): for files larger than memory. Only the lens is available then.
    pub fn read_streamed(source: impl Source + 'static) -> Result<Self> {
        let (g, tokenizer) = Self::header_and_tokenizer(source)?;
        let g = std::rc::Rc::new(g);
        let model = Model::load_streamed(g.clone())?;
        Self::assemble(&g, tokenizer, model)
    }

    /// The header and the tokenizer it describes, built before any weight is read. The vocabulary's
    /// metadata arrays (candle holds each entry as a 32-byte value plus its string: tens of MB for
    /// a 262k vocabulary) are then dropped, so they are not held beside the weights: wasm memory
    /// never shrinks, and the load's high-water mark is what the tab keeps.
    fn header_and_tokenizer<'a>(source: impl Source + 'a) -> Result<(GgufFile<'a>, Tokenizer)> {
        let mut g = GgufFile::read(source)?;
        // An architecture this engine lacks is named before its tokenizer is judged.
        Model::architecture_of(&g)?;
        let tokenizer = Tokenizer::from_gguf(&g)?;
        g.drop_arrays("tokenizer.ggml.");
        Ok((g, tokenizer))
    }

    /// The template and name from the file's metadata, and the tokenizer checked against the model.
    fn assemble(g: &GgufFile, tokenizer: Tokenizer, model: Model) -> Result<Self> {
        if tokenizer.vocab_size() != model.unembedding.rows() {
            return Err(LensError::Corrupt(format!(
                "the tokenizer has {} tokens but the unembedding has {} rows",
                tokenizer.vocab_size(),
                model.unembedding.rows()
            )));
        }
        let file_template = g.opt_string("tokenizer.chat_template")?.map(str::to_owned);
        let name = g.opt_string("general.name")?.unwrap_or("").to_string();
        let engine = Self { model, tokenizer, file_template, name, fast_product: crate::lens::Product::F32 };
        // The file's template is rendered once now, so one that exhausts memory (a browser worker
        // then dies) does so while loading, where the page puts the previous model back, not at
        // the page's first token preview. A template that merely fails is reported when used.
        let _ = engine.prepare(&Prompt::chat("Hello"), &TemplateChoice::FromFile);
        Ok(engine)
    }

    /// What a front end shows of the model; where it came from is the caller's to fill in.
    pub fn info(&self) -> ModelInfo {
        let h = &self.model.hyper;
        ModelInfo {
            name: self.name.clone(),
            architecture: self.model.architecture.clone(),
            n_rows: self.model.n_rows(),
            d_model: h.d_model,
            vocab: h.vocab,
            context: h.context,
            template: self.template_source(&TemplateChoice::FromFile).map(|(name, _)| name).unwrap_or_default(),
            lens_threads: 1,
            streamed: self.model.streamed(),
            simd: crate::kernels::SIMD.into(),
            ..Default::default()
        }
    }

    pub fn vocab_size(&self) -> usize {
        self.model.unembedding.rows()
    }

    /// The template's name as reports record it ("file", a built-in, "custom") and its source.
    fn template_source(&self, choice: &TemplateChoice) -> Result<(String, String)> {
        Ok(match choice {
            TemplateChoice::FromFile => match &self.file_template {
                Some(t) => ("file".into(), t.clone()),
                None => {
                    let name = template::guess_builtin(|p| self.tokenizer.id_of_piece(p).is_some());
                    (name.into(), template::builtin(name).unwrap_or(template::CHATML).into())
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
    pub fn prepare(&self, prompt: &Prompt, choice: &TemplateChoice) -> Result<Sequence> {
        let tk = &self.tokenizer;
        let (text, content_spans, template_name, bos) = match prompt {
            Prompt::Chat { messages: turns } => {
                if turns.iter().all(|m| m.content.trim().is_empty()) {
                    return Err(LensError::EmptyPrompt);
                }
                if let Some((n, m)) = turns.iter().enumerate().find(|(_, m)| m.content.trim().is_empty()) {
                    return Err(LensError::InvalidRequest(format!("message {} ({}) is empty", n + 1, m.role.name())));
                }
                let messages: Vec<ChatMessage> =
                    turns.iter().map(|m| ChatMessage::new(m.role.name(), &m.content)).collect();
                let (name, source) = self.template_source(choice)?;
                let piece = |id: Option<u32>| id.map(|i| tk.piece(i).to_string()).unwrap_or_default();
                let r = template::render(&source, &messages, &piece(tk.bos), &piece(tk.eos), true)?;
                (r.text, r.content_spans, Some(name), None)
            }
            Prompt::Raw { raw } => {
                if raw.is_empty() {
                    return Err(LensError::EmptyPrompt);
                }
                let bos = if tk.add_bos { tk.bos } else { None };
                let everything = 0..raw.len();
                (raw.clone(), vec![everything], None, bos)
            }
        };
        let encoded = tk.encode(&text)?;
        // Before each token's strings are made: a template's 16 MiB of text is millions of them.
        self.model.check_length(encoded.len() + usize::from(bos.is_some()))?;
        let mut tokens: Vec<TokenInfo> = Vec::with_capacity(encoded.len() + 1);
        if let Some(b) = bos {
            tokens.push(self.token_info(b, true));
        }
        for e in &encoded {
            let inside_content = content_spans.iter().any(|s| e.span.start < s.end && s.start < e.span.end);
            tokens.push(self.token_info(e.id, !inside_content));
        }
        Ok(Sequence::new(text, tokens, template_name))
    }

    /// Extends a sequence with the model's answer.
    pub fn append_answer(&self, sequence: &mut Sequence, answer: &[u32]) {
        let tokens = answer.iter().map(|&id| self.token_info(id, false)).collect();
        sequence.push_answer(tokens, &self.tokenizer.decode(answer));
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
}
