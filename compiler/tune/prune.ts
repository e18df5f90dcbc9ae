/**
 * Pruning and ranking without a GPU: every candidate of a problem's space is rendered, compiled
 * with nvcc for the target's architecture only (in parallel, with the same flags and the same
 * object cache as the artifact build, so the tuner's later builds reuse the objects), its ptxas
 * report read, spilling configs dropped, and the rest ranked by the analytic model (model.ts).
 *
 * Without nvcc (or with compile: false) the ranking uses estimated registers and says so
 * (`ptxas: null`).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { archsOf, cacheDir, pool } from '../build/artifact-build.js';
import { findTool, parsePtxasReport, templatesDir, type PtxasKernelReport } from '../build/cuda-build.js';
import type { GpuTarget, RenderedKernel } from '../codegen/kernel.js';
import * as attention from '../codegen/families/attention.js';
import * as linear from '../codegen/families/linear.js';
import { predict, type Prediction } from './model.js';
import { space, type Candidate, type TuneProblem } from './spaces.js';
import type { Occupancy } from './occupancy.js';

export interface Ranked {
  candidate: Candidate;
  config: Candidate['config'];
  predictedMs: number;
  floorMs: number;
  occupancy: Occupancy;
  /** ptxas report of the unit on the target's arch (null: not compiled). */
  ptxas: PtxasKernelReport[] | null;
  prediction: Prediction;
}

export interface RankOptions {
  /** Compile with nvcc (default: when nvcc is installed). */
  compile?: boolean;
  /** Compile only the best `limit` by the model with estimated registers (default: all). */
  limit?: number;
  /** Parallel nvcc jobs (default: available cores). */
  jobs?: number;
  onProgress?: (m: string) => void;
}

export interface RankResult {
  ranked: Ranked[];
  /** Dropped after compiling: spills / stack frames / not launchable, with the reason. */
  dropped: { candidate: Candidate; reason: string }[];
  compiled: boolean;
}

export function renderCandidate(c: Candidate): RenderedKernel {
  return c.problem.family === 'linear' ? linear.render(c.config as linear.LinearConfig) : attention.render(c.config as attention.AttentionConfig);
}

/** The candidate whose compile stands for `c` (attention: split-KV settings reset to the chooser's). */
export function compileRepresentative(c: Candidate): Candidate {
  if (c.problem.family !== 'attention') return c;
  const cfg = c.config as attention.AttentionConfig;
  const base = attention.configForAttention({ kind: 'attention', layer: 0, q: 'q', out: 'o', heads: cfg.heads, kvHeads: cfg.kvHeads, headDim: cfg.headDim, scale: 1 }, { dtype: cfg.dtype, target: cfg.target, kv: { blockSize: cfg.blockSize, kvHeads: cfg.kvHeads, headDim: cfg.headDim }, limits: { maxTokens: 512, maxSeqs: 64, maxContext: 8192, numSms: 132 } });
  const { maxSplits, minKeysPerSplit, ctasPerSm } = base.decode;
  return { ...c, config: { ...cfg, decode: { ...cfg.decode, maxSplits, minKeysPerSplit, ctasPerSm } } };
}

function hash(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 24);
}

/**
 * nvcc -c of rendered units for `target`, cached exactly as buildGpuLibrary caches (same flags,
 * same key: the object lands where the artifact build looks for it). Returns each unit's ptxas report.
 */
export async function compileUnits(units: RenderedKernel[], target: GpuTarget, opts: { jobs?: number; onProgress?: (m: string) => void } = {}): Promise<PtxasKernelReport[][]> {
  const nvcc = findTool('nvcc');
  if (!nvcc) throw new Error('nvcc not found');
  const gencode = archsOf(target).flatMap((sm) => ['-gencode', `arch=${sm.replace('sm_', 'compute_')},code=${sm}`]);
  const tdir = templatesDir();
  const inc = ['-I', path.join(tdir, 'intrinsics'), '-I', path.join(tdir, 'common')];
  const common = ['-c', '-std=c++20', '-O3', '-Xcompiler', '-fPIC', '-Xptxas', '-v', ...inc, ...gencode];
  const headers = ['intrinsics/lfc_intrinsics.cuh', 'common/lfc_common.cuh', 'common/lfc_abi.h'].map((h) => {
    const f = path.join(tdir, h);
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  });
  const objDir = path.join(cacheDir(), 'nvcc');
  const srcDir = path.join(cacheDir(), 'tune-src');
  mkdirSync(objDir, { recursive: true });
  mkdirSync(srcDir, { recursive: true });
  let done = 0;
  return pool(units.map((u) => async () => {
    const key = hash(u.source, ...headers, common.join(' '), nvcc);
    const object = path.join(objDir, `${u.name}-${key}.o`);
    const logFile = object + '.ptxas.txt';
    let log: string;
    if (existsSync(object) && existsSync(logFile)) log = readFileSync(logFile, 'utf8');
    else {
      const file = path.join(srcDir, `${u.name}.cu`);
      writeFileSync(file, u.source);
      const tmp = `${object}.${process.pid}.tmp`;
      const r = await execa(nvcc, [...common, '-o', tmp, file], { reject: false, all: true });
      if (r.exitCode !== 0) throw new Error(`nvcc failed on ${u.name} (exit ${r.exitCode}):\n${r.all ?? ''}`);
      log = r.all ?? '';
      writeFileSync(logFile, log);
      renameSync(tmp, object);
    }
    opts.onProgress?.(`nvcc ${++done}/${units.length}: ${u.name}`);
    return parsePtxasReport(log);
  }), opts.jobs ?? Math.max(1, availableParallelism()));
}

/**
 * The candidates of `problem` on `target`, compiled (when nvcc is there), spilling ones dropped,
 * ranked by predicted time (fastest first).
 */
export async function rankCandidates(problem: TuneProblem, target: GpuTarget, opts: RankOptions = {}): Promise<Ranked[]> {
  return (await rankWithDrops(problem, target, opts)).ranked;
}

export async function rankWithDrops(problem: TuneProblem, target: GpuTarget, opts: RankOptions = {}): Promise<RankResult> {
  let cands = space(problem, target).candidates;
  const pre = cands.map((c) => ({ c, p: predict(c, target) })).sort((a, b) => a.p.ms - b.p.ms);
  if (opts.limit !== undefined) cands = pre.slice(0, opts.limit).map((x) => x.c);
  else cands = pre.map((x) => x.c);
  const compile = (opts.compile ?? true) && findTool('nvcc') !== null;
  const dropped: RankResult['dropped'] = [];
  let reports: (PtxasKernelReport[] | null)[] = cands.map(() => null);
  if (compile) {
    // Attention candidates differing only in split-KV settings (host-side constants) share one
    // compile: their kernels are the same code, so ptxas reports the same resources.
    const units = cands.map((c) => renderCandidate(compileRepresentative(c)));
    const unique = [...new Map(units.map((u) => [u.name, u])).values()];
    const byName = new Map<string, PtxasKernelReport[]>();
    (await compileUnits(unique, target, opts)).forEach((r, i) => byName.set(unique[i].name, r));
    reports = units.map((u) => byName.get(u.name)!);
  }
  const arch = archsOf(target)[0];
  const ranked: Ranked[] = [];
  cands.forEach((c, i) => {
    const rep = reports[i];
    if (rep) {
      const bad = rep.filter((r) => r.arch === arch && (r.spillStores + r.spillLoads > 0 || r.stackBytes > 0));
      if (bad.length) {
        dropped.push({ candidate: c, reason: bad.map((r) => `${r.kernel}: ${r.stackBytes} B stack, ${r.spillStores}/${r.spillLoads} B spill stores/loads`).join('; ') });
        return;
      }
    }
    const p = predict(c, target, rep ?? undefined);
    if (p.occupancy.ctasPerSm === 0) { dropped.push({ candidate: c, reason: `cannot launch: ${p.occupancy.reason}` }); return; }
    ranked.push({ candidate: c, config: c.config, predictedMs: p.ms, floorMs: p.floorMs, occupancy: p.occupancy, ptxas: rep ? rep.filter((r) => r.arch === arch) : null, prediction: p });
  });
  ranked.sort((a, b) => a.predictedMs - b.predictedMs || a.candidate.key.localeCompare(b.candidate.key));
  return { ranked, dropped, compiled: compile };
}
