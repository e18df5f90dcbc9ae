/**
 * TensorProto ↔ Tensor.
 *
 * Decoding honours every storage form ONNX allows: raw_data (little-endian, int4/uint4 packed two
 * per byte, low nibble first), the typed repeated fields (float_data, int32_data carrying 16-bit
 * and 8-bit float bit patterns, int64_data, double_data, uint64_data), and external data
 * (location/offset/length relative to the model's folder), which is only read when the tensor is
 * first loaded. Every mismatch between declared dims and stored bytes is an error naming the tensor.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { isAbsolute, normalize, resolve, sep } from 'node:path';
import { arrayFor, byteSize, dtypeFromOnnx, ONNX_DTYPE_CODE, type DType } from '../../runtime/dtype.js';
import {
  bf16Decode, bf16Encode, fp16Decode, fp16Encode, fp8e4m3Decode, fp8e4m3Encode, fp8e5m2Decode, fp8e5m2Encode,
} from '../../runtime/floats.js';
import { sizeOf, Tensor } from '../../runtime/tensor.js';
import type { Initializer } from '../ir/graph.js';
import { num, onnx, type TensorProto } from './proto.js';

const EXTERNAL = 1; // TensorProto.DataLocation.EXTERNAL

/** Decode a tensor's payload bytes (raw_data layout) into a Tensor. */
export function tensorFromRaw(dtype: DType, shape: number[], bytes: Uint8Array, where: string): Tensor {
  const n = sizeOf(shape);
  const need = Math.ceil(n * byteSize(dtype));
  if (bytes.length !== need) {
    throw new Error(`${where}: ${dtype}[${shape.join(',')}] needs ${need} bytes of data, found ${bytes.length}`);
  }
  const out = arrayFor(dtype, n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'float32': for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true); break;
    case 'float64': for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true); break;
    case 'float16': for (let i = 0; i < n; i++) out[i] = fp16Decode(dv.getUint16(2 * i, true)); break;
    case 'bfloat16': for (let i = 0; i < n; i++) out[i] = bf16Decode(dv.getUint16(2 * i, true)); break;
    case 'float8e4m3fn': for (let i = 0; i < n; i++) out[i] = fp8e4m3Decode(bytes[i]); break;
    case 'float8e5m2': for (let i = 0; i < n; i++) out[i] = fp8e5m2Decode(bytes[i]); break;
    case 'int64': for (let i = 0; i < n; i++) out[i] = Number(dv.getBigInt64(8 * i, true)); break;
    case 'uint64': for (let i = 0; i < n; i++) out[i] = Number(dv.getBigUint64(8 * i, true)); break;
    case 'int32': for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true); break;
    case 'uint32': for (let i = 0; i < n; i++) out[i] = dv.getUint32(4 * i, true); break;
    case 'int16': for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true); break;
    case 'uint16': for (let i = 0; i < n; i++) out[i] = dv.getUint16(2 * i, true); break;
    case 'int8': case 'uint8': case 'bool': out.set(dtype === 'int8' ? new Int8Array(bytes.buffer, bytes.byteOffset, n) : bytes); break;
    case 'int4': case 'uint4': unpackNibbles(dtype, bytes, n, out); break;
    case 'string': throw new Error(`${where}: string tensors are not supported`);
  }
  if (dtype === 'bool') for (let i = 0; i < n; i++) out[i] = out[i] ? 1 : 0;
  return new Tensor(dtype, shape, out);
}

function unpackNibbles(dtype: DType, bytes: Uint8Array, n: number, out: ArrayLike<number> & { [i: number]: number }): void {
  for (let i = 0; i < n; i++) {
    const nib = (bytes[i >> 1] >> ((i & 1) * 4)) & 0xf;
    out[i] = dtype === 'int4' ? (nib << 28) >> 28 : nib;
  }
}

/** Encode a Tensor's elements as raw_data bytes. */
export function tensorToRaw(t: Tensor): Uint8Array {
  const n = t.size;
  const bytes = new Uint8Array(Math.ceil(n * byteSize(t.dtype)));
  const dv = new DataView(bytes.buffer);
  const a = t.data;
  switch (t.dtype) {
    case 'float32': for (let i = 0; i < n; i++) dv.setFloat32(4 * i, a[i], true); break;
    case 'float64': for (let i = 0; i < n; i++) dv.setFloat64(8 * i, a[i], true); break;
    case 'float16': for (let i = 0; i < n; i++) dv.setUint16(2 * i, fp16Encode(a[i]), true); break;
    case 'bfloat16': for (let i = 0; i < n; i++) dv.setUint16(2 * i, bf16Encode(a[i]), true); break;
    case 'float8e4m3fn': for (let i = 0; i < n; i++) bytes[i] = fp8e4m3Encode(a[i]); break;
    case 'float8e5m2': for (let i = 0; i < n; i++) bytes[i] = fp8e5m2Encode(a[i]); break;
    case 'int64': for (let i = 0; i < n; i++) dv.setBigInt64(8 * i, clampBig(a[i], -(2n ** 63n), 2n ** 63n - 1n), true); break;
    case 'uint64': for (let i = 0; i < n; i++) dv.setBigUint64(8 * i, clampBig(a[i], 0n, 2n ** 64n - 1n), true); break;
    case 'int32': for (let i = 0; i < n; i++) dv.setInt32(4 * i, a[i], true); break;
    case 'uint32': for (let i = 0; i < n; i++) dv.setUint32(4 * i, a[i], true); break;
    case 'int16': for (let i = 0; i < n; i++) dv.setInt16(2 * i, a[i], true); break;
    case 'uint16': for (let i = 0; i < n; i++) dv.setUint16(2 * i, a[i], true); break;
    case 'int8': for (let i = 0; i < n; i++) dv.setInt8(i, a[i]); break;
    case 'uint8': case 'bool': for (let i = 0; i < n; i++) bytes[i] = a[i]; break;
    case 'int4': case 'uint4': for (let i = 0; i < n; i++) bytes[i >> 1] |= (a[i] & 0xf) << ((i & 1) * 4); break;
    case 'string': throw new Error('string tensors are not supported');
  }
  return bytes;
}

function clampBig(x: number, lo: bigint, hi: bigint): bigint {
  const b = BigInt(Math.trunc(x));
  return b < lo ? lo : b > hi ? hi : b;
}

/** Serialize a Tensor as a TensorProto (the ONNX test-data .pb format). */
export function encodeTensorProto(t: Tensor, name: string): Uint8Array {
  const msg = onnx.TensorProto.create({
    name, dims: [...t.shape], dataType: ONNX_DTYPE_CODE[t.dtype], rawData: tensorToRaw(t),
  });
  return onnx.TensorProto.encode(msg).finish();
}

/** Decode a serialized TensorProto file's bytes (no external data). */
export function decodeTensorProto(bytes: Uint8Array, where: string): { name: string; tensor: Tensor } {
  let p: TensorProto;
  try {
    p = onnx.TensorProto.decode(bytes);
  } catch (e) {
    throw new Error(`${where}: not a valid TensorProto (${(e as Error).message})`);
  }
  return { name: p.name ?? '', tensor: initializerFromProto(p, where, undefined).load() };
}

/** Element values from the typed repeated fields, for tensors stored without raw_data. */
function fromTypedFields(p: TensorProto, dtype: DType, shape: number[], where: string): Tensor {
  const n = sizeOf(shape);
  const pick = (): ArrayLike<unknown> => {
    switch (dtype) {
      case 'float32': return p.floatData ?? [];
      case 'float64': return p.doubleData ?? [];
      case 'int64': return p.int64Data ?? [];
      case 'uint32': case 'uint64': return p.uint64Data ?? [];
      default: return p.int32Data ?? [];
    }
  };
  const src = pick();
  const packed = dtype === 'int4' || dtype === 'uint4';
  const need = packed ? Math.ceil(n / 2) : n;
  if (src.length !== need) {
    throw new Error(`${where}: ${dtype}[${shape.join(',')}] needs ${need} stored values, found ${src.length}`);
  }
  const out = arrayFor(dtype, n);
  const v = (i: number): number => num(src[i] as number);
  switch (dtype) {
    case 'float16': for (let i = 0; i < n; i++) out[i] = fp16Decode(v(i)); break;
    case 'bfloat16': for (let i = 0; i < n; i++) out[i] = bf16Decode(v(i)); break;
    case 'float8e4m3fn': for (let i = 0; i < n; i++) out[i] = fp8e4m3Decode(v(i)); break;
    case 'float8e5m2': for (let i = 0; i < n; i++) out[i] = fp8e5m2Decode(v(i)); break;
    case 'int4': case 'uint4': unpackNibbles(dtype, Uint8Array.from({ length: need }, (_, i) => v(i)), n, out); break;
    case 'bool': for (let i = 0; i < n; i++) out[i] = v(i) ? 1 : 0; break;
    default: for (let i = 0; i < n; i++) out[i] = v(i);
  }
  return new Tensor(dtype, shape, out);
}

/** Resolve an external-data location against the model folder, refusing paths that escape it. */
function externalPath(location: string, baseDir: string, where: string): string {
  if (!location) throw new Error(`${where}: external data has no 'location'`);
  if (isAbsolute(location) || normalize(location).split(/[\\/]/).includes('..')) {
    throw new Error(`${where}: external data location '${location}' must be a relative path inside the model's folder`);
  }
  const p = resolve(baseDir, location);
  if (!p.startsWith(resolve(baseDir) + sep)) throw new Error(`${where}: external data location '${location}' escapes the model's folder`);
  return p;
}

/**
 * A lazily loaded initializer. External data is checked for presence and size now (a stat, no
 * read) so that a missing or short file is reported at import, and read on the first load().
 */
export function initializerFromProto(p: TensorProto, where: string, baseDir: string | undefined): Initializer {
  const dtype = dtypeFromOnnx(p.dataType ?? 0, where);
  const shape = (p.dims ?? []).map((d) => num(d));
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new Error(`${where}: invalid dims [${shape.join(',')}]`);
  if (sizeOf(shape) > 2 ** 31) throw new Error(`${where}: ${sizeOf(shape)} elements is more than lfc's host reference supports`);
  const expectBytes = Math.ceil(sizeOf(shape) * byteSize(dtype));
  let cached: Tensor | undefined;

  if (p.dataLocation === EXTERNAL) {
    if (baseDir === undefined) throw new Error(`${where}: external data is not allowed here`);
    const kv = new Map((p.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const path = externalPath(kv.get('location') ?? '', baseDir, where);
    const offset = Number(kv.get('offset') ?? 0);
    const length = kv.has('length') ? Number(kv.get('length')) : expectBytes;
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new Error(`${where}: invalid external data offset/length ${kv.get('offset')}/${kv.get('length')}`);
    }
    if (length !== expectBytes) {
      throw new Error(`${where}: external data length ${length} does not match ${dtype}[${shape.join(',')}] (${expectBytes} bytes)`);
    }
    let size: number;
    try { size = statSync(path).size; } catch {
      throw new Error(`${where}: external data file '${kv.get('location')}' not found (looked in ${baseDir})`);
    }
    if (offset + length > size) {
      throw new Error(`${where}: external data '${kv.get('location')}' is ${size} bytes, tensor needs bytes ${offset}..${offset + length}`);
    }
    return {
      dtype, shape, byteLength: length, external: { path, offset, length },
      get loaded() { return cached !== undefined; },
      load() {
        if (!cached) {
          const buf = new Uint8Array(length);
          const fd = openSync(path, 'r');
          try {
            if (fstatSync(fd).size < offset + length) throw new Error(`${where}: external data file shrank`);
            let got = 0;
            while (got < length) {
              const r = readSync(fd, buf, got, length - got, offset + got);
              if (r <= 0) throw new Error(`${where}: short read of external data`);
              got += r;
            }
          } finally { closeSync(fd); }
          cached = tensorFromRaw(dtype, shape, buf, where);
        }
        return cached;
      },
    };
  }
  const raw = p.rawData && p.rawData.length > 0 ? p.rawData : undefined;
  return {
    dtype, shape, byteLength: raw ? raw.length : expectBytes,
    load() {
      cached ??= raw || expectBytes === 0 && !hasTypedData(p)
        ? tensorFromRaw(dtype, shape, raw ?? new Uint8Array(0), where)
        : fromTypedFields(p, dtype, shape, where);
      return cached;
    },
  };
}

function hasTypedData(p: TensorProto): boolean {
  return [p.floatData, p.doubleData, p.int32Data, p.int64Data, p.uint64Data].some((a) => a && a.length > 0);
}
