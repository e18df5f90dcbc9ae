/**
 * `lfc tune ARTIFACT --target h100|a100|emu`: times the top-k ranked candidates of every distinct
 * linear and attention problem of a plan at each tune shape on the GPU (or lfc's CPU emulator as
 * a dry run), rejects candidates whose outputs differ from the reference, and writes the winners
 * to the tuning database, shape by shape, so an interrupted run resumes where it stopped.
 *
 * One shape at a time:
 *   1. the problems of the plan at that shape (problemFor; steps sharing a problem are timed
 *      together) not yet in the DB; none left → the shape is skipped;
 *   2. per problem, rankCandidates on the target (nvcc + ptxas + model; for emu the h100 model
 *      without nvcc), top k apart from the chooser's own choice;
 *   3. round 0 builds the artifact with the family choosers (the baseline); round r ≥ 1 builds it
 *      with every pending problem's r-th candidate at once (one library per round: k builds per
 *      shape, not k × problems), each candidate rendered for its actual steps (activation, bias);
 *   4. each round's library is checked against the reference backend (step-check compareSteps on
 *      a ragged scenario: prefill chunks, mixed, decode); a step worse than max(tol, 2 × the
 *      baseline's error) rejects the candidate of its problem (or of the nearest tuned step before
 *      it), and the round is rebuilt without it;
 *   5. CudaBackend.profile (CUDA events per step) `reps` times × `iters` runs at the shape's batch;
 *      a problem's time is the median over reps of the mean over its steps;
 *   6. per problem the fastest non-rejected config (the baseline included) becomes its entry,
 *      with the baseline's time, the runner-up and the rejections; the DB file is rewritten.
 *
 * Limitations: profile times eager launches back to back with the same inputs (no rotation of
 * buffers larger than L2: weights of a 7B layer already exceed it); the check scenario is small
 * (decode split-KV paths run only with contexts above 2 × minKeysPerSplit); the check runs the CPU
 * reference backend on the whole plan, so tune a one-layer artifact of a big model's shapes
 * (compiler/synthetic.ts, as the GPU check does): the DB keys depend on shapes only.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { RaggedBatch } from '../../runtime/batch.js';
import { CudaBackend } from '../../runtime/backends/cuda/index.js';
import { parsePlan, type Plan, type Step } from '../../runtime/plan.js';
import { buildEmuLibrary, buildGpuLibrary } from '../build/artifact-build.js';
import { kernelFor } from '../codegen/families/index.js';
import * as attention from '../codegen/families/attention.js';
import * as linear from '../codegen/families/linear.js';
import type { ActDType, CodegenContext, GpuTarget, RenderedKernel } from '../codegen/kernel.js';
import { generateCudaSources } from '../codegen/launcher.js';
import { compareSteps, scenario, uniformBatch, type StepCheck } from '../tools/step-check.js';
import { dbFileFor, loadDb, makeEntry, saveDb, setTuningDb, type TuneDb, type TuneEntry } from './db.js';
import { floorMs } from './model.js';
import { rankCandidates, type Ranked } from './prune.js';
import { chooserChoice, choiceKey, configFor, problemFor, problemKey, shapeName, type Candidate, type Choice, type TuneProblem, type TuneShape } from './spaces.js';

export type TuneTarget = GpuTarget | 'emu';

export interface TuneOptions {
  /** Artifact folder (plan.json + weights.bin). */
  artifact: string;
  target: TuneTarget;
  /** DB file (default: compiler/tune/db/<gpu>.json; for emu: ARTIFACT/tune-emu.json). */
  out?: string;
  /** Candidates timed per problem and shape besides the chooser's (default 3). */
  topK?: number;
  /** Shapes (default: defaultShapes(target)). */
  shapes?: TuneShape[];
  /** profile iterations per rep (default 20; emu 1) and reps (default 5; emu 1). */
  iters?: number;
  reps?: number;
  /** Relative L2 error a step may have (default 0.05, or 2 × the baseline's when larger). */
  tol?: number;
  /** Rank with nvcc's ptxas report (default: yes on a GPU target, no for emu). */
  ptxas?: boolean;
  /** Candidates per problem compiled and ranked with ptxas: the best this many by the model with estimated registers (default 16). */
  rankLimit?: number;
  /**
   * No builds, no timing: write each pending problem's best-ranked candidate as a `source: 'model'`
   * entry (nvcc's ptxas when installed). Measured runs later replace model entries.
   */
  modelOnly?: boolean;
  /** Prompt length of the check scenario (default 24; emu 10). */
  checkPrompt?: number;
  /** Where round libraries are built (default ARTIFACT/.tune). */
  workDir?: string;
  onProgress?: (m: string) => void;
  /** Tests: a fault injected into a round's kernels (e.g. a wrong candidate). */
  mutateKernel?: (k: RenderedKernel, problem: TuneProblem, choice: Choice) => RenderedKernel;
}

export interface TuneShapeResult {
  shape: string;
  skipped: boolean;
  problems: { key: string; steps: number; winner: string; ms: number; baselineMs: number; floorMs: number; rejected: string[]; timed: number }[];
}

export interface TuneResult { db: string; shapes: TuneShapeResult[]; builds: number }

/**
 * Decode B=1 and 8 at 1024 and 4096 context, B=32 at 1024 (a 7B KV cache for B·context = 32K
 * tokens is ~17 GB), prefill T ∈ {128, 512, 2048}; emu: decode B=1 ctx 16, prefill T=32.
 */
export function defaultShapes(target: TuneTarget): TuneShape[] {
  if (target === 'emu') return [{ kind: 'decode', B: 1, context: 16 }, { kind: 'prefill', T: 32 }];
  return [
    ...[[1, 1024], [1, 4096], [8, 1024], [8, 4096], [32, 1024]].map(([B, context]): TuneShape => ({ kind: 'decode', B, context })),
    ...[128, 512, 2048].map((T): TuneShape => ({ kind: 'prefill', T })),
  ];
}

function shapeBatch(plan: Plan, s: TuneShape): RaggedBatch {
  return s.kind === 'decode' ? uniformBatch(plan, s.B, 1, s.context) : uniformBatch(plan, 1, s.T, 0);
}

/** Kernel-shaping part of a choice key (the tile with its stages; not split settings). */
const shapeKey = (c: Candidate) => c.key.replace(/ (split|sk)\S* ?\S*$/, '');
/** The tile alone (no stages, no split settings). */
const tileKey = (c: Candidate) => shapeKey(c).replace(/ s\d+$/, '');

/**
 * The first k in rank order, taking one per tile before a second stage count of any, and one per
 * tile and stage count before split-setting variants (the model often ties on those).
 */
export function pickDiverse(ranked: Candidate[], k: number): Candidate[] {
  const out: Candidate[] = [];
  for (const key of [tileKey, shapeKey]) {
    const seen = new Set(out.map(key));
    for (const c of ranked) if (out.length < k && !out.includes(c) && !seen.has(key(c))) { out.push(c); seen.add(key(c)); }
  }
  for (const c of ranked) if (out.length < k && !out.includes(c)) out.push(c);
  return out;
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

export async function tune(opts: TuneOptions): Promise<TuneResult> {
  // The baseline of every round is the family choosers, not what the DB composes so far.
  if (opts.target !== 'emu') setTuningDb(opts.target, null);
  try {
    return await tuneRun(opts);
  } finally {
    if (opts.target !== 'emu') setTuningDb(opts.target, undefined);
  }
}

async function tuneRun(opts: TuneOptions): Promise<TuneResult> {
  const log = opts.onProgress ?? (() => {});
  const emu = opts.target === 'emu';
  const rankTarget: GpuTarget = emu ? 'h100' : (opts.target as GpuTarget);
  const planFile = path.join(opts.artifact, 'plan.json'), weightsFile = path.join(opts.artifact, 'weights.bin');
  if (!existsSync(planFile) || !existsSync(weightsFile)) throw new Error(`${opts.artifact}: needs plan.json and weights.bin (an lfc compile output folder)`);
  const plan = parsePlan(readFileSync(planFile, 'utf8'), planFile);
  if (plan.dtype === 'float32') throw new Error(`${planFile}: an fp32 plan has no CUDA artifact; compile with --dtype bf16 or fp16`);
  const dtype = plan.dtype as ActDType;
  const weights = new Uint8Array(readFileSync(weightsFile));
  const dbFile = opts.out ?? (emu ? path.join(opts.artifact, 'tune-emu.json') : dbFileFor(opts.target));
  if (!dbFile) throw new Error('no compiler/tune/db folder found: pass --out FILE');
  const db: TuneDb = loadDb(dbFile, opts.target);
  if (db.gpu !== opts.target) throw new Error(`${dbFile} is the database of '${db.gpu}', not '${opts.target}'`);
  const shapes = opts.shapes ?? defaultShapes(opts.target);
  const topK = opts.topK ?? 3, iters = opts.iters ?? (emu ? 1 : 20), reps = opts.reps ?? (emu ? 1 : 5), tol = opts.tol ?? 0.05;
  const checkPrompt = opts.checkPrompt ?? (emu ? 10 : 24);
  const bs = plan.kv.blockSize;
  const maxTokens = Math.max(64, 3 * checkPrompt, ...shapes.map((s) => (s.kind === 'decode' ? s.B : s.T)));
  const maxSeqs = Math.max(4, ...shapes.map((s) => (s.kind === 'decode' ? s.B : 1)));
  const numBlocks = Math.max(3 * Math.ceil((checkPrompt + 4) / bs) + 4, ...shapes.map((s) => (s.kind === 'decode' ? s.B * Math.ceil((s.context + 1) / bs) : Math.ceil(s.T / bs)))) + 4;
  const work = opts.workDir ?? path.join(opts.artifact, '.tune');
  const ctx: CodegenContext = { dtype, target: emu ? 'all' : opts.target as GpuTarget, kv: { blockSize: bs, kvHeads: plan.kv.kvHeads, headDim: plan.kv.headDim }, limits: { maxTokens, maxSeqs, maxContext: plan.model.maxPositions, numSms: 132 } };
  const result: TuneResult = { db: dbFile, shapes: [], builds: 0 };
  const rankCache = new Map<string, Ranked[]>();
  const runId = `${Date.now().toString(36)}${process.pid.toString(36)}`;

  for (const [si, shape] of shapes.entries()) {
    const name = shapeName(shape);
    // 1. Pending problems at this shape.
    const stepProblem = new Map<Step, string>();
    const problems = new Map<string, { problem: TuneProblem; steps: number[] }>();
    plan.steps.forEach((s, i) => {
      const p = problemFor(s, dtype, shape);
      if (!p) return;
      const key = problemKey(p);
      const have = db.entries[key];
      if (have && (have.source === 'measured' || opts.modelOnly)) return;
      stepProblem.set(s, key);
      const e = problems.get(key) ?? { problem: p, steps: [] };
      e.steps.push(i);
      problems.set(key, e);
    });
    if (!problems.size) { log(`${name}: every problem is in ${dbFile}; skipped`); result.shapes.push({ shape: name, skipped: true, problems: [] }); continue; }
    log(`${name}: ${problems.size} problem(s) to tune: ${[...problems.keys()].join(', ')}`);
    // 2. Candidates.
    const cands = new Map<string, Candidate[]>();
    const modelOut: TuneShapeResult = { shape: name, skipped: false, problems: [] };
    for (const [key, { problem, steps }] of problems) {
      let ranked = rankCache.get(key);
      if (!ranked) {
        ranked = await rankCandidates(problem, rankTarget, { compile: opts.ptxas ?? !emu, limit: opts.rankLimit ?? 16, onProgress: (m) => log(`  ${m}`) });
        rankCache.set(key, ranked);
      }
      if (opts.modelOnly) {
        const best = ranked[0];
        if (!best) continue;
        const base = ranked.find((x) => x.candidate.key === choiceKey(chooserChoice(problem, rankTarget)));
        db.entries[key] = makeEntry(problem, best.candidate.choice, {
          source: 'model', floorMs: best.floorMs, predictedMs: best.predictedMs,
          ...(base ? { baseline: { choiceKey: base.candidate.key, ms: base.predictedMs } } : {}),
          ...(ranked[1] ? { runnerUp: { choiceKey: ranked[1].candidate.key, ms: ranked[1].predictedMs } } : {}),
          shape: name, at: new Date().toISOString(),
        });
        modelOut.problems.push({ key, steps: steps.length, winner: best.candidate.key, ms: best.predictedMs, baselineMs: base?.predictedMs ?? NaN, floorMs: best.floorMs, rejected: [], timed: 0 });
        continue;
      }
      const base = choiceKey(chooserChoice(problem, rankTarget));
      const pick = pickDiverse(ranked.filter((r) => r.candidate.key !== base).map((r) => r.candidate), topK);
      cands.set(key, pick);
      log(`  ${key}: ${ranked.length} ranked; timing ${pick.map((c) => c.key).join(' | ') || '(chooser only)'}`);
    }
    if (opts.modelOnly) {
      saveDb(dbFile, db);
      log(`${name}: ${modelOut.problems.length} model entries written to ${dbFile}`);
      result.shapes.push(modelOut);
      continue;
    }
    // 3-5. Rounds.
    const rounds = Math.max(0, ...[...cands.values()].map((c) => c.length));
    const times = new Map<string, { choice: Choice; key: string; ms: number }[]>();
    const rejected = new Map<string, { choiceKey: string; reason: string }[]>();
    let baselineErr: StepCheck[] | undefined;
    for (let r = 0; r <= rounds; r++) {
      const active = new Map<string, Candidate>();
      if (r > 0) for (const [key, cs] of cands) if (cs[r - 1]) active.set(key, cs[r - 1]);
      if (r > 0 && !active.size) continue;
      for (;;) {
        const unitsOf = new Map<string, Set<string>>();
        const chooser = (s: Step, c: CodegenContext): RenderedKernel => {
          const key = stepProblem.get(s);
          const cand = key ? active.get(key) : undefined;
          if (!cand) return kernelFor(s, c);
          const cfg = configFor(cand.problem, cand.choice, rankTarget, { step: s, ctx: c });
          let k = cand.problem.family === 'linear' ? linear.render(cfg as linear.LinearConfig) : attention.render(cfg as attention.AttentionConfig);
          if (opts.mutateKernel) k = opts.mutateKernel(k, cand.problem, cand.choice);
          (unitsOf.get(key!) ?? unitsOf.set(key!, new Set()).get(key!)!).add(k.name);
          return k;
        };
        // A fresh folder per build: a loaded library stays loaded (koffi and dlopen key on the path).
        const dir = path.join(work, `${runId}-s${si}-r${r}-b${result.builds}`);
        mkdirSync(dir, { recursive: true });
        const sources = generateCudaSources(plan, { target: ctx.target, maxTokens, maxSeqs, kernelFor: chooser });
        log(`  round ${r}${r ? ` (${[...active.values()].map((c) => c.key).join(' | ')})` : ' (family choosers)'}: building`);
        let library: string;
        result.builds++;
        try {
          library = emu ? (await buildEmuLibrary(dir, sources)).library : (await buildGpuLibrary(dir, sources, { target: opts.target as GpuTarget })).library;
        } catch (e) {
          if (r === 0) throw e;
          // A build failure (e.g. spills with an activation's epilogue) rejects the candidate whose
          // unit the message names, else the round's candidates one by one.
          const msg = (e as Error).message;
          const [key, cand] = [...active.entries()].find(([k]) => [...(unitsOf.get(k) ?? [])].some((n) => msg.includes(n))) ?? [...active.entries()][0];
          log(`  rejected ${key}: ${cand.key} (build failed)`);
          (rejected.get(key) ?? rejected.set(key, []).get(key)!).push({ choiceKey: cand.key, reason: `build: ${(e as Error).message.split('\n').slice(0, 3).join(' ')}` });
          active.delete(key);
          if (!active.size) break;
          continue;
        }
        const cuda = new CudaBackend(plan, library, weightsFile, { numBlocks, maxTokens, maxSeqs, emulator: emu });
        try {
          const check = compareSteps(plan, weights, cuda, scenario(plan, { numBlocks, seqs: 3, prompt: checkPrompt }));
          if (r === 0) baselineErr = check.steps;
          else {
            const bad = check.steps.find((s, i) => s.relErr > Math.max(tol, 2 * (baselineErr?.[i]?.relErr ?? 0)) || !Number.isFinite(s.relErr));
            if (bad) {
              let culprit: string | undefined;
              for (let i = bad.index; i >= 0 && !culprit; i--) { const k = stepProblem.get(plan.steps[i]); if (k && active.has(k)) culprit = k; }
              const victims = culprit ? [culprit] : [...active.keys()];
              for (const key of victims) {
                (rejected.get(key) ?? rejected.set(key, []).get(key)!).push({ choiceKey: active.get(key)!.key, reason: `outputs differ from the reference: step ${bad.index} (${bad.kind}) ${bad.output} relative error ${bad.relErr.toExponential(2)} (batch ${bad.batch})` });
                log(`  rejected ${key}: ${active.get(key)!.key} (step ${bad.index} rel err ${bad.relErr.toExponential(2)})`);
                active.delete(key);
              }
              if (!active.size) break;
              continue; // rebuild the round without the rejected candidates
            }
          }
          const batch = shapeBatch(plan, shape);
          const runs: Float32Array[] = [];
          for (let k = 0; k < reps; k++) runs.push(cuda.profile(batch, iters));
          for (const [key, { problem, steps }] of problems) {
            const cand = active.get(key);
            if (r > 0 && !cand) continue;
            const ms = median(runs.map((run) => steps.reduce((a, i) => a + run[i], 0) / steps.length));
            const choice = cand ? cand.choice : chooserChoice(problem, rankTarget);
            (times.get(key) ?? times.set(key, []).get(key)!).push({ choice, key: cand ? cand.key : `${choiceKey(choice)} (chooser)`, ms });
          }
        } finally {
          cuda.close();
        }
        break;
      }
    }
    // 6. Entries.
    const out: TuneShapeResult = { shape: name, skipped: false, problems: [] };
    for (const [key, { problem, steps }] of problems) {
      const ts = (times.get(key) ?? []).sort((a, b) => a.ms - b.ms);
      const baseline = ts.find((t) => t.key.endsWith('(chooser)'));
      if (!ts.length || !baseline) continue;
      const [win, second] = ts;
      const fl = floorMs(problem, rankTarget);
      const ranked = rankCache.get(key)?.find((x) => x.candidate.key === choiceKey(win.choice));
      const entry: TuneEntry = makeEntry(problem, win.choice, {
        source: 'measured', ms: win.ms, floorMs: fl, ratioToFloor: win.ms / fl,
        ...(ranked ? { predictedMs: ranked.predictedMs } : {}),
        baseline: { choiceKey: baseline.key.replace(/ \(chooser\)$/, ''), ms: baseline.ms },
        ...(second ? { runnerUp: { choiceKey: second.key.replace(/ \(chooser\)$/, ''), ms: second.ms } } : {}),
        ...(rejected.get(key)?.length ? { rejected: rejected.get(key) } : {}),
        timed: ts.length, shape: name, at: new Date().toISOString(),
      });
      db.entries[key] = entry;
      out.problems.push({ key, steps: steps.length, winner: entry.choiceKey, ms: win.ms, baselineMs: baseline.ms, floorMs: fl, rejected: (rejected.get(key) ?? []).map((x) => x.choiceKey), timed: ts.length });
    }
    saveDb(dbFile, db);
    log(`${name}: ${out.problems.length} entr${out.problems.length === 1 ? 'y' : 'ies'} written to ${dbFile}`);
    result.shapes.push(out);
  }
  return result;
}

/** Table of a tune run for the terminal. */
export function formatTune(r: TuneResult): string {
  const L = [`tuning database: ${r.db} (${r.builds} round build(s))`];
  for (const s of r.shapes) {
    if (s.skipped) { L.push(`${s.shape}: already tuned (resumed past it)`); continue; }
    L.push(`${s.shape}:`);
    for (const p of s.problems) {
      if (!p.timed) { L.push(`  ${p.key.padEnd(48)} ${p.winner.padEnd(40)} predicted ${p.ms.toFixed(4)} ms (chooser ${Number.isFinite(p.baselineMs) ? `${p.baselineMs.toFixed(4)} ms` : 'not ranked'}, floor ${p.floorMs.toFixed(4)} ms; model only)`); continue; }
      L.push(`  ${p.key.padEnd(48)} ${p.winner.padEnd(40)} ${p.ms.toFixed(4)} ms (chooser ${p.baselineMs.toFixed(4)} ms, floor ${p.floorMs.toFixed(4)} ms; ${p.timed} timed${p.rejected.length ? `, rejected ${p.rejected.join(' | ')}` : ''})`);
    }
  }
  return L.join('\n');
}
