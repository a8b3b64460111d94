#!/usr/bin/env python3
"""The PyTorch side of the benchmark (not a test): the logit lens as a careful Python user computes
it with Hugging Face transformers + PyTorch in float32 on the CPU, timed from the token ids to every
row's entropy and top-5 (forward with every hidden state, then lm_head(final_norm(h)) per row); the
model load is excluded. The ids come from a `loupe --json` report, so both tools lens the same tokens.

    python tests/bench/pytorch-bench.py MODEL.gguf REPORT.json [REPEAT]   -> prints {"seconds": ...}

Needs a virtualenv with torch, transformers, gguf and accelerate; browser-bench.mjs calls it when
PYTORCH=/path/to/that/python is set.
"""
import json, pathlib, statistics, sys, time

import torch
from transformers import AutoModelForCausalLM


@torch.no_grad()
def lens(model, ids):
    out = model(torch.tensor([ids]), output_hidden_states=True)
    inner = model.model
    # hidden_states: the embedding output, then each block's output; the last has the final norm
    # applied already, so it is decoded without it (it equals the model's logits).
    states = out.hidden_states
    cap = getattr(model.config, "final_logit_softcapping", None)
    results = []
    for i, h in enumerate(states):
        z = model.lm_head(h[0] if i == len(states) - 1 else inner.norm(h[0]))
        if cap:
            z = torch.tanh(z / cap) * cap
        logp = torch.log_softmax(z, dim=-1)
        entropy = -(logp.exp() * logp).sum(-1)
        top = logp.topk(5, dim=-1)
        results.append((entropy, top))
    return results


def main():
    model_file, report, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 3
    ids = json.loads(pathlib.Path(report).read_text())["ids"]
    path = pathlib.Path(model_file)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    model.eval()
    lens(model, ids)  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        lens(model, ids)
        times.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": statistics.median(times), "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
