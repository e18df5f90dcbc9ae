/**
 * Shared harness of the linear tests: run a rendered linear config on the CPU emulator (inputs
 * copied into emulator cudaMalloc memory, which ends at a guard page) and compare against
 * runtime/kernels/linear.ts.
 */
import { expect } from 'vitest';
import type { LinearConfig, LinearActivation } from '../../compiler/codegen/families/linear.js';
import { render } from '../../compiler/codegen/families/linear.js';
import type { RenderedKernel } from '../../compiler/codegen/kernel.js';
import { reference } from '../../runtime/kernels/linear.js';
import { linearW4A16, linearW8A8, quantizeInt4Group, quantizeWeightInt8PerChannel } from '../../runtime/kernels/quant.js';
import { bf16Decode, bf16Encode, fp16Decode, fp16Encode } from '../../runtime/floats.js';
import { buildEmuLib } from '../helpers/emu-kernel.js';
import { mulberry32 } from '../helpers/random.js';

export interface LinearCase {
  T: number;
  K: number;
  N: number;
  bias?: boolean;
  residual?: boolean;
  /** Column ranges [start, end) of the outs (default one out over all N). */
  outs?: [number, number][];
  seed?: number;
  /** int4_group weights (the config must have weight int4_group): zero points given, smooth given. */
  zero?: boolean;
  smooth?: boolean;
}

type Runner = (...args: unknown[]) => number;
const libs = new Map<string, { run: Runner; kernel: RenderedKernel }>();

function wrapper(name: string): string {
  return `
#include <cstring>
#include "lfc_abi.h"
cudaError_t ${name}(const LfcLinearArgs&, cudaStream_t);
extern "C" int ${name}_path;
static void* dev(const void* h, size_t n) { if (!h) return nullptr; void* d; cudaMalloc(&d, n); std::memcpy(d, h, n); return d; }
// outs: 4 x (ptr, start, end) in flat arrays; returns path * 1000 + cudaError.
// Dense W when gs == 0; int4_group when gs > 0 (packed W [N, K/2], scale/zero [N, K/gs]); int8_channel
// when gs == -1 (W int8 [N, K], scale [N]); smooth [K] with either quantized format.
extern "C" int run(const void* x, const void* w, const float* bias, const void* res, void* o0, void* o1, void* o2, void* o3,
                   const int* ranges, int n_outs, int T, int K, int N, int gs, const float* scale, const uint8_t* zero,
                   const float* smooth, long ws_bytes) {
  LfcLinearArgs a{};
  if (ws_bytes > 0) cudaMalloc(&a.workspace, size_t(ws_bytes));  // ends at a guard page
  a.x = dev(x, size_t(T) * K * 2); a.w = dev(w, gs > 0 ? size_t(N) * K / 2 : gs < 0 ? size_t(N) * K : size_t(N) * K * 2);
  if (gs < 0) {
    a.scale = static_cast<const float*>(dev(scale, size_t(N) * 4));
    a.smooth = static_cast<const float*>(dev(smooth, size_t(K) * 4));
  }
  if (gs > 0) {
    size_t g = size_t(N) * (K / gs);
    a.scale = static_cast<const float*>(dev(scale, g * 4)); a.zero = static_cast<const uint8_t*>(dev(zero, g));
    a.smooth = static_cast<const float*>(dev(smooth, size_t(K) * 4));
  }
  a.bias = static_cast<const float*>(dev(bias, size_t(N) * 4)); a.residual = dev(res, size_t(T) * N * 2);
  void* hs[4] = {o0, o1, o2, o3};
  for (int j = 0; j < n_outs; ++j) {
    size_t bytes = size_t(T) * (ranges[2 * j + 1] - ranges[2 * j]) * 2;
    a.outs[j] = {dev(hs[j], bytes), ranges[2 * j], ranges[2 * j + 1]};
  }
  a.n_outs = n_outs; a.T = T; a.K = K; a.N = N;
  cudaError_t e = ${name}(a, nullptr);
  for (int j = 0; j < n_outs; ++j) std::memcpy(hs[j], a.outs[j].ptr, size_t(T) * (ranges[2 * j + 1] - ranges[2 * j]) * 2);
  return ${name}_path * 1000 + int(e);
}
`;
}

export function emuLinear(c: LinearConfig): { run: Runner; kernel: RenderedKernel } {
  const k = render(c);
  let l = libs.get(k.name);
  if (!l) {
    const lib = buildEmuLib([k], wrapper(k.name));
    const run = lib.func('int run(const void*, const void*, const float*, const void*, void*, void*, void*, void*, const int*, int, int, int, int, int, const float*, const uint8_t*, const float*, long)') as Runner;
    l = { run, kernel: k };
    libs.set(k.name, l);
  }
  return l;
}

const TOL = {
  // ‖out−ref‖/‖ref‖ and max |out−ref| / max |ref|: one rounding (≤ 1 ulp after fp32 reassociation).
  bfloat16: { rel: 4e-3, maxAbs: 2 ** -7 },
  float16: { rel: 6e-4, maxAbs: 2 ** -10 },
} as const;

export const tolerances = TOL;

/** Runs one case; returns the path the launch function took (0 simple, 1 gemv, 2+i tile i, + 100·splits if split-K). */
export function checkLinear(c: LinearConfig, tc: LinearCase, tolerance: { rel: number; maxAbs: number } = TOL[c.dtype]): number {
  const { T, K, N } = tc;
  const enc = c.dtype === 'bfloat16' ? bf16Encode : fp16Encode;
  const dec = c.dtype === 'bfloat16' ? bf16Decode : fp16Decode;
  const rnd = mulberry32(tc.seed ?? T * 7919 + K * 131 + N);
  const q = (n: number, scale: number) => {
    const h = new Uint16Array(n), f = new Float32Array(n);
    for (let i = 0; i < n; i++) { h[i] = enc((rnd() * 2 - 1) * scale); f[i] = dec(h[i]); }
    return { h, f };
  };
  const x = q(T * K, 1), w = q(N * K, 1 / Math.sqrt(K));
  const w4 = c.weight?.kind === 'int4_group' ? quantizeInt4Group(w.f, N, K, c.weight.groupSize) : undefined;
  if (w4 && !tc.zero) w4.zero.fill(8);
  const w8 = c.weight?.kind === 'int8_channel' ? quantizeWeightInt8PerChannel(w.f, N, K) : undefined;
  const smooth = (w4 || w8) && tc.smooth ? Float32Array.from({ length: K }, () => Math.fround(0.5 + rnd())) : undefined;
  const bias = tc.bias ? Float32Array.from({ length: N }, () => Math.fround(rnd() - 0.5)) : undefined;
  const res = tc.residual ? q(T * N, 1) : undefined;
  const ranges = tc.outs ?? [[0, N]];
  const outs = ranges.map(([s, e]) => new Uint16Array(T * (e - s)).fill(c.dtype === 'bfloat16' ? 0x7fc0 : 0x7e00));
  const common = { x: x.f, bias, residual: res?.f, activation: c.activation === 'none' ? undefined : c.activation, T, K, N, dtype: c.dtype };
  const ref = w4 ? linearW4A16({ ...common, smooth, weight: w4 }) : w8 ? linearW8A8({ ...common, smooth, weight: w8 }) : reference({ ...common, weight: w.f });
  const { run, kernel } = emuLinear(c);
  const ws = kernel.workspaceBytes?.({ maxTokens: T, maxSeqs: 1, maxContext: 1, numSms: 132 }) ?? 0;
  const r = run(x.h, w4 ? w4.packed : w8 ? w8.q : w.h, bias ?? null, res?.h ?? null, outs[0] ?? null, outs[1] ?? null, outs[2] ?? null, outs[3] ?? null,
    Int32Array.from(ranges.flat()), ranges.length, T, K, N, w4 ? w4.groupSize : w8 ? -1 : 0, w4?.scale ?? w8?.scale ?? null,
    w4 && tc.zero ? w4.zero : null, smooth ?? null, ws);
  expect(r % 1000, 'cudaError').toBe(0);
  let num = 0, den = 0, maxErr = 0, maxRef = 0;
  ranges.forEach(([s, e], j) => {
    const wd = e - s;
    for (let t = 0; t < T; t++) {
      for (let n = s; n < e; n++) {
        const o = dec(outs[j][t * wd + n - s]), rv = ref[t * N + n];
        if (!Number.isFinite(o)) expect.fail(`out ${j} [${t}, ${n}] = ${o} (not written?), ref ${rv}`);
        num += (o - rv) ** 2; den += rv * rv;
        maxErr = Math.max(maxErr, Math.abs(o - rv)); maxRef = Math.max(maxRef, Math.abs(rv));
      }
    }
  });
  const tol = tolerance;
  const rel = Math.sqrt(num / Math.max(den, 1e-30));
  expect(rel, `relative error T=${T} K=${K} N=${N}`).toBeLessThanOrEqual(tol.rel);
  expect(maxErr, `max abs error T=${T} K=${K} N=${N} (max |ref| ${maxRef})`).toBeLessThanOrEqual(tol.maxAbs * maxRef * 1.01 + 1e-6);
  return Math.floor(r / 1000);
}

export function cfg(dtype: LinearConfig['dtype'], activation: LinearActivation, tiles: LinearConfig['tiles'], gemv: Partial<LinearConfig['gemv']> = {}): LinearConfig {
  return { dtype, activation, gemv: { maxT: 8, cols: 2, warps: 4, ...gemv }, tiles };
}
