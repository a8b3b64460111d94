//! The prompt panel's fields, and the one place they become a `Question` (and back, from a link).
//! The text fields keep what the user types, even between modes and half-typed lists.

use leptos::prelude::*;
use loupe_protocol::{Message, Precision, Prompt, Question, Role, Sampling, TemplateChoice};

const DEFAULT_CHAT: &str = "What is the capital of Australia?";
const DEFAULT_RAW: &str = "The Eiffel Tower is in the city of";

#[derive(Clone, Copy)]
pub struct QuestionForm {
    pub chat_mode: RwSignal<bool>,
    pub user: RwSignal<String>,
    pub system: RwSignal<String>,
    /// A link's conversation before its last user message (the page edits only that message and
    /// the system message for now; the whole conversation still runs).
    pub earlier: RwSignal<Vec<Message>>,
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
        let (chat_mode, user, system, earlier, raw) = match (&q.prompt, q.prompt.as_single_message()) {
            (Prompt::Chat { .. }, Some((system, user))) => {
                (true, user.to_string(), system.unwrap_or_default().to_string(), Vec::new(), DEFAULT_RAW.to_string())
            }
            (Prompt::Chat { messages }, None) => {
                let last = messages.iter().rposition(|m| m.role == Role::User).unwrap_or(messages.len());
                let user = messages.get(last).map(|m| m.content.clone()).unwrap_or_default();
                (true, user, String::new(), messages[..last].to_vec(), DEFAULT_RAW.to_string())
            }
            (Prompt::Raw { raw }, _) => (false, DEFAULT_CHAT.to_string(), String::new(), Vec::new(), raw.clone()),
        };
        let user = if from_link.is_none() { DEFAULT_CHAT.to_string() } else { user };
        Self {
            chat_mode: RwSignal::new(chat_mode),
            user: RwSignal::new(user),
            system: RwSignal::new(system),
            earlier: RwSignal::new(earlier),
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
            let earlier = self.earlier.get_untracked();
            if earlier.is_empty() {
                return Prompt::with_system(Some(&self.system.get_untracked()), &self.user.get_untracked());
            }
            let mut messages = earlier;
            messages.push(Message::new(Role::User, &self.user.get_untracked()));
            Prompt::Chat { messages }
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
        self.earlier.track();
        self.raw.track();
    }
}
