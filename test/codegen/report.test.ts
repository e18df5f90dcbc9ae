/**
 * report.md sections: the roofline numbers against a hand computation for a tiny plan, the
 * weightBytes option of the cost model, and the ptxas kernel table.
 */
import { describe, expect, it } from 'vitest';
import { entryName, GPU_PEAKS, kernelTable, roofline, rooflineTable } from '../../compiler/codegen/report.js';
import { stepCost } from '../../compiler/kernels/cost.js';
import type { Plan, Step } from '../../runtime/plan.js';

// One layer, hidden H = 512: embedding, rms norm, fused QKV (N = 3H), attention (4 heads × 128,
// 2 kv heads), output projection with residual, logits over V = 1000. bf16 activations and KV.
const H = 512, V = 1000, heads = 4, kvHeads = 2, D = 128;
const steps: Step[] = [
  { kind: 'embedding', out: 'x', table: 'emb', vocab: V, hidden: H, indices: 'tokens' },
  { kind: 'add_norm', x: 'x', out: 'n', gamma: 'g', norm: 'rms', eps: 1e-5, hidden: H },
  { kind: 'linear', x: 'n', weight: 'wqkv', outs: [{ buffer: 'qkv', start: 0, end: 3 * H }], K: H, N: 3 * H },
  { kind: 'attention', layer: 0, q: 'qkv', out: 'a', heads, kvHeads, headDim: D, scale: 1 / Math.sqrt(D) },
  { kind: 'linear', x: 'a', weight: 'wo', outs: [{ buffer: 'x', start: 0, end: H }], K: H, N: H, residual: 'x' },
  { kind: 'logits', x: 'x', weight: 'emb', hidden: H, vocab: V },
];
const plan: Plan = {
  schema: 'lfc.plan', version: 1,
  model: { name: 'tiny', family: 'llama', vocab: V, hidden: H, layers: 1, heads, kvHeads, headDim: D, maxPositions: 2048 },
  dtype: 'bfloat16',
  kv: { blockSize: 16, dtype: 'bfloat16', layers: 1, kvHeads, headDim: D },
  weights: [], buffers: [], arenaFeatures: 0, steps,
  source: { file: 'tiny.onnx', outputs: ['logits'] },
};

/** Hand-derived FLOPs and bytes of each step kind, bf16 activations (2 B), weight matrices at 2 B, vectors fp32. */
function hand(T: number, ctx: number, attended: number): Record<string, { flops: number; bytes: number }[]> {
  return {
    embedding: [{ flops: 0, bytes: T * H * 2 /* table rows */ + T * H * 2 /* out */ + T * 4 /* ids */ }],
    add_norm: [{ flops: 4 * T * H, bytes: 2 * T * H * 2 + H * 4 }],
    linear: [
      { flops: 2 * T * H * 3 * H, bytes: H * 3 * H * 2 + T * H * 2 + T * 3 * H * 2 },
      { flops: 2 * T * H * H, bytes: H * H * 2 + T * H * 2 + 2 * T * H * 2 /* out + residual */ },
    ],
    attention: [{ flops: 4 * D * heads * attended, bytes: 2 * ctx * kvHeads * D * 2 + 2 * T * heads * D * 2 }],
    logits: [{ flops: 2 * H * V, bytes: H * V * 2 + H * 2 + V * 4 }],
  };
}

const shapes = [
  { T: 1, ctx: 1024, attended: 1024 },
  { T: 16, ctx: 16, attended: (16 * 17) / 2 },
  { T: 128, ctx: 128, attended: (128 * 129) / 2 },
  { T: 512, ctx: 512, attended: (512 * 513) / 2 },
  { T: 4096, ctx: 4096, attended: (4096 * 4097) / 2 },
];
const peaks = { a100: { flops: 312e12, bw: 2.039e12 }, h100: { flops: 989e12, bw: 3.35e12 } };

describe('roofline', () => {
  it('uses the datasheet peaks', () => {
    expect(GPU_PEAKS.a100.bf16Flops).toBe(peaks.a100.flops);
    expect(GPU_PEAKS.a100.bandwidth).toBe(peaks.a100.bw);
    expect(GPU_PEAKS.h100.bf16Flops).toBe(peaks.h100.flops);
    expect(GPU_PEAKS.h100.bandwidth).toBe(peaks.h100.bw);
  });

  it('matches a hand computation per step kind, T and GPU', () => {
    const est = roofline(plan);
    expect(est.map((e) => e.gpu)).toEqual(['a100', 'h100']);
    for (const e of est) {
      const pk = peaks[e.gpu];
      expect(e.weightBytes).toBe(2);
      expect(e.columns.map((c) => c.T)).toEqual(shapes.map((s) => s.T));
      e.columns.forEach((col, i) => {
        const { T, ctx, attended } = shapes[i];
        let total = 0;
        for (const [kind, list] of Object.entries(hand(T, ctx, attended))) {
          const got = col.perKind[kind];
          const flops = list.reduce((a, x) => a + x.flops, 0), bytes = list.reduce((a, x) => a + x.bytes, 0);
          const secs = list.reduce((a, x) => a + Math.max(x.flops / pk.flops, x.bytes / pk.bw), 0);
          expect(got.flops, `${e.gpu} T=${T} ${kind} flops`).toBe(flops);
          expect(got.bytes, `${e.gpu} T=${T} ${kind} bytes`).toBe(bytes);
          expect(got.seconds, `${e.gpu} T=${T} ${kind} time`).toBeCloseTo(secs, 15);
          total += secs;
        }
        expect(Object.keys(col.perKind).sort()).toEqual(['add_norm', 'attention', 'embedding', 'linear', 'logits']);
        expect(col.seconds).toBeCloseTo(total, 15);
        expect(col.tokensPerSecond / (T / total)).toBeCloseTo(1, 12);
      });
    }
  });

  it('calls decode memory-bound and a long prefill compute-bound', () => {
    const h100 = roofline(plan)[1];
    const at = (T: number) => h100.columns.find((c) => c.T === T)!;
    // decode: QKV intensity 2·H·3H / (2·H·3H + …) ≈ 1 FLOP/B ≪ ridge (989/3.35 ≈ 295 FLOP/B)
    expect(at(1).perKind.linear.bound).toBe('memory');
    expect(at(1).perKind.attention.bound).toBe('memory');
    // T = 4096: QKV does 2·4096·512·1536 FLOPs over 1.57 MB of weights + 16.8 MB of activations ≈ 350 FLOP/B
    expect(at(4096).perKind.linear.bound).toBe('compute');
    expect(at(4096).perKind.attention.bound).toBe('compute');
    expect(at(4096).perKind.embedding.bound).toBe('memory');
  });

  it('renders a markdown table per GPU with totals and tokens/s', () => {
    const md = rooflineTable(plan);
    expect(md).toContain('#### A100 SXM4 80GB: 312 TFLOP/s bf16 dense, 2.04 TB/s');
    expect(md).toContain('#### H100 SXM5 80GB: 989 TFLOP/s bf16 dense, 3.35 TB/s');
    expect(md).toContain('T = 4096 exceeds the plan\'s maxPositions (2048)');
    // H100 decode total by hand, formatted with 3 significant digits
    const { T, ctx, attended } = shapes[0];
    let t = 0;
    for (const list of Object.values(hand(T, ctx, attended))) for (const x of list) t += Math.max(x.flops / peaks.h100.flops, x.bytes / peaks.h100.bw);
    const h100 = md.slice(md.indexOf('#### H100'));
    const forward = h100.split('\n').find((l) => l.startsWith('| **forward**'))!;
    expect(forward.split('|')[2].trim()).toBe(`**${(t * 1e6).toPrecision(3)} µs**`);
    const rate = h100.split('\n').find((l) => l.startsWith('| **tokens/s**'))!;
    expect(rate.split('|')[2].trim()).toBe(`**${Math.round(1 / t).toLocaleString('en-US')}**`);
    const lin = h100.split('\n').find((l) => l.startsWith('| linear |'))!;
    expect(lin.split('|')[2].trim()).toMatch(/ M$/);
    expect(lin.split('|')[6].trim()).toMatch(/ C$/);
  });
});

describe('cost model weightBytes option', () => {
  const lin = steps[2] as Extract<Step, { kind: 'linear' }>;
  const shape = { T: 1, contextTokens: 1, attendedKeys: 1, L: 1 };
  it('keeps fp32 weights by default and uses the given width when asked', () => {
    expect(stepCost(plan, lin, shape).bytes).toBe(H * 3 * H * 4 + H * 2 + 3 * H * 2);
    expect(stepCost(plan, lin, shape, { weightBytes: 2 }).bytes).toBe(H * 3 * H * 2 + H * 2 + 3 * H * 2);
    // vectors stay fp32: the norm's gamma
    expect(stepCost(plan, steps[1], shape, { weightBytes: 2 }).bytes).toBe(2 * H * 2 + H * 4);
  });
  it('counts packed bytes of quantized linears', () => {
    const q8 = { ...lin, format: { kind: 'int8_channel' as const, scale: 's' } };
    const q4 = { ...lin, format: { kind: 'int4_group' as const, groupSize: 64, scale: 's', zero: 'z' } };
    const act = H * 2 + 3 * H * 2;
    expect(stepCost(plan, q8, shape, { weightBytes: 2 }).bytes).toBe(H * 3 * H + 3 * H * 4 + act);
    expect(stepCost(plan, q4, shape, { weightBytes: 2 }).bytes).toBe((H * 3 * H) / 2 + 3 * H * (H / 64) * 5 + act);
    expect(stepCost(plan, q8, shape).bytes).toBe(H * 3 * H * 4 + act);
  });
});

describe('kernel table', () => {
  const base = { registers: 0, sharedBytes: 0, stackBytes: 0, spillStores: 0, spillLoads: 0 };
  it('demangles entry names', () => {
    expect(entryName('_ZN12_GLOBAL__N_113linear_kernelILi128EEEvPK13__nv_bfloat16')).toBe('linear_kernel');
    expect(entryName('_ZN3lfc6detail9rope_evenEv')).toBe('lfc::detail::rope_even');
    expect(entryName('_Z8rms_normPfi')).toBe('rms_norm');
    expect(entryName('plain_c_name')).toBe('plain_c_name');
  });
  it('lists registers, smem, stack and spills per arch and warns on spills or stack', () => {
    const md = kernelTable([
      {
        name: 'linear_t128x128', family: 'linear', config: { tileM: 128, tileN: 128, stages: 3 },
        ptxas: [
          { ...base, kernel: '_ZN12_GLOBAL__N_16gemm_kEv', arch: 'sm_90a', registers: 168, sharedBytes: 98304 },
          { ...base, kernel: '_ZN12_GLOBAL__N_16gemm_kEv', arch: 'sm_80', registers: 255, sharedBytes: 65536, stackBytes: 16, spillStores: 8, spillLoads: 12 },
        ],
      },
      { name: 'rope_a', family: 'rope', config: { vec: 8 }, ptxas: [] },
    ]);
    const lines = md.split('\n');
    const sm80 = lines.find((l) => l.includes('| sm_80 |'))!;
    const sm90 = lines.find((l) => l.includes('| sm_90a |'))!;
    expect(sm80).toContain('| gemm_k | sm_80 | 255 | 65536 | 16 | 8/12 | ⚠ |');
    expect(sm90).toContain('| gemm_k | sm_90a | 168 | 98304 | 0 | 0/0 |  |');
    expect(sm80).toContain('tileM=128 tileN=128 stages=3');
    expect(lines.indexOf(sm80)).toBeLessThan(lines.indexOf(sm90));
    expect(md).toMatch(/\| rope_a \| rope \| vec=8 \| — .* not built \|/);
    expect(md).toContain('⚠ 1 entry spills or uses a stack frame');
  });
  it('says so when nothing spills', () => {
    expect(kernelTable([{ name: 'a', family: 'f', config: {}, ptxas: [{ ...base, kernel: 'k', arch: 'sm_80', registers: 32 }] }])).toContain('No entry spills');
  });
});
