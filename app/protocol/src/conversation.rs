//! Conversations: the turns of a chat prompt, and the JSON forms people keep them in, those of the
//! OpenAI and Hugging Face chat APIs (a list of `{role, content}`, or an object with `messages`).
//! The page's paste and open, and `loupe --messages`, read them here; whatever does not fit gets a
//! message naming the turn and what is wrong, and nothing else changes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who speaks a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "system" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }
}

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: &str) -> Self {
        Self { role, content: content.into() }
    }
}

/// Turns a conversation may have: far more than a context holds, few enough that a hostile file
/// cannot make the page build a million rows.
pub const MAX_MESSAGES: usize = 1000;
/// Bytes a conversation file may have (a 1,000-token chat is a few KB).
pub const MAX_CONVERSATION_BYTES: usize = 1 << 20;

/// Reads a conversation from JSON: a list of `{role, content}`, or an object with `messages`.
/// Content is text, or a list of text parts (`{"type": "text", "text": ...}`), joined. Other fields
/// of a message (`name`, `tool_calls`, ...) are not read.
pub fn parse(json: &str) -> Result<Vec<Message>, String> {
    if json.len() > MAX_CONVERSATION_BYTES {
        return Err(format!(
            "the conversation is {} bytes, more than the {MAX_CONVERSATION_BYTES} one may have",
            json.len()
        ));
    }
    let value: Value = serde_json::from_str(json).map_err(|e| format!("the conversation is not JSON ({e})"))?;
    const SHAPE: &str = "a conversation is a list of {\"role\", \"content\"} or an object with \"messages\"";
    let turns = match &value {
        Value::Array(turns) => turns,
        Value::Object(fields) => match fields.get("messages") {
            Some(Value::Array(turns)) => turns,
            Some(_) => return Err(format!("its \"messages\" is not a list; {SHAPE}")),
            None => return Err(format!("it is an object without \"messages\"; {SHAPE}")),
        },
        _ => return Err(SHAPE.into()),
    };
    if turns.is_empty() {
        return Err("the conversation has no messages".into());
    }
    if turns.len() > MAX_MESSAGES {
        return Err(format!(
            "the conversation has {} messages, more than the {MAX_MESSAGES} one may have",
            turns.len()
        ));
    }
    turns.iter().enumerate().map(|(i, turn)| message(i + 1, turn)).collect()
}

/// Message `n` (from 1) of a conversation.
fn message(n: usize, turn: &Value) -> Result<Message, String> {
    let fields = turn.as_object().ok_or_else(|| format!("message {n} is not an object with a role and content"))?;
    let role = match fields.get("role") {
        Some(Value::String(name)) => Role::parse(name)
            .ok_or_else(|| format!("message {n} has the role \"{name}\"; the roles are system, user and assistant"))?,
        Some(_) => return Err(format!("message {n}'s role is not text")),
        None => return Err(format!("message {n} has no role")),
    };
    let content = match fields.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|part| match (part.get("type").and_then(Value::as_str), part.get("text").and_then(Value::as_str)) {
                (Some("text"), Some(text)) => Ok(text),
                (Some(kind), _) if kind != "text" => {
                    Err(format!("message {n} has a part of type \"{kind}\"; only text is read"))
                }
                _ => Err(format!("message {n} has a content part without text")),
            })
            .collect::<Result<Vec<_>, _>>()?
            .concat(),
        Some(Value::Null) | None => return Err(format!("message {n} has no content")),
        Some(_) => return Err(format!("message {n}'s content is neither text nor a list of text parts")),
    };
    Ok(Message { role, content })
}

/// A conversation as JSON in the chat APIs' form (`{"messages": [...]}`), which `parse` reads back.
pub fn to_json(messages: &[Message]) -> String {
    #[derive(Serialize)]
    struct Conversation<'a> {
        messages: &'a [Message],
    }
    serde_json::to_string_pretty(&Conversation { messages }).expect("messages are plain data")
}

/// The same on one line.
pub fn to_compact_json(messages: &[Message]) -> String {
    serde_json::to_string(messages).expect("messages are plain data")
}

/// The longest link the page writes, in characters. Browsers take far longer addresses (Chromium
/// 2 MB), but servers, chat apps and e-mail clients that carry links stop between 2,000 and 8,000:
/// a longer one may arrive cut, so the page offers the conversation's JSON instead.
pub const MAX_LINK_CHARS: usize = 8000;

/// A conversation for a link: its one-line JSON deflated, then base64url without padding (a tutor
/// dialogue of 1,000 tokens is about 1,500 characters).
pub fn to_link(messages: &[Message]) -> String {
    use base64::Engine;
    let deflated = miniz_oxide::deflate::compress_to_vec(to_compact_json(messages).as_bytes(), 9);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(deflated)
}

/// A conversation from a link's `to_link` form; a message says what is wrong with a garbled one.
pub fn from_link(text: &str) -> Result<Vec<Message>, String> {
    use base64::Engine;
    let deflated = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| format!("it is not base64url ({e})"))?;
    // Inflated no further than a conversation may be long, so a small link cannot expand to gigabytes.
    let json = miniz_oxide::inflate::decompress_to_vec_with_limit(&deflated, MAX_CONVERSATION_BYTES)
        .map_err(|e| format!("it does not inflate ({e:?})"))?;
    parse(&String::from_utf8(json).map_err(|_| "it is not UTF-8 text".to_string())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chat_apis_forms_are_read() {
        let list = r#"[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi", "name": "ann"}]"#;
        let expected = vec![Message::new(Role::System, "Be brief."), Message::new(Role::User, "Hi")];
        assert_eq!(parse(list), Ok(expected.clone()));
        assert_eq!(parse(&format!(r#"{{"model": "x", "messages": {list}}}"#)), Ok(expected.clone()));
        let parts = r#"[{"role": "user", "content": [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "there"}]}]"#;
        assert_eq!(parse(parts), Ok(vec![Message::new(Role::User, "Hello, there")]));
        assert_eq!(parse(&to_json(&expected)), Ok(expected));
    }

    #[test]
    fn a_conversation_survives_a_link_in_a_fraction_of_its_size() {
        let turn = |i: usize| {
            let role = if i.is_multiple_of(2) { Role::User } else { Role::Assistant };
            Message::new(role, &format!("Turn {i}: which city is the capital of country number {i}?"))
        };
        let messages: Vec<Message> = (0..20).map(turn).collect();
        let link = to_link(&messages);
        assert!(link.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{link}");
        assert!(link.len() * 3 < to_compact_json(&messages).len(), "{} characters", link.len());
        assert_eq!(from_link(&link), Ok(messages));
        assert!(from_link("not a link!").unwrap_err().contains("base64url"));
        assert!(from_link("AAAA").unwrap_err().contains("inflate"));
        // A small link that would inflate past a conversation's size is refused.
        let bomb = vec![b' '; 2 * MAX_CONVERSATION_BYTES];
        use base64::Engine;
        let bomb =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(miniz_oxide::deflate::compress_to_vec(&bomb, 9));
        assert!(bomb.len() < 10_000 && from_link(&bomb).is_err());
    }

    #[test]
    fn what_does_not_fit_is_named() {
        let refused = |json: &str, mentions: &str| {
            let e = parse(json).unwrap_err();
            assert!(e.contains(mentions), "{json}: {e}");
        };
        refused("{", "not JSON");
        refused("42", "a conversation is a list");
        refused(r#"{"turns": []}"#, "without \"messages\"");
        refused(r#"{"messages": "hi"}"#, "not a list");
        refused("[]", "no messages");
        refused(
            r#"[{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}]"#,
            "message 2 has the role \"tool\"",
        );
        refused(r#"[{"content": "a"}]"#, "message 1 has no role");
        refused(r#"[{"role": "user"}]"#, "message 1 has no content");
        refused(r#"[{"role": "user", "content": 7}]"#, "neither text");
        refused(r#"[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]"#, "type \"image_url\"");
        refused(r#"["hi"]"#, "message 1 is not an object");
        let many = format!("[{}]", vec![r#"{"role": "user", "content": "a"}"#; MAX_MESSAGES + 1].join(","));
        refused(&many, "more than the 1000");
        refused(&format!("\"{}\"", "a".repeat(MAX_CONVERSATION_BYTES)), "bytes");
    }
}
