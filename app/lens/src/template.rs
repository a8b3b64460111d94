//! Chat templates: the model's own `tokenizer.chat_template` (Jinja), rendered with minijinja the way
//! transformers renders it (trim_blocks, lstrip_blocks, Python string methods, `raise_exception`),
//! or a named built-in for files that carry none.

use crate::error::{LensError, Result};
use minijinja::{context, Environment, Error, ErrorKind};
use std::ops::Range;

#[derive(Clone, Debug, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> Self {
        Self { role: role.into(), content: content.into() }
    }
}

pub const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

pub const LLAMA3: &str = "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

/// Gemma's turns; a system message is folded into the first user turn, as Gemma 3's own template does.
pub const GEMMA: &str = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set first_prefix = messages[0]['content'] | trim + '\n\n' %}{% set loop_messages = messages[1:] %}{% else %}{% set first_prefix = '' %}{% set loop_messages = messages %}{% endif %}{% for message in loop_messages %}{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\n' + (first_prefix if loop.first else '') + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}";

pub const BUILTIN_NAMES: &[&str] = &["chatml", "llama3", "gemma"];

pub fn builtin(name: &str) -> Option<&'static str> {
    match name {
        "chatml" => Some(CHATML),
        "llama3" => Some(LLAMA3),
        "gemma" => Some(GEMMA),
        _ => None,
    }
}

/// The built-in that fits a vocabulary, for files without a template.
pub fn guess_builtin(has_piece: impl Fn(&str) -> bool) -> &'static str {
    if has_piece("<start_of_turn>") {
        "gemma"
    } else if has_piece("<|start_header_id|>") {
        "llama3"
    } else {
        "chatml"
    }
}

/// Rendered text, with the byte ranges where each message's content landed (the rest is template).
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub text: String,
    pub content_spans: Vec<Range<usize>>,
}

/// Refuse templates that would take unbounded time or memory in a browser tab.
const MAX_TEMPLATE_BYTES: usize = 1 << 20;
const MAX_OUTPUT_BYTES: usize = 1 << 24;

pub fn render(
    source: &str,
    messages: &[ChatMessage],
    bos_token: &str,
    eos_token: &str,
    add_generation_prompt: bool,
) -> Result<Rendered> {
    if source.len() > MAX_TEMPLATE_BYTES {
        return Err(LensError::Template(format!(
            "the template is {} bytes, over the limit of {MAX_TEMPLATE_BYTES}",
            source.len()
        )));
    }
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_fuel(Some(50_000_000));
    env.set_recursion_limit(200);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |msg: String| -> std::result::Result<String, Error> {
        Err(Error::new(ErrorKind::InvalidOperation, msg))
    });
    // Templates that date their system prompt (Llama 3.1+) get a fixed, reproducible date.
    env.add_function("strftime_now", |_fmt: String| -> String { "26 Jul 2024".to_string() });
    env.add_template("chat", source).map_err(|e| LensError::Template(describe(&e)))?;
    let tmpl = env.get_template("chat").map_err(|e| LensError::Template(describe(&e)))?;
    let msgs: Vec<_> =
        messages.iter().map(|m| context! { role => m.role.clone(), content => m.content.clone() }).collect();
    let text = tmpl
        .render(context! {
            messages => msgs,
            bos_token => bos_token,
            eos_token => eos_token,
            add_generation_prompt => add_generation_prompt,
        })
        .map_err(|e| LensError::Template(describe(&e)))?;
    if text.len() > MAX_OUTPUT_BYTES {
        return Err(LensError::Template("the template produced an implausibly long text".into()));
    }
    // Find each message's content, in order, so tokens outside them can be marked as template.
    let mut content_spans = Vec::new();
    let mut cursor = 0;
    for m in messages {
        let needle = m.content.trim();
        if needle.is_empty() {
            continue;
        }
        if let Some(at) = text[cursor..].find(needle) {
            let start = cursor + at;
            content_spans.push(start..start + needle.len());
            cursor = start + needle.len();
        }
    }
    Ok(Rendered { text, content_spans })
}

fn describe(e: &Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
