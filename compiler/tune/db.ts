/**
 * The tuning database: one JSON file per GPU (compiler/tune/db/<gpu>.json, committed), entries
 * keyed by problem bucket (spaces.ts problemKey: family, dtype, N/K/weight format or head dim/
 * heads/kv heads/mode, T bucket, context bucket). Each entry holds the winning choice for that
 * bucket, where it came from (`source: 'measured'` by `lfc tune` on the GPU, or `'model'` from the
 * analytic model), the measured time and its ratio to the roofline floor when measured, the
 * runner-up and the chooser's time.
 *
 * `tunedKernel(step, ctx)` is kernelFor's hook: for ctx.target a100/h100 it composes the entries
 * of the step's problem (all its buckets) into one family config and renders it, tagged with
 * `tuning` (RenderedKernel); otherwise (no entry, ctx.target 'all', a composed config that does not
 * validate) it returns undefined and the family's chooser decides. Composition:
 *   linear: GEMV up to the largest bucket of the run of GEMV winners from the smallest bucket
 *     (cols/warps of that bucket's winner); then one tile per run of equal GEMM winners, maxT =
 *     the run's largest bucket, the last serving every larger T (at most 4 tiles: the shortest
 *     runs merge upwards); split-K (the smallest such winner's settings) up to the largest bucket
 *     whose winner splits.
 *   attention: the decode part that wins most decode buckets (ties: the larger bucket), the
 *     prefill tile likewise; a mode without entries keeps the chooser's.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Step } from '../../runtime/plan.js';
import type { CodegenContext, RenderedKernel } from '../codegen/kernel.js';
import * as attention from '../codegen/families/attention.js';
import * as linear from '../codegen/families/linear.js';
import { choiceKey, problemFor, problemKey, type AttentionChoice, type AttentionProblem, type Choice, type LinearChoice, type LinearProblem, type TuneProblem } from './spaces.js';

export const DB_SCHEMA = 'lfc-tune-db';
export const DB_VERSION = 1;

export interface TuneEntry {
  key: string;
  problem: TuneProblem;
  choice: Choice;
  choiceKey: string;
  /** 'measured': timed on the GPU by lfc tune; 'model': the analytic model's pick, never timed. */
  source: 'measured' | 'model';
  /** Measured milliseconds (median of the runs), when measured. */
  ms?: number;
  /** Roofline floor of the bucket (ms), datasheet peaks. */
  floorMs: number;
  /** ms / floorMs (≥ 1), when measured. */
  ratioToFloor?: number;
  predictedMs?: number;
  /** The family chooser's config at this bucket, timed in the same run. */
  baseline?: { choiceKey: string; ms: number };
  runnerUp?: { choiceKey: string; ms: number };
  /** Candidates whose outputs did not match the reference, or failed to build or run. */
  rejected?: { choiceKey: string; reason: string }[];
  /** Candidates timed. */
  timed?: number;
  shape?: string;
  at?: string;
}

export interface TuneDb {
  schema: typeof DB_SCHEMA;
  version: typeof DB_VERSION;
  gpu: string;
  note?: string;
  entries: Record<string, TuneEntry>;
}

export function emptyDb(gpu: string): TuneDb {
  return { schema: DB_SCHEMA, version: DB_VERSION, gpu, entries: {} };
}

/** compiler/tune/db of this package ($LFC_TUNE_DB overrides; null when not found, e.g. in a bundle). */
export function dbDir(): string | null {
  if (process.env.LFC_TUNE_DB) return process.env.LFC_TUNE_DB;
  let dir: string;
  try { dir = path.dirname(fileURLToPath(import.meta.url)); } catch { return null; }
  for (;;) {
    const here = path.join(dir, 'db');
    if (path.basename(dir) === 'tune' && existsSync(here)) return here;
    const up = path.join(dir, 'compiler', 'tune', 'db');
    if (existsSync(up)) return up;
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

export function dbFileFor(gpu: string): string | null {
  const d = dbDir();
  return d ? path.join(d, `${gpu}.json`) : null;
}

export function parseDb(text: string, where: string): TuneDb {
  let j: Partial<TuneDb>;
  try { j = JSON.parse(text) as Partial<TuneDb>; } catch (e) { throw new Error(`${where}: not valid JSON (${(e as Error).message})`); }
  if (j.schema !== DB_SCHEMA) throw new Error(`${where}: 'schema' is ${JSON.stringify(j.schema)}, expected "${DB_SCHEMA}"`);
  if (j.version !== DB_VERSION) throw new Error(`${where}: version ${String(j.version)} is not ${DB_VERSION}`);
  if (typeof j.gpu !== 'string' || !j.entries || typeof j.entries !== 'object') throw new Error(`${where}: needs 'gpu' and 'entries'`);
  for (const [k, e] of Object.entries(j.entries)) {
    if (e.key !== k) throw new Error(`${where}: entry '${k}' has key '${e.key}'`);
    if (e.source !== 'measured' && e.source !== 'model') throw new Error(`${where}: entry '${k}': source must be 'measured' or 'model'`);
    if (problemKey(e.problem) !== k) throw new Error(`${where}: entry '${k}': its problem's key is '${problemKey(e.problem)}'`);
  }
  return j as TuneDb;
}

export function loadDb(file: string, gpu?: string): TuneDb {
  if (!existsSync(file)) return emptyDb(gpu ?? path.basename(file, '.json'));
  return parseDb(readFileSync(file, 'utf8'), file);
}

/** Write atomically, entries sorted by key (stable diffs); updates the in-memory copy kernelFor reads. */
export function saveDb(file: string, db: TuneDb): void {
  const entries: Record<string, TuneEntry> = {};
  for (const k of Object.keys(db.entries).sort()) entries[k] = db.entries[k];
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ ...db, entries }, null, 1) + '\n');
  renameSync(tmp, file);
  cache.set(path.resolve(file), { ...db, entries });
}

export function putEntry(db: TuneDb, e: TuneEntry): void {
  db.entries[e.key] = e;
}

const cache = new Map<string, TuneDb>();
const overrides = new Map<string, TuneDb | null>();

/** Tests: use `db` for `gpu` instead of the file (null: no DB; undefined: back to the file). */
export function setTuningDb(gpu: string, db: TuneDb | null | undefined): void {
  if (db === undefined) overrides.delete(gpu);
  else overrides.set(gpu, db);
}

export function clearTuningDbCache(): void {
  cache.clear();
}

/** The DB kernelFor reads for a GPU (cached; a missing or unreadable file is an empty DB, with a warning for the latter). */
export function tuningDb(gpu: string): TuneDb | null {
  if (overrides.has(gpu)) return overrides.get(gpu)!;
  const file = dbFileFor(gpu);
  if (!file) return null;
  const abs = path.resolve(file);
  let db = cache.get(abs);
  if (!db) {
    try { db = loadDb(abs, gpu); } catch (e) {
      console.warn(`lfc: ignoring the tuning database: ${(e as Error).message}`);
      db = emptyDb(gpu);
    }
    cache.set(abs, db);
  }
  return db;
}

/** The entries of a step's problem (any bucket) in a DB. */
export function entriesFor(db: TuneDb, step: Step, dtype: CodegenContext['dtype']): TuneEntry[] {
  const p = problemFor(step, dtype, { kind: 'decode', B: 1, context: 1 });
  if (!p) return [];
  const same = (q: TuneProblem): boolean => {
    if (p.family === 'linear' && q.family === 'linear') return q.dtype === p.dtype && q.N === p.N && q.K === p.K && q.weight === p.weight && q.groupSize === p.groupSize;
    if (p.family === 'attention' && q.family === 'attention') return q.dtype === p.dtype && q.headDim === p.headDim && q.heads === p.heads && q.kvHeads === p.kvHeads;
    return false;
  };
  return Object.values(db.entries).filter((e) => same(e.problem));
}

/** One linear config for a step from its bucket winners (module comment). Throws when it does not validate. */
export function composeLinear(step: linear.LinearStep, ctx: CodegenContext, entries: TuneEntry[]): linear.LinearConfig {
  const base = linear.configForLinear(step, ctx);
  const es = [...entries].sort((a, b) => (a.problem as LinearProblem).T - (b.problem as LinearProblem).T);
  const T = (e: TuneEntry) => (e.problem as LinearProblem).T;
  const ch = (e: TuneEntry) => e.choice as LinearChoice;
  let i = 0;
  let gemv = base.gemv;
  while (i < es.length && ch(es[i]).path === 'gemv' && T(es[i]) <= 16) i++;
  if (i > 0) {
    const w = ch(es[i - 1]) as Extract<LinearChoice, { path: 'gemv' }>;
    gemv = { maxT: T(es[i - 1]), cols: w.cols, warps: w.warps };
  } else if (es.length) {
    gemv = { ...base.gemv, maxT: Math.max(1, Math.min(base.gemv.maxT, T(es[0]) / 2)) };
  }
  const gemm = es.slice(i).filter((e) => ch(e).path === 'gemm');
  let tiles: linear.GemmTile[] = [];
  for (const e of gemm) {
    const c = ch(e) as Extract<LinearChoice, { path: 'gemm' }>;
    const last = tiles[tiles.length - 1];
    const same = last && (['bm', 'bn', 'bk', 'warpsM', 'warpsN', 'stages'] as const).every((f) => last[f] === c.tile[f]);
    if (same) last.maxT = T(e);
    else tiles.push({ ...c.tile, maxT: T(e) });
  }
  tiles = tiles.filter((t) => t.maxT === null || t.maxT > gemv.maxT);
  while (tiles.length > 4) {
    let k = 0, best = Infinity;
    for (let j = 0; j < tiles.length - 1; j++) {
      const lo = j === 0 ? gemv.maxT : tiles[j - 1].maxT!;
      const span = Math.log2(tiles[j].maxT! / lo);
      if (span < best) { best = span; k = j; }
    }
    tiles.splice(k, 1);
  }
  if (tiles.length) tiles[tiles.length - 1].maxT = null;
  else tiles = base.tiles.filter((t) => t.maxT === null || t.maxT > gemv.maxT).map((t) => ({ ...t }));
  const splitters = gemm.filter((e) => (ch(e) as Extract<LinearChoice, { path: 'gemm' }>).splitK);
  const { splitK: _s, ...rest } = base;
  let splitK: linear.SplitK | undefined;
  if (splitters.length && step.format?.kind !== 'int8_channel') {
    const s = (ch(splitters[0]) as Extract<LinearChoice, { path: 'gemm' }>).splitK!;
    splitK = { maxSplits: s.maxSplits, minSlices: s.minSlices, maxT: T(splitters[splitters.length - 1]), maxN: step.N };
  }
  const c: linear.LinearConfig = { ...rest, gemv, tiles, ...(splitK ? { splitK } : {}) };
  linear.validateLinearConfig(c);
  return c;
}

function mostWins<T extends TuneEntry>(es: T[], size: (e: T) => number): T | undefined {
  const count = new Map<string, { n: number; top: number; e: T }>();
  for (const e of es) {
    const c = count.get(e.choiceKey) ?? { n: 0, top: -1, e };
    c.n++;
    if (size(e) > c.top) { c.top = size(e); c.e = e; }
    count.set(e.choiceKey, c);
  }
  return [...count.values()].sort((a, b) => b.n - a.n || b.top - a.top)[0]?.e;
}

export function composeAttention(step: attention.AttentionStep, ctx: CodegenContext, entries: TuneEntry[]): attention.AttentionConfig {
  const base = attention.configForAttention(step, ctx);
  const size = (e: TuneEntry) => { const p = e.problem as AttentionProblem; return p.T * p.context; };
  const dec = mostWins(entries.filter((e) => (e.problem as AttentionProblem).mode === 'decode'), size);
  const pre = mostWins(entries.filter((e) => (e.problem as AttentionProblem).mode === 'prefill'), size);
  const c: attention.AttentionConfig = { ...base };
  if (pre) c.prefill = { ...(pre.choice as AttentionChoice).tile };
  if (dec) { const d = dec.choice as AttentionChoice; c.decode = { ...base.decode, ...d.tile, ...(d.split ?? {}) }; }
  attention.render(c); // validates
  return c;
}

/**
 * kernelFor's hook: the kernel from the tuning DB of ctx.target for this step, or undefined (the
 * family's chooser decides). Never throws: a DB entry that does not compose is ignored.
 */
export function tunedKernel(step: Step, ctx: CodegenContext): RenderedKernel | undefined {
  if (ctx.target === 'all' || (step.kind !== 'linear' && step.kind !== 'attention')) return undefined;
  const db = tuningDb(ctx.target);
  if (!db) return undefined;
  const es = entriesFor(db, step, ctx.dtype);
  if (!es.length) return undefined;
  try {
    const k = step.kind === 'linear' ? linear.render(composeLinear(step, ctx, es)) : attention.render(composeAttention(step, ctx, es));
    k.tuning = { source: es.every((e) => e.source === 'measured') ? 'measured' : 'model', gpu: db.gpu, entries: es.map((e) => e.key).sort() };
    return k;
  } catch (e) {
    console.warn(`lfc: tuning database entries for ${es[0].key.replace(/\|T\d+.*$/, '')} on ${ctx.target} do not compose (${(e as Error).message.slice(0, 200)}); using the family's chooser`);
    return undefined;
  }
}

/** A DB entry from a problem, its winning choice and what is known of it. */
export function makeEntry(problem: TuneProblem, choice: Choice, fields: Omit<TuneEntry, 'key' | 'problem' | 'choice' | 'choiceKey'>): TuneEntry {
  return { key: problemKey(problem), problem, choice, choiceKey: choiceKey(choice), ...fields };
}


/** report.md's line on where the configs came from (RenderedKernel.tuning). */
export function tuningReportLine(kernels: RenderedKernel[]): string {
  const measured = kernels.filter((k) => k.tuning?.source === 'measured'), model = kernels.filter((k) => k.tuning?.source === 'model');
  const gpu = [...new Set([...measured, ...model].map((k) => k.tuning!.gpu))].join(', ');
  if (!measured.length && !model.length) return `Configs: all ${kernels.length} units from the families' choosers (no tuning database entry for this plan and target).`;
  const names = (ks: RenderedKernel[]) => ks.map((k) => k.name).join(', ');
  return `Configs: ${measured.length} unit(s) from measurement (compiler/tune/db/${gpu}.json)${measured.length ? `: ${names(measured)}` : ''}; ` +
    `${model.length} from the analytic model${model.length ? `: ${names(model)}` : ''}; ${kernels.length - measured.length - model.length} from the families' choosers.`;
}
