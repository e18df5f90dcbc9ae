"""Train one of the small byte-level models on the Python 3.11 stdlib source.

  nice -n 10 /usr/bin/python3 scripts/models/train.py --model coder --steps N [--batch 16]

Checkpoints go to scripts/models/.cache/<name>.pt (not committed).
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import data
from modeling import build, MODELS

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache")

DEFAULTS = {  # lr, batch
    "coder": (2e-3, 16),
    "coder-draft": (3e-3, 16),
    "gpt2-coder": (1.5e-3, 16),
}


@torch.no_grad()
def eval_bpb(model, stream, windows=64, seq=256, seed=1234):
    """Mean cross-entropy in bits/token over `windows` random held-out windows (seeded)."""
    model.eval()
    g = np.random.default_rng(seed)
    starts = g.integers(0, len(stream) - seq - 1, size=windows)
    tot, n = 0.0, 0
    for i in range(0, windows, 16):
        idx = starts[i:i + 16]
        x = torch.from_numpy(np.stack([stream[s:s + seq] for s in idx]))
        y = torch.from_numpy(np.stack([stream[s + 1:s + seq + 1] for s in idx]))
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum")
        tot += loss.item()
        n += y.numel()
    model.train()
    return tot / n / math.log(2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, choices=[m for m in MODELS if m != "llama-32l-tiny"])
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=250)
    args = ap.parse_args()
    lr0, batch0 = DEFAULTS[args.model]
    lr = args.lr or lr0
    batch = args.batch or batch0

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    os.makedirs(CACHE, exist_ok=True)

    train = data.token_stream("train")
    held = data.token_stream("heldout")
    print(f"train tokens {len(train)} heldout tokens {len(held)}", flush=True)

    model, kind, cfg = build(args.model)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"{args.model} ({kind}) params {nparams} cfg {cfg.to_dict()}", flush=True)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95))

    def lr_at(step):
        if step < args.warmup:
            return lr * (step + 1) / args.warmup
        p = (step - args.warmup) / max(1, args.steps - args.warmup)
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))

    t0 = time.time()
    log = []
    for step in range(args.steps):
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step)
        starts = rng.integers(0, len(train) - args.seq - 1, size=batch)
        x = torch.from_numpy(np.stack([train[s:s + args.seq] for s in starts]))
        y = torch.from_numpy(np.stack([train[s + 1:s + args.seq + 1] for s in starts]))
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 10 == 0 or step == args.steps - 1:
            el = time.time() - t0
            print(f"step {step} loss {loss.item():.4f} bits {loss.item() / math.log(2):.3f} "
                  f"lr {lr_at(step):.2e} {el:.0f}s ({el / (step + 1):.2f} s/step)", flush=True)
        if (step + 1) % args.eval_every == 0 or step == args.steps - 1:
            hb = eval_bpb(model, held)
            print(f"eval step {step + 1} heldout bits/token {hb:.4f}", flush=True)
            log.append({"step": step + 1, "heldout_bits_per_token": hb, "train_loss_bits": loss.item() / math.log(2)})
            torch.save({"model": args.model, "state_dict": model.state_dict(), "config": cfg.to_dict(),
                        "step": step + 1, "args": vars(args), "log": log,
                        "train_seconds": time.time() - t0, "params": nparams},
                       os.path.join(CACHE, f"{args.model}.pt"))
    print(f"done {args.steps} steps in {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
