/**
 * `lfc verify`: the compiled plan against the original graph.
 *
 * Random batch compositions go through the plan on the reference backend: several sequences of
 * different lengths in one ragged batch, prompts prefilled whole or in chunks, decode steps, and
 * multi-token continuations, over a paged cache with shuffled block ids. Every new token's
 * logits are compared with the original ONNX graph run on that sequence's whole prefix (by
 * onnxruntime-node when installed, else by lfc's reference interpreter).
 */
import type { RaggedBatch } from '../runtime/batch.js';
import { ReferenceBackend } from '../runtime/backends/reference.js';
import type { Backend } from '../runtime/backends/backend.js';
import type { Plan } from '../runtime/plan.js';
import { Tensor } from '../runtime/tensor.js';
import type { Graph } from './ir/graph.js';
import { run } from './ir/interpret.js';
import { mulberry32 as rng } from './util/random.js';

export interface VerifyCase {
  name: string;
  steps: number;
  sequences: number;
  tokens: number;
  maxAbsError: number;
  maxRelError: number;
  ok: boolean;
}

export interface VerifyOptions {
  seed?: number;
  cases?: number;
  atol?: number;
  /** Full-sequence logits of the original graph for one token sequence: [len, V]. */
  oracle: (tokens: number[]) => Promise<Float32Array>;
  onCase?: (c: VerifyCase) => void;
  /** The backend under test, fresh per case (default: the reference backend; needs ≥ 64 KV blocks, 256 tokens). */
  makeBackend?: () => Backend;
}

/** An oracle running the original graph in lfc's interpreter (inputs in the HF convention). */
export function interpreterOracle(g: Graph): (tokens: number[]) => Promise<Float32Array> {
  return async (tokens) => {
    const n = tokens.length;
    const feeds = new Map<string, Tensor>();
    for (const v of g.inputs) {
      if (v.name === 'input_ids') feeds.set(v.name, Tensor.from('int64', [1, n], tokens));
      else if (v.name === 'attention_mask') feeds.set(v.name, Tensor.from('int64', [1, n], new Array(n).fill(1)));
      else if (v.name === 'position_ids') feeds.set(v.name, Tensor.from('int64', [1, n], tokens.map((_, i) => i)));
      else if (v.name === 'use_cache_branch') feeds.set(v.name, Tensor.from('bool', [1], [0])); // Optimum merged decoder: no-past branch
      else if (v.name.startsWith('past')) feeds.set(v.name, Tensor.zeros(v.type!.dtype, v.type!.shape.map((d, i) => (i === 0 ? 1 : typeof d === 'number' ? d : 0))));
      else throw new Error(`verify: cannot feed graph input '${v.name}'`);
    }
    const out = run(g, feeds);
    const logits = out.get('logits') ?? out.get(g.outputs[0].name)!;
    return Float32Array.from(logits.data as Float32Array);
  };
}

interface SeqState { tokens: number[]; done: number; blocks: number[] }

/** Run `cases` random compositions; returns per-case errors. */
export async function verifyPlan(plan: Plan, weights: Uint8Array, opts: VerifyOptions): Promise<VerifyCase[]> {
  const r = rng(opts.seed ?? 1);
  const V = plan.model.vocab, bs = plan.kv.blockSize;
  const atol = opts.atol ?? 1e-4;
  const results: VerifyCase[] = [];
  const nCases = opts.cases ?? 4;
  for (let c = 0; c < nCases; c++) {
    const backend = opts.makeBackend?.() ?? new ReferenceBackend(plan, weights, { numBlocks: 64, maxTokens: 256 });
    const free = Array.from({ length: backend.numBlocks }, (_, i) => i).sort(() => r() - 0.5);
    const nSeq = 1 + Math.floor(r() * 4);
    const seqs: SeqState[] = Array.from({ length: nSeq }, () => ({
      tokens: Array.from({ length: 2 + Math.floor(r() * 40) }, () => Math.floor(r() * Math.min(V, 256))), done: 0, blocks: [],
    }));
    const oracle = await Promise.all(seqs.map((s) => opts.oracle(s.tokens)));
    let maxAbs = 0, maxRel = 0, steps = 0, total = 0;
    while (seqs.some((s) => s.done < s.tokens.length)) {
      // This step: each unfinished sequence contributes a chunk (whole rest, a random chunk, or one token).
      const parts: number[] = seqs.map((s) => {
        const left = s.tokens.length - s.done;
        if (left === 0 || r() < 0.2) return 0;
        const mode = r();
        return mode < 0.3 ? left : mode < 0.7 ? Math.min(left, 1 + Math.floor(r() * 8)) : 1;
      });
      if (!parts.some((p) => p > 0)) parts[seqs.findIndex((s) => s.done < s.tokens.length)] = 1;
      const active = seqs.map((s, i) => ({ s, n: parts[i] })).filter((x) => x.n > 0);
      const T = active.reduce((a, x) => a + x.n, 0);
      const maxBlocks = Math.max(...active.map((x) => Math.ceil((x.s.done + x.n) / bs)));
      const batch: RaggedBatch = {
        tokens: new Int32Array(T), positions: new Int32Array(T), seqStarts: new Int32Array(active.length + 1),
        contextLens: new Int32Array(active.length), blockTables: new Int32Array(active.length * maxBlocks).fill(-1),
        maxBlocksPerSeq: maxBlocks, slotMapping: new Int32Array(T), logitIndices: Int32Array.from({ length: T }, (_, i) => i),
      };
      let t = 0;
      active.forEach(({ s, n }, b) => {
        batch.seqStarts[b] = t;
        const ctx = s.done + n;
        while (s.blocks.length < Math.ceil(ctx / bs)) s.blocks.push(free.pop()!);
        s.blocks.forEach((blk, j) => { batch.blockTables[b * maxBlocks + j] = blk; });
        batch.contextLens[b] = ctx;
        for (let i = 0; i < n; i++, t++) {
          const p = s.done + i;
          batch.tokens[t] = s.tokens[p];
          batch.positions[t] = p;
          batch.slotMapping[t] = s.blocks[Math.floor(p / bs)] * bs + (p % bs);
        }
      });
      batch.seqStarts[active.length] = T;
      const logits = backend.forward(batch);
      t = 0;
      for (const { s, n } of active) {
        const ref = oracle[seqs.indexOf(s)];
        for (let i = 0; i < n; i++, t++) {
          const p = s.done + i;
          for (let v = 0; v < V; v++) {
            const a = logits[t * V + v], e = ref[p * V + v];
            const d = Math.abs(a - e);
            if (!(d <= maxAbs)) maxAbs = Number.isNaN(d) ? Infinity : d;
            const rel = d / Math.max(Math.abs(e), 1e-6);
            if (rel > maxRel) maxRel = rel;
          }
        }
        s.done += n;
      }
      steps++;
      total += T;
    }
    const res = { name: `case ${c + 1}`, steps, sequences: nSeq, tokens: total, maxAbsError: maxAbs, maxRelError: maxRel, ok: maxAbs <= atol };
    opts.onCase?.(res);
    results.push(res);
  }
  return results;
}
