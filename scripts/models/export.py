"""Export trained checkpoints to ONNX (opset 17) with Hugging Face I/O naming.

  /usr/bin/python3 scripts/models/export.py [coder coder-draft gpt2-coder llama-32l-tiny]

Per model:
  models/<name>.onnx          input_ids, attention_mask, position_ids, past_key_values.{i}.key/.value
                              -> logits, present.{i}.key/.value
  models/<name>.no-past.onnx  input_ids, attention_mask, position_ids -> logits
Extra:
  models/coder.external.onnx (+ .onnx.data)   coder.onnx with weights as ONNX external data;
                                              coder.no-past.onnx reads its weights from that same
                                              .data file (identical tensors, matched by content)
  models/llama-32l-tiny.onnx (+ .onnx.data)   untrained (seed 0) 32-layer tiny LLaMA, with past,
                                              weights in external data
"""
import os
import sys
import tempfile

import json

import onnx
import torch

from modeling import build, num_kv_heads, head_dim, num_layers

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(REPO, "models")
CACHE = os.path.join(HERE, ".cache")
OPSET = 17


class WithPast(torch.nn.Module):
    def __init__(self, model, n_layers):
        super().__init__()
        self.model = model
        self.n_layers = n_layers

    def forward(self, input_ids, attention_mask, position_ids, *past):
        pkv = [(past[2 * i], past[2 * i + 1]) for i in range(self.n_layers)]
        logits, presents = self.model(input_ids, attention_mask, position_ids, pkv)
        out = [logits]
        for k, v in presents:
            out += [k, v]
        return tuple(out)


class NoPast(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, position_ids):
        logits, _ = self.model(input_ids, attention_mask, position_ids, None)
        return logits


def load(name):
    model, kind, cfg = build(name)
    if name == "llama-32l-tiny":
        torch.manual_seed(0)
        model, kind, cfg = build(name)  # random init, seeded
    else:
        ck = torch.load(os.path.join(CACHE, f"{name}.pt"), map_location="cpu")
        model.load_state_dict(ck["state_dict"])
    model.eval()
    return model, kind, cfg


def export(name, path_with_past, path_no_past):
    model, kind, cfg = load(name)
    L, H, D = num_layers(kind, cfg), num_kv_heads(kind, cfg), head_dim(kind, cfg)
    b, s, p = 2, 3, 4
    input_ids = torch.randint(0, 256, (b, s), dtype=torch.int64)
    attention_mask = torch.ones(b, p + s, dtype=torch.int64)
    position_ids = torch.arange(p, p + s, dtype=torch.int64)[None].repeat(b, 1)
    past = []
    past_names, present_names = [], []
    dyn = {
        "input_ids": {0: "batch_size", 1: "sequence_length"},
        "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
        "position_ids": {0: "batch_size", 1: "sequence_length"},
        "logits": {0: "batch_size", 1: "sequence_length"},
    }
    for i in range(L):
        for kv in ("key", "value"):
            past.append(torch.randn(b, H, p, D))
            pn, qn = f"past_key_values.{i}.{kv}", f"present.{i}.{kv}"
            past_names.append(pn)
            present_names.append(qn)
            dyn[pn] = {0: "batch_size", 2: "past_sequence_length"}
            dyn[qn] = {0: "batch_size", 2: "total_sequence_length"}
    with torch.no_grad():
        if path_with_past:
            torch.onnx.export(WithPast(model, L), (input_ids, attention_mask, position_ids, *past), path_with_past,
                              input_names=["input_ids", "attention_mask", "position_ids"] + past_names,
                              output_names=["logits"] + present_names, dynamic_axes=dyn,
                              opset_version=OPSET, do_constant_folding=True)
        if path_no_past:
            dyn_np = {k: v for k, v in dyn.items() if k in ("input_ids", "position_ids", "logits")}
            dyn_np["attention_mask"] = {0: "batch_size", 1: "sequence_length"}
            am = torch.ones(b, s, dtype=torch.int64)
            pos = torch.arange(s, dtype=torch.int64)[None].repeat(b, 1)
            torch.onnx.export(NoPast(model), (input_ids, am, pos), path_no_past,
                              input_names=["input_ids", "attention_mask", "position_ids"],
                              output_names=["logits"], dynamic_axes=dyn_np,
                              opset_version=OPSET, do_constant_folding=True)


def set_doc(path, name, external=None):
    m = onnx.load(path)
    m.producer_name = "pytorch"  # (torch.onnx sets this; kept)
    m.doc_string = f"lfc models/{name}: see models/README.md"
    onnx.checker.check_model(m)
    if external:
        onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=external, size_threshold=1024)
        onnx.checker.check_model(path)
    else:
        onnx.save_model(m, path)
    print(f"{os.path.relpath(path, REPO)}: {len(m.graph.node)} nodes, ops "
          f"{sorted(set(n.op_type for n in m.graph.node))}", flush=True)


def update_manifest(name):
    """models/manifest.json: shapes the tests (and tools) need without parsing the graphs."""
    path = os.path.join(OUT, "manifest.json")
    man = json.load(open(path)) if os.path.exists(path) else {}
    model, kind, cfg = build(name)
    files = {"with_past": f"{name}.onnx"}
    if name == "llama-32l-tiny":
        files["external_data"] = f"{name}.onnx.data"
    else:
        files["no_past"] = f"{name}.no-past.onnx"
    if name == "coder":
        files["external"] = "coder.external.onnx"
        files["external_data"] = "coder.external.onnx.data"
    man[name] = {
        "arch": kind,
        "trained": name != "llama-32l-tiny",
        "params": sum(p.numel() for p in model.parameters()),
        "num_layers": num_layers(kind, cfg),
        "num_kv_heads": num_kv_heads(kind, cfg),
        "head_dim": head_dim(kind, cfg),
        "vocab_size": cfg.vocab_size,
        "bos": 256, "eos": 257, "pad": 258,
        "config": cfg.to_dict(),
        "files": files,
    }
    with open(path, "w") as fh:
        json.dump(dict(sorted(man.items())), fh, indent=2)
        fh.write("\n")


def share_external(path, ext_path):
    """Point the initializers of `path` (inline) at identical tensors already stored in the
    external data file of `ext_path`, so that two graphs of one model keep one copy of the weights.
    Tensors not found there (or under 1024 bytes) stay inline."""
    import hashlib
    from onnx import numpy_helper
    ext = onnx.load(ext_path, load_external_data=False)
    base = os.path.dirname(ext_path)
    blobs = {}
    cache = {}
    for t in ext.graph.initializer:
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in t.external_data}
        loc, off, ln = info["location"], int(info.get("offset", 0)), int(info["length"])
        if loc not in cache:
            cache[loc] = open(os.path.join(base, loc), "rb").read()
        h = hashlib.sha256(cache[loc][off:off + ln]).hexdigest()
        blobs[(t.data_type, tuple(t.dims), h)] = (loc, off, ln)
    m = onnx.load(path)
    shared = 0
    for t in m.graph.initializer:
        raw = numpy_helper.to_array(t).tobytes()
        key = (t.data_type, tuple(t.dims), hashlib.sha256(raw).hexdigest())
        if len(raw) < 1024 or key not in blobs:
            continue
        loc, off, ln = blobs[key]
        t.ClearField("raw_data")
        t.ClearField("float_data")
        t.data_location = onnx.TensorProto.EXTERNAL
        del t.external_data[:]
        for k, v in (("location", loc), ("offset", str(off)), ("length", str(ln))):
            e = t.external_data.add()
            e.key, e.value = k, v
        shared += 1
    onnx.save_model(m, path)
    onnx.checker.check_model(path)
    print(f"{os.path.relpath(path, REPO)}: {shared} initializers now read from {os.path.basename(ext_path)}.data "
          f"({sum(1 for t in m.graph.initializer if t.data_location != onnx.TensorProto.EXTERNAL)} inline)")


def main(names):
    os.makedirs(OUT, exist_ok=True)
    for name in names:
        update_manifest(name)
        if name == "llama-32l-tiny":
            with tempfile.TemporaryDirectory() as td:
                tmp = os.path.join(td, "m.onnx")
                export(name, tmp, None)
                m = onnx.load(tmp)
            final = os.path.join(OUT, f"{name}.onnx")
            onnx.save_model(m, final)
            set_doc(final, name, external=f"{name}.onnx.data")
            continue
        wp = os.path.join(OUT, f"{name}.onnx")
        np_ = os.path.join(OUT, f"{name}.no-past.onnx")
        export(name, wp, np_)
        set_doc(wp, name)
        set_doc(np_, name)
        if name == "coder":
            ext = os.path.join(OUT, "coder.external.onnx")
            data = ext + ".data"
            if os.path.exists(data):
                os.remove(data)
            onnx.save_model(onnx.load(wp), ext)
            set_doc(ext, name, external="coder.external.onnx.data")
            # keep the repository small: coder.no-past.onnx reads the same weights
            share_external(np_, ext)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1:] or ["coder", "coder-draft", "gpt2-coder", "llama-32l-tiny"])
