/**
 * The importer on graphs built here with onnx-proto: every tensor storage form, external data
 * (lazy, bounds-checked), Constant nodes, symbolic dims, and the errors for broken files.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importModelBytes, importModelFile } from '../../../compiler/onnx/import.js';
import { onnx } from '../../../compiler/onnx/proto.js';
import { decodeTensorProto, encodeTensorProto } from '../../../compiler/onnx/tensor.js';
import { dimStr } from '../../../compiler/ir/dim.js';
import { Tensor } from '../../../runtime/tensor.js';

type Init = ConstructorParameters<typeof onnx.TensorProto>[0];

function model(opts: { inits?: Init[]; nodes?: ConstructorParameters<typeof onnx.NodeProto>[0][]; inputs?: string[]; outputs?: string[]; opset?: number }) {
  const vi = (name: string, dims: (number | string)[] = [2, 3]) => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
  return onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: opts.opset ?? 17 }],
    graph: {
      name: 'g',
      initializer: opts.inits ?? [],
      node: opts.nodes ?? [],
      input: (opts.inputs ?? ['x']).map((n) => vi(n, ['batch', 'seq'])),
      output: (opts.outputs ?? ['y']).map((n) => vi(n)),
    },
  })).finish();
}

const f32raw = (xs: number[]) => new Uint8Array(Float32Array.from(xs).buffer);

describe('tensor storage forms', () => {
  it.each([
    ['float32 raw', { dataType: 1, dims: [3], rawData: f32raw([1, -2, 0.5]) }, 'float32', [1, -2, 0.5]],
    ['float32 typed', { dataType: 1, dims: [3], floatData: [1, -2, 0.5] }, 'float32', [1, -2, 0.5]],
    ['int64 typed', { dataType: 7, dims: [2], int64Data: [5, -9007199254740991] }, 'int64', [5, -9007199254740991]],
    ['int64 raw', { dataType: 7, dims: [2], rawData: new Uint8Array(BigInt64Array.from([3n, -4n]).buffer) }, 'int64', [3, -4]],
    ['float16 in int32_data', { dataType: 10, dims: [2], int32Data: [0x3c00, 0xc000] }, 'float16', [1, -2]],
    ['bfloat16 raw', { dataType: 16, dims: [2], rawData: new Uint8Array(Uint16Array.from([0x3f80, 0x4049]).buffer) }, 'bfloat16', [1, 3.140625]],
    ['fp8 e4m3 raw', { dataType: 17, dims: [2], rawData: Uint8Array.from([0x38, 0x7e]) }, 'float8e4m3fn', [1, 448]],
    ['int4 raw, low nibble first', { dataType: 22, dims: [3], rawData: Uint8Array.from([0x9f, 0x07]) }, 'int4', [-1, -7, 7]],
    ['uint4 raw', { dataType: 21, dims: [3], rawData: Uint8Array.from([0x21, 0x0f]) }, 'uint4', [1, 2, 15]],
    ['bool typed', { dataType: 9, dims: [3], int32Data: [1, 0, 1] }, 'bool', [1, 0, 1]],
    ['int8 raw', { dataType: 3, dims: [2], rawData: Uint8Array.from([0xff, 0x7f]) }, 'int8', [-1, 127]],
  ] as const)('%s', (_, proto, dtype, values) => {
    const bytes = onnx.TensorProto.encode(onnx.TensorProto.create({ name: 't', ...proto } as Init)).finish();
    const { tensor } = decodeTensorProto(bytes, 't.pb');
    expect(tensor.dtype).toBe(dtype);
    expect(tensor.toArray()).toEqual(values);
    // and encoding gives back the same values
    const again = decodeTensorProto(encodeTensorProto(tensor, 't'), 'again').tensor;
    expect(again.toArray()).toEqual(values);
  });

  it('rejects data that does not fit the dims, naming the tensor', () => {
    const bytes = onnx.TensorProto.encode(onnx.TensorProto.create({ name: 'w', dataType: 1, dims: [4], rawData: f32raw([1, 2]) })).finish();
    expect(() => decodeTensorProto(bytes, "initializer 'w'")).toThrow(/initializer 'w': float32\[4\] needs 16 bytes of data, found 8/);
  });

  it('rejects unsupported element types by name', () => {
    const bytes = onnx.TensorProto.encode(onnx.TensorProto.create({ name: 'c', dataType: 14, dims: [1] })).finish();
    expect(() => decodeTensorProto(bytes, 'c.pb')).toThrow(/unsupported element type 14 \(COMPLEX64\)/);
  });
});

describe('model import', () => {
  it('turns dim_params into symbols and Constant nodes into initializers', () => {
    const bytes = model({
      nodes: [
        { opType: 'Constant', output: ['k'], attribute: [{ name: 'value_ints', type: 7, ints: [1, 2] }] },
        { opType: 'Identity', input: ['x'], output: ['y'], name: 'id' },
      ],
    });
    const { graph } = importModelBytes(bytes, 'm.onnx', undefined);
    expect(graph.inputs[0].type!.shape.map(dimStr)).toEqual(['batch', 'seq']);
    expect(graph.nodes.map((n) => n.opType)).toEqual(['Identity']);
    const k = graph.values.get('k')!;
    expect(k.initializer!.load().toArray()).toEqual([1, 2]);
    expect(k.known).toEqual([1, 2]);
  });

  it('reads external data lazily and checks it at import', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lfc-ext-'));
    writeFileSync(join(dir, 'w.bin'), new Uint8Array([0, 0, 0, 0, ...f32raw([1.5, 2.5])]));
    const ext = (offset: number, length: number, location = 'w.bin'): Init => ({
      name: 'w', dataType: 1, dims: [2], dataLocation: 1,
      externalData: [{ key: 'location', value: location }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(length) }],
    });
    const bytes = model({ inits: [ext(4, 8)], nodes: [{ opType: 'Identity', input: ['x'], output: ['y'] }] });
    writeFileSync(join(dir, 'm.onnx'), bytes);
    const { graph } = importModelFile(join(dir, 'm.onnx'));
    const w = graph.values.get('w')!.initializer!;
    expect(w.external).toMatchObject({ offset: 4, length: 8 });
    expect(w.loaded).toBe(false);
    expect(w.load().toArray()).toEqual([1.5, 2.5]);
    expect(w.loaded).toBe(true);

    const bad = (init: Init) => () => importModelBytes(model({ inits: [init], nodes: [{ opType: 'Identity', input: ['x'], output: ['y'] }] }), join(dir, 'm.onnx'), dir);
    expect(bad(ext(4, 8, 'missing.bin'))).toThrow(/initializer 'w': external data file 'missing.bin' not found/);
    expect(bad(ext(8, 8))).toThrow(/'w.bin' is 12 bytes, tensor needs bytes 8..16/);
    expect(bad(ext(0, 4))).toThrow(/length 4 does not match float32\[2\] \(8 bytes\)/);
    expect(bad(ext(0, 8, '../etc/passwd'))).toThrow(/must be a relative path inside the model's folder/);
  });

  it.each([
    ['truncated file', (b: Uint8Array) => b.subarray(0, b.length - 7), /m.onnx: not a valid ONNX model/],
    ['dangling edge', () => model({ nodes: [{ opType: 'Identity', input: ['nope'], output: ['y'], name: 'n1' }] }), /Identity node 'n1': input 'nope' is not produced/],
    ['cycle', () => model({ nodes: [
      { opType: 'Add', input: ['x', 'b'], output: ['a'], name: 'a1' },
      { opType: 'Relu', input: ['a'], output: ['b'], name: 'r1' },
      { opType: 'Identity', input: ['b'], output: ['y'], name: 'i1' },
    ] }), /graph has a cycle through Add node 'a1'/],
    ['unknown output', () => model({ nodes: [{ opType: 'Identity', input: ['x'], output: ['z'] }] }), /graph output 'y' is not produced/],
    ['two producers', () => model({ nodes: [
      { opType: 'Identity', input: ['x'], output: ['y'], name: 'p1' },
      { opType: 'Relu', input: ['x'], output: ['y'], name: 'p2' },
    ] }), /Relu node 'p2': output 'y' is already defined/],
    ['unimported domain', () => model({ nodes: [{ opType: 'Foo', domain: 'com.acme', input: ['x'], output: ['y'], name: 'f' }] }), /Foo node 'f': domain 'com.acme' is not among the model's opset imports/],
  ] as const)('reports %s clearly', (_, make, msg) => {
    const good = model({ nodes: [{ opType: 'Identity', input: ['x'], output: ['y'] }] });
    expect(() => importModelBytes(make(good), 'dir/m.onnx', undefined)).toThrow(msg);
  });

  it('round-trips a Tensor through a TensorProto file', () => {
    const t = Tensor.from('float16', [2, 2], [1, 0.1, -3, 65504]);
    const back = decodeTensorProto(encodeTensorProto(t, 'h'), 'h.pb');
    expect(back.name).toBe('h');
    expect(back.tensor.toArray()).toEqual(t.toArray());
  });
});
