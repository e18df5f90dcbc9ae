/**
 * embedding, activation and gated_act kernels: each config runs on the CPU emulator at
 * small odd shapes against runtime/kernels (bf16 and fp16, outputs poisoned with NaN first), and
 * every config compiles with nvcc for sm_80 + sm_90a without spills or stack.
 * Tolerance: one ulp of the storage dtype (the kernels compute in fp32, the references in fp64,
 * and both round once) plus 1e-6 absolute.
 */
import { describe, expect, it } from 'vitest';
import * as embedding from '../../compiler/codegen/families/embedding.js';
import * as ew from '../../compiler/codegen/families/elementwise.js';
import type { ActDType, CodegenContext, RenderedKernel } from '../../compiler/codegen/kernel.js';
import { activation as actRef, embedding as embRef } from '../../runtime/kernels/index.js';
import { buildEmuLib, compileKernelsNvcc, hasGxx, hasNvcc } from '../helpers/emu-kernel.js';
import { mulberry32 } from '../helpers/random.js';
import { DTYPES, decode, encode, expectClose, poisoned, stored, wrapper } from './ew-util.js';

const ctx = (dtype: ActDType): CodegenContext => ({
  dtype, target: 'all', kv: { blockSize: 16, kvHeads: 2, headDim: 64 },
  limits: { maxTokens: 64, maxSeqs: 4, maxContext: 256, numSms: 132 },
});

const HIDDENS = [64, 100, 256]; // 100: not a multiple of 8 (scalar path)
const ACTS = ['silu', 'gelu_tanh', 'gelu_erf', 'relu'] as const;

function embeddingKernels(): RenderedKernel[] {
  const ks = new Map<string, RenderedKernel>();
  for (const d of DTYPES) for (const h of HIDDENS) {
    const k = embedding.render(embedding.configForEmbedding({ kind: 'embedding', out: 'o', table: 'w', vocab: 259, hidden: h, indices: 'tokens' }, ctx(d)));
    ks.set(k.name, k);
  }
  return [...ks.values()];
}
// Every activation in bf16, fp16 once each for the plain and gated forms (the compile cost of each
// config on the emulator and nvcc is what bounds this file's time).
function ewKernels(): RenderedKernel[] {
  const act = (d: ActDType, activation: (typeof ACTS)[number]) => ew.render(ew.configForActivation({ kind: 'activation', x: 'x', out: 'o', features: 8, activation }, ctx(d)));
  const gated = (d: ActDType, activation: (typeof ACTS)[number]) => ew.render(ew.configForGatedAct({ kind: 'gated_act', gate: 'g', up: 'u', out: 'o', features: 8, activation }, ctx(d)));
  return [...ACTS.map((a) => act('bfloat16', a)), act('float16', 'gelu_erf'), gated('bfloat16', 'silu'), gated('float16', 'gelu_tanh')];
}

const randn = (rnd: () => number, n: number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * scale * 2);

describe.skipIf(!hasGxx)('embedding / activation / gated_act on the emulator', () => {
  const all = [...embeddingKernels(), ...ewKernels()];
  const lib = buildEmuLib(all, wrapper(all));

  it.each(DTYPES.flatMap((d) => HIDDENS.map((h) => [d, h] as const)))('embedding %s H=%i gathers rows exactly', (dtype, H) => {
    const k = embedding.render(embedding.configForEmbedding({ kind: 'embedding', out: 'o', table: 'w', vocab: 259, hidden: H, indices: 'tokens' }, ctx(dtype)));
    const run = lib.func(`int run_${k.name}(const int*, const void*, void*, int, int, int)`);
    const rnd = mulberry32(H);
    const V = 259, table = stored(dtype, randn(rnd, V * H));
    for (const T of [1, 3, 17]) {
      const ids = Int32Array.from({ length: T }, (_, i) => (i === 1 ? V - 1 : Math.floor(rnd() * V)));
      const out = poisoned(T * H);
      expect(run(ids, encode(dtype, table), out, T, V, H)).toBe(0);
      const ref = embRef.reference({ tokens: ids, table, V, H, dtype });
      expect(Array.from(decode(dtype, out))).toEqual(Array.from(ref));
    }
    // ids outside the vocabulary (the reference throws) give zero rows, not a fault
    const bad = poisoned(2 * H);
    expect(run(Int32Array.of(-1, V), encode(dtype, table), bad, 2, V, H)).toBe(0);
    expect(Array.from(decode(dtype, bad))).toEqual(new Array(2 * H).fill(0));
  });

  it.each(ewKernels().map((k) => [k.name, k] as const))('%s matches the reference', (_n, k) => {
    const c = k.config as ew.ElementwiseConfig;
    const dtype = c.dtype;
    const rnd = mulberry32(c.activation.length * 31 + (c.gated ? 1 : 0));
    for (const n of [1, 7, 8, 9, 17 * 100 + 3]) {
      const x = stored(dtype, randn(rnd, n, 4)), u = stored(dtype, randn(rnd, n, 2));
      const out = poisoned(n);
      if (c.gated) {
        const run = lib.func(`int run_${k.name}(const void*, const void*, void*, long)`);
        expect(run(encode(dtype, x), encode(dtype, u), out, n)).toBe(0);
        const f = actRef.activationFn(c.activation);
        const ref = stored(dtype, Array.from(x, (g, i) => f(g) * u[i]));
        expectClose(dtype, decode(dtype, out), ref, `${k.name} n=${n}`);
      } else {
        const run = lib.func(`int run_${k.name}(const void*, void*, long)`);
        expect(run(encode(dtype, x), out, n)).toBe(0);
        expectClose(dtype, decode(dtype, out), actRef.reference({ x, activation: c.activation, dtype }), `${k.name} n=${n}`);
      }
    }
    // misaligned (odd element offset): the scalar path
    if (!c.gated) {
      const n = 37, x = stored(dtype, randn(rnd, n + 1, 4));
      const xb = encode(dtype, x), ob = poisoned(n + 1);
      const run = lib.func(`int run_${k.name}(const void*, void*, long)`);
      expect(run(xb.subarray(1), ob.subarray(1), n)).toBe(0);
      expectClose(dtype, decode(dtype, ob.subarray(1)), actRef.reference({ x: x.subarray(1), activation: c.activation, dtype }), 'misaligned');
    }
  });
});

describe.skipIf(!hasNvcc)('embedding / activation / gated_act with nvcc', () => {
  it('every config compiles for sm_80 and sm_90a without spills or stack', () => {
    const rep = compileKernelsNvcc([...embeddingKernels(), ...ewKernels()]);
    expect(new Set(rep.map((r) => r.arch))).toEqual(new Set(['sm_80', 'sm_90a']));
    for (const r of rep) expect(r.spillStores + r.stackBytes, `${r.kernel} ${r.arch}`).toBe(0);
  }, 300_000);
});
