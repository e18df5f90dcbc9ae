/**
 * Quantization pass (issue 11), run on the lowered plan: every `linear` step whose weight is not
 * excluded gets a weight format (runtime/plan.ts LinearFormat) and its fp32 [N, K] weight is
 * replaced by packed int8 / uint4 bytes. The logits projection and the embeddings are other step
 * kinds and stay fp32; `exclude` names more (substring of the step's weight name or source).
 *
 *  - int8 (W8A8, SmoothQuant): s_j = max|X_j|^α / max|W_:,j|^(1−α) (α = 0.5), W' = W·diag(s)
 *    quantized per output channel. When the linear's input is an add_norm output read only by
 *    quantized linears, 1/s is folded into that norm's gamma (and beta), with one s shared by all
 *    those linears (column maxima over their weights); otherwise the step keeps `smooth` = 1/s,
 *    applied to x before the per-token dynamic int8 quantization.
 *  - int4 (W4A16, AWQ-style): per-input-channel s = mean|X_j|^α (normalised), α on a grid over
 *    [0, 1] chosen to minimise ‖W X − Q(W·s)(X/s)‖² on sampled calibration activations; α = 0 is
 *    plain round-to-nearest, so the search never does worse than RTN on those samples.
 *
 * Calibration runs the fp32 plan on the reference backend over windows of the calibration text
 * (byte tokenizer: [BOS] + bytes), collecting per-input-channel abs-max and mean-abs and a sample
 * of rows for each linear step; cached by (plan, weights, text) hash under generated/.cache/calib/.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ReferenceBackend } from '../../runtime/backends/reference.js';
import type { RaggedBatch } from '../../runtime/batch.js';
import { dequantizeInt4Group, quantizeInt4Group, quantizeWeightInt8PerChannel } from '../../runtime/kernels/quant.js';
import type { Plan, Step, WeightEntry } from '../../runtime/plan.js';
import { bufferFields } from '../plan/memory.js';

export type QuantizeKind = 'int8' | 'int4';
export const QUANTIZE_KINDS: readonly QuantizeKind[] = ['int8', 'int4'];

export interface QuantizeOptions {
  kind: string;
  /** Calibration text (default: models/data/calib.txt). */
  calibration?: string;
  groupSize?: number;
  exclude?: string[];
  alpha?: number;
  /** Windows of `windowTokens` tokens to run (default 8 × 128). */
  windows?: number;
  windowTokens?: number;
  cacheDir?: string;
  onProgress?: (message: string) => void;
}

export interface CalibStats {
  /** Per linear step index: abs-max and mean-abs per input channel, and sampled rows [S, K]. */
  steps: Record<string, { absMax: number[]; meanAbs: number[]; sample: number[]; rows: number }>;
  cached?: boolean;
  key: string;
}

export interface QuantizeReport {
  kind: QuantizeKind;
  layers: { weight: string; N: number; K: number; alpha?: number; relErr: number }[];
  excluded: string[];
  weightBytesBefore: number;
  weightBytesAfter: number;
  calibration: { key: string; cached: boolean };
}

/** The repository root, from compiler/passes (sources under vitest) or dist/compiler/passes. */
const ROOT = [join(import.meta.dirname, '../..'), join(import.meta.dirname, '../../..')].find((d) => existsSync(join(d, 'package.json')) && existsSync(join(d, 'models'))) ?? process.cwd();
const DEFAULT_CALIB = join(ROOT, 'models/data/calib.txt');
const DEFAULT_CACHE = join(ROOT, 'generated/.cache/calib');
const SAMPLE_ROWS = 64;

export function parseQuantizeKind(kind: string): QuantizeKind {
  if (!(QUANTIZE_KINDS as readonly string[]).includes(kind)) {
    throw new Error(`--quantize: unknown value '${kind}' (supported: ${QUANTIZE_KINDS.join(', ')}; fp8 needs the sm_90a kernels, not yet)`);
  }
  return kind as QuantizeKind;
}

function readF32(bin: Uint8Array, e: WeightEntry): Float32Array {
  const dv = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  const a = new Float32Array(e.bytes / 4);
  for (let i = 0; i < a.length; i++) a[i] = dv.getFloat32(e.offset + 4 * i, true);
  return a;
}

/** Run the fp32 plan over calibration windows; per-linear-step input statistics (cached). */
export function calibrate(plan: Plan, bin: Uint8Array, opts: Pick<QuantizeOptions, 'calibration' | 'windows' | 'windowTokens' | 'cacheDir' | 'onProgress'> = {}): CalibStats {
  const text = readFileSync(opts.calibration ?? DEFAULT_CALIB);
  const windows = opts.windows ?? 8, W = Math.min(opts.windowTokens ?? 128, plan.model.maxPositions);
  const key = createHash('sha256').update(JSON.stringify(plan.steps)).update(bin).update(text).update(`${windows}x${W}`).digest('hex').slice(0, 24);
  const dir = opts.cacheDir ?? DEFAULT_CACHE, file = join(dir, `${key}.json`);
  if (existsSync(file)) {
    opts.onProgress?.(`calibration: cache hit ${file}`);
    return { ...(JSON.parse(readFileSync(file, 'utf8')) as CalibStats), cached: true, key };
  }
  const acc = new Map<number, { absMax: Float64Array; sumAbs: Float64Array; sample: number[]; rows: number }>();
  const be = new ReferenceBackend(plan, bin, {
    maxTokens: W, numBlocks: Math.ceil(W / plan.kv.blockSize) + 1,
    onLinearInput: (i, x, T, K) => {
      let a = acc.get(i);
      if (!a) { a = { absMax: new Float64Array(K), sumAbs: new Float64Array(K), sample: [], rows: 0 }; acc.set(i, a); }
      const every = Math.max(1, Math.floor((windows * W) / SAMPLE_ROWS));
      for (let t = 0; t < T; t++) {
        for (let k = 0; k < K; k++) { const v = Math.abs(x[t * K + k]); if (v > a.absMax[k]) a.absMax[k] = v; a.sumAbs[k] += v; }
        if ((a.rows + t) % every === 0 && a.sample.length < SAMPLE_ROWS * K) for (let k = 0; k < K; k++) a.sample.push(x[t * K + k]);
      }
      a.rows += T;
    },
  });
  const bos = plan.model.bos ?? 256;
  const stride = Math.max(1, Math.floor((text.length - W) / windows));
  for (let w = 0; w < windows; w++) {
    const bytes = text.subarray(w * stride, w * stride + W - 1);
    const tokens = Int32Array.from([bos, ...bytes]);
    be.forward(singleSequence(tokens, plan.kv.blockSize));
    opts.onProgress?.(`calibration: window ${w + 1}/${windows} (${tokens.length} tokens)`);
  }
  const steps: CalibStats['steps'] = {};
  for (const [i, a] of acc) steps[i] = { absMax: Array.from(a.absMax), meanAbs: Array.from(a.sumAbs, (v) => v / a.rows), sample: a.sample, rows: a.sample.length / a.absMax.length };
  const out: CalibStats = { steps, key };
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, JSON.stringify(out));
  return { ...out, cached: false };
}

/** A one-sequence prefill batch with blocks 0..n-1 and the last position's logits. */
export function singleSequence(tokens: Int32Array, blockSize: number): RaggedBatch {
  const T = tokens.length, blocks = Math.ceil(T / blockSize);
  return {
    tokens, positions: Int32Array.from({ length: T }, (_, i) => i), seqStarts: Int32Array.of(0, T), contextLens: Int32Array.of(T),
    blockTables: Int32Array.from({ length: blocks }, (_, i) => i), maxBlocksPerSeq: blocks,
    slotMapping: Int32Array.from({ length: T }, (_, i) => i), logitIndices: Int32Array.of(T - 1),
  };
}

/** ‖W X − Ŵ X̂‖² / ‖W X‖² over sampled rows, with Ŵ = dequant(Q(W·s)), X̂ = X/s. */
function outputError(w: Float32Array, wq: Float32Array, s: Float64Array, X: number[], rows: number, N: number, K: number): number {
  let num = 0, den = 0;
  for (let r = 0; r < rows; r++) {
    for (let n = 0; n < N; n++) {
      let y = 0, yq = 0;
      for (let k = 0; k < K; k++) { const x = X[r * K + k]; y += w[n * K + k] * x; yq += wq[n * K + k] * (x / s[k]); }
      num += (y - yq) ** 2; den += y * y;
    }
  }
  return den > 0 ? num / den : num;
}

/** Quantize a plan's linear steps; returns the new plan, weights.bin and a report. */
export function quantizePlan(plan: Plan, bin: Uint8Array, opts: QuantizeOptions): { plan: Plan; weights: Uint8Array; report: QuantizeReport } {
  const kind = parseQuantizeKind(opts.kind);
  const groupSize = opts.groupSize ?? 128, alpha = opts.alpha ?? 0.5;
  const exclude = (opts.exclude ?? []).filter(Boolean);
  const byName = new Map(plan.weights.map((e) => [e.name, e]));
  const isExcluded = (s: Extract<Step, { kind: 'linear' }>) => {
    const e = byName.get(s.weight)!;
    return exclude.some((x) => s.weight.includes(x) || e.source.includes(x));
  };
  const targets = plan.steps.flatMap((s, i) => (s.kind === 'linear' && !s.format && !isExcluded(s) ? [i] : []));
  if (kind === 'int4') {
    for (const i of targets) {
      const s = plan.steps[i] as Extract<Step, { kind: 'linear' }>;
      if (s.K % groupSize !== 0 || groupSize % 2 !== 0) throw new Error(`--group-size ${groupSize} does not divide K = ${s.K} of layer '${byName.get(s.weight)!.source || s.weight}' (weight '${s.weight}'); pick a divisor of K or --exclude it`);
    }
  }
  const calib = calibrate(plan, bin, opts);
  const out: { entry: WeightEntry; data: Uint8Array }[] = [];
  const steps = plan.steps.map((s) => ({ ...s })) as Step[];
  const replaced = new Set<string>();
  const layers: QuantizeReport['layers'] = [];
  const add = (name: string, source: string, dtype: WeightEntry['dtype'], shape: number[], data: Uint8Array) => {
    out.push({ entry: { name, source, dtype, shape, offset: 0, bytes: data.byteLength }, data });
    return name;
  };
  const f32bytes = (a: Float32Array | Float64Array) => { const f = Float32Array.from(a); return new Uint8Array(f.buffer); };
  // SmoothQuant folding: an add_norm whose output only quantized linears read gets gamma/s (and
  // beta/s), one s for all of them (max of their weights' column maxima); they then need no smooth vector.
  const folded = new Map<number, Float64Array>();
  if (kind === 'int8') {
    for (const [ni, ns] of steps.entries()) {
      if (ns.kind !== 'add_norm') continue;
      const readers = steps.flatMap((s, i) => (bufferFields(s).reads.includes(ns.out) ? [i] : []));
      if (!readers.length || !readers.every((i) => targets.includes(i) && calib.steps[i])) continue;
      const K = ns.hidden, st = calib.steps[readers[0]], wmax = new Float64Array(K);
      for (const i of readers) {
        const s = steps[i] as Extract<Step, { kind: 'linear' }>, w = readF32(bin, byName.get(s.weight)!);
        for (let n = 0; n < s.N; n++) for (let k = 0; k < K; k++) wmax[k] = Math.max(wmax[k], Math.abs(w[n * K + k]));
      }
      const sv = new Float64Array(K);
      for (let k = 0; k < K; k++) { const v = st.absMax[k] ** alpha / wmax[k] ** (1 - alpha); sv[k] = Number.isFinite(v) && v > 0 ? v : 1; }
      const g = readF32(bin, byName.get(ns.gamma)!);
      ns.gamma = add(`${ns.gamma}.smooth${ni}`, byName.get(ns.gamma)!.source, 'float32', [K], f32bytes(g.map((v, k) => v / sv[k])));
      if (ns.beta) { const b = readF32(bin, byName.get(ns.beta)!); ns.beta = add(`${ns.beta}.smooth${ni}`, byName.get(ns.beta)!.source, 'float32', [K], f32bytes(b.map((v, k) => v / sv[k]))); }
      for (const i of readers) folded.set(i, sv);
    }
  }
  for (const i of targets) {
    const s = steps[i] as Extract<Step, { kind: 'linear' }>;
    const e = byName.get(s.weight)!, { N, K } = s;
    const w = readF32(bin, e);
    const st = calib.steps[i];
    if (!st) throw new Error(`calibration saw no input for linear step ${i} ('${s.weight}')`);
    const sv = new Float64Array(K).fill(1);
    let chosen: number | undefined, relErr: number;
    if (kind === 'int8') {
      if (folded.has(i)) sv.set(folded.get(i)!);
      else {
        for (let k = 0; k < K; k++) {
          let wm = 0;
          for (let n = 0; n < N; n++) wm = Math.max(wm, Math.abs(w[n * K + k]));
          const v = st.absMax[k] ** alpha / wm ** (1 - alpha);
          sv[k] = Number.isFinite(v) && v > 0 ? v : 1;
        }
      }
      const ws = Float32Array.from(w, (v, j) => v * sv[j % K]);
      const f = quantizeWeightInt8PerChannel(ws, N, K);
      chosen = alpha;
      relErr = outputError(w, Float32Array.from(f.q, (q, j) => q * f.scale[Math.floor(j / K)]), sv, st.sample, Math.min(st.rows, 16), N, K);
      s.weight = add(`${s.weight}.q8`, e.source, 'int8', [N, K], new Uint8Array(f.q.buffer));
      s.format = { kind: 'int8_channel', scale: add(`${e.name}.scale`, e.source, 'float32', [N], f32bytes(f.scale)) };
      if (!folded.has(i)) s.format.smooth = add(`${e.name}.smooth`, e.source, 'float32', [K], f32bytes(sv.map((v) => 1 / v)));
    } else {
      let best = { err: Infinity, a: 0, s: new Float64Array(K).fill(1) };
      const rows = Math.min(st.rows, 16);
      for (let g = 0; g <= 10; g++) {
        const a = g / 10, cand = new Float64Array(K);
        let lo = Infinity, hi = 0;
        for (let k = 0; k < K; k++) { cand[k] = Math.max(st.meanAbs[k], 1e-8) ** a; lo = Math.min(lo, cand[k]); hi = Math.max(hi, cand[k]); }
        const norm = Math.sqrt(lo * hi);
        for (let k = 0; k < K; k++) cand[k] /= norm;
        const q = quantizeInt4Group(Float32Array.from(w, (v, j) => v * cand[j % K]), N, K, groupSize, s.weight);
        const err = outputError(w, dequantizeInt4Group(q, N, K), cand, st.sample, rows, N, K);
        if (err < best.err) best = { err, a, s: cand };
      }
      sv.set(best.s); chosen = best.a; relErr = best.err;
      const q = quantizeInt4Group(Float32Array.from(w, (v, j) => v * sv[j % K]), N, K, groupSize, s.weight);
      s.weight = add(`${s.weight}.q4`, e.source, 'uint8', [N, K / 2], q.packed);
      s.format = { kind: 'int4_group', groupSize, scale: add(`${e.name}.scale`, e.source, 'float32', [N, K / groupSize], f32bytes(q.scale)),
        zero: add(`${e.name}.zero`, e.source, 'uint8', [N, K / groupSize], q.zero) };
      if (chosen > 0) s.format.smooth = add(`${e.name}.smooth`, e.source, 'float32', [K], f32bytes(sv.map((v) => 1 / v)));
    }
    replaced.add(e.name);
    layers.push({ weight: e.name, N, K, alpha: chosen, relErr });
    opts.onProgress?.(`quantize ${kind}: ${e.name} [${N}, ${K}] rel. output error ${relErr.toExponential(2)}${kind === 'int4' ? ` (α ${chosen})` : ''}`);
  }
  // weights still referenced by some step keep their fp32 bytes (a weight may be shared)
  const used = new Set<string>();
  for (const s of steps) for (const v of Object.values(s)) if (typeof v === 'string') used.add(v);
  const kept = plan.weights.filter((e) => !replaced.has(e.name) || used.has(e.name)).map((e) => ({ entry: { ...e }, data: bin.subarray(e.offset, e.offset + e.bytes) }));
  const all = [...kept, ...out];
  let off = 0;
  for (const w of all) { off = Math.ceil(off / 64) * 64; w.entry.offset = off; off += w.entry.bytes; }
  const weights = new Uint8Array(Math.ceil(off / 64) * 64);
  for (const w of all) weights.set(w.data, w.entry.offset);
  const packedBytes = (p: Plan | { weights: WeightEntry[] }) => p.weights.reduce((a, e) => a + e.bytes, 0);
  const newPlan: Plan = { ...plan, weights: all.map((w) => w.entry), steps };
  return {
    plan: newPlan, weights,
    report: { kind, layers, excluded: exclude, weightBytesBefore: packedBytes(plan), weightBytesAfter: packedBytes(newPlan), calibration: { key: calib.key, cached: !!calib.cached } },
  };
}
