//! The messages between the page and its worker (JSON both ways; a dropped file travels beside a
//! request as a `File` handle), and what the page learns of a loaded model.

use crate::question::Question;
use crate::report::{LensGrid, RunStep, Sequence, Timings, TokenInfo};
use serde::{Deserialize, Serialize};

/// Identifies one run, so events of an older run can be told apart and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RunId(pub u64);

/// Page → worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// How many extra workers share the lens (none = decide from the number of cores). Takes
    /// effect at the next model load.
    Configure {
        lens_workers: Option<usize>,
        /// Files larger than this load streamed (blocks read from the file per prompt, lens
        /// only); none = decide from `RESIDENT_MAX_BYTES` and the device's memory.
        #[serde(default)]
        resident_limit: Option<u64>,
        /// Fast precision's lens product, `Some(true)` for 8-bit integers, `Some(false)` for f32;
        /// none = whichever this machine runs faster (measured when the worker starts).
        #[serde(default)]
        fast_int8: Option<bool>,
    },
    /// Load from the browser's model store, else download (with progress) and store.
    LoadUrl {
        url: String,
        name: String,
    },
    /// Load the `File` that accompanies this message (never uploaded anywhere).
    LoadFile {
        name: String,
    },
    /// Render and tokenize only, so the tokens show while the user types. Answered by `Preview`.
    Preview {
        question: Question,
    },
    /// Tokenize, optionally answer, then stream the lens rows.
    Run {
        run: RunId,
        question: Question,
    },
    /// The user looks at positions `start..end` of run `run`: lens them next, every row.
    Focus {
        run: RunId,
        start: usize,
        end: usize,
    },
    /// Stop the current download or run at the next checkpoint.
    Cancel,
    ListCache,
    /// Delete one stored model, or all when `url` is none.
    ClearCache {
        url: Option<String>,
    },
}

/// What the worker knows of the loaded model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    /// Where it came from: a URL, or `local file NAME`.
    pub source: String,
    /// The file name, as reports record it.
    pub file: String,
    pub architecture: String,
    pub n_rows: usize,
    pub d_model: usize,
    pub vocab: usize,
    pub context: usize,
    pub bytes: u64,
    /// "file" when the GGUF carries a chat template, else the built-in that will be used.
    pub template: String,
    pub from_cache: bool,
    /// Workers decoding the vocabulary in parallel (1 = the model worker alone).
    pub lens_threads: usize,
    /// Blocks are read from the file per prompt (the model is larger than the tab can hold):
    /// the lens works, answers do not.
    #[serde(default)]
    pub streamed: bool,
    /// The vector instructions the worker's kernels use: "relaxed SIMD" (fused multiply-add) or
    /// "SIMD128" in a browser, "native" in the command-line tool.
    #[serde(default)]
    pub simd: String,
}

/// A model kept in the browser's storage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CachedModel {
    pub url: String,
    pub bytes: u64,
}

/// Worker → page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The worker's wasm is initialised; earlier messages would have been lost.
    Ready,
    Progress {
        loaded: u64,
        total: Option<u64>,
        stage: String,
    },
    ModelLoaded {
        info: ModelInfo,
    },
    /// The loaded model was dropped (to make room for a new one that then may fail).
    Unloaded,
    /// The tokens of a `Preview`, or why the text cannot be tokenized yet.
    Preview {
        tokens: Vec<TokenInfo>,
        error: Option<String>,
    },
    /// The sequence being lensed (the prompt, then again with the answer).
    Sequence {
        run: RunId,
        sequence: Sequence,
    },
    AnswerToken {
        run: RunId,
        token: TokenInfo,
    },
    /// Tracked strings resolved to tokens, before the rows arrive.
    Tracked {
        run: RunId,
        tokens: Vec<TokenInfo>,
    },
    /// The cells of rows `first_row..first_row + rows.n_rows` at positions
    /// `first_position..first_position + rows.n_positions`: a group of whole rows for a short
    /// sequence; for a long one, the positions in view first, then the rest in chunks.
    Rows {
        run: RunId,
        first_row: usize,
        #[serde(default)]
        first_position: usize,
        rows: LensGrid,
    },
    Done {
        run: RunId,
        timings: Timings,
    },
    /// A run, or a load when `run` is none, stopped at the user's request.
    Cancelled {
        run: Option<RunId>,
    },
    /// A run failed, or a load or storage request when `run` is none.
    Error {
        run: Option<RunId>,
        message: String,
    },
    /// Something the user should know that stopped nothing (a lens helper given up).
    Notice {
        message: String,
    },
    CacheList {
        entries: Vec<CachedModel>,
    },
}

/// Largest file whose weights are all held in memory (resident). wasm32 memory ends at 4 GiB and
/// the weights take about the file's size, beside the activations, the lens's tiles and the helper
/// workers' vocabulary slices. Larger files load streamed: each block is read from the file when
/// the forward pass reaches it, so only the (un)embedding stays in memory, and answers are off.
pub const RESIDENT_MAX_BYTES: u64 = 2_500_000_000;

/// Why a streamed model does not answer.
pub const STREAMED_GENERATION: &str = "this model is streamed from its file block by block, as it is larger \
    than the browser tab can hold; an answer would read the whole file again for every new token, so \
    Loupe draws the lens of the prompt only";

/// Largest model file Loupe accepts at all (streamed): its embedding and unembedding must still
/// fit in memory, as a 70B model's do.
pub const MAX_MODEL_BYTES: u64 = 48_000_000_000;

/// Why a file of `bytes` is refused.
pub fn too_large_message(bytes: u64) -> String {
    format!(
        "this model is {:.2} GB; Loupe reads files up to {:.0} GB (larger ones are streamed block by block, but even their vocabulary tables would not fit a browser tab's memory). Pick a smaller or more quantized file.",
        bytes as f64 / 1e9,
        MAX_MODEL_BYTES as f64 / 1e9
    )
}

impl RunStep {
    /// The event that carries this step of run `run` to the page.
    pub fn for_run(self, run: RunId) -> Event {
        match self {
            RunStep::Sequence(sequence) => Event::Sequence { run, sequence },
            RunStep::Tracked(tokens) => Event::Tracked { run, tokens },
            RunStep::AnswerToken(token) => Event::AnswerToken { run, token },
            RunStep::Cells { first_row, first_position, cells } => {
                Event::Rows { run, first_row, first_position, rows: cells }
            }
        }
    }
}

impl Event {
    /// The run step this event carries, with its run; the event itself when it is not one.
    pub fn into_run_step(self) -> Result<(RunId, RunStep), Box<Event>> {
        Ok(match self {
            Event::Sequence { run, sequence } => (run, RunStep::Sequence(sequence)),
            Event::Tracked { run, tokens } => (run, RunStep::Tracked(tokens)),
            Event::AnswerToken { run, token } => (run, RunStep::AnswerToken(token)),
            Event::Rows { run, first_row, first_position, rows } => {
                (run, RunStep::Cells { first_row, first_position, cells: rows })
            }
            other => return Err(Box::new(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_run_step_travels_as_an_event_and_back() {
        let token = TokenInfo { id: 1, piece: "a".into(), text: "a".into(), special: false, template: false };
        let cells = LensGrid { n_rows: 1, n_positions: 1, ..Default::default() };
        for step in [
            RunStep::Sequence(Sequence::new("a".into(), vec![token.clone()], None)),
            RunStep::Tracked(vec![token.clone()]),
            RunStep::AnswerToken(token),
            RunStep::Cells { first_row: 2, first_position: 3, cells },
        ] {
            assert_eq!(step.clone().for_run(RunId(4)).into_run_step(), Ok((RunId(4), step)));
        }
        assert_eq!(Event::Ready.into_run_step(), Err(Box::new(Event::Ready)));
    }
}
