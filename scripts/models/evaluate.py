"""Held-out bits/byte and greedy samples of the trained checkpoints (PyTorch).

  /usr/bin/python3 scripts/models/evaluate.py [coder coder-draft gpt2-coder]

Writes models/data/metrics.json and models/data/samples.json.

bits/byte procedure (replicated by test/models/models.test.ts through onnxruntime on the no-past
export): take the first 16384 bytes of models/data/heldout.txt, split them into 64 chunks of 256
bytes. Each chunk c is fed as input_ids = [BOS] + c[0:255] (256 tokens), attention_mask all ones,
position_ids 0..255; the logits at position t predict byte c[t]. bits/byte = mean over all 16384
predicted bytes of -log2 softmax(logits)[byte]. Chunks never see each other (no shared context).
The same procedure over the whole of heldout.txt (1280 chunks) gives `heldout_full`.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

from modeling import BOS, EOS, build

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DATA = os.path.join(REPO, "models", "data")
CACHE = os.path.join(HERE, ".cache")
NAMES = ["coder", "coder-draft", "gpt2-coder"]
CHUNK = 256


def load(name):
    model, kind, cfg = build(name)
    ck = torch.load(os.path.join(CACHE, f"{name}.pt"), map_location="cpu")
    model.load_state_dict(ck["state_dict"])
    model.eval()
    return model, ck


@torch.no_grad()
def bpb(model, data, per_run=16):
    n = len(data) // CHUNK
    bits = 0.0
    for c0 in range(0, n, per_run):
        cs = range(c0, min(n, c0 + per_run))
        x = torch.tensor([[BOS] + list(data[c * CHUNK:(c + 1) * CHUNK - 1]) for c in cs], dtype=torch.int64)
        y = torch.tensor([list(data[c * CHUNK:(c + 1) * CHUNK]) for c in cs], dtype=torch.int64)
        pos = torch.arange(CHUNK)[None].expand(len(cs), CHUNK)
        logits, _ = model(x, torch.ones_like(x), pos)
        bits += F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(), y.reshape(-1), reduction="sum").item() / math.log(2)
    return bits / (n * CHUNK)


@torch.no_grad()
def greedy(model, prompt, n=160):
    toks = [BOS] + list(prompt.encode("utf-8"))
    x = torch.tensor([toks])
    logits, past = model(x, torch.ones_like(x), torch.arange(len(toks))[None])
    out = []
    for _ in range(n):
        t = int(logits[0, -1].argmax())
        if t == EOS or t > 255:
            break
        out.append(t)
        L = len(toks) + len(out)
        logits, past = model(torch.tensor([[t]]), torch.ones(1, L, dtype=torch.int64), torch.tensor([[L - 1]]), past)
    return bytes(out).decode("utf-8", errors="replace")


def main(names):
    torch.set_num_threads(1)
    held = open(os.path.join(DATA, "heldout.txt"), "rb").read()
    prompts = json.load(open(os.path.join(DATA, "prompts.json")))
    metrics = {
        "procedure": {
            "file": "models/data/heldout.txt", "bytes": 16384, "chunk": CHUNK,
            "input": "[BOS] + chunk[0:255], attention_mask ones, position_ids 0..255",
            "target": "chunk[0:256]", "unit": "mean -log2 p(byte) over all 16384 bytes",
            "computed_with": "PyTorch (scripts/models/evaluate.py); checked through onnxruntime-node on <name>.no-past.onnx",
        },
        "bits_per_byte": {},
        "heldout_full_bits_per_byte": {},
        "models": {},
    }
    samples = {}
    mpath, spath = os.path.join(DATA, "metrics.json"), os.path.join(DATA, "samples.json")
    if os.path.exists(mpath):  # update in place when evaluating a subset
        old = json.load(open(mpath))
        for k in ("bits_per_byte", "heldout_full_bits_per_byte", "models"):
            metrics[k].update(old.get(k, {}))
    if os.path.exists(spath):
        samples.update(json.load(open(spath)))
    for name in names:
        model, ck = load(name)
        metrics["bits_per_byte"][name] = round(bpb(model, held[:16384]), 5)
        metrics["heldout_full_bits_per_byte"][name] = round(bpb(model, held), 5)
        metrics["models"][name] = {"params": ck["params"], "steps": ck["step"], "batch": ck["args"]["batch"] or 16,
                                   "seq": ck["args"]["seq"], "train_seconds": round(ck["train_seconds"]),
                                   "eval_log": ck["log"]}
        samples[name] = [{"prompt": p, "greedy": greedy(model, p)} for p in prompts[:4]]
        print(name, metrics["bits_per_byte"][name], metrics["heldout_full_bits_per_byte"][name], flush=True)
    for k in ("bits_per_byte", "heldout_full_bits_per_byte", "models"):
        metrics[k] = {n: metrics[k][n] for n in NAMES if n in metrics[k]}
    samples = {n: samples[n] for n in NAMES if n in samples}
    with open(mpath, "w") as fh:
        json.dump(metrics, fh, indent=2)
        fh.write("\n")
    with open(spath, "w") as fh:
        json.dump(samples, fh, indent=2)
        fh.write("\n")


if __name__ == "__main__":
    import sys
    main(sys.argv[1:] or NAMES)
