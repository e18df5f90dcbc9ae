/**
 * rope and cache_write kernels on the CPU emulator against runtime/kernels/rope.ts (bf16 and fp16;
 * 'half' and 'interleaved' styles, full and partial rotary dims, head dims 32/64/128 plus a scalar
 * layout; in place and out of place; cache_write with slot -1 padding rows, partial blocks, GQA
 * row widths), and nvcc sm_80 + sm_90a compiles without spills or stack.
 * Tolerance (rope): one ulp of the storage dtype + 1e-6 (fp32 rotation vs the fp64 reference, one
 * rounding each). cache_write is a bit copy: exact.
 */
import { describe, expect, it } from 'vitest';
import * as cacheWrite from '../../compiler/codegen/families/cache-write.js';
import * as rope from '../../compiler/codegen/families/rope.js';
import type { ActDType, CodegenContext, RenderedKernel } from '../../compiler/codegen/kernel.js';
import { rope as ropeRef } from '../../runtime/kernels/index.js';
import { buildEmuLib, compileKernelsNvcc, hasGxx, hasNvcc } from '../helpers/emu-kernel.js';
import { mulberry32 } from '../helpers/random.js';
import { decode, encode, expectClose, poisoned, stored } from './ew-util.js';

const ctx = (dtype: ActDType, kvHeads = 2, headDim = 64): CodegenContext => ({
  dtype, target: 'all', kv: { blockSize: 16, kvHeads, headDim },
  limits: { maxTokens: 64, maxSeqs: 4, maxContext: 256, numSms: 132 },
});

const ROPES: [ActDType, 'half' | 'interleaved', number, number][] = [
  ['bfloat16', 'half', 64, 64],
  ['float16', 'half', 128, 128],
  ['bfloat16', 'interleaved', 32, 32],
  ['float16', 'half', 64, 32], // partial rotary (GPT-NeoX style)
  ['float16', 'interleaved', 64, 48],
  ['bfloat16', 'half', 80, 40], // rotaryDim/2 = 20: scalar pairs
];
const ropeKernels = (): RenderedKernel[] => ROPES.map(([d, style, headDim, rotaryDim]) =>
  rope.render(rope.configForRope({ kind: 'rope', x: 'x', out: 'o', heads: 4, headDim, rotaryDim, style, cos: 'c', sin: 's' }, ctx(d))));

const CW: [ActDType, number, number][] = [['bfloat16', 2, 64], ['float16', 1, 128], ['bfloat16', 4, 32], ['float16', 1, 36]];
const cwKernels = (): RenderedKernel[] => {
  const m = new Map<string, RenderedKernel>();
  for (const [d, kvh, hd] of CW) { const k = cacheWrite.render(cacheWrite.configForCacheWrite({ kind: 'cache_write', layer: 0, k: 'k', v: 'v' }, ctx(d, kvh, hd))); m.set(k.name, k); }
  return [...m.values()];
};

function wrapper(ks: RenderedKernel[]): string {
  const lines = ['#include "lfc_abi.h"'];
  for (const k of ks) {
    const fn = k.launches[0];
    lines.push(`cudaError_t ${fn.fn}(const ${fn.args}&, cudaStream_t);`);
    if (fn.args === 'LfcRopeArgs') lines.push(`extern "C" int run_${fn.fn}(const void* x, void* o, const int* pos, const float* c, const float* s, int T, int heads, int D, int R, int P) {
  LfcRopeArgs a{x, o, pos, c, s, T, heads, D, R, P}; return ${fn.fn}(a, nullptr); }`);
    if (fn.args === 'LfcCacheWriteArgs') lines.push(`extern "C" int run_${fn.fn}(const void* k, const void* v, void* kc, void* vc, const int* slots, int T, int kvh, int D, int S, int NB) {
  LfcCacheWriteArgs a{k, v, kc, vc, slots, T, kvh, D, S, NB}; return ${fn.fn}(a, nullptr); }`);
  }
  return lines.join('\n') + '\n';
}

const rand = (rnd: () => number, n: number, s = 2): Float32Array => Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * s);

describe.skipIf(!hasGxx)('rope / cache_write on the emulator', () => {
  const all = [...ropeKernels(), ...cwKernels()];
  const lib = buildEmuLib(all, wrapper(all));

  it.each(ropeKernels().map((k) => [k.name, k] as const))('%s matches the reference', (_n, k) => {
    const c = k.config as rope.RopeConfig;
    const run = lib.func(`int run_${k.name}(const void*, void*, const int*, const float*, const float*, int, int, int, int, int)`);
    const { dtype, headDim: D, rotaryDim: R } = c;
    const rnd = mulberry32(D * 7 + R);
    const P = 50, tab = ropeRef.cosSinTable(P, R, 10000);
    for (const [T, heads] of [[1, 4], [3, 5], [17, 3]]) {
      const x = stored(dtype, rand(rnd, T * heads * D));
      const positions = Int32Array.from({ length: T }, (_, i) => (i === 0 ? P - 1 : Math.floor(rnd() * P)));
      const ref = x.slice();
      ropeRef.reference({ q: ref, k: new Float32Array(T * D), positions, T, Hq: heads, Hkv: 1, D, rotaryDim: R, style: c.style, table: tab, dtype });
      const out = poisoned(T * heads * D);
      expect(run(encode(dtype, x), out, positions, tab.cos, tab.sin, T, heads, D, R, P)).toBe(0);
      expectClose(dtype, decode(dtype, out), ref, `${k.name} T=${T} heads=${heads}`);
      const inPlace = encode(dtype, x);
      expect(run(inPlace, inPlace, positions, tab.cos, tab.sin, T, heads, D, R, P)).toBe(0);
      expect(Array.from(inPlace)).toEqual(Array.from(out));
    }
    expect(run(new Uint16Array(D), new Uint16Array(D), new Int32Array(1), tab.cos, tab.sin, 1, 1, D + 2, R, P), 'head_dim mismatch').not.toBe(0);
  });

  it.each(CW.map(([d, kvh, hd]) => [d, kvh, hd] as const))('cache_write %s kvHeads=%i headDim=%i: slots written bit for bit, -1 skipped', (dtype, Hkv, D) => {
    const k = cacheWrite.render(cacheWrite.configForCacheWrite({ kind: 'cache_write', layer: 0, k: 'k', v: 'v' }, ctx(dtype, Hkv, D)));
    const run = lib.func(`int run_${k.name}(const void*, const void*, void*, void*, const int*, int, int, int, int, int)`);
    const rnd = mulberry32(Hkv * 131 + D);
    const S = 16, NB = 5, row = Hkv * D;
    for (const T of [1, 3, 17]) {
      const kk = stored(dtype, rand(rnd, T * row)), vv = stored(dtype, rand(rnd, T * row));
      // distinct slots over partial blocks, every third token padding (-1)
      const perm = Array.from({ length: NB * S }, (_, i) => i).sort(() => rnd() - 0.5);
      const slots = Int32Array.from({ length: T }, (_, t) => (t % 3 === 2 ? -1 : perm[t]));
      const POISON = 0x4242;
      const kc = new Uint16Array(NB * S * row).fill(POISON), vc = new Uint16Array(NB * S * row).fill(POISON);
      const refK = decode(dtype, kc), refV = decode(dtype, vc);
      ropeRef.cacheWrite({ k: kk, v: vv, kCache: refK, vCache: refV, slotMapping: slots, T, Hkv, D, blockSize: S, numBlocks: NB, cacheDtype: dtype });
      expect(run(encode(dtype, kk), encode(dtype, vv), kc, vc, slots, T, Hkv, D, S, NB)).toBe(0);
      expect(Array.from(kc)).toEqual(Array.from(encode(dtype, refK)));
      expect(Array.from(vc)).toEqual(Array.from(encode(dtype, refV)));
    }
  });
});

describe.skipIf(!hasNvcc)('rope / cache_write with nvcc', () => {
  it('every config compiles for sm_80 and sm_90a without spills or stack', () => {
    const rep = compileKernelsNvcc([...ropeKernels(), ...cwKernels()]);
    expect(new Set(rep.map((r) => r.arch))).toEqual(new Set(['sm_80', 'sm_90a']));
    for (const r of rep) expect(r.spillStores + r.stackBytes, `${r.kernel} ${r.arch}`).toBe(0);
  }, 300_000);
});
