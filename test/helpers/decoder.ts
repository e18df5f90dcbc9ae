/**
 * Test helpers for decoder exports: seeded random feeds in the Hugging Face I/O convention
 * (input_ids, attention_mask, position_ids, past_key_values.{i}.key/value) for both lfc's
 * interpreter and onnxruntime-node, and result comparison.
 */
import * as ort from 'onnxruntime-node';
import { Tensor } from '../../runtime/tensor.js';
import type { Graph } from '../../compiler/ir/graph.js';
import { isSym } from '../../compiler/ir/dim.js';
import { mulberry32 } from './random.js';
export { mulberry32 };


export interface FeedSpec {
  batch: number;
  seq: number;
  past: number;
  /** Left padding per batch row (tokens of the prompt that are padding). */
  leftPad?: number[];
  vocab: number;
  seed: number;
}

/** Feeds for every graph input of a decoder export. */
export function decoderFeeds(g: Graph, spec: FeedSpec): Map<string, Tensor> {
  const rnd = mulberry32(spec.seed);
  const { batch, seq, past } = spec;
  const total = past + seq;
  const feeds = new Map<string, Tensor>();
  for (const v of g.inputs) {
    const name = v.name;
    if (name === 'input_ids') {
      feeds.set(name, Tensor.from('int64', [batch, seq], Array.from({ length: batch * seq }, () => Math.floor(rnd() * spec.vocab))));
    } else if (name === 'attention_mask') {
      const m: number[] = [];
      for (let b = 0; b < batch; b++) for (let t = 0; t < total; t++) m.push(t < (spec.leftPad?.[b] ?? 0) ? 0 : 1);
      feeds.set(name, Tensor.from('int64', [batch, total], m));
    } else if (name === 'position_ids') {
      const p: number[] = [];
      for (let b = 0; b < batch; b++) {
        const pad = spec.leftPad?.[b] ?? 0;
        for (let t = 0; t < seq; t++) p.push(Math.max(0, past + t - pad) || (past + t < pad ? 1 : 0));
      }
      feeds.set(name, Tensor.from('int64', [batch, seq], p));
    } else if (name.startsWith('past_key_values.')) {
      const shape = v.type!.shape.map((d, i) => (isSym(d) ? (i === 0 ? batch : past) : d));
      const n = shape.reduce((a, b) => a * b, 1);
      feeds.set(name, Tensor.from('float32', shape, Array.from({ length: n }, () => rnd() * 2 - 1)));
    } else {
      throw new Error(`decoderFeeds: unexpected graph input '${name}'`);
    }
  }
  return feeds;
}

export function toOrt(feeds: Map<string, Tensor>): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [k, t] of feeds) {
    out[k] = t.dtype === 'int64'
      ? new ort.Tensor('int64', BigInt64Array.from(t.toArray().map((x) => BigInt(x))), [...t.shape])
      : new ort.Tensor('float32', Float32Array.from(t.data as Float32Array), [...t.shape]);
  }
  return out;
}

export async function runOrt(path: string, feeds: Map<string, Tensor>): Promise<Map<string, Tensor>> {
  const session = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'disabled' });
  const res = await session.run(toOrt(feeds));
  const out = new Map<string, Tensor>();
  for (const [k, v] of Object.entries(res)) {
    out.set(k, new Tensor('float32', v.dims.map(Number), Float32Array.from(v.data as Float32Array)));
  }
  await session.release();
  return out;
}

export function maxAbsDiff(a: Tensor, b: Tensor): number {
  if (a.shape.join() !== b.shape.join()) throw new Error(`shape [${a.shape}] vs [${b.shape}]`);
  let m = 0;
  for (let i = 0; i < a.size; i++) {
    const d = Math.abs(a.data[i] - b.data[i]);
    if (Number.isNaN(d) ? !(Number.isNaN(a.data[i]) && Number.isNaN(b.data[i])) : d > m) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}
