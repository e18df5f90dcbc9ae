#!/usr/bin/env python3
"""Ceilings and baselines of the GPU at lfc's benchmark shapes, measured with PyTorch.

What lfc's kernels are compared against (compiler/tools/gpu-check.ts reads the JSON):

- bf16 GEMM TFLOP/s, torch.matmul of x[M, K] @ W[K, N] for M in {1, 16, 128, 4096} at the
  projection shapes of LLaMA-2-7B and LLaMA-3-8B (q/k/v/o, fused qkv, gate/up, fused gate_up,
  down, lm_head). Small M is memory-bound, so each entry also records GB/s of operands moved,
  and rotates through enough copies of W that it is read from HBM, not from L2;
- fp8 e4m3 GEMM via torch._scaled_mm, when this torch and card have it (M padded to 16);
- device copy bandwidth (dst.copy_(src) of 1 GiB; GB/s counts read + write);
- F.scaled_dot_product_attention: causal prefill at 512/2048/4096 tokens, 32 heads x 128, MHA and
  GQA (8 kv heads; enable_gqa when supported, else K/V expanded beforehand), and decode-like
  q_len 1 against 1k-8k tokens of context at batch 1 and 16.

Timing: after warmup, `inner` back-to-back calls captured as one CUDA graph (no Python launch
overhead in small kernels; eager launches where capture fails), timed per replay with CUDA events;
the median of `samples` replays.
FLOPs follow lfc's cost model (compiler/kernels/cost.ts): GEMM 2·M·N·K; attention
4·D·H·(attended keys), causal prefill attending S(S+1)/2 keys.

Usage:  python3 baselines.py OUTDIR [--quick] [--dry-run]
  writes OUTDIR/baselines.json and prints a short table last. Runs in well under a minute on an
  H100. --dry-run: CPU tensors at tiny shapes through the same code paths (checks the script
  where there is no GPU; its numbers mean nothing).
"""
import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F

# Projection shapes (K = input features, N = output features) of the two reference models.
LLAMA2_7B = {"hidden": 4096, "ffn": 11008, "heads": 32, "kv_heads": 32, "head_dim": 128, "vocab": 32000}
LLAMA3_8B = {"hidden": 4096, "ffn": 14336, "heads": 32, "kv_heads": 8, "head_dim": 128, "vocab": 128256}


def projection_shapes(cfg):
    h, f, kvd = cfg["hidden"], cfg["ffn"], cfg["kv_heads"] * cfg["head_dim"]
    return {
        "q": (h, h), "k": (h, kvd), "v": (h, kvd), "qkv": (h, h + 2 * kvd), "o": (h, h),
        "gate": (h, f), "up": (h, f), "gate_up": (h, 2 * f), "down": (f, h), "lm_head": (h, cfg["vocab"]),
    }


def gemm_shapes(scale=1):
    """Distinct (K, N) with the layers that use them: {(K, N): ['llama2-7b.q', ...]}."""
    out = {}
    for model, cfg in (("llama2-7b", LLAMA2_7B), ("llama3-8b", LLAMA3_8B)):
        for layer, (k, n) in projection_shapes(cfg).items():
            key = (max(1, k // scale), max(1, n // scale))
            out.setdefault(key, []).append(f"{model}.{layer}")
    return out


class Timer:
    """Median seconds per call of fn.

    On the GPU, `inner` back-to-back calls are captured once as a CUDA graph and each sample times
    one replay with CUDA events, so Python launch overhead does not pad small kernels (eager
    launches, if capture fails, are recorded in `eager`). On the CPU: perf_counter.
    """

    def __init__(self, device, warmup, samples, inner, graphs=True):
        self.device, self.warmup, self.samples, self.inner, self.graphs = device, warmup, samples, inner, graphs
        self.captured, self.eager = 0, []

    def __call__(self, fn, inner=None):
        inner = inner or self.inner
        for _ in range(self.warmup):
            fn()
        self.sync()

        def eager():
            for _ in range(inner):
                fn()

        run, graph = eager, None
        if self.device.type == "cuda" and self.graphs:
            try:
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    fn()
                torch.cuda.current_stream().wait_stream(side)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    eager()
                run = graph.replay
                run()
                self.captured += 1
            except Exception as e:  # noqa: BLE001 - fall back to eager launches, say so
                self.eager.append(f"{type(e).__name__}: {e}".splitlines()[0][:200])
                run, graph = eager, None
            self.sync()
        times = []
        for _ in range(self.samples):
            if self.device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                run()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end) / 1e3 / inner)
            else:
                t0 = time.perf_counter()
                run()
                times.append((time.perf_counter() - t0) / inner)
        del graph
        return statistics.median(times)

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def l2_bytes(device):
    if device.type != "cuda":
        return 1 << 20
    props = torch.cuda.get_device_properties(device)
    return getattr(props, "L2_cache_size", 50 << 20) or (50 << 20)


def bench_gemm(dev, dtype, timer, ms, shapes, rotate_bytes):
    rows = []
    for (k, n), users in shapes.items():
        w_bytes = k * n * torch.tensor([], dtype=dtype).element_size()
        copies = max(1, math.ceil(rotate_bytes / w_bytes))
        ws = [torch.randn(k, n, device=dev, dtype=torch.float32).to(dtype) for _ in range(copies)]
        for m in ms:
            x = torch.randn(m, k, device=dev, dtype=torch.float32).to(dtype)
            out = torch.empty(m, n, device=dev, dtype=dtype)
            it = [0]

            def run():
                torch.matmul(x, ws[it[0] % copies], out=out)
                it[0] += 1

            s = timer(run, inner=min(64, max(timer.inner, copies)))  # every copy used within one sample
            flops = 2 * m * n * k
            moved = (m * k + k * n + m * n) * x.element_size()
            rows.append({"M": m, "K": k, "N": n, "layers": users, "weight_copies": copies, "seconds": s,
                         "tflops": flops / s / 1e12, "gbs": moved / s / 1e9})
        del ws
    return rows


def scaled_mm(a, b, scale_a, scale_b):
    """torch._scaled_mm across versions: 2.1-2.3 return (out, amax) and take scales as keywords."""
    r = torch._scaled_mm(a, b, scale_a=scale_a, scale_b=scale_b, out_dtype=torch.bfloat16)
    return r[0] if isinstance(r, tuple) else r


def bench_fp8(dev, timer, ms, shapes):
    fp8 = getattr(torch, "float8_e4m3fn", None)
    if fp8 is None or not hasattr(torch, "_scaled_mm"):
        return {"available": False, "reason": f"torch {torch.__version__} has no float8_e4m3fn/_scaled_mm", "rows": []}
    if dev.type != "cuda":
        return {"available": False, "reason": "fp8 _scaled_mm needs a CUDA device (sm_89+)", "rows": []}
    rows, err = [], None
    one = torch.ones((), device=dev, dtype=torch.float32)
    for (k, n), users in shapes.items():
        w = torch.randn(n, k, device=dev).to(fp8)  # row-major [N, K]: w.t() is the column-major B _scaled_mm wants
        for m in ms:
            mp = max(16, (m + 15) // 16 * 16)
            x = torch.randn(mp, k, device=dev).to(fp8)
            try:
                s = timer(lambda: scaled_mm(x, w.t(), one, one))
            except Exception as e:  # noqa: BLE001 - record why, keep going
                err = f"{type(e).__name__}: {e}".splitlines()[0]
                rows.append({"M": m, "K": k, "N": n, "layers": users, "error": err})
                continue
            rows.append({"M": m, "M_padded": mp, "K": k, "N": n, "layers": users, "seconds": s,
                         "tflops": 2 * m * n * k / s / 1e12, "tflops_padded": 2 * mp * n * k / s / 1e12,
                         "gbs": (mp * k + k * n) * 1 / s / 1e9})
        del w
    ok = any("tflops" in r for r in rows)
    return {"available": ok, "reason": None if ok else err, "rows": rows}


def bench_copy(dev, timer, nbytes):
    src = torch.empty(nbytes, device=dev, dtype=torch.uint8).random_(0, 255)
    dst = torch.empty_like(src)
    s = timer(lambda: dst.copy_(src), inner=5)
    return [{"bytes": nbytes, "seconds": s, "gbs": 2 * nbytes / s / 1e9, "counts": "read + write"}]


def has_enable_gqa():
    if not hasattr(F, "scaled_dot_product_attention"):
        return False
    try:
        q = torch.zeros(1, 2, 1, 4)
        kv = torch.zeros(1, 1, 1, 4)
        F.scaled_dot_product_attention(q, kv, kv, enable_gqa=True)
        return True
    except (TypeError, RuntimeError):
        return False


def attention(q, k, v, causal, gqa_native):
    if hasattr(F, "scaled_dot_product_attention"):
        if gqa_native and k.shape[1] != q.shape[1]:
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    # torch < 2.0 (the dry run's CPU torch): the same math, unfused
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        n = q.shape[-2]
        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return torch.softmax(s.float(), -1).to(q.dtype) @ v


def bench_sdpa(dev, dtype, timer, heads, head_dim, prefill, decode):
    gqa_native = has_enable_gqa()
    impl = "F.scaled_dot_product_attention" if hasattr(F, "scaled_dot_product_attention") else "manual (no SDPA in this torch)"
    rows = []

    def kv_for(b, n, kvh):
        k = torch.randn(b, kvh, n, head_dim, device=dev, dtype=dtype)
        v = torch.randn(b, kvh, n, head_dim, device=dev, dtype=dtype)
        if kvh != heads and not gqa_native:  # expanded beforehand: the kernel then reads heads/kvh times more K/V
            k, v = k.repeat_interleave(heads // kvh, 1), v.repeat_interleave(heads // kvh, 1)
        return k, v

    gqa_mode = "enable_gqa" if gqa_native else "K/V repeated to all heads before timing (reads heads/kv_heads x more K/V)"
    for kvh in (heads, max(1, heads // 4)):
        for s in prefill:
            q = torch.randn(1, heads, s, head_dim, device=dev, dtype=dtype)
            k, v = kv_for(1, s, kvh)
            t = timer(lambda: attention(q, k, v, True, gqa_native), inner=3)
            flops = 4 * head_dim * heads * s * (s + 1) / 2
            rows.append({"kind": "prefill", "batch": 1, "q_len": s, "context": s, "heads": heads, "kv_heads": kvh,
                         "head_dim": head_dim, "causal": True, "seconds": t, "tflops": flops / t / 1e12,
                         "gqa": None if kvh == heads else gqa_mode})
            del q, k, v
        for b in decode["batch"]:
            for ctx in decode["context"]:
                q = torch.randn(b, heads, 1, head_dim, device=dev, dtype=dtype)
                k, v = kv_for(b, ctx, kvh)
                t = timer(lambda: attention(q, k, v, False, gqa_native))
                moved = 2 * b * ctx * kvh * head_dim * q.element_size()
                rows.append({"kind": "decode", "batch": b, "q_len": 1, "context": ctx, "heads": heads, "kv_heads": kvh,
                             "head_dim": head_dim, "causal": False, "seconds": t,
                             "tflops": 4 * head_dim * heads * b * ctx / t / 1e12, "gbs_kv": moved / t / 1e9,
                             "gqa": None if kvh == heads else gqa_mode})
                del q, k, v
    return {"impl": impl, "enable_gqa": gqa_native, "rows": rows}


def environment(dev):
    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
           "host": platform.node(), "device": str(dev)}
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        env.update({"name": p.name, "capability": f"{p.major}.{p.minor}", "sms": p.multi_processor_count,
                    "memory_bytes": p.total_memory, "l2_bytes": getattr(p, "L2_cache_size", None),
                    "cudnn": torch.backends.cudnn.version(), "driver_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")})
        for flag in ("flash_sdp_enabled", "mem_efficient_sdp_enabled", "math_sdp_enabled"):
            fn = getattr(torch.backends.cuda, flag, None)
            if fn:
                env[flag] = fn()
    else:
        env["name"] = f"CPU ({platform.processor() or platform.machine()})"
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="folder for baselines.json")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes: check the code paths, not the card")
    ap.add_argument("--quick", action="store_true", help="fewer samples and shapes")
    ap.add_argument("--no-graphs", action="store_true", help="time eager launches instead of CUDA graph replays")
    a = ap.parse_args()
    t_start = time.time()
    torch.manual_seed(0)

    if a.dry_run:
        dev, dtype = torch.device("cpu"), torch.bfloat16
        timer = Timer(dev, warmup=1, samples=3, inner=2)
        ms, scale, rotate = [1, 16], 64, 1 << 20
        heads, head_dim = 4, 16
        prefill, decode = [16, 32], {"batch": [1, 2], "context": [32, 64]}
        copy_bytes = 8 << 20
    else:
        if not torch.cuda.is_available():
            sys.exit("no CUDA device visible to torch (use --dry-run to check the script on a CPU)")
        dev, dtype = torch.device("cuda", 0), torch.bfloat16
        timer = Timer(dev, warmup=3 if a.quick else 5, samples=5 if a.quick else 11, inner=10, graphs=not a.no_graphs)
        ms, scale = ([1, 128, 4096] if a.quick else [1, 16, 128, 4096]), 1
        rotate = 4 * l2_bytes(dev)  # each GEMM's weights exceed L2 several times over: small M reads HBM
        heads, head_dim = 32, 128
        prefill = [512, 2048, 4096]
        decode = {"batch": [1, 16], "context": [1024, 4096] if a.quick else [1024, 2048, 4096, 8192]}
        copy_bytes = 1 << 30

    env = environment(dev)
    shapes = gemm_shapes(scale)
    phases = {}

    def phase(name, fn):
        t0 = time.time()
        try:
            r = fn()
        except Exception as e:  # noqa: BLE001 - one failing phase must not lose the others
            r = {"error": f"{type(e).__name__}: {e}".splitlines()[0]}
        phases[name] = round(time.time() - t0, 2)
        print(f"[baselines] {name}: {phases[name]} s", file=sys.stderr, flush=True)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        return r

    gemm = phase("gemm_bf16", lambda: bench_gemm(dev, dtype, timer, ms, shapes, rotate))
    fp8 = phase("gemm_fp8", lambda: bench_fp8(dev, timer, ms, shapes))
    copy = phase("copy", lambda: bench_copy(dev, timer, copy_bytes))
    sdpa = phase("sdpa", lambda: bench_sdpa(dev, dtype, timer, heads, head_dim, prefill, decode))

    result = {"schema": "lfc.baselines", "version": 1, "dry_run": a.dry_run, "environment": env,
              "timing": {"method": ("cuda graph replay, cuda events" if timer.graphs else "eager launches, cuda events") if dev.type == "cuda" else "perf_counter",
                         "warmup": timer.warmup, "samples": timer.samples, "inner": timer.inner, "graphs_captured": timer.captured,
                         "eager_fallbacks": timer.eager, "statistic": "median seconds per call"},
              "gemm": gemm, "fp8": fp8, "copy": copy, "sdpa": sdpa, "phase_seconds": phases,
              "total_seconds": round(time.time() - t_start, 2)}
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "baselines.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print_table(result, path)


def print_table(r, path):
    env = r["environment"]
    print(f"\n{env['name']}  torch {env['torch']}  CUDA {env['cuda']}  ({r['total_seconds']} s){'  DRY RUN' if r['dry_run'] else ''}")
    g = r["gemm"]
    if isinstance(g, list) and g:
        ms = sorted({x["M"] for x in g})
        print("bf16 GEMM TFLOP/s (GB/s of operands where M <= 16)")
        print(f"  {'K':>6} {'N':>7} " + "".join(f"{'M=' + str(m):>16}" for m in ms) + "  layers")
        for (k, n) in dict.fromkeys((x["K"], x["N"]) for x in g):
            cells = []
            for m in ms:
                row = next((x for x in g if x["K"] == k and x["N"] == n and x["M"] == m), None)
                cells.append("" if row is None else f"{row['tflops']:.1f}" + (f" ({row['gbs']:.0f})" if m <= 16 else ""))
            users = next(x["layers"] for x in g if x["K"] == k and x["N"] == n)
            print(f"  {k:>6} {n:>7} " + "".join(f"{c:>16}" for c in cells) + "  " + ",".join(users))
        best = max(g, key=lambda x: x["tflops"])
        print(f"  max bf16 GEMM {best['tflops']:.1f} TFLOP/s at M={best['M']} K={best['K']} N={best['N']}")
    else:
        print(f"bf16 GEMM: {g}")
    f8 = r["fp8"]
    rows = [x for x in f8.get("rows", []) if "tflops" in x] if isinstance(f8, dict) else []
    if rows:
        best = max(rows, key=lambda x: x["tflops"])
        print(f"  max fp8 GEMM {best['tflops']:.1f} TFLOP/s at M={best['M']} K={best['K']} N={best['N']}")
    else:
        print(f"  fp8 GEMM: not measured ({f8.get('reason') or f8.get('error')})")
    c = r["copy"]
    print(f"  copy {c[0]['gbs']:.0f} GB/s (read + write, {c[0]['bytes'] >> 20} MiB)" if isinstance(c, list) else f"  copy: {c}")
    s = r["sdpa"]
    if isinstance(s, dict) and "rows" in s:
        print(f"SDPA ({s['impl']}, enable_gqa={s['enable_gqa']})")
        for row in s["rows"]:
            extra = f"{row['gbs_kv']:>8.0f} GB/s KV" if row["kind"] == "decode" else ""
            print(f"  {row['kind']:<8} b={row['batch']:<3} q={row['q_len']:<5} ctx={row['context']:<5} kv_heads={row['kv_heads']:<3}"
                  f" {row['seconds'] * 1e6:>10.1f} us {row['tflops']:>8.1f} TFLOP/s {extra}")
    else:
        print(f"SDPA: {s}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
