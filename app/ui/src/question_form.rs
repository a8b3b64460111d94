//! The prompt panel's fields, and the one place they become a `Question` (and back, from a link).
//! The text fields keep what the user types, even between modes and half-typed lists.

use leptos::prelude::*;
use loupe_protocol::{Precision, Prompt, Question, Sampling, TemplateChoice};

const DEFAULT_CHAT: &str = "What is the capital of Australia?";
const DEFAULT_RAW: &str = "The Eiffel Tower is in the city of";

#[derive(Clone, Copy)]
pub struct QuestionForm {
    pub chat_mode: RwSignal<bool>,
    pub user: RwSignal<String>,
    pub system: RwSignal<String>,
    pub raw: RwSignal<String>,
    /// Comma-separated, as typed.
    pub track: RwSignal<String>,
    pub top_k: RwSignal<usize>,
    pub precision: RwSignal<Precision>,
    pub answer: RwSignal<usize>,
    /// Rows after each block's attention too.
    pub inside_blocks: RwSignal<bool>,
    /// Set only by links (no control on the page).
    template: RwSignal<TemplateChoice>,
    sampling: RwSignal<Sampling>,
}

impl QuestionForm {
    pub fn new(from_link: Option<&Question>) -> Self {
        let q = from_link.cloned().unwrap_or_default();
        let (chat_mode, user, system, raw) = match &q.prompt {
            Prompt::Chat { user, system } => {
                (true, user.clone(), system.clone().unwrap_or_default(), DEFAULT_RAW.to_string())
            }
            Prompt::Raw { raw } => (false, DEFAULT_CHAT.to_string(), String::new(), raw.clone()),
        };
        let user = if from_link.is_none() { DEFAULT_CHAT.to_string() } else { user };
        Self {
            chat_mode: RwSignal::new(chat_mode),
            user: RwSignal::new(user),
            system: RwSignal::new(system),
            raw: RwSignal::new(raw),
            track: RwSignal::new(q.track_list()),
            top_k: RwSignal::new(q.top_k),
            precision: RwSignal::new(q.precision),
            answer: RwSignal::new(q.answer_tokens),
            inside_blocks: RwSignal::new(q.inside_blocks),
            template: RwSignal::new(q.template),
            sampling: RwSignal::new(q.sampling),
        }
    }

    pub fn prompt(&self) -> Prompt {
        if self.chat_mode.get_untracked() {
            let system = self.system.get_untracked();
            Prompt::Chat { user: self.user.get_untracked(), system: (!system.trim().is_empty()).then_some(system) }
        } else {
            Prompt::Raw { raw: self.raw.get_untracked() }
        }
    }

    pub fn question(&self) -> Question {
        Question {
            prompt: self.prompt(),
            template: self.template.get_untracked(),
            precision: self.precision.get_untracked(),
            top_k: self.top_k.get_untracked(),
            track: Question::parse_track_list(&self.track.get_untracked()),
            answer_tokens: self.answer.get_untracked(),
            sampling: self.sampling.get_untracked(),
            inside_blocks: self.inside_blocks.get_untracked(),
        }
    }

    /// Subscribes the caller to the fields that change the tokens.
    pub fn track_prompt(&self) {
        self.chat_mode.track();
        self.user.track();
        self.system.track();
        self.raw.track();
    }
}
