/**
 * add_norm kernels (RMSNorm and LayerNorm, optional residual / sum_out / beta): each config runs on the CPU emulator at
 * small odd shapes against runtime/kernels (bf16 and fp16, outputs poisoned with NaN first), and
 * every config compiles with nvcc for sm_80 + sm_90a without spills or stack.
 * Tolerance: one ulp of the storage dtype (the kernels compute in fp32, the references in fp64,
 * and both round once) plus 1e-6 absolute.
 */
import { describe, expect, it } from 'vitest';
import * as addNorm from '../../compiler/codegen/families/add-norm.js';
import type { ActDType, CodegenContext, RenderedKernel } from '../../compiler/codegen/kernel.js';
import { addNorm as addNormRef } from '../../runtime/kernels/index.js';
import { buildEmuLib, compileKernelsNvcc, hasGxx, hasNvcc } from '../helpers/emu-kernel.js';
import { mulberry32 } from '../helpers/random.js';
import { DTYPES, decode, encode, expectClose, poisoned, stored, wrapper } from './ew-util.js';

const ctx = (dtype: ActDType): CodegenContext => ({
  dtype, target: 'all', kv: { blockSize: 16, kvHeads: 2, headDim: 64 },
  limits: { maxTokens: 64, maxSeqs: 4, maxContext: 256, numSms: 132 },
});

const HIDDENS = [64, 100, 256]; // 100: not a multiple of 8 (scalar path)

function addNormKernels(): RenderedKernel[] {
  const ks: RenderedKernel[] = [];
  const cfg = (d: ActDType, norm: 'rms' | 'layer', hidden: number) =>
    addNorm.render(addNorm.configForAddNorm({ kind: 'add_norm', x: 'x', out: 'o', gamma: 'g', norm, eps: 1e-5, hidden }, ctx(d)));
  // every hidden size for (rms, bf16) and (layer, fp16); the other pairs once
  for (const hidden of HIDDENS) ks.push(cfg('bfloat16', 'rms', hidden), cfg('float16', 'layer', hidden));
  ks.push(cfg('float16', 'rms', 100), cfg('bfloat16', 'layer', 256));
  // a multi-warp block with several groups per thread
  ks.push(addNorm.render({ dtype: 'bfloat16', norm: 'rms', hidden: 1024, threads: 64, maxBlocks: 65535 }));
  return ks;
}
const randn = (rnd: () => number, n: number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * scale * 2);

describe.skipIf(!hasGxx)('add_norm on the emulator', () => {
  const all = addNormKernels();
  const lib = buildEmuLib(all, wrapper(all));

  it.each(addNormKernels().map((k) => [k.name, k] as const))('%s matches the reference (with/without residual, sum_out, beta)', (_n, k) => {
    const c = k.config as addNorm.AddNormConfig;
    const run = lib.func(`int run_${k.name}(const void*, const void*, void*, void*, const float*, const float*, float, int, int)`);
    const H = c.hidden, dtype = c.dtype;
    const rnd = mulberry32(H + (c.norm === 'layer' ? 7 : 0));
    for (const T of [1, 3, 17]) {
      for (const withRes of [false, true]) {
        const x = stored(dtype, randn(rnd, T * H, 3)), r = stored(dtype, randn(rnd, T * H, 3));
        const gamma = Float32Array.from({ length: H }, () => 0.5 + rnd());
        const beta = c.norm === 'layer' && T !== 3 ? Float32Array.from({ length: H }, () => rnd() - 0.5) : undefined;
        const out = poisoned(T * H), sum = poisoned(T * H);
        expect(run(encode(dtype, x), withRes ? encode(dtype, r) : null, out, withRes ? sum : null, gamma, beta ?? null, 1e-5, T, H)).toBe(0);
        const ref = addNormRef.reference({ x, residual: withRes ? r : undefined, gamma, beta, kind: c.norm, eps: 1e-5, T, H, dtype });
        expectClose(dtype, decode(dtype, out), ref.y, `${k.name} T=${T} residual=${withRes} y`, 1e-5);
        if (withRes) expect(Array.from(decode(dtype, sum)), 'sum_out').toEqual(Array.from(ref.residual!));
      }
    }
    // in place: sum_out over the residual, out over x (the decoder's usual aliasing)
    const T = 3, x = stored(dtype, randn(rnd, T * H)), r = stored(dtype, randn(rnd, T * H));
    const gamma = Float32Array.from({ length: H }, () => 0.5 + rnd());
    const xb = encode(dtype, x), rb = encode(dtype, r);
    expect(run(xb, rb, xb, rb, gamma, null, 1e-6, T, H)).toBe(0);
    const ref = addNormRef.reference({ x, residual: r, gamma, kind: c.norm, eps: 1e-6, T, H, dtype });
    expectClose(dtype, decode(dtype, xb), ref.y, 'in place y', 1e-5);
    expect(Array.from(decode(dtype, rb))).toEqual(Array.from(ref.residual!));
    // x and out one element off 16-byte alignment: the scalar instantiation, same results
    const xm = new Uint16Array(T * H + 1), om = poisoned(T * H + 1);
    xm.set(encode(dtype, x), 1);
    expect(run(xm.subarray(1), encode(dtype, r), om.subarray(1), null, gamma, null, 1e-6, T, H)).toBe(0);
    expectClose(dtype, decode(dtype, om.subarray(1)), ref.y, 'misaligned y', 1e-5);
    // wrong H is refused
    expect(run(xb, rb, xb, rb, gamma, null, 1e-6, T, H + 1)).not.toBe(0);
  });

});

describe.skipIf(!hasNvcc)('add_norm with nvcc', () => {
  it('every config (and LLaMA-sized ones) compiles for sm_80 and sm_90a without spills or stack', () => {
    const rep = compileKernelsNvcc([...addNormKernels(),
      addNorm.render(addNorm.configForAddNorm({ kind: 'add_norm', x: 'x', out: 'o', gamma: 'g', norm: 'rms', eps: 1e-5, hidden: 4096 }, ctx('bfloat16')))]);
    expect(new Set(rep.map((r) => r.arch))).toEqual(new Set(['sm_80', 'sm_90a']));
    for (const r of rep) expect(r.spillStores + r.stackBytes, `${r.kernel} ${r.arch}`).toBe(0);
  }, 300_000);
});
