/**
 * com.microsoft MatMulNBits (ONNX Runtime's pre-quantized weight format, issue 11):
 *   Y[..., N] = A[..., K] · dequant(B)ᵀ (+ bias)
 * B uint8 [N, K/block, block·bits/8], each row's blocks concatenated, LOW NIBBLE FIRST for bits 4;
 * scales float [N·K/block]; zero_points optional: uint8 packed like B (bits 4: two per byte, each row
 * ceil(K/block·bits/8) bytes), or float [N·K/block]; default zero point 2^(bits−1) (8 for 4 bits).
 * Attributes K, N, bits (4 or 8), block_size. g_idx (input 4) is not supported.
 * Lowering to the plan's int4_group format is left to do (see the issue 11 report).
 */
import { Tensor } from '../../runtime/tensor.js';
import type { OpContext, OpDef } from './registry.js';
import { req } from './util.js';

function params(ctx: OpContext) {
  const K = ctx.attrs.int('K', 0), N = ctx.attrs.int('N', 0), bits = ctx.attrs.int('bits', 4), block = ctx.attrs.int('block_size', 0);
  if (K <= 0 || N <= 0) ctx.fail(`attributes K and N are required (got K=${K}, N=${N})`);
  if (bits !== 4 && bits !== 8) ctx.fail(`bits=${bits} is not supported (4 or 8)`);
  if (block < 16 || (block & (block - 1)) !== 0) ctx.fail(`block_size must be a power of two ≥ 16, got ${block}`);
  return { K, N, bits, block, blocks: Math.ceil(K / block) };
}

/** Dequantized weight W [N, K] (fp32) of a MatMulNBits node. */
export function dequantMatMulNBits(ctx: OpContext, b: Tensor, scales: Tensor, zp: Tensor | undefined): Float32Array {
  const { K, N, bits, block, blocks } = params(ctx);
  const rowBytes = (block * bits) / 8;
  if (b.size !== N * blocks * rowBytes) ctx.fail(`B has ${b.size} bytes, expected N·ceil(K/block)·block·bits/8 = ${N * blocks * rowBytes}`);
  if (scales.size !== N * blocks) ctx.fail(`scales has ${scales.size} values, expected N·ceil(K/block) = ${N * blocks}`);
  const zpRow = Math.ceil((blocks * bits) / 8);
  if (zp && zp.dtype === 'uint8' && zp.size !== N * zpRow) ctx.fail(`zero_points has ${zp.size} bytes, expected ${N * zpRow}`);
  const w = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < blocks; g++) {
      const s = scales.data[n * blocks + g];
      let z = 1 << (bits - 1);
      if (zp) {
        if (zp.dtype === 'uint8') {
          if (bits === 8) z = zp.data[n * zpRow + g];
          else { const byte = zp.data[n * zpRow + (g >> 1)]; z = g & 1 ? byte >> 4 : byte & 15; }
        } else z = zp.data[n * blocks + g];
      }
      for (let i = 0; i < block; i++) {
        const k = g * block + i;
        if (k >= K) break;
        const off = (n * blocks + g) * rowBytes;
        const q = bits === 8 ? b.data[off + i] : (i & 1 ? b.data[off + (i >> 1)] >> 4 : b.data[off + (i >> 1)] & 15);
        w[n * K + k] = Math.fround((q - z) * s);
      }
    }
  }
  return w;
}

const matMulNBitsOp: OpDef = {
  name: 'MatMulNBits',
  domain: 'com.microsoft',
  since: [1],
  infer(ctx) {
    const a = ctx.input(0);
    const { K, N } = params(ctx);
    if (ctx.inputs[4]) ctx.fail('g_idx (act-order) is not supported');
    const last = a.shape.at(-1);
    if (typeof last === 'number' && last !== K) ctx.fail(`A's last dimension is ${last}, attribute K is ${K}`);
    return [{ dtype: a.dtype, shape: [...a.shape.slice(0, -1), N] }];
  },
  evaluate(ctx, inputs) {
    const a = req(ctx, inputs, 0, 'A'), b = req(ctx, inputs, 1, 'B'), scales = req(ctx, inputs, 2, 'scales');
    const { K, N } = params(ctx);
    const w = dequantMatMulNBits(ctx, b, scales, inputs[3]);
    const bias = inputs[5];
    const M = a.size / K;
    const y = Tensor.zeros('float32', [...a.shape.slice(0, -1), N]);
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a.data[m * K + k] * w[n * K + k];
        if (bias) s += bias.data[n];
        y.data[m * N + n] = s;
      }
    }
    return [y];
  },
};

export const matMulNBitsOps: OpDef[] = [matMulNBitsOp];

/**
 * Repack a 4-bit MatMulNBits weight into the plan's int4_group format (runtime/kernels/quant.ts):
 * with K a multiple of block_size the nibble layout is the same ([N][K/2] bytes, low nibble first),
 * so B is copied as is; zero points are unpacked to one byte each (default 8), scales copied.
 */
export function matMulNBitsToInt4Group(b: Uint8Array, scales: Float32Array, zp: Uint8Array | undefined, K: number, N: number, block: number): { packed: Uint8Array; scale: Float32Array; zero: Uint8Array; groupSize: number } {
  if (K % block !== 0) throw new Error(`MatMulNBits: K = ${K} is not a multiple of block_size ${block}; the int4_group format needs whole groups`);
  const G = K / block, zpRow = Math.ceil(G / 2);
  const zero = new Uint8Array(N * G).fill(8);
  if (zp) for (let n = 0; n < N; n++) for (let g = 0; g < G; g++) { const byte = zp[n * zpRow + (g >> 1)]; zero[n * G + g] = g & 1 ? byte >> 4 : byte & 15; }
  return { packed: Uint8Array.from(b), scale: Float32Array.from(scales), zero, groupSize: block };
}
