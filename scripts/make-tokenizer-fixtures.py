#!/usr/bin/env python3
"""Records how Hugging Face transformers tokenizes varied texts with the tokenizer it builds from each
test model's GGUF metadata (the same oracle as ../shared/reference), into
app/lens/tests/fixtures/tokenizer/<model>.json. The Rust tests compare the engine's ids to these.

Needs `pip install transformers gguf` (no PyTorch: the tokenizer path never touches it, so an inert
stand-in module satisfies the GGUF reader's import). Run after scripts/fetch-models.sh:
    python3 scripts/make-tokenizer-fixtures.py
"""
import importlib, json, pathlib, sys, types

import transformers  # noqa: F401  (decides "no torch" before the stand-in below exists)


class _Inert(types.ModuleType):
    def __getattr__(self, name):
        return _Inert(name)

    def __call__(self, *a, **k):
        return self

    __or__ = __ror__ = lambda self, other: self
    __getitem__ = lambda self, key: self


sys.modules["torch"] = _Inert("torch")
mapping = importlib.import_module("transformers.integrations.gguf.gguf_tokenizer_mapping")

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODELS = {
    "SmolLM2-135M-Instruct.Q4_1.gguf": "smollm2",
    "qwen2.5-coder-0.5b-instruct.gguf": "qwen2.5",
    "gemma-3-270m-q4_k_m.gguf": "gemma3",
}
TEXTS = [
    "The Eiffel Tower is in the city of",
    "What is the capital of Australia?",
    "naïve café, Straße, Ünïcödé — “quotes” and ‘apostrophes’ … ©®™",
    "日本語のテキストと中文文本，还有한국어 텍스트。",
    "Emoji: 🦘🇦🇺👩‍👩‍👧‍👦 and 🤖! مرحبا بالعالم שלום עולם",
    "Numbers: 1 12 123 1234 12345 3.14159 -42 1,000,000 2024-11-24 0x1F 1e-9",
    "Whitespace:  two  spaces,\tone tab,\t\ttwo tabs,\n\nnewlines\n\n\n   and trailing   ",
    "   leading spaces",
    "fn main() {\n    let x: Vec<u8> = vec![1, 2, 3];\n    println!(\"{x:?}\"); // done\n}\n",
    "def f(x):\n\treturn x**2 if x>0 else -x  # comment\n",
    "I'm sure they'll say WE'VE done it; can't stop, won't stop. It's John's.",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
    "<|endoftext|>text<think>reasoning</think><tool_call>{\"a\": 1}</tool_call>",
    "a",
    "\n",
    "!!!??? ... --- ___ *** ### @@@ $$$ %%% ^^^ &&& ((( )))",
    "https://example.com/path?query=1&b=two#frag email@test.org",
    "The capital of Australia is Canberra, not Sydney or Melbourne.",
]


def main():
    out_dir = ROOT / "app/lens/tests/fixtures/tokenizer"
    out_dir.mkdir(parents=True, exist_ok=True)
    for file, name in MODELS.items():
        arch, tok_dict, _config = mapping.get_gguf_tokenizer(str(ROOT / "models" / file))
        backend, _ = mapping.convert_gguf_tokenizer(arch, tok_dict)
        cases = [{"text": t, "ids": backend.encode(t, add_special_tokens=False).ids} for t in TEXTS]
        record = {"model": file, "transformers": transformers.__version__, "cases": cases}
        (out_dir / f"{name}.json").write_text(json.dumps(record, ensure_ascii=False, indent=1))
        print(f"wrote {name}.json ({len(cases)} texts)")


if __name__ == "__main__":
    main()
