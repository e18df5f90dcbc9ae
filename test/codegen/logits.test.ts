/**
 * logits kernel on the CPU emulator against runtime/kernels/logits.ts: vocab 259 (a partial last
 * warp), hidden 64/100 (scalar path)/256, L in {1, 3, 17} (partial row tiles, gathered rows in any
 * order, repeated rows), with and without bias, bf16 and fp16 inputs; nvcc sm_80 + sm_90a without
 * spills or stack. Outputs are fp32: tolerance 2e-5 · Σ|x·w| + 1e-6 per element (fp32 sums in
 * another order than the fp64 reference).
 */
import { describe, expect, it } from 'vitest';
import * as logits from '../../compiler/codegen/families/logits.js';
import type { ActDType, CodegenContext, RenderedKernel } from '../../compiler/codegen/kernel.js';
import { logits as logitsRef } from '../../runtime/kernels/index.js';
import { buildEmuLib, compileKernelsNvcc, hasGxx, hasNvcc } from '../helpers/emu-kernel.js';
import { mulberry32 } from '../helpers/random.js';
import { encode, stored } from './ew-util.js';

const ctx = (dtype: ActDType): CodegenContext => ({
  dtype, target: 'all', kv: { blockSize: 16, kvHeads: 2, headDim: 64 },
  limits: { maxTokens: 64, maxSeqs: 4, maxContext: 256, numSms: 132 },
});
const cfg = (dtype: ActDType, hidden: number) => logits.configForLogits({ kind: 'logits', x: 'x', weight: 'w', hidden, vocab: 259 }, ctx(dtype));
const kernels = (): RenderedKernel[] => [
  logits.render(cfg('bfloat16', 64)),
  logits.render(cfg('float16', 100)),
  logits.render(cfg('bfloat16', 256)),
  logits.render({ ...cfg('float16', 128), cols: 2, rowsPerTile: 16, warps: 2 }),
];

function wrapper(ks: RenderedKernel[]): string {
  const lines = ['#include "lfc_abi.h"'];
  for (const k of ks) {
    lines.push(`cudaError_t ${k.name}(const LfcLogitsArgs&, cudaStream_t);`);
    lines.push(`extern "C" int run_${k.name}(const void* x, const int* idx, const void* w, const float* b, float* o, int L, int H, int V) {
  LfcLogitsArgs a{x, idx, w, b, o, L, H, V}; return ${k.name}(a, nullptr); }`);
  }
  return lines.join('\n') + '\n';
}

describe.skipIf(!hasGxx)('logits on the emulator', () => {
  const all = kernels();
  const lib = buildEmuLib(all, wrapper(all));

  it.each(all.map((k) => [k.name, k] as const))('%s matches the reference', (_n, k) => {
    const c = k.config as logits.LogitsConfig;
    const run = lib.func(`int run_${k.name}(const void*, const int*, const void*, const float*, float*, int, int, int)`);
    const { dtype, hidden: H } = c;
    const V = 259, rnd = mulberry32(H * 3 + c.cols);
    const w = stored(dtype, Float32Array.from({ length: V * H }, () => (rnd() * 2 - 1) * 0.2));
    const wb = encode(dtype, w);
    for (const L of [1, 3, 17]) {
      for (const withBias of [false, true]) {
        const T = L + 2;
        const x = stored(dtype, Float32Array.from({ length: T * H }, () => (rnd() * 2 - 1) * 2));
        const idx = Int32Array.from({ length: L }, (_, l) => (l === 1 ? 0 : Math.floor(rnd() * T)));
        const bias = withBias ? Float32Array.from({ length: V }, () => rnd() - 0.5) : undefined;
        const out = new Float32Array(L * V).fill(NaN);
        expect(run(encode(dtype, x), idx, wb, bias ?? null, out, L, H, V)).toBe(0);
        const ref = logitsRef.reference({ hidden: x, logitIndices: idx, weight: w, bias, T, H, V });
        if (L === 3) {
          // x one element off 16-byte alignment: the scalar instantiation, same results
          const xm = new Uint16Array(T * H + 1);
          xm.set(encode(dtype, x), 1);
          const om = new Float32Array(L * V).fill(NaN);
          expect(run(xm.subarray(1), idx, wb, bias ?? null, om, L, H, V)).toBe(0);
          for (let i = 0; i < L * V; i++) if (!(Math.abs(om[i] - out[i]) <= 1e-5 * Math.abs(out[i]) + 1e-5)) expect.fail(`misaligned ${i}: ${om[i]} vs ${out[i]}`);
        }
        for (let l = 0; l < L; l++) {
          for (let v = 0; v < V; v++) {
            let mag = 0;
            for (let h = 0; h < H; h++) mag += Math.abs(x[idx[l] * H + h] * w[v * H + h]);
            const i = l * V + v;
            if (!(Math.abs(out[i] - ref[i]) <= 2e-5 * mag + 1e-6)) expect.fail(`L=${L} bias=${withBias} row ${l} col ${v}: ${out[i]} vs ${ref[i]}`);
          }
        }
      }
    }
  });
});

describe.skipIf(!hasNvcc)('logits with nvcc', () => {
  it('every config (and LLaMA-sized ones) compiles for sm_80 and sm_90a without spills or stack', () => {
    const rep = compileKernelsNvcc([...kernels(), logits.render(cfg('bfloat16', 4096)), logits.render(cfg('float16', 8192))]);
    expect(new Set(rep.map((r) => r.arch))).toEqual(new Set(['sm_80', 'sm_90a']));
    for (const r of rep) expect(r.spillStores + r.stackBytes, `${r.kernel} ${r.arch}`).toBe(0);
  }, 300_000);
});
