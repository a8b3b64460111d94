//! A `Question` as URL query pairs, so a link reproduces a run:
//! `chat=...&system=...` (one user message), `conv=...` (any other conversation, deflated and
//! base64url; `messages=` with its JSON is read too) or `raw=...`, plus `template`, `template_jinja`, `precision`, `top_k`,
//! `track`, `answer`, `inside_blocks`, `temperature`, `top_p`, `seed`. Defaults are left out. Reading clamps numbers
//! into range and reports what it could not read, so a garbled link still opens a sensible view.

use crate::conversation;
use crate::question::{Precision, Prompt, Question, TemplateChoice, MAX_ANSWER_TOKENS, MAX_TOP_K, MAX_TRACKED};

/// The query pairs of a question (values unencoded; the caller URL-encodes them).
pub fn to_query(q: &Question) -> Vec<(&'static str, String)> {
    let d = Question::default();
    let mut out = Vec::new();
    match (&q.prompt, q.prompt.as_single_message()) {
        (Prompt::Chat { .. }, Some((system, user))) => {
            out.push(("chat", user.to_string()));
            if let Some(s) = system {
                out.push(("system", s.to_string()));
            }
        }
        (Prompt::Chat { messages }, None) => out.push(("conv", conversation::to_link(messages))),
        (Prompt::Raw { raw }, _) => out.push(("raw", raw.clone())),
    }
    match &q.template {
        TemplateChoice::FromFile => {}
        TemplateChoice::Builtin(name) => out.push(("template", name.clone())),
        TemplateChoice::Custom(source) => out.push(("template_jinja", source.clone())),
    }
    if q.precision != d.precision {
        out.push(("precision", q.precision.name().into()));
    }
    if q.top_k != d.top_k {
        out.push(("top_k", q.top_k.to_string()));
    }
    if !q.track.is_empty() {
        out.push(("track", q.track_list()));
    }
    if q.answer_tokens != d.answer_tokens {
        out.push(("answer", q.answer_tokens.to_string()));
    }
    if q.inside_blocks {
        out.push(("inside_blocks", "1".into()));
    }
    if q.sampling != d.sampling {
        out.push(("temperature", q.sampling.temperature.to_string()));
        out.push(("top_p", q.sampling.top_p.to_string()));
        out.push(("seed", q.sampling.seed.to_string()));
    }
    out
}

/// A question from query pairs (decoded). Returns none when the pairs hold no prompt at all; the
/// notes say which values were out of range or unreadable (and were replaced).
pub fn from_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> (Option<Question>, Vec<String>) {
    let mut q = Question::default();
    let mut notes = Vec::new();
    let (mut chat, mut system, mut raw, mut messages) = (None, None, None, None);
    for (key, value) in pairs {
        match key {
            "chat" => chat = Some(value.to_string()),
            "messages" | "conv" => {
                let read = if key == "conv" { conversation::from_link(value) } else { conversation::parse(value) };
                match read {
                    Ok(m) => messages = Some(m),
                    Err(why) => notes.push(format!("the conversation could not be read: {why}")),
                }
            }
            "system" => system = Some(value.to_string()).filter(|s| !s.is_empty()),
            "raw" => raw = Some(value.to_string()),
            "template" => q.template = TemplateChoice::Builtin(value.to_string()),
            "template_jinja" => q.template = TemplateChoice::Custom(value.to_string()),
            "precision" => match Precision::parse(value) {
                Some(p) => q.precision = p,
                None => notes.push(format!("precision `{value}` is not exact or fast")),
            },
            "top_k" => q.top_k = number(key, value, 1, MAX_TOP_K, q.top_k, &mut notes),
            "answer" => q.answer_tokens = number(key, value, 0, MAX_ANSWER_TOKENS, 0, &mut notes),
            "track" => {
                q.track = Question::parse_track_list(value);
                if q.track.len() > MAX_TRACKED {
                    notes.push(format!("only the first {MAX_TRACKED} of {} tracked tokens are kept", q.track.len()));
                    q.track.truncate(MAX_TRACKED);
                }
            }
            "inside_blocks" => q.inside_blocks = value == "1" || value == "true",
            "temperature" => q.sampling.temperature = number(key, value, 0.0, 10.0, 0.0, &mut notes),
            "top_p" => q.sampling.top_p = number(key, value, 0.01, 1.0, 1.0, &mut notes),
            "seed" => q.sampling.seed = number(key, value, 0, u64::MAX, 0, &mut notes),
            _ => {}
        }
    }
    q.prompt = match (messages, chat, raw) {
        (Some(messages), _, _) => Prompt::Chat { messages },
        (None, Some(user), _) => Prompt::with_system(system.as_deref(), &user),
        (None, None, Some(raw)) => Prompt::Raw { raw },
        (None, None, None) => return (None, notes),
    };
    (Some(q), notes)
}

/// `value` parsed and clamped into `lo..=hi`; unreadable values (NaN among them, which compares
/// with nothing and would slip past both bounds) fall back to `default`.
fn number<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display>(
    key: &str,
    value: &str,
    lo: T,
    hi: T,
    default: T,
    notes: &mut Vec<String>,
) -> T {
    match value.trim().parse::<T>() {
        Ok(v) if v.partial_cmp(&lo).is_none() => {
            notes.push(format!("{key} `{value}` is not a number"));
            default
        }
        Ok(v) if v < lo => {
            notes.push(format!("{key} {value} raised to {lo}"));
            lo
        }
        Ok(v) if v > hi => {
            notes.push(format!("{key} {value} lowered to {hi}"));
            hi
        }
        Ok(v) => v,
        Err(_) => {
            notes.push(format!("{key} `{value}` is not a number"));
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{Message, Role};
    use crate::question::Sampling;

    fn round_trip(q: &Question) -> Question {
        let pairs = to_query(q);
        let (back, notes) = from_query(pairs.iter().map(|(k, v)| (*k, v.as_str())));
        assert!(notes.is_empty(), "{notes:?}");
        back.unwrap()
    }

    #[test]
    fn questions_survive_the_url() {
        let q = Question {
            prompt: Prompt::with_system(Some("Be brief."), "What is the capital of Australia?"),
            template: TemplateChoice::Builtin("chatml".into()),
            precision: Precision::Fast,
            top_k: 7,
            track: vec![" Canberra".into(), " Sydney".into()],
            answer_tokens: 12,
            sampling: Sampling { temperature: 0.7, top_p: 0.9, seed: 3 },
            inside_blocks: true,
        };
        assert_eq!(round_trip(&q), q);
        let raw = Question { prompt: Prompt::raw("The Eiffel Tower is in"), ..Default::default() };
        assert_eq!(round_trip(&raw), raw);
        assert_eq!(to_query(&raw), vec![("raw", "The Eiffel Tower is in".to_string())]);
        let talk = Question {
            prompt: Prompt::Chat {
                messages: vec![
                    Message::new(Role::User, "Hi"),
                    Message::new(Role::Assistant, "Hello."),
                    Message::new(Role::User, "Capital of Chad?"),
                ],
            },
            ..Default::default()
        };
        assert_eq!(round_trip(&talk), talk);
        // A conversation that cannot be read is said so, and the link opens without it.
        let (q, notes) = from_query([("messages", "[{\"role\": \"tool\"}]"), ("top_k", "7")]);
        assert!(q.is_none() && notes[0].contains("role"), "{notes:?}");
    }

    #[test]
    fn garbled_links_are_clamped_and_noted() {
        let (q, notes) = from_query([("chat", "hi"), ("answer", "999999"), ("top_k", "x"), ("precision", "turbo")]);
        let q = q.unwrap();
        assert_eq!(q.answer_tokens, MAX_ANSWER_TOKENS);
        assert_eq!(q.top_k, 5);
        assert_eq!(q.precision, Precision::Exact);
        assert_eq!(notes.len(), 3);
        assert!(from_query([("answer", "3")]).0.is_none());
        // NaN compares with nothing: it falls back to the default instead of slipping past both bounds.
        let (q, notes) = from_query([("raw", "x"), ("temperature", "NaN"), ("top_p", "nan"), ("seed", "-1")]);
        let q = q.unwrap();
        assert_eq!((q.sampling.temperature, q.sampling.top_p, q.sampling.seed), (0.0, 1.0, 0));
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(q.validate().is_ok());
        // Thousands of tracked tokens are cut to the limit, repeats kept once.
        let many: Vec<String> = (0..5000).map(|i| format!(" t{i}")).collect();
        let (q, notes) = from_query([("raw", "x"), ("track", &format!(" a, a, a,{}", many.join(",")))]);
        let q = q.unwrap();
        assert_eq!(q.track.len(), MAX_TRACKED);
        assert_eq!(q.track[..2], [" a".to_string(), " t0".to_string()]);
        assert!(q.validate().is_ok() && notes.len() == 1, "{notes:?}");
    }
}
