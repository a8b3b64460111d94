#!/usr/bin/env python3
"""Records how Hugging Face transformers tokenizes varied texts with the tokenizer it builds from each
test model's GGUF metadata (the same oracle as app/lens/tests/fixtures/reference), into
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
# The varied texts, shared with the Rust tests (llama3_tokenizer.rs reads them too).
TEXTS = json.loads((ROOT / "app/lens/tests/fixtures/tokenizer/texts.json").read_text())


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
