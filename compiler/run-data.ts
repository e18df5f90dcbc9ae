/**
 * `lfc run model.onnx --data DIR`: the reference interpreter on ONNX test-data folders.
 * DIR holds input_N.pb (serialized TensorProto; matched to graph inputs by name, else by
 * position) and optionally output_N.pb; missing outputs are written, present ones compared.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../runtime/tensor.js';
import { compareTensors, errorStats, type Tolerance } from './conformance/runner.js';
import { inferShapes } from './ir/infer.js';
import { run } from './ir/interpret.js';
import type { ImportedModel } from './onnx/import.js';
import { decodeTensorProto, encodeTensorProto } from './onnx/tensor.js';

export interface OutputReport {
  name: string;
  file: string;
  shape: number[];
  dtype: string;
  /** 'written' (no reference present) or the comparison. */
  status: 'written' | 'match' | 'mismatch';
  maxAbsError?: number;
  maxRelError?: number;
  detail?: string;
}

const numbered = (dir: string, prefix: string): string[] =>
  readdirSync(dir).filter((f) => new RegExp(`^${prefix}_\\d+\\.pb$`).test(f))
    .sort((a, b) => Number(a.match(/\d+/)![0]) - Number(b.match(/\d+/)![0]));

export function runDataDir(m: ImportedModel, dir: string, tol: Tolerance): OutputReport[] {
  if (!existsSync(dir)) throw new Error(`--data: folder '${dir}' does not exist`);
  const g = m.graph;
  inferShapes(g);
  const feeds = new Map<string, Tensor>();
  const inputs = numbered(dir, 'input');
  if (inputs.length === 0) throw new Error(`--data: no input_N.pb files in '${dir}'`);
  inputs.forEach((f, i) => {
    const { name, tensor } = decodeTensorProto(readFileSync(join(dir, f)), join(dir, f));
    const v = g.inputs.find((x) => x.name === name) ?? g.inputs[i];
    if (!v) throw new Error(`${f}: tensor '${name}' matches no graph input (inputs: ${g.inputs.map((x) => x.name).join(', ')})`);
    if (feeds.has(v.name)) throw new Error(`${f}: graph input '${v.name}' is fed twice`);
    feeds.set(v.name, tensor);
  });
  const outs = run(g, feeds);
  return g.outputs.map((v, i) => {
    const t = outs.get(v.name)!;
    const file = `output_${i}.pb`;
    const path = join(dir, file);
    const base = { name: v.name, file, shape: [...t.shape], dtype: t.dtype };
    if (!existsSync(path)) {
      writeFileSync(path, encodeTensorProto(t, v.name));
      return { ...base, status: 'written' as const };
    }
    const ref = decodeTensorProto(readFileSync(path), path).tensor;
    const detail = compareTensors(t, ref, tol);
    const stats = t.size === ref.size ? errorStats(t, ref) : undefined;
    return { ...base, status: detail ? 'mismatch' as const : 'match' as const, maxAbsError: stats?.maxAbs, maxRelError: stats?.maxRel, detail };
  });
}
