//! Command-line arguments, parsed by hand into a `Question` (a few flags do not need a parser
//! framework).

use loupe_lens::template;
use loupe_lens::{Precision, Prompt, Question, TemplateChoice};

pub const USAGE: &str = "\
loupe: the logit lens of a GGUF chat model

usage: loupe --model FILE (--chat TEXT [--system TEXT] | --raw TEXT) [options]

  --model FILE          a GGUF model (llama, qwen2, qwen3, gemma2, gemma3, phi3)
  --chat TEXT           a user message, rendered with the chat template
  --system TEXT         an optional system message for --chat
  --raw TEXT            plain text, no template (BOS added where the model adds one)
  --template NAME|FILE  chatml, llama3, gemma, or a Jinja file (default: the model's own)
  --top-k N             top tokens per cell (default 5)
  --track TOKEN...      tokens whose probability and rank to follow (e.g. ' Canberra')
  --precision P         fast (quantized activations, as llama.cpp) or exact (f32; default)
  --inside-blocks       lens after each block's attention too (2L+1 rows: 1a, 1m, 2a, ...)
  --generate N          let the model answer up to N tokens first, and lens the answer too
  --temperature T       sampling temperature for --generate (default 0: greedy)
  --top-p P             nucleus sampling mass (default 1)
  --seed S              sampling seed (default 0)
  --streamed            read each block from the file when the forward pass needs it (as the
                        browser does for files larger than a tab holds; no --generate)
  --json OUT            write the report as JSON
  --memory-limit SIZE   stop with an error past this much memory, e.g. 8G or 500M (default:
                        4x the model file + 2G, at most 3/4 of the memory available)
  --template-timeout S  stop with an error when the chat template renders for longer than S
                        seconds (default 30; real templates take milliseconds)
";

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
    /// `Ok(None)` when help was asked for.
    pub fn parse(args: impl Iterator<Item = String>) -> Result<Option<Self>, String> {
        let args: Vec<String> = args.collect();
        let (mut model, mut chat, mut system, mut raw, mut template, mut json) = (None, None, None, None, None, None);
        let mut q = Question::default();
        let mut streamed = false;
        let mut memory_limit = None;
        let mut template_timeout = None;
        let mut i = 0;
        while i < args.len() {
            let flag = args[i].as_str();
            let mut value = || -> Result<String, String> {
                i += 1;
                args.get(i).cloned().ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag {
                "-h" | "--help" => return Ok(None),
                "--inside-blocks" => q.inside_blocks = true,
                "--streamed" => streamed = true,
                "--model" => model = Some(value()?),
                "--chat" => chat = Some(value()?),
                "--system" => system = Some(value()?),
                "--raw" => raw = Some(value()?),
                "--template" => template = Some(value()?),
                "--json" => json = Some(value()?),
                "--memory-limit" => memory_limit = Some(size(flag, &value()?)?),
                "--template-timeout" => template_timeout = Some(number::<u64>(flag, &value()?)?.max(1)),
                "--top-k" => q.top_k = number(flag, &value()?)?,
                "--generate" => q.answer_tokens = number(flag, &value()?)?,
                "--temperature" => q.sampling.temperature = number(flag, &value()?)?,
                "--top-p" => q.sampling.top_p = number(flag, &value()?)?,
                "--seed" => q.sampling.seed = number(flag, &value()?)?,
                "--precision" => {
                    let v = value()?;
                    q.precision =
                        Precision::parse(&v).ok_or_else(|| format!("--precision is fast or exact, not `{v}`"))?;
                }
                "--track" => {
                    while i + 1 < args.len() && !args[i + 1].starts_with("--") {
                        i += 1;
                        q.track.push(args[i].clone());
                    }
                    if q.track.is_empty() {
                        return Err("--track needs at least one token".into());
                    }
                }
                other => return Err(format!("unknown argument `{other}` (see --help)")),
            }
            i += 1;
        }
        let model = model.ok_or("--model FILE is required (see --help)")?;
        q.prompt = match (chat, raw) {
            (Some(user), None) => Prompt::Chat { user, system },
            (None, Some(raw)) => {
                if system.is_some() {
                    return Err("--system goes with --chat, not --raw".into());
                }
                Prompt::Raw { raw }
            }
            (Some(_), Some(_)) => return Err("give --chat or --raw, not both".into()),
            (None, None) => return Err("give a prompt with --chat TEXT or --raw TEXT".into()),
        };
        q.template = match template {
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
        if streamed && q.answer_tokens > 0 {
            return Err(format!(
                "--generate does not go with --streamed: {}",
                loupe_lens::protocol::STREAMED_GENERATION
            ));
        }
        Ok(Some(Self { model, question: q, json, streamed, memory_limit, template_timeout }))
    }
}

/// Bytes from `8G`, `500M`, `64K` or a plain number (binary units; a trailing `B` is allowed).
fn size(flag: &str, v: &str) -> Result<usize, String> {
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
        .ok_or_else(|| format!("{flag} needs a size such as 8G or 500M, not `{v}`"))
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag} needs a number, not `{v}`"))
}
