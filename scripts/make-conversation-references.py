#!/usr/bin/env python3
"""Logit-lens references for conversations, from Hugging Face transformers + PyTorch (fp32, CPU), in
the reference files' form (app/lens/tests/fixtures/reference): each conversation rendered by the
tokenizer's `apply_chat_template(messages, add_generation_prompt=True)`, tokenized without extra
special tokens, run once, and every block's output (hooked, as `hooked_lens.py` reads them) decoded
as lm_head(final_norm(h)). Writes <model>__conversation-<name>.json beside the single-message
references, `prompt` being `{"messages": [...]}`.

Gemma 3 270M is a base model without a chat template: the standard Gemma turn template
(`gemma-chat-template.jinja`, as for its other reference) renders its conversations; that template
folds a system message into the first user turn.

Needs `pip install torch transformers gguf accelerate` (a virtualenv; not part of the README's commands).
Run after scripts/fetch-models.sh:  python3 scripts/make-conversation-references.py
"""
import json
import pathlib

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hooked_lens import sublayer_lens

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
OUT = ROOT / "app/lens/tests/fixtures/reference"
GEMMA_TEMPLATE = OUT / "gemma-chat-template.jinja"

# Written for the project: short turns of a tutor dialogue, 2 to 6 messages, with and without a
# system message, each ending on the user's question.
CONVERSATIONS = {
    "two-turns": [
        {"role": "system", "content": "You are a patient geography tutor. Answer in one short sentence."},
        {"role": "user", "content": "Which river flows through Cairo?"},
    ],
    "three-turns": [
        {"role": "user", "content": "Hi! Can you help me revise capital cities?"},
        {"role": "assistant", "content": "Of course. Ask me about any country and I will name its capital."},
        {"role": "user", "content": "What is the capital of Canada?"},
    ],
    "six-turns": [
        {"role": "system", "content": "You are a patient geography tutor. Answer in one short sentence."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
        {"role": "user", "content": "And the largest city of Australia?"},
        {"role": "assistant", "content": "Sydney is the largest city in Australia."},
        {"role": "user", "content": "What is the capital of Australia?"},
    ],
}

MODEL_FILES = {
    "smollm2-135m": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "qwen2.5-coder-0.5b": "qwen2.5-coder-0.5b-instruct.gguf",
    "gemma3-270m": "gemma-3-270m-q4_k_m.gguf",
}


def main():
    torch.set_grad_enabled(False)
    for short, file in MODEL_FILES.items():
        tok = AutoTokenizer.from_pretrained(MODELS, gguf_file=file)
        model = AutoModelForCausalLM.from_pretrained(MODELS, gguf_file=file, dtype=torch.float32).eval()
        extra = {}
        if short.startswith("gemma"):
            tok.chat_template = GEMMA_TEMPLATE.read_text()
            extra = {"template": "gemma"}
        for name, messages in CONVERSATIONS.items():
            text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            ids = tok(text, add_special_tokens=False)["input_ids"]
            labels, entropy, top_ids, top_probs, maxdiff, _ = sublayer_lens(model, ids, "0")
            # Block outputs only: the embedding output, then each block's ("1m", "2m", ...).
            keep = [i for i, label in enumerate(labels) if label == "0" or label.endswith("m")]
            out = {
                "model": file,
                "prompt": {"messages": messages, **extra},
                "text": text,
                "ids": ids,
                "tokens": tok.convert_ids_to_tokens(ids),
                "n_rows": len(keep),
                "entropy": [entropy[i] for i in keep],
                "top_ids": [top_ids[i] for i in keep],
                "top_probs": [top_probs[i] for i in keep],
                "top_tokens": [[tok.convert_ids_to_tokens(cell) for cell in top_ids[i]] for i in keep],
                "last_row_vs_model_logits_maxdiff": maxdiff,
            }
            path = OUT / f"{short}__conversation-{name}.json"
            path.write_text(json.dumps(out))
            print(f"{path.name}: {len(ids)} tokens, {len(keep)} rows, last row vs model {maxdiff:.2e}")


if __name__ == "__main__":
    main()
