/**
 * com.microsoft MatMulNBits (issue 11): lfc's reference against onnxruntime-node executing a
 * one-node MatMulNBits graph (bits 4 with and without packed zero points, bits 8), and clear errors.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import '../../compiler/ops/index.js';
import { inferShapes } from '../../compiler/ir/infer.js';
import { run } from '../../compiler/ir/interpret.js';
import { importModelBytes } from '../../compiler/onnx/import.js';
import { ATTR, onnx, type TensorProto } from '../../compiler/onnx/proto.js';
import { encodeTensorProto } from '../../compiler/onnx/tensor.js';
import { Tensor } from '../../runtime/tensor.js';
import { matMulNBitsToInt4Group } from '../../compiler/ops/matmul-nbits.js';
import { dequantizeInt4Group } from '../../runtime/kernels/quant.js';

const MS = 'com.microsoft';
function rng(seed: number) { let s = seed >>> 0; return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; }; }

function model(K: number, N: number, bits: number, block: number, withZp: boolean, seed: number) {
  const r = rng(seed), blocks = Math.ceil(K / block);
  const B = Tensor.from('uint8', [N, blocks, (block * bits) / 8], Array.from({ length: N * blocks * (block * bits) / 8 }, () => Math.floor(r() * 256)));
  const scales = Tensor.from('float32', [N * blocks], Array.from({ length: N * blocks }, () => 0.01 + r() * 0.05));
  const zpRow = Math.ceil((blocks * bits) / 8);
  const zp = withZp ? Tensor.from('uint8', [N * zpRow], Array.from({ length: N * zpRow }, () => Math.floor(r() * 256))) : undefined;
  const toTp = (t: Tensor, name: string): TensorProto => onnx.TensorProto.decode(encodeTensorProto(t, name));
  const attrs = Object.entries({ K, N, bits, block_size: block }).map(([name, i]) => ({ name, type: ATTR.INT, i }));
  const bytes = onnx.ModelProto.encode({
    irVersion: 10, opsetImport: [{ domain: '', version: 21 }, { domain: MS, version: 1 }],
    graph: {
      name: 'mnb', node: [{ opType: 'MatMulNBits', domain: MS, input: ['A', 'B', 'scales', ...(zp ? ['zp'] : [])], output: ['Y'], attribute: attrs }],
      initializer: [toTp(B, 'B'), toTp(scales, 'scales'), ...(zp ? [toTp(zp, 'zp')] : [])],
      input: [{ name: 'A', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 3 }, { dimValue: K }] } } } }],
      output: [{ name: 'Y' }],
    },
  }).finish();
  const A = Tensor.from('float32', [3, K], Array.from({ length: 3 * K }, () => r() * 2 - 1));
  return { bytes, A, B, scales, zp };
}

describe('MatMulNBits agrees with onnxruntime', () => {
  it.each([
    ['bits 4, block 32, zero points', 64, 8, 4, 32, true],
    ['bits 4, block 16, default zero point 8, odd block count', 48, 5, 4, 16, false],
    ['bits 4, block 32, zero points, odd block count', 96, 4, 4, 32, true],
    ['bits 8, block 32, zero points', 64, 6, 8, 32, true],
  ] as const)('%s', async (_, K, N, bits, block, withZp) => {
    const { bytes, A, B, scales, zp } = model(K, N, bits, block, withZp, K * 31 + N);
    const session = await ort.InferenceSession.create(bytes);
    const ref = (await session.run({ A: new ort.Tensor('float32', A.data as Float32Array, [3, K]) })).Y;
    await session.release();
    const { graph } = importModelBytes(bytes, 'mnb.onnx', undefined);
    inferShapes(graph);
    const y = run(graph, new Map([['A', A]])).get('Y')!;
    expect(y.shape).toEqual([3, N]);
    const want = ref.data as Float32Array;
    let err = 0;
    for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(y.data[i] - want[i]));
    expect(err).toBeLessThan(1e-4);
    if (bits === 4 && K % block === 0) {
      // repacked to the plan's int4_group format: same weights as the node computes with
      const f = matMulNBitsToInt4Group(Uint8Array.from(B.data), Float32Array.from(scales.data), zp ? Uint8Array.from(zp.data) : undefined, K, N, block);
      const w = dequantizeInt4Group(f, N, K);
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += A.data[k] * w[n * K + k];
        expect(Math.abs(s - want[n])).toBeLessThan(1e-4);
      }
    }
  });
});
