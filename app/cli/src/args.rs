//! Command-line arguments: clap reads the flags (and writes `--help`), then they become a `Question`.
//! Every mistake is one line (`main::fail`), in the tool's own words rather than clap's
//! multi-line report, so scripts and tests read the same messages as before.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Parser;
use loupe_lens::protocol::conversation::{self, Message};
use loupe_lens::template;
use loupe_lens::{Precision, Prompt, Question, TemplateChoice};
use std::io::Read;

/// The flags as typed. Options are `None` when absent, so `Question::default()` keeps the defaults.
#[derive(Parser)]
#[command(
    name = "loupe",
    about = "loupe: the logit lens of a GGUF chat model",
    override_usage = "loupe --model FILE (--chat TEXT [--system TEXT] | --messages FILE | --raw TEXT) [options]",
    // The last of a repeated flag counts, as it always did.
    args_override_self = true,
    disable_version_flag = true
)]
struct Flags {
    /// A GGUF model (llama, qwen2, qwen3, gemma2, gemma3, phi3)
    #[arg(long, value_name = "FILE")]
    model: Option<String>,
    /// A user message, rendered with the chat template
    #[arg(long, value_name = "TEXT")]
    chat: Option<String>,
    /// An optional system message for --chat
    #[arg(long, value_name = "TEXT")]
    system: Option<String>,
    /// A conversation as JSON, `-` for standard input: a list of {"role", "content"} (system, user,
    /// assistant) or an object with "messages", as the OpenAI and Hugging Face chat APIs write it
    #[arg(long, value_name = "FILE")]
    messages: Option<String>,
    /// Plain text, no template (BOS added where the model adds one)
    #[arg(long, value_name = "TEXT")]
    raw: Option<String>,
    /// chatml, llama3, gemma, or a Jinja file (default: the model's own)
    #[arg(long, value_name = "NAME|FILE")]
    template: Option<String>,
    /// Top tokens per cell [default: 5]
    #[arg(long, value_name = "N", value_parser = number::<usize>("--top-k"))]
    top_k: Option<usize>,
    /// Tokens whose probability and rank to follow (e.g. ' Canberra')
    #[arg(long, value_name = "TOKEN", num_args = 1..)]
    track: Vec<String>,
    /// fast (quantized activations, as llama.cpp) or exact (f32) [default: exact]
    #[arg(long, value_name = "P", value_parser = precision)]
    precision: Option<Precision>,
    /// Lens after each block's attention too (2L+1 rows: 1a, 1m, 2a, ...)
    #[arg(long)]
    inside_blocks: bool,
    /// Let the model answer up to N tokens first, and lens the answer too
    #[arg(long, value_name = "N", value_parser = number::<usize>("--generate"))]
    generate: Option<usize>,
    /// Sampling temperature for --generate [default: 0, greedy]
    #[arg(long, value_name = "T", value_parser = number::<f32>("--temperature"))]
    temperature: Option<f32>,
    /// Nucleus sampling mass [default: 1]
    #[arg(long, value_name = "P", value_parser = number::<f32>("--top-p"))]
    top_p: Option<f32>,
    /// Sampling seed [default: 0]
    #[arg(long, value_name = "S", value_parser = number::<u64>("--seed"))]
    seed: Option<u64>,
    /// Read each block from the file when the forward pass needs it (as the browser does for files
    /// larger than a tab holds; no --generate)
    #[arg(long)]
    streamed: bool,
    /// Write the report as JSON
    #[arg(long, value_name = "OUT")]
    json: Option<String>,
    /// Stop with an error past this much memory, e.g. 8G or 500M [default: 4x the model file + 2G,
    /// at most 3/4 of the memory available]
    #[arg(long, value_name = "SIZE", value_parser = size)]
    memory_limit: Option<usize>,
    /// Stop with an error when the chat template renders for longer than S seconds (real templates
    /// take milliseconds) [default: 30]
    #[arg(long, value_name = "S", value_parser = number::<u64>("--template-timeout"))]
    template_timeout: Option<u64>,
}

/// A command line: which model file, the question, and where to write the report.
pub struct Args {
    pub model: String,
    pub question: Question,
    pub json: Option<String>,
    pub streamed: bool,
    /// Bytes the tool may hold (`memory_budget`).
    pub memory_limit: Option<usize>,
    /// Seconds one render of the chat template may take (`template_deadline`).
    pub template_timeout: Option<u64>,
}

impl Args {
    /// `Ok(None)` when help was asked for (and printed).
    pub fn parse(args: impl Iterator<Item = String>) -> Result<Option<Self>, String> {
        let flags = match Flags::try_parse_from(std::iter::once("loupe".to_string()).chain(args)) {
            Ok(flags) => flags,
            Err(e) if e.kind() == ErrorKind::DisplayHelp => {
                print!("{}", e.render());
                return Ok(None);
            }
            Err(e) => return Err(one_line(&e)),
        };
        let mut q = Question { inside_blocks: flags.inside_blocks, track: flags.track, ..Question::default() };
        q.top_k = flags.top_k.unwrap_or(q.top_k);
        q.precision = flags.precision.unwrap_or(q.precision);
        q.answer_tokens = flags.generate.unwrap_or(q.answer_tokens);
        q.sampling.temperature = flags.temperature.unwrap_or(q.sampling.temperature);
        q.sampling.top_p = flags.top_p.unwrap_or(q.sampling.top_p);
        q.sampling.seed = flags.seed.unwrap_or(q.sampling.seed);
        let model = flags.model.ok_or("--model FILE is required (see --help)")?;
        if flags.system.is_some() && flags.chat.is_none() {
            let with = if flags.messages.is_some() { "the conversation holds its own" } else { "not with --raw" };
            return Err(format!("--system goes with --chat ({with})"));
        }
        q.prompt = match (flags.chat, flags.messages, flags.raw) {
            (Some(user), None, None) => Prompt::with_system(flags.system.as_deref(), &user),
            (None, Some(file), None) => Prompt::Chat { messages: read_conversation(&file)? },
            (None, None, Some(raw)) => Prompt::Raw { raw },
            (None, None, None) => return Err("give a prompt with --chat TEXT, --messages FILE or --raw TEXT".into()),
            _ => return Err("give one prompt: --chat, --messages or --raw, not both".into()),
        };
        q.template = match flags.template {
            None => TemplateChoice::FromFile,
            Some(t) if template::builtin(&t).is_some() => TemplateChoice::Builtin(t),
            Some(path) => TemplateChoice::Custom(std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "--template {path}: not a built-in ({}) and not a readable file: {e}",
                    template::BUILTIN_NAMES.join(", ")
                )
            })?),
        };
        q.validate().map_err(|e| format!("{e} (see --help)"))?;
        if flags.streamed && q.answer_tokens > 0 {
            return Err(format!(
                "--generate does not go with --streamed: {}",
                loupe_lens::protocol::STREAMED_GENERATION
            ));
        }
        Ok(Some(Self {
            model,
            question: q,
            json: flags.json,
            streamed: flags.streamed,
            memory_limit: flags.memory_limit,
            template_timeout: flags.template_timeout.map(|s| s.max(1)),
        }))
    }
}

/// clap's report of a mistake as one sentence in the tool's words.
fn one_line(e: &clap::Error) -> String {
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(s)) => s.join(", "),
        _ => String::new(),
    };
    // "--top-k <N>" → "--top-k".
    let flag = context(ContextKind::InvalidArg).split_whitespace().next().unwrap_or_default().to_string();
    match e.kind() {
        ErrorKind::UnknownArgument => format!("unknown argument `{}` (see --help)", context(ContextKind::InvalidArg)),
        // Our own parsers' messages (`number`, `size`, `precision`) name the flag and the value.
        ErrorKind::ValueValidation => match std::error::Error::source(e) {
            Some(why) => why.to_string(),
            None => format!("{flag}: invalid value `{}`", context(ContextKind::InvalidValue)),
        },
        ErrorKind::InvalidValue | ErrorKind::TooFewValues if flag == "--track" => {
            "--track needs at least one token".into()
        }
        ErrorKind::InvalidValue | ErrorKind::TooFewValues => format!("{flag} needs a value"),
        _ => {
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or_default();
            format!("{} (see --help)", first.trim_start_matches("error: "))
        }
    }
}

/// The conversation in `file` (`-`: standard input), read as the page reads a pasted one.
fn read_conversation(file: &str) -> Result<Vec<Message>, String> {
    let limit = loupe_lens::protocol::conversation::MAX_CONVERSATION_BYTES as u64;
    let mut text = String::new();
    let read = if file == "-" {
        std::io::stdin().take(limit + 1).read_to_string(&mut text)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(limit + 1).read_to_string(&mut text))
    };
    read.map_err(|e| format!("--messages {file}: cannot read it: {e}"))?;
    conversation::parse(&text).map_err(|why| format!("--messages {file}: {why}"))
}

fn precision(v: &str) -> Result<Precision, String> {
    Precision::parse(v).ok_or_else(|| format!("--precision is fast or exact, not `{v}`"))
}

/// A parser of numbers for `flag`, whose message names the flag.
fn number<T: std::str::FromStr + Clone + Send + Sync + 'static>(
    flag: &'static str,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |v| v.parse().map_err(|_| format!("{flag} needs a number, not `{v}`"))
}

/// Bytes from `8G`, `500M`, `64K` or a plain number (binary units; a trailing `B` is allowed).
fn size(v: &str) -> Result<usize, String> {
    let upper = v.trim().to_ascii_uppercase();
    let amount = upper.strip_suffix('B').unwrap_or(&upper);
    let (digits, shift) = match amount.char_indices().last() {
        Some((at, 'G')) => (&amount[..at], 30),
        Some((at, 'M')) => (&amount[..at], 20),
        Some((at, 'K')) => (&amount[..at], 10),
        _ => (amount, 0),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|&bytes| bytes > 0)
        .ok_or_else(|| format!("--memory-limit needs a size such as 8G or 500M, not `{v}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        Args::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_make_a_question() {
        let a = parse(&["--model", "m.gguf", "--chat", "hi", "--track", " Canberra", " Sydney", "--top-k", "7"])
            .unwrap()
            .unwrap();
        assert_eq!(a.question.track, [" Canberra", " Sydney"]);
        assert_eq!(a.question.top_k, 7);
        assert_eq!(a.question.precision, Precision::Exact);
        assert_eq!(a.question.prompt, Prompt::chat("hi"));
        // The last of a repeated flag counts.
        let a = parse(&["--model", "a", "--model", "b", "--raw", "x"]).unwrap().unwrap();
        assert_eq!(a.model, "b");
    }

    #[test]
    fn mistakes_are_one_sentence_naming_the_flag() {
        let e = |args: &[&str]| parse(args).err().unwrap();
        assert_eq!(e(&["--frobnicate"]), "unknown argument `--frobnicate` (see --help)");
        assert_eq!(e(&["--model", "m", "--raw", "a", "--top-k", "many"]), "--top-k needs a number, not `many`");
        assert_eq!(
            e(&["--model", "m", "--raw", "a", "--precision", "half"]),
            "--precision is fast or exact, not `half`"
        );
        assert_eq!(
            e(&["--model", "m", "--raw", "a", "--memory-limit", "lots"]),
            "--memory-limit needs a size such as 8G or 500M, not `lots`"
        );
        assert_eq!(e(&["--model"]), "--model needs a value");
        assert_eq!(e(&["--model", "m", "--raw", "a", "--track"]), "--track needs at least one token");
        assert!(e(&["--raw", "a"]).contains("--model FILE is required"));
    }
}
