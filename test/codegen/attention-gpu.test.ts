/**
 * attention family on a real GPU (skipped without /dev/nvidiactl; LFC_ATTN_GPU=1 forces the build
 * and a device query anyway): the rendered launch function, built with nvcc into a shared library
 * with a small host harness, against the reference on the emulator tests' batch kinds (prefill,
 * chunked prefill, decode with split-KV off and forced, speculative tokens, padding, GQA/MQA,
 * head dims 32/64/128, block sizes 16/32); then timings of the default configs printed beside
 * ../shared/ANCHORS.md (FlashAttention-2 ≈ 370 TFLOP/s bf16 hdim 128 on H100; decode attention is
 * bound by K+V bytes / HBM bandwidth, 3.35 TB/s on H100 SXM).
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import koffi from 'koffi';
import { describe, expect, it } from 'vitest';
import { GPU_ARCHS, findTool, templatesDir } from '../../compiler/build/cuda-build.js';
import { configForAttention, render, workspaceBytes, type AttentionConfig } from '../../compiler/codegen/families/attention.js';
import type { RenderedKernel } from '../../compiler/codegen/kernel.js';
import { bf16Encode } from '../../runtime/floats.js';
import { mulberry32 } from '../helpers/random.js';
import { SPLIT_ON, codec, compare, ctxFor, makeBatch, prepare, report, stepFor, testConfig, type Case, type SeqSpec } from './attention-cases.js';

const wantGpu = existsSync('/dev/nvidiactl') || process.env.LFC_ATTN_GPU === '1';
const nvcc = findTool('nvcc');

const HARNESS = (fn: string): string => `
#include "lfc_abi.h"
#include <cuda_runtime.h>
cudaError_t ${fn}(const LfcAttentionArgs&, cudaStream_t);
namespace {
void* up(const void* h, size_t n) {
  void* d = nullptr;
  if (cudaMalloc(&d, n ? n : 1) != cudaSuccess) return nullptr;
  if (h && n) cudaMemcpy(d, h, n, cudaMemcpyHostToDevice);
  return d;
}
}
extern "C" int gpu_count() { int n = 0; return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0; }
extern "C" int gpu_sms() { int v = 0; cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, 0); return v; }
// One launch on copies of the host arrays (out and ws copied back); then, when iters > 0, the mean
// time of iters more launches in *ms.
extern "C" int run(const void* q, void* out, const void* k, const void* v, const int* positions, const int* seq_starts,
                   const int* context_lens, const int* block_tables, int T, int B, int max_blocks, int max_new, int max_context,
                   int heads, int kv_heads, int head_dim, int block_size, int num_blocks, float scale, void* ws, long ws_bytes,
                   int num_sms, int iters, float* ms) {
  const size_t qb = size_t(T) * heads * head_dim * 2, kvb = size_t(num_blocks) * block_size * kv_heads * head_dim * 2;
  void* d[9] = {up(q, qb), up(out, qb), up(k, kvb), up(v, kvb), up(positions, 4 * size_t(T)), up(seq_starts, 4 * size_t(B + 1)),
                up(context_lens, 4 * size_t(B)), up(block_tables, 4 * size_t(B) * max_blocks), up(ws, size_t(ws_bytes))};
  for (void* p : d) if (!p) return -1;
  LfcAttentionArgs a{};
  a.q = d[0]; a.out = d[1]; a.k_cache = d[2]; a.v_cache = d[3];
  a.batch.positions = static_cast<const int32_t*>(d[4]); a.batch.seq_starts = static_cast<const int32_t*>(d[5]);
  a.batch.context_lens = static_cast<const int32_t*>(d[6]); a.batch.block_tables = static_cast<const int32_t*>(d[7]);
  a.batch.T = T; a.batch.B = B; a.batch.max_blocks_per_seq = max_blocks; a.batch.max_new_tokens = max_new;
  a.batch.max_context = max_context;
  a.heads = heads; a.kv_heads = kv_heads; a.head_dim = head_dim; a.block_size = block_size; a.num_blocks = num_blocks;
  a.scale = scale; a.workspace = d[8]; a.workspace_bytes = size_t(ws_bytes); a.num_sms = num_sms;
  int rc = int(${fn}(a, nullptr));
  if (rc == 0) rc = int(cudaDeviceSynchronize());
  if (rc == 0 && iters > 0) {
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    cudaEventRecord(e0, nullptr);
    for (int i = 0; i < iters; ++i) ${fn}(a, nullptr);
    cudaEventRecord(e1, nullptr);
    rc = int(cudaEventSynchronize(e1));
    float t = 0.f;
    cudaEventElapsedTime(&t, e0, e1);
    *ms = t / float(iters);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
  }
  if (rc == 0) rc = int(cudaMemcpy(out, d[1], qb, cudaMemcpyDeviceToHost));
  if (rc == 0 && ws && ws_bytes) rc = int(cudaMemcpy(ws, d[8], size_t(ws_bytes), cudaMemcpyDeviceToHost));
  for (void* p : d) cudaFree(p);
  return rc;
}
`;

type Fn = (...args: unknown[]) => number;
interface GpuLib { count: () => number; sms: () => number; run: Fn }
const built = new Map<string, GpuLib>();

/** nvcc -shared for sm_80 + sm_90a of the kernel and the harness (cached by content). */
function gpuLib(k: RenderedKernel): GpuLib {
  let lib = built.get(k.name);
  if (lib) return lib;
  const harness = HARNESS(k.name);
  const dir = join(tmpdir(), 'lfc-kernel-cache', createHash('sha256').update(k.source).update('\0').update(harness).update('gpu-v1').digest('hex').slice(0, 20));
  const so = join(dir, 'lib.so');
  if (!existsSync(so)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${k.name}.cu`), k.source);
    writeFileSync(join(dir, 'harness.cu'), harness);
    const tmp = join(dir, `lib.${process.pid}.so`);
    const args = ['-shared', '-Xcompiler', '-fPIC', '-std=c++20', '-O3', '-I', join(templatesDir(), 'intrinsics'), '-I', join(templatesDir(), 'common')];
    for (const a of GPU_ARCHS) args.push('-gencode', `arch=${a.compute},code=${a.sm}`);
    execFileSync(nvcc!, [...args, join(dir, `${k.name}.cu`), join(dir, 'harness.cu'), '-o', tmp], { stdio: ['ignore', 'pipe', 'pipe'] });
    renameSync(tmp, so);
  }
  const l = koffi.load(so);
  lib = {
    count: l.func('int gpu_count()') as () => number,
    sms: l.func('int gpu_sms()') as () => number,
    run: l.func('int run(const void*, void*, const void*, const void*, const int*, const int*, const int*, const int*, int, int, int, int, int, int, int, int, int, int, float, void*, long, int, int, _Out_ float*)') as Fn,
  };
  built.set(k.name, lib);
  return lib;
}

function gpuCheck(k: RenderedKernel, c: Case): { worst: number; maxErr: number } {
  const cfg = k.config as AttentionConfig;
  const D = cfg.headDim, { Hq, Hkv, S } = c;
  const p = prepare(cfg, c);
  const { bt } = p;
  const out = new Uint16Array(bt.T * Hq * D).fill(codec(cfg.dtype).nan);
  const ws = new Float32Array(Math.max(1, p.wsBytes / 4)).fill(NaN);
  const ms = [0];
  const rc = gpuLib(k).run(p.q, out, p.k, p.v, bt.positions, bt.seqStarts, bt.contextLens, bt.blockTables, bt.T, bt.B,
    bt.maxBlocksPerSeq, c.maxNew ?? bt.maxNew, bt.maxContext, Hq, Hkv, D, S, bt.numBlocks, p.scale, ws, ws.byteLength, c.numSms ?? 0, 0, ms);
  expect(rc).toBe(0);
  const split = (c.numSms ?? 0) === SPLIT_ON && (c.maxNew ?? bt.maxNew) <= cfg.decode.maxNewTokens && bt.maxContext > cfg.decode.minKeysPerSplit;
  expect(!Number.isNaN(ws[0]), 'split-KV path taken').toBe(split);
  return compare(cfg.dtype, Hq, D, out, p.expected);
}

describe.skipIf(!wantGpu || !nvcc)('paged attention on the GPU', () => {
  it('builds, finds a device, matches the reference on every batch kind', () => {
    const kernels = [render(testConfig('bfloat16', 32)), render(testConfig('float16', 64)), render(testConfig('bfloat16', 128)),
      render(configForAttention(stepFor(8, 2, 128), ctxFor('bfloat16', 128, 8, 2)))];
    const lib = gpuLib(kernels[0]);
    if (lib.count() === 0) {
      console.warn('!!!!! no CUDA device: GPU attention checks SKIPPED (the library built) !!!!!');
      return;
    }
    const decode: SeqSpec[] = [{ ctx: 1, n: 1 }, { ctx: 250, n: 1 }, { ctx: 0, n: 1 }, { ctx: 97, n: 1 }, { ctx: 16, n: 1 }];
    const cases: [string, Case][] = [
      ['prefill GQA 2', { seqs: [{ ctx: 150, n: 150 }, { ctx: 33, n: 33 }], Hq: 4, Hkv: 2, S: 16 }],
      ['chunked prefill, block 32', { seqs: [{ ctx: 300, n: 70 }, { ctx: 64, n: 17 }], Hq: 2, Hkv: 2, S: 32 }],
      ['spec 5 + padding, MQA', { seqs: [{ ctx: 141, n: 5 }, { ctx: 0, n: 2 }, { ctx: 18, n: 6 }], Hq: 4, Hkv: 1, S: 16 }],
      ['decode split off', { seqs: decode, Hq: 4, Hkv: 1, S: 16, numSms: 0 }],
      ['decode split forced', { seqs: decode, Hq: 4, Hkv: 2, S: 16, numSms: SPLIT_ON }],
      ['spec 4, GQA 8, split forced', { seqs: [{ ctx: 200, n: 4 }, { ctx: 25, n: 0 }, { ctx: 20, n: 3 }], Hq: 8, Hkv: 1, S: 32, numSms: SPLIT_ON }],
    ];
    for (const k of kernels) {
      for (const [name, c] of cases) report(`${k.name} ${name}`, gpuCheck(k, c));
    }
  }, 600_000);

  it('times the default configs (printed beside the anchors)', () => {
    for (const D of [64, 128]) {
      const Hq = 32, Hkv = 8, S = 16;
      const cfg = configForAttention(stepFor(Hq, Hkv, D), ctxFor('bfloat16', D, Hq, Hkv));
      const k = render(cfg);
      const lib = gpuLib(k);
      if (lib.count() === 0) return;
      const sms = lib.sms();
      const rnd = mulberry32(5);
      const runs: [string, SeqSpec[]][] = [
        ['prefill 1×4096 causal', [{ ctx: 4096, n: 4096 }]],
        ['prefill 8×1024 causal', Array.from({ length: 8 }, () => ({ ctx: 1024, n: 1024 }))],
        ['decode 64×2048', Array.from({ length: 64 }, () => ({ ctx: 2048, n: 1 }))],
        ['decode 4×8192', Array.from({ length: 4 }, () => ({ ctx: 8192, n: 1 }))],
      ];
      for (const [name, seqs] of runs) {
        const bt = makeBatch(seqs, S, rnd);
        const rand = (n: number) => { const a = new Uint16Array(n); for (let i = 0; i < n; i++) a[i] = bf16Encode(rnd() * 2 - 1); return a; };
        const q = rand(bt.T * Hq * D), kc = rand(bt.numBlocks * S * Hkv * D), vc = rand(bt.numBlocks * S * Hkv * D);
        const out = new Uint16Array(bt.T * Hq * D);
        const wsBytes = workspaceBytes(cfg, { maxTokens: bt.T, maxSeqs: bt.B, maxContext: bt.maxContext, numSms: sms });
        const ws = new Float32Array(Math.max(1, wsBytes / 4));
        const ms = [0];
        expect(lib.run(q, out, kc, vc, bt.positions, bt.seqStarts, bt.contextLens, bt.blockTables, bt.T, bt.B, bt.maxBlocksPerSeq,
          bt.maxNew, bt.maxContext, Hq, Hkv, D, S, bt.numBlocks, 1 / Math.sqrt(D), ws, ws.byteLength, sms, 20, ms)).toBe(0);
        let keys = 0, pairs = 0;
        for (const s of seqs) { keys += s.ctx; for (let i = 0; i < s.n; i++) pairs += s.ctx - s.n + i + 1; }
        const tflops = (4 * pairs * D * Hq) / (ms[0] * 1e-3) / 1e12;
        const gbs = (keys * Hkv * D * 2 * 2) / (ms[0] * 1e-3) / 1e9;
        console.log(`d${D} ${name}: ${ms[0].toFixed(3)} ms, ${tflops.toFixed(1)} TFLOP/s, K+V ${gbs.toFixed(0)} GB/s (${k.name})`);
      }
    }
  }, 600_000);
});
