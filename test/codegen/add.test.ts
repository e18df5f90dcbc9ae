/**
 * add family: the rendered kernel runs on the CPU emulator against the reference (sum, one
 * rounding), at odd sizes that exercise the vector body and the scalar tail, and compiles for
 * sm_80 + sm_90a without spills.
 */
import { describe, expect, it } from 'vitest';
import { configForAdd, render } from '../../compiler/codegen/families/add.js';
import { bf16Decode, bf16Encode } from '../../runtime/floats.js';
import { buildEmuLib, compileKernelsNvcc, hasGxx, hasNvcc } from '../helpers/emu-kernel.js';
import { mulberry32 } from '../helpers/random.js';

describe.skipIf(!hasGxx)('add kernel on the emulator', () => {
  it.each([1, 7, 8, 9, 1000, 4099])('n = %i matches a + b rounded once to bf16', (n) => {
    const k = render(configForAdd('bfloat16'));
    const lib = buildEmuLib([k], `
#include "lfc_abi.h"
cudaError_t ${k.name}(const LfcAddArgs&, cudaStream_t);
extern "C" int run(const void* a, const void* b, void* o, long n) { LfcAddArgs x{a, b, o, n}; return ${k.name}(x, nullptr); }
`);
    const run = lib.func('int run(const void*, const void*, void*, long)');
    const rnd = mulberry32(n);
    const a = new Uint16Array(n).map(() => bf16Encode(rnd() * 8 - 4));
    const b = new Uint16Array(n).map(() => bf16Encode(rnd() * 8 - 4));
    const o = new Uint16Array(n).fill(0x7fc0); // poisoned with NaN
    expect(run(a, b, o, n)).toBe(0);
    for (let i = 0; i < n; i++) expect(o[i], `element ${i}`).toBe(bf16Encode(bf16Decode(a[i]) + bf16Decode(b[i])));
  });
});

describe.skipIf(!hasNvcc)('add kernel with nvcc', () => {
  it('compiles for sm_80 and sm_90a without spills', () => {
    const rep = compileKernelsNvcc([render(configForAdd('bfloat16')), render(configForAdd('float16'))]);
    expect(new Set(rep.map((r) => r.arch))).toEqual(new Set(['sm_80', 'sm_90a']));
    for (const r of rep) expect(r.spillStores + r.stackBytes, r.kernel).toBe(0);
  });
});
