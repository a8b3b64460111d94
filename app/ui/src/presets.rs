//! Models offered in the picker. The default is served by this site itself (works offline); the
//! others download from Hugging Face (CORS allowed). Q8_0 where it fits: candle has fast wasm SIMD
//! kernels for it, and the unembedding dominates the lens cost. Sizes are approximate, and the URLs
//! of the Hugging Face presets could not be checked from the build machines (no hub access there).

pub struct Preset {
    pub id: &'static str,
    pub name: &'static str,
    /// Relative URLs resolve against the page.
    pub url: &'static str,
    pub bytes: u64,
    pub licence: &'static str,
}

pub const DEFAULT_ID: &str = "smollm2-135m";

pub const PRESETS: &[Preset] = &[
    Preset {
        id: "smollm2-135m",
        name: "SmolLM2-135M-Instruct Q4_1 (bundled)",
        url: "models/SmolLM2-135M-Instruct.Q4_1.gguf",
        bytes: 98_362_432,
        licence: "Apache-2.0",
    },
    Preset {
        id: "smollm2-135m-q8",
        name: "SmolLM2-135M-Instruct Q8_0",
        url: "https://huggingface.co/bartowski/SmolLM2-135M-Instruct-GGUF/resolve/main/SmolLM2-135M-Instruct-Q8_0.gguf",
        bytes: 145_000_000,
        licence: "Apache-2.0",
    },
    Preset {
        id: "smollm2-360m-q8",
        name: "SmolLM2-360M-Instruct Q8_0",
        url: "https://huggingface.co/bartowski/SmolLM2-360M-Instruct-GGUF/resolve/main/SmolLM2-360M-Instruct-Q8_0.gguf",
        bytes: 386_000_000,
        licence: "Apache-2.0",
    },
    Preset {
        id: "qwen2.5-0.5b-q8",
        name: "Qwen2.5-0.5B-Instruct Q8_0",
        url: "https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/qwen2.5-0.5b-instruct-q8_0.gguf",
        bytes: 676_000_000,
        licence: "Apache-2.0",
    },
    Preset {
        id: "qwen3-0.6b-q8",
        name: "Qwen3-0.6B Q8_0",
        url: "https://huggingface.co/Qwen/Qwen3-0.6B-GGUF/resolve/main/Qwen3-0.6B-Q8_0.gguf",
        bytes: 639_000_000,
        licence: "Apache-2.0",
    },
    Preset {
        id: "qwen3-1.7b-q8",
        name: "Qwen3-1.7B Q8_0",
        url: "https://huggingface.co/Qwen/Qwen3-1.7B-GGUF/resolve/main/Qwen3-1.7B-Q8_0.gguf",
        bytes: 1_830_000_000,
        licence: "Apache-2.0",
    },
    Preset {
        id: "gemma3-270m-it-q8",
        name: "Gemma 3 270M IT Q8_0",
        url: "https://huggingface.co/ggml-org/gemma-3-270m-it-GGUF/resolve/main/gemma-3-270m-it-Q8_0.gguf",
        bytes: 292_000_000,
        licence: "Gemma Terms of Use (accepting them is asked of the user)",
    },
    Preset {
        id: "gemma3-1b-it-q8",
        name: "Gemma 3 1B IT Q8_0",
        url: "https://huggingface.co/ggml-org/gemma-3-1b-it-GGUF/resolve/main/gemma-3-1b-it-Q8_0.gguf",
        bytes: 1_070_000_000,
        licence: "Gemma Terms of Use (accepting them is asked of the user)",
    },
    Preset {
        id: "llama3.2-1b-q8",
        name: "Llama 3.2 1B Instruct Q8_0",
        url: "https://huggingface.co/bartowski/Llama-3.2-1B-Instruct-GGUF/resolve/main/Llama-3.2-1B-Instruct-Q8_0.gguf",
        bytes: 1_320_000_000,
        licence: "Llama 3.2 Community Licence (accepting it is asked of the user)",
    },
    Preset {
        id: "qwen2.5-1.5b-q4km",
        name: "Qwen2.5-1.5B-Instruct Q4_K_M",
        url: "https://huggingface.co/Qwen/Qwen2.5-1.5B-Instruct-GGUF/resolve/main/qwen2.5-1.5b-instruct-q4_k_m.gguf",
        bytes: 1_120_000_000,
        licence: "Apache-2.0",
    },
    Preset {
        id: "llama3.2-3b-q4km",
        name: "Llama 3.2 3B Instruct Q4_K_M",
        url: "https://huggingface.co/bartowski/Llama-3.2-3B-Instruct-GGUF/resolve/main/Llama-3.2-3B-Instruct-Q4_K_M.gguf",
        bytes: 2_020_000_000,
        licence: "Llama 3.2 Community Licence (accepting it is asked of the user)",
    },
    Preset {
        id: "llama3.1-8b-q4km",
        name: "Llama 3.1 8B Instruct Q4_K_M",
        url: "https://huggingface.co/bartowski/Meta-Llama-3.1-8B-Instruct-GGUF/resolve/main/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf",
        bytes: 4_920_000_000,
        licence: "Llama 3.1 Community Licence (accepting it is asked of the user)",
    },
    Preset {
        id: "smollm2-1.7b-q8",
        name: "SmolLM2-1.7B-Instruct Q8_0",
        url: "https://huggingface.co/bartowski/SmolLM2-1.7B-Instruct-GGUF/resolve/main/SmolLM2-1.7B-Instruct-Q8_0.gguf",
        bytes: 1_820_000_000,
        licence: "Apache-2.0",
    },
];

pub fn find(id: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.id == id)
}

pub fn megabytes(bytes: u64) -> String {
    if bytes >= 1_000_000_000 {
        format!("{:.2} GB", bytes as f64 / 1e9)
    } else {
        format!("{:.0} MB", bytes as f64 / 1e6)
    }
}
