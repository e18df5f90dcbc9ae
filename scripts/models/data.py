"""Deterministic data splits from the Python 3.11 standard library source.

Files: sorted(glob('/usr/lib/python3.11/**/*.py', recursive=True)).
  index % 20 == 0  -> held-out (never trained on)
  index % 20 == 1  -> calibration
  otherwise        -> training
Token stream per file: [BOS] + bytes + [EOS] (byte-level vocabulary, see modeling.py).
"""
import glob
import json
import os

import numpy as np

from modeling import BOS, EOS

ROOT = "/usr/lib/python3.11"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA_DIR = os.path.join(REPO, "models", "data")

HELDOUT_BYTES = 320 * 1024
CALIB_BYTES = 100 * 1024


def files():
    return sorted(glob.glob(os.path.join(ROOT, "**", "*.py"), recursive=True))


def split(kind):
    fs = files()
    if kind == "heldout":
        return [f for i, f in enumerate(fs) if i % 20 == 0]
    if kind == "calib":
        return [f for i, f in enumerate(fs) if i % 20 == 1]
    return [f for i, f in enumerate(fs) if i % 20 not in (0, 1)]


def read(f):
    with open(f, "rb") as fh:
        return fh.read()


def token_stream(kind):
    parts = []
    for f in split(kind):
        b = read(f)
        if not b:
            continue
        parts.append(np.array([BOS], dtype=np.int64))
        parts.append(np.frombuffer(b, dtype=np.uint8).astype(np.int64))
        parts.append(np.array([EOS], dtype=np.int64))
    return np.concatenate(parts)


def concat_text(kind, limit):
    """Whole files of a split concatenated (in sorted order) until `limit` bytes, then cut."""
    out = bytearray()
    for f in split(kind):
        b = read(f)
        if not b:
            continue
        out += b
        if not b.endswith(b"\n"):
            out += b"\n"
        if len(out) >= limit:
            break
    return bytes(out[:limit])


def write_data_files():
    os.makedirs(DATA_DIR, exist_ok=True)
    held = concat_text("heldout", HELDOUT_BYTES)
    with open(os.path.join(DATA_DIR, "heldout.txt"), "wb") as fh:
        fh.write(held)
    with open(os.path.join(DATA_DIR, "calib.txt"), "wb") as fh:
        fh.write(concat_text("calib", CALIB_BYTES))
    # prompts: ~16 code prompts, each the start of a function or class definition in a held-out file
    prompts = []
    seen = set()
    for f in split("heldout"):
        text = read(f).decode("utf-8", errors="replace")
        lines = text.split("\n")
        for i, line in enumerate(lines):
            s = line.strip()
            if (s.startswith("def ") or s.startswith("class ")) and line.endswith(":") and i + 2 < len(lines):
                p = "\n".join(lines[max(0, i - 2): i + 2]) + "\n"
                if 40 <= len(p) <= 400 and p not in seen and "\ufffd" not in p:
                    prompts.append(p)
                    seen.add(p)
                break  # at most one prompt per file
        if len(prompts) >= 16:
            break
    with open(os.path.join(DATA_DIR, "prompts.json"), "w") as fh:
        json.dump(prompts, fh, indent=2)
        fh.write("\n")
    return held


if __name__ == "__main__":
    held = write_data_files()
    for k in ("train", "heldout", "calib"):
        s = split(k)
        print(k, len(s), "files", sum(os.path.getsize(f) for f in s), "bytes")
    print("heldout.txt", len(held))
