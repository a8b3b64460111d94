//! Chat templates: the model's own `tokenizer.chat_template` (Jinja), rendered with minijinja the way
//! transformers renders it (trim_blocks, lstrip_blocks, Python string methods, `raise_exception`),
//! or a named built-in for files that carry none.

use crate::error::{LensError, Result};
use minijinja::{context, Environment, Error, ErrorKind};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Renders begun and ended, so that a front end with a clock and a second thread (the native tool)
/// can stop a render that never ends. Fuel cannot: minijinja folds constant expressions while
/// compiling, and walks some lazy sequences (`x in 10**15 * [y]`) inside one instruction.
static RENDERS_BEGUN: AtomicUsize = AtomicUsize::new(0);
static RENDERS_ENDED: AtomicUsize = AtomicUsize::new(0);

/// The number of the render going on now, if one is.
pub fn render_in_progress() -> Option<usize> {
    let begun = RENDERS_BEGUN.load(Ordering::SeqCst);
    (RENDERS_ENDED.load(Ordering::SeqCst) < begun).then_some(begun)
}

struct RenderCount;

impl RenderCount {
    fn begin() -> Self {
        RENDERS_BEGUN.fetch_add(1, Ordering::SeqCst);
        RenderCount
    }
}

impl Drop for RenderCount {
    fn drop(&mut self) {
        RENDERS_ENDED.fetch_add(1, Ordering::SeqCst);
    }
}

pub fn render(
    source: &str,
    messages: &[ChatMessage],
    bos_token: &str,
    eos_token: &str,
    add_generation_prompt: bool,
) -> Result<Rendered> {
    let _counted = RenderCount::begin();
    if source.len() > MAX_TEMPLATE_BYTES {
        return Err(LensError::Template(format!(
            "the template is {} bytes, over the limit of {MAX_TEMPLATE_BYTES}",
            source.len()
        )));
    }
    let text = render_text(source, messages, bos_token, eos_token, add_generation_prompt)?;
    // Where each message's content landed: rendered again with a marker in place of each content,
    // the markers give the positions, so a role name or template word that also occurs in a
    // message ("user" typed as the question) is never taken for it.
    let marked: Vec<ChatMessage> =
        messages.iter().enumerate().map(|(i, m)| ChatMessage::new(&m.role, &marker(i))).collect();
    let with_markers = render_text(source, &marked, bos_token, eos_token, add_generation_prompt)?;
    let mut content_spans = Vec::new();
    // How far the real text has moved relative to the marked one, content by content.
    let mut shift: isize = 0;
    let mut cursor = 0;
    for (i, m) in messages.iter().enumerate() {
        let mark = marker(i);
        let found = with_markers.find(&mark).and_then(|at| {
            let start = at.checked_add_signed(shift)?;
            // The template may have trimmed the content.
            [m.content.as_str(), m.content.trim()]
                .into_iter()
                .find(|c| !c.is_empty() && text.get(start..start + c.len()) == Some(c))
                .map(|c| (start, c.len(), mark.len()))
        });
        match found {
            Some((start, len, mark_len)) => {
                content_spans.push(start..start + len);
                shift += len as isize - mark_len as isize;
                cursor = start + len;
            }
            // A template that transforms the content: fall back to finding it as written.
            None => {
                let needle = m.content.trim();
                if let Some(at) = (!needle.is_empty()).then(|| text[cursor..].find(needle)).flatten() {
                    let start = cursor + at;
                    content_spans.push(start..start + needle.len());
                    cursor = start + needle.len();
                }
            }
        }
    }
    Ok(Rendered { text, content_spans })
}

/// A stand-in for message `i`'s content that no template or message produces.
fn marker(i: usize) -> String {
    format!("\u{E000}loupe-content-{i}\u{E001}")
}

fn render_text(
    source: &str,
    messages: &[ChatMessage],
    bos_token: &str,
    eos_token: &str,
    add_generation_prompt: bool,
) -> Result<String> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_fuel(Some(50_000_000));
    env.set_recursion_limit(200);
    crate::template_guard::install(&mut env);
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
    let ctx = context! {
        messages => msgs,
        bos_token => bos_token,
        eos_token => eos_token,
        add_generation_prompt => add_generation_prompt,
    };
    // The output is bounded as it is written: a template that prints gigabytes stops at the limit
    // instead of holding them first.
    let mut out = Bounded { text: Vec::new(), overflowed: false };
    let rendered = tmpl.render_captured_to(ctx, &mut out).map(|_| ());
    match rendered {
        Ok(_) => {
            String::from_utf8(out.text).map_err(|_| LensError::Template("the template produced invalid UTF-8".into()))
        }
        Err(_) if out.overflowed => {
            Err(LensError::Template(format!("the template produced more than {MAX_OUTPUT_BYTES} bytes of text")))
        }
        Err(e) => Err(LensError::Template(describe(&e))),
    }
}

/// Rendered text that refuses to grow past `MAX_OUTPUT_BYTES`.
struct Bounded {
    text: Vec<u8>,
    overflowed: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.text.len() + buf.len() > MAX_OUTPUT_BYTES {
            self.overflowed = true;
            return Err(std::io::Error::other("the template's text is too long"));
        }
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A message that spells a role name is found where the message is, not at the role.
    #[test]
    fn content_is_located_by_position_not_by_spelling() {
        let messages = [ChatMessage::new("system", "system"), ChatMessage::new("user", "  user ")];
        let r = render(CHATML, &messages, "", "", true).unwrap();
        assert_eq!(r.content_spans.len(), 2);
        for (span, role) in r.content_spans.iter().zip(["system", "user"]) {
            // Each span is preceded by its role line, so it is the message, not the role name.
            let before = &r.text[..span.start];
            assert!(before.ends_with(&format!("<|im_start|>{role}\n")), "{before:?}");
        }
        assert!(["system", "  user ", "user"].contains(&&r.text[r.content_spans[1].clone()]));
    }
}
