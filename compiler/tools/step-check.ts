/**
 * Per-step comparison of the CUDA artifact (on the GPU or lfc's CPU emulator) with the reference
 * backend: the same ragged batches go through both, the CUDA launcher keeps a copy of every step's
 * outputs (CudaBackend.forwardWithDumps), and each is compared with the reference's buffer after
 * the same step. The first step whose error jumps names the kernel unit to look at.
 *
 * Each CUDA step reads the CUDA outputs of the steps before it, so differences of bf16/fp16
 * rounding (accumulation order, one rounding per store on both sides) compound through the
 * layers; the tolerance is on the relative L2 error ‖cuda − ref‖ / ‖ref‖.
 */
import type { RaggedBatch } from '../../runtime/batch.js';
import { ReferenceBackend } from '../../runtime/backends/reference.js';
import type { CudaBackend } from '../../runtime/backends/cuda/index.js';
import type { Plan } from '../../runtime/plan.js';
import { bufferFields } from '../plan/memory.js';
import { mulberry32 } from '../util/random.js';

export interface StepCheck { batch: number; index: number; kind: string; output: string; relErr: number; maxAbs: number }
/**
 * argmaxAgree: rows whose argmax is the same on both; maxGap: over the rows where it is not, the
 * largest reference-logit margin between the reference's choice and the CUDA one (a near tie when
 * small: rounding may pick either).
 */
export interface StepCheckResult { steps: StepCheck[]; logits: { batch: number; relErr: number; maxAbs: number; argmaxAgree: number; rows: number; maxGap: number }[] }

export function relError(a: ArrayLike<number>, ref: ArrayLike<number>): { relErr: number; maxAbs: number } {
  let num = 0, den = 0, maxAbs = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = a[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
    maxAbs = Math.max(maxAbs, Math.abs(d));
    if (Number.isNaN(a[i])) return { relErr: Infinity, maxAbs: Infinity };
  }
  return { relErr: den > 0 ? Math.sqrt(num / den) : Math.sqrt(num), maxAbs };
}

/**
 * A scenario of consecutive batches over `seqs` sequences with shuffled KV blocks: prefill chunks,
 * then a mix of decode tokens and chunk continuations, then a decode step for all.
 */
export function scenario(plan: Plan, opts: { seqs?: number; prompt?: number; seed?: number; numBlocks: number }): RaggedBatch[] {
  const rnd = mulberry32(opts.seed ?? 7);
  const bs = plan.kv.blockSize, V = plan.model.vocab, S = opts.seqs ?? 3, P = opts.prompt ?? 24;
  const free = Array.from({ length: opts.numBlocks }, (_, i) => i).sort(() => rnd() - 0.5);
  const seqs = Array.from({ length: S }, (_, i) => ({ done: 0, len: Math.max(2, P - 5 * i), blocks: [] as number[] }));
  const batches: RaggedBatch[] = [];
  const make = (parts: { s: (typeof seqs)[number]; n: number }[]) => {
    const T = parts.reduce((x, p) => x + p.n, 0);
    const M = Math.max(...parts.map((p) => Math.ceil((p.s.done + p.n) / bs)));
    const b: RaggedBatch = {
      tokens: new Int32Array(T), positions: new Int32Array(T), seqStarts: new Int32Array(parts.length + 1), contextLens: new Int32Array(parts.length),
      blockTables: new Int32Array(parts.length * M).fill(-1), maxBlocksPerSeq: M, slotMapping: new Int32Array(T), logitIndices: new Int32Array(parts.length),
    };
    let t = 0;
    parts.forEach(({ s, n }, i) => {
      b.seqStarts[i] = t;
      const ctx = s.done + n;
      while (s.blocks.length < Math.ceil(ctx / bs)) s.blocks.push(free.pop()!);
      s.blocks.forEach((blk, j) => { b.blockTables[i * M + j] = blk; });
      b.contextLens[i] = ctx;
      for (let k = 0; k < n; k++, t++) {
        const p = s.done + k;
        b.tokens[t] = Math.floor(rnd() * V);
        b.positions[t] = p;
        b.slotMapping[t] = s.blocks[Math.floor(p / bs)] * bs + (p % bs);
      }
      b.logitIndices[i] = t - 1;
      s.done = ctx;
    });
    b.seqStarts[parts.length] = t;
    batches.push(b);
  };
  make(seqs.map((s) => ({ s, n: Math.ceil(s.len / 2) })));
  make(seqs.map((s, i) => ({ s, n: i % 2 ? 1 : s.len - s.done })));
  make(seqs.map((s) => ({ s, n: 1 })));
  return batches;
}

/** Run `batches` through both backends; per-step and logits errors. */
export function compareSteps(plan: Plan, weights: Uint8Array, cuda: CudaBackend, batches: RaggedBatch[]): StepCheckResult {
  let snapshot: Float32Array[][] = [];
  const ref = new ReferenceBackend(plan, weights, {
    numBlocks: cuda.numBlocks, maxTokens: cuda.maxTokens,
    onStep: (i, read) => { snapshot[i] = bufferFields(plan.steps[i]).writes.map(read); },
  });
  const steps: StepCheck[] = [];
  const logits: StepCheckResult['logits'] = [];
  batches.forEach((batch, bi) => {
    snapshot = [];
    const want = ref.forward(batch);
    const got = cuda.forwardWithDumps(batch);
    plan.steps.forEach((s, i) => {
      bufferFields(s).writes.forEach((name, j) => {
        const e = relError(got.outputs[i][j], snapshot[i][j]);
        steps.push({ batch: bi, index: i, kind: s.kind, output: name, ...e });
      });
    });
    const V = plan.model.vocab, L = batch.logitIndices.length;
    let agree = 0, maxGap = 0;
    for (let l = 0; l < L; l++) {
      let ga = 0, wa = 0;
      for (let v = 1; v < V; v++) {
        if (got.logits[l * V + v] > got.logits[l * V + ga]) ga = v;
        if (want[l * V + v] > want[l * V + wa]) wa = v;
      }
      if (ga === wa) agree++;
      else maxGap = Math.max(maxGap, want[l * V + wa] - want[l * V + ga]);
    }
    logits.push({ batch: bi, ...relError(got.logits, want), argmaxAgree: agree, rows: L, maxGap });
  });
  return { steps, logits };
}

/** B sequences × n new tokens after ctx cached tokens, blocks in order (GPU check and tuning shapes). */
export function uniformBatch(plan: Plan, B: number, n: number, ctx: number): RaggedBatch {
  const bs = plan.kv.blockSize, total = ctx + n, M = Math.ceil(total / bs), T = B * n, V = plan.model.vocab;
  const b: RaggedBatch = {
    tokens: Int32Array.from({ length: T }, (_, i) => (i * 7919) % V), positions: new Int32Array(T), seqStarts: Int32Array.from({ length: B + 1 }, (_, i) => i * n),
    contextLens: new Int32Array(B).fill(total), blockTables: Int32Array.from({ length: B * M }, (_, i) => i), maxBlocksPerSeq: M,
    slotMapping: new Int32Array(T), logitIndices: Int32Array.from({ length: B }, (_, i) => i * n + n - 1),
  };
  for (let s = 0; s < B; s++) for (let k = 0; k < n; k++) {
    const p = ctx + k, t = s * n + k;
    b.positions[t] = p;
    b.slotMapping[t] = (s * M + Math.floor(p / bs)) * bs + (p % bs);
  }
  return b;
}
