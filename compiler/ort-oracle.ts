/**
 * onnxruntime-node as the numerics oracle of `lfc verify`, loaded only when present (it is a
 * development dependency: a service importing a compiled artifact never needs it).
 */
import type { Graph } from './ir/graph.js';

export async function ortOracle(path: string, g: Graph): Promise<((tokens: number[]) => Promise<Float32Array>) | undefined> {
  let ort: typeof import('onnxruntime-node');
  try { ort = await import('onnxruntime-node'); } catch { return undefined; }
  const session = await ort.InferenceSession.create(path);
  return async (tokens) => {
    const n = tokens.length;
    const feeds: Record<string, import('onnxruntime-node').Tensor> = {};
    for (const v of g.inputs) {
      const name = v.name;
      if (name === 'input_ids') feeds[name] = new ort.Tensor('int64', BigInt64Array.from(tokens.map(BigInt)), [1, n]);
      else if (name === 'attention_mask') feeds[name] = new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]);
      else if (name === 'position_ids') feeds[name] = new ort.Tensor('int64', BigInt64Array.from(tokens.map((_, i) => BigInt(i))), [1, n]);
      else if (name === 'use_cache_branch') feeds[name] = new ort.Tensor('bool', [false], [1]); // Optimum merged decoder: no-past branch
      else if (name.startsWith('past')) {
        const dims = v.type!.shape.map((d, i) => (i === 0 ? 1 : typeof d === 'number' ? d : 0));
        feeds[name] = new ort.Tensor('float32', new Float32Array(0), dims);
      } else throw new Error(`verify: cannot feed graph input '${name}'`);
    }
    const out = await session.run(feeds);
    const logits = out.logits ?? out[session.outputNames[0]];
    return Float32Array.from(logits.data as Float32Array);
  };
}
