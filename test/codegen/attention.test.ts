/**
 * attention family: the rendered paged-attention launch function runs on the CPU emulator against
 * runtime/kernels/paged-attention.ts (fp64, rounded once) over ragged batches with shuffled block
 * tables: pure prefill, chunked prefill with cached context, decode (context 1, partial last
 * blocks), speculative k+1 tokens, padding sequences (context 0 → zeros), GQA 1/2/4 and MQA, head
 * dims 32/64/128, block sizes 16/32, the prefill path, the decode path with split-KV off and
 * forced on; replay of a captured CUDA graph on new batch data; a fast-check property over random
 * batch compositions. nvcc builds: attention-nvcc.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { configForAttention, render, tileSmemBytes, type AttentionConfig } from '../../compiler/codegen/families/attention.js';
import type { RenderedKernel } from '../../compiler/codegen/kernel.js';
import { partial } from '../../runtime/kernels/paged-attention.js';
import { buildEmuLib, hasGxx } from '../helpers/emu-kernel.js';
import {
  SPLIT_ON, codec, compare, ctxFor, prepare, report, stepFor, testConfig, type Case, type Layout, type SeqSpec,
} from './attention-cases.js';

// ---------------------------------------------------------------- running a kernel on the emulator

const WRAPPER = (fn: string): string => `
#include "lfc_abi.h"
cudaError_t ${fn}(const LfcAttentionArgs&, cudaStream_t);
extern "C" int run(const void* q, void* out, const void* k, const void* v, const int* positions, const int* seq_starts,
                   const int* context_lens, const int* block_tables, int T, int B, int max_blocks, int max_new, int max_context,
                   int heads, int kv_heads, int head_dim, int block_size, int num_blocks, float scale, void* ws, long ws_bytes,
                   int num_sms) {
  LfcAttentionArgs a{};
  a.q = q; a.out = out; a.k_cache = k; a.v_cache = v;
  a.batch.positions = positions; a.batch.seq_starts = seq_starts; a.batch.context_lens = context_lens;
  a.batch.block_tables = block_tables; a.batch.T = T; a.batch.B = B; a.batch.max_blocks_per_seq = max_blocks;
  a.batch.max_new_tokens = max_new; a.batch.max_context = max_context;
  a.heads = heads; a.kv_heads = kv_heads; a.head_dim = head_dim; a.block_size = block_size; a.num_blocks = num_blocks;
  a.scale = scale; a.workspace = ws; a.workspace_bytes = size_t(ws_bytes); a.num_sms = num_sms;
  return ${fn}(a, nullptr);
}
`;

// CUDA graph: capture() records the launch once on buffers the wrapper owns (only the scalars are
// known then); replay() copies a batch's data into those buffers and replays the graph.
const GRAPH_WRAPPER = (fn: string): string => `
#include "lfc_abi.h"
#include <cstring>
#include <vector>
cudaError_t ${fn}(const LfcAttentionArgs&, cudaStream_t);
namespace {
enum { Q, OUT, K, V, POS, STARTS, CTX, TABLES, WS, NBUF };
std::vector<unsigned char> buf[NBUF];
cudaStream_t stream;
cudaGraphExec_t exec;
}
extern "C" int capture(long q_bytes, long kv_bytes, int T, int B, int max_blocks, int max_new, int max_context, int heads,
                       int kv_heads, int head_dim, int block_size, int num_blocks, float scale, long ws_bytes, int num_sms) {
  const long sizes[NBUF] = {q_bytes, q_bytes, kv_bytes, kv_bytes, 4L * T, 4L * (B + 1), 4L * B, 4L * B * max_blocks, ws_bytes};
  for (int i = 0; i < NBUF; ++i) buf[i].assign(size_t(sizes[i] > 0 ? sizes[i] : 1), 0);
  LfcAttentionArgs a{};
  a.q = buf[Q].data(); a.out = buf[OUT].data(); a.k_cache = buf[K].data(); a.v_cache = buf[V].data();
  a.batch.positions = reinterpret_cast<const int32_t*>(buf[POS].data());
  a.batch.seq_starts = reinterpret_cast<const int32_t*>(buf[STARTS].data());
  a.batch.context_lens = reinterpret_cast<const int32_t*>(buf[CTX].data());
  a.batch.block_tables = reinterpret_cast<const int32_t*>(buf[TABLES].data());
  a.batch.T = T; a.batch.B = B; a.batch.max_blocks_per_seq = max_blocks; a.batch.max_new_tokens = max_new;
  a.batch.max_context = max_context;
  a.heads = heads; a.kv_heads = kv_heads; a.head_dim = head_dim; a.block_size = block_size; a.num_blocks = num_blocks;
  a.scale = scale; a.workspace = buf[WS].data(); a.workspace_bytes = size_t(ws_bytes); a.num_sms = num_sms;
  if (cudaStreamCreate(&stream) != cudaSuccess) return -1;
  if (cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal) != cudaSuccess) return -2;
  const int rc = ${fn}(a, stream);
  cudaGraph_t g;
  if (cudaStreamEndCapture(stream, &g) != cudaSuccess) return -3;
  if (cudaGraphInstantiate(&exec, g, 0) != cudaSuccess) return -4;
  return rc;
}
extern "C" int replay(const void* q, const void* k, const void* v, const int* pos, const int* starts, const int* ctx,
                      const int* tables, void* out) {
  const void* src[NBUF] = {q, nullptr, k, v, pos, starts, ctx, tables, nullptr};
  for (int i = 0; i < NBUF; ++i) if (src[i]) std::memcpy(buf[i].data(), src[i], buf[i].size());
  std::memset(buf[OUT].data(), 0xff, buf[OUT].size());  // NaN in bf16 and fp16
  std::memset(buf[WS].data(), 0xff, buf[WS].size());
  if (cudaGraphLaunch(exec, stream) != cudaSuccess) return -5;
  std::memcpy(out, buf[OUT].data(), buf[OUT].size());
  return 0;
}
`;

type RunFn = (...args: unknown[]) => number;
const libs = new Map<string, RunFn>();
function runner(k: RenderedKernel): RunFn {
  let f = libs.get(k.name);
  if (!f) {
    const lib = buildEmuLib([k], WRAPPER(k.name));
    f = lib.func('int run(const void*, void*, const void*, const void*, const int*, const int*, const int*, const int*, int, int, int, int, int, int, int, int, int, int, float, void*, long, int)') as RunFn;
    libs.set(k.name, f);
  }
  return f;
}

/**
 * Runs one case through the launch function (outputs and workspace poisoned with NaN first);
 * checks against the reference, and that the split path ran exactly when `expectSplit` says
 * (it is the only writer of the workspace).
 */
function check(k: RenderedKernel, c: Case, expectSplit?: boolean): { worst: number; maxErr: number } {
  const cfg = k.config as AttentionConfig;
  const { Hq, Hkv, S } = c;
  const D = cfg.headDim;
  const p = prepare(cfg, c);
  const { bt } = p;
  const out = new Uint16Array(bt.T * Hq * D).fill(codec(cfg.dtype).nan);
  const ws = new Float32Array(Math.max(1, p.wsBytes / 4)).fill(NaN);
  const rc = runner(k)(p.q, out, p.k, p.v, bt.positions, bt.seqStarts, bt.contextLens, bt.blockTables, bt.T, bt.B,
    bt.maxBlocksPerSeq, c.maxNew ?? bt.maxNew, bt.maxContext, Hq, Hkv, D, S, bt.numBlocks, p.scale, ws, ws.byteLength, c.numSms ?? 0);
  expect(rc).toBe(0);
  // Forced on (num_sms huge), the split path runs for decode-sized batches with more than one
  // split's worth of keys; with num_sms 0 never.
  const want = expectSplit ?? ((c.numSms ?? 0) === SPLIT_ON && (c.maxNew ?? bt.maxNew) <= cfg.decode.maxNewTokens &&
    bt.maxContext > cfg.decode.minKeysPerSplit);
  expect(!Number.isNaN(ws[0]), 'split-KV path taken').toBe(want);
  return compare(cfg.dtype, Hq, D, out, p.expected);
}

// ---------------------------------------------------------------- emulator tests

describe.skipIf(!hasGxx)('paged attention on the emulator', () => {
  const bf32 = () => render(testConfig('bfloat16', 32));
  const f32 = () => render(testConfig('float16', 32));

  const prefillCases: [string, Case][] = [
    ['pure prefill, 2 seqs, GQA 2', { seqs: [{ ctx: 37, n: 37 }, { ctx: 20, n: 20 }], Hq: 4, Hkv: 2, S: 16 }],
    ['chunked prefill with cached context, block 32', { seqs: [{ ctx: 70, n: 23 }, { ctx: 33, n: 17 }], Hq: 2, Hkv: 2, S: 32 }],
    ['speculative k+1 = 5 tokens + a padding sequence', { seqs: [{ ctx: 41, n: 5 }, { ctx: 0, n: 2 }, { ctx: 18, n: 6 }], Hq: 4, Hkv: 1, S: 16 }],
  ];
  it.each(prefillCases)('bf16 d32 prefill path: %s', (name, c) => report(name, check(bf32(), c)));
  it.each(prefillCases)('fp16 d32 prefill path: %s', (name, c) => report(name, check(f32(), c)));

  const decodeSeqs: SeqSpec[] = [{ ctx: 1, n: 1 }, { ctx: 50, n: 1 }, { ctx: 0, n: 1 }, { ctx: 33, n: 1 }, { ctx: 16, n: 1 }];
  const decodeCases: [string, Case][] = [
    ['decode, split off, GQA 4', { seqs: decodeSeqs, Hq: 4, Hkv: 1, S: 16, numSms: 0 }],
    ['decode, split forced, GQA 4', { seqs: decodeSeqs, Hq: 4, Hkv: 1, S: 16, numSms: SPLIT_ON }],
    ['decode, split forced, MHA, block 32', { seqs: decodeSeqs, Hq: 2, Hkv: 2, S: 32, numSms: SPLIT_ON }],
    ['decode via the prefill path (max_new_tokens 8)', { seqs: decodeSeqs, Hq: 4, Hkv: 2, S: 16, maxNew: 8 }],
    ['spec 3 tokens, split forced, MQA', { seqs: [{ ctx: 66, n: 3 }, { ctx: 3, n: 3 }, { ctx: 0, n: 3 }], Hq: 4, Hkv: 1, S: 16, numSms: SPLIT_ON }],
    ['spec 4 tokens, GQA 8 (two row tiles per kv head), split forced, a sequence with no new tokens',
      { seqs: [{ ctx: 40, n: 4 }, { ctx: 25, n: 0 }, { ctx: 20, n: 3 }], Hq: 8, Hkv: 1, S: 16, numSms: SPLIT_ON }],
  ];
  it.each(decodeCases)('bf16 d32 %s', (name, c) => report(name, check(bf32(), c)));
  it.each(decodeCases.slice(0, 2))('fp16 d32 %s', (name, c) => report(name, check(f32(), c)));

  it('bf16 d64 GQA 2 (prefill 2 row warps × 2 KV warps, 16 keys, 4 stages; decode 2 row tiles × 4 KV warps, 2 stages)', () => {
    const base = testConfig('bfloat16', 64);
    const k = render({
      ...base,
      prefill: { warps: 2, rowTilesPerWarp: 1, kvWarps: 2, blockN: 16, stages: 4 },
      decode: { ...base.decode, rowTilesPerWarp: 2, kvWarps: 4, stages: 2 },
    });
    report('d64 prefill', check(k, { seqs: [{ ctx: 45, n: 20 }, { ctx: 9, n: 9 }], Hq: 4, Hkv: 2, S: 16 }));
    report('d64 decode split', check(k, { seqs: [{ ctx: 60, n: 1 }, { ctx: 17, n: 2 }], Hq: 4, Hkv: 2, S: 32, numSms: SPLIT_ON }));
  });

  it('bf16 and fp16 d128: prefill and split decode', () => {
    const kb = render(testConfig('bfloat16', 128));
    report('d128 bf16 prefill', check(kb, { seqs: [{ ctx: 40, n: 19 }], Hq: 2, Hkv: 1, S: 16 }));
    report('d128 bf16 decode split', check(kb, { seqs: [{ ctx: 50, n: 1 }, { ctx: 0, n: 1 }], Hq: 2, Hkv: 1, S: 16, numSms: SPLIT_ON }));
    const kf = render(testConfig('float16', 128));
    report('d128 fp16 decode', check(kf, { seqs: [{ ctx: 35, n: 2 }], Hq: 2, Hkv: 2, S: 32, numSms: 0 }));
  });

  it('the default config (d32, as chosen for the shipped model) on prefill and decode', () => {
    const k = render(configForAttention(stepFor(4, 2, 32), ctxFor('bfloat16', 32, 4, 2)));
    report('default prefill', check(k, { seqs: [{ ctx: 70, n: 70 }], Hq: 4, Hkv: 2, S: 16 }));
    // 70 keys < 256 per split: no split even with 132 SMs to fill.
    report('default decode', check(k, { seqs: [{ ctx: 70, n: 1 }, { ctx: 5, n: 1 }], Hq: 4, Hkv: 2, S: 16, numSms: 132 }, false));
  });

  it('split partials in the workspace are the reference `partial` of each split\'s key range', () => {
    const k = bf32();
    const cfg = k.config as AttentionConfig;
    const D = cfg.headDim, Hq = 4, Hkv = 2, S = 16, KT = cfg.decode.kvWarps * cfg.decode.blockN;
    const seqs: SeqSpec[] = [{ ctx: 1, n: 1 }, { ctx: 50, n: 1 }, { ctx: 0, n: 1 }, { ctx: 33, n: 2 }, { ctx: 16, n: 1 }];
    const c: Case = { seqs, Hq, Hkv, S, numSms: SPLIT_ON };
    const p = prepare(cfg, c);
    const { bt } = p;
    const out = new Uint16Array(bt.T * Hq * D);
    const ws = new Float32Array(p.wsBytes / 4).fill(NaN);
    expect(runner(k)(p.q, out, p.k, p.v, bt.positions, bt.seqStarts, bt.contextLens, bt.blockTables, bt.T, bt.B,
      bt.maxBlocksPerSeq, bt.maxNew, bt.maxContext, Hq, Hkv, D, S, bt.numBlocks, p.scale, ws, ws.byteLength, SPLIT_ON)).toBe(0);
    // The launch's split count: as many as the workspace and ⌈max_context / minKeysPerSplit⌉ allow.
    const splits = Math.min(cfg.decode.maxSplits, Math.ceil(bt.maxContext / cfg.decode.minKeysPerSplit));
    expect(splits).toBeGreaterThan(1);
    const n = splits * bt.T * Hq;
    const wsOut = ws.subarray(0, n * D), wsMax = ws.subarray(n * D, n * D + n), wsSum = ws.subarray(n * D + n, n * D + 2 * n);
    let checked = 0;
    seqs.forEach((sq, b) => {
      // One row tile per sequence here (≤ 16 rows): its keys [0, ctx) in ⌈·/KT⌉ KV tiles (KT = kvWarps ·
      // blockN keys), dealt to splits in runs.
      const ntiles = Math.ceil(sq.ctx / KT), per = Math.ceil(ntiles / splits);
      for (let sp = 0; sp < splits; sp++) {
        const lo = Math.min(sp * per, ntiles), hi = Math.min(lo + per, ntiles);
        const ref = sq.ctx > 0 ? partial(p.refArgs, lo * KT, hi * KT) : undefined;
        for (let t = bt.seqStarts[b]; t < bt.seqStarts[b + 1]; t++) {
          const rt = p.refTokens.indexOf(t);
          for (let h = 0; h < Hq; h++) {
            const w = (sp * bt.T + t) * Hq + h, r = rt * Hq + h;
            const rMax = ref ? ref.max[r] : -Infinity, rSum = ref ? ref.sum[r] : 0;
            const at = `seq ${b} split ${sp} token ${t} head ${h}`;
            if (rMax === -Infinity) {
              expect(wsMax[w], at).toBe(-Infinity);
              expect(wsSum[w], at).toBe(0);
            } else {
              expect(Math.abs(wsMax[w] - rMax), at).toBeLessThan(1e-4 * (1 + Math.abs(rMax)));
              expect(Math.abs(wsSum[w] - rSum), at).toBeLessThan(1e-4 * rSum);
            }
            for (let d = 0; d < D; d++) {
              const rOut = ref && rMax !== -Infinity ? ref.out[r * D + d] : 0;
              expect(Math.abs(wsOut[w * D + d] - rOut), `${at} dim ${d}`).toBeLessThanOrEqual(8e-3 * rSum);
            }
            checked++;
          }
        }
      }
    });
    expect(checked).toBe(splits * bt.T * Hq);
  });

  it.each([
    ['decode, split forced', SPLIT_ON, [{ ctx: 10, n: 1 }, { ctx: 50, n: 1 }, { ctx: 0, n: 1 }, { ctx: 33, n: 1 }], [{ ctx: 47, n: 1 }, { ctx: 3, n: 1 }, { ctx: 20, n: 1 }, { ctx: 0, n: 1 }]],
    ['decode, split off', 0, [{ ctx: 10, n: 1 }, { ctx: 50, n: 1 }, { ctx: 0, n: 1 }, { ctx: 33, n: 1 }], [{ ctx: 47, n: 1 }, { ctx: 3, n: 1 }, { ctx: 20, n: 1 }, { ctx: 0, n: 1 }]],
    ['chunked prefill', 0, [{ ctx: 30, n: 9 }, { ctx: 9, n: 9 }], [{ ctx: 60, n: 9 }, { ctx: 20, n: 9 }]],
  ] as [string, number, SeqSpec[], SeqSpec[]][])('CUDA graph: %s captured on one batch, replayed on others with the same scalars', (_, numSms, seqsA, seqsB) => {
    const k = bf32();
    const cfg = k.config as AttentionConfig;
    const D = cfg.headDim, Hq = 4, Hkv = 2, S = 16, maxContext = 64;
    const layout: Layout = { maxBlocksPerSeq: 5, numBlocks: 12 };
    const lib = buildEmuLib([k], GRAPH_WRAPPER(k.name));
    const capture = lib.func('int capture(long, long, int, int, int, int, int, int, int, int, int, int, float, long, int)');
    const replay = lib.func('int replay(const void*, const void*, const void*, const int*, const int*, const int*, const int*, void*)');
    const cases = [seqsA, seqsB, seqsA].map((seqs, i) => prepare(cfg, { seqs, Hq, Hkv, S, seed: 7 + i }, layout));
    const bt = cases[0].bt;
    const maxNew = Math.max(...[seqsA, seqsB].flat().map((s) => s.n));
    const wsBytes = Math.max(...cases.map((p) => p.wsBytes));
    expect(capture(bt.T * Hq * D * 2, layout.numBlocks * S * Hkv * D * 2, bt.T, bt.B, layout.maxBlocksPerSeq, maxNew, maxContext,
      Hq, Hkv, D, S, layout.numBlocks, cases[0].scale, wsBytes, numSms)).toBe(0);
    for (const p of cases) {
      const out = new Uint16Array(bt.T * Hq * D);
      expect(replay(p.q, p.k, p.v, p.bt.positions, p.bt.seqStarts, p.bt.contextLens, p.bt.blockTables, out)).toBe(0);
      compare(cfg.dtype, Hq, D, out, p.expected);
    }
  });

  it('property: random batch compositions (prefill, chunks, decode, spec, padding) match the reference', () => {
    const k = bf32();
    const seq = fc.oneof(
      fc.integer({ min: 1, max: 40 }).map((ctx) => ({ ctx, n: ctx })),                      // prefill
      fc.tuple(fc.integer({ min: 2, max: 60 }), fc.integer({ min: 1, max: 12 })).map(([ctx, n]) => ({ ctx, n: Math.min(n, ctx) })),
      fc.integer({ min: 1, max: 60 }).map((ctx) => ({ ctx, n: 1 })),                        // decode
      fc.integer({ min: 1, max: 3 }).map((n) => ({ ctx: 0, n })),                           // padding
    );
    fc.assert(fc.property(
      fc.array(seq, { minLength: 1, maxLength: 3 }), fc.constantFrom([2, 2], [4, 2], [4, 1]), fc.constantFrom(16, 32),
      fc.constantFrom(0, SPLIT_ON), fc.integer({ min: 1, max: 1 << 30 }),
      (seqs, [Hq, Hkv], S, numSms, seed) => {
        if (seqs.every((s) => s.n === 0)) return;
        check(k, { seqs, Hq, Hkv, S, numSms, seed });
      }), { numRuns: 12, seed: 42 });
  });
});

describe('attention configs', () => {
  it('chooser: tiles per head dim and target, shared memory within the target, workspace formula', () => {
    for (const D of [32, 64, 128]) {
      for (const target of ['a100', 'h100', 'all'] as const) {
        const c = configForAttention(stepFor(32, 8, D), ctxFor('bfloat16', D, 32, 8, target));
        expect(c.headDim).toBe(D);
        expect(tileSmemBytes(c, c.prefill)).toBeLessThanOrEqual(163 * 1024);
        const k = render(c);
        expect(k.launches).toEqual([{ fn: k.name, args: 'LfcAttentionArgs' }]);
        const limits = { maxTokens: 1024, maxSeqs: 64, maxContext: 8192, numSms: 132 };
        expect(k.workspaceBytes!(limits)).toBe(c.decode.maxSplits * Math.min(1024, 64 * c.decode.maxNewTokens) * 32 * (D + 2) * 4);
      }
    }
    // heads, block size and target do not shape the code: same name, same source
    const one = render(configForAttention(stepFor(32, 8, 64), ctxFor('bfloat16', 64, 32, 8, 'a100')));
    const two = render({ ...(one.config as AttentionConfig), heads: 8, kvHeads: 1, blockSize: 32 });
    expect([two.name, two.source]).toEqual([one.name, one.source]);
    expect(() => render({ ...testConfig('bfloat16', 32), headDim: 48 })).toThrow(/head dim/);
    expect(() => render({ ...testConfig('bfloat16', 32), prefill: { warps: 2, rowTilesPerWarp: 1, kvWarps: 1, blockN: 24, stages: 2 } })).toThrow(/blockN/);
    expect(() => render({ ...testConfig('bfloat16', 32), prefill: { warps: 4, rowTilesPerWarp: 1, kvWarps: 4, blockN: 16, stages: 2 } })).toThrow(/at most 8/);
    expect(() => render({ ...testConfig('bfloat16', 32), decode: { ...testConfig('bfloat16', 32).decode, stages: 5 } })).toThrow(/stages/);
  });
});
