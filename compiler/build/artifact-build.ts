/**
 * Builds the CUDA part of an artifact from its generated sources (compiler/codegen/launcher.ts):
 *
 *  - GPU: nvcc (through execa, units in parallel) compiles every kernels/<unit>.cu and launcher.cu
 *    with `-Xptxas -v` for the chosen targets (sm_80, sm_90a) into objects, cached by content hash,
 *    then links libmodel.so (static cudart, so the library needs only the driver). ptxas' report is
 *    parsed per kernel and architecture; a spill or a stack frame fails the build unless the unit's
 *    config allows it.
 *  - Emulator: g++ -DLFC_EMU compiles the same sources with templates/emu's CUDA-runtime shims into
 *    libmodel-emu.so, which the CUDA backend loads unchanged (issue 6: the artifact on the CPU).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { CudaSources } from '../codegen/launcher.js';
import type { GpuTarget, RenderedKernel } from '../codegen/kernel.js';
import { TARGET_ARCH } from '../codegen/kernel.js';
import { cudaIncludeDir, findTool, parsePtxasReport, templatesDir, ToolMissingError, type PtxasKernelReport } from './cuda-build.js';

export interface UnitReport {
  unit: string;
  family: string;
  config: object;
  ptxas: PtxasKernelReport[];
  cached: boolean;
  ms: number;
}

export interface GpuBuildResult {
  library: string;
  units: UnitReport[];
  archs: string[];
  ms: number;
}

export class ResourceError extends Error {}

/** Write kernels/<unit>.cu and launcher.cu under `dir`; returns their paths. */
export function writeCudaSources(dir: string, src: CudaSources): { kernels: string[]; launcher: string } {
  mkdirSync(path.join(dir, 'kernels'), { recursive: true });
  const kernels = src.kernels.map((k) => {
    const f = path.join(dir, 'kernels', `${k.name}.cu`);
    writeFileSync(f, k.source);
    return f;
  });
  const launcher = path.join(dir, 'launcher.cu');
  writeFileSync(launcher, src.launcher);
  return { kernels, launcher };
}

export function cacheDir(): string {
  return process.env.LFC_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'lfc');
}

function hash(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 24);
}

/** Run `jobs` with at most `n` in flight. */
export async function pool<T>(jobs: (() => Promise<T>)[], n: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]();
    }
  }));
  return out;
}

export function archsOf(target: GpuTarget | 'all'): string[] {
  return target === 'all' ? ['sm_80', 'sm_90a'] : [TARGET_ARCH[target].sm];
}

/** nvcc build of libmodel.so into `dir`. Throws ToolMissingError without nvcc, ResourceError on spills. */
export async function buildGpuLibrary(dir: string, src: CudaSources, opts: { target: GpuTarget | 'all'; onProgress?: (m: string) => void; jobs?: number }): Promise<GpuBuildResult> {
  const nvcc = findTool('nvcc');
  if (!nvcc) throw new ToolMissingError('nvcc');
  const t0 = Date.now();
  const files = writeCudaSources(dir, src);
  const archs = archsOf(opts.target);
  const gencode = archs.flatMap((sm) => ['-gencode', `arch=${sm.replace('sm_', 'compute_')},code=${sm}`]);
  const tdir = templatesDir();
  const inc = ['-I', path.join(tdir, 'intrinsics'), '-I', path.join(tdir, 'common')];
  const common = ['-c', '-std=c++20', '-O3', '-Xcompiler', '-fPIC', '-Xptxas', '-v', ...inc, ...gencode];
  const headers = ['intrinsics/lfc_intrinsics.cuh', 'common/lfc_common.cuh', 'common/lfc_abi.h', 'common/lfc_abi_spec.h'].map((h) => readText(path.join(tdir, h)));
  const objDir = path.join(cacheDir(), 'nvcc');
  mkdirSync(objDir, { recursive: true });
  const units: { name: string; file: string; source: string; kernel?: RenderedKernel }[] = [
    ...src.kernels.map((k, i) => ({ name: k.name, file: files.kernels[i], source: k.source, kernel: k })),
    { name: 'launcher', file: files.launcher, source: src.launcher },
  ];
  let done = 0;
  const reports = await pool(units.map((u) => async (): Promise<UnitReport & { object: string }> => {
    const key = hash(u.source, ...headers, common.join(' '), nvcc);
    const object = path.join(objDir, `${u.name}-${key}.o`);
    const logFile = object + '.ptxas.txt';
    const u0 = Date.now();
    let log: string;
    let cached = false;
    if (existsSync(object) && existsSync(logFile)) {
      log = readText(logFile);
      cached = true;
    } else {
      const tmp = `${object}.${process.pid}.tmp`;
      const r = await execa(nvcc, [...common, '-o', tmp, u.file], { reject: false, all: true });
      if (r.exitCode !== 0) throw new Error(`nvcc failed on ${path.relative(dir, u.file)} (exit ${r.exitCode}):\n${r.all ?? ''}`);
      log = r.all ?? '';
      writeFileSync(logFile, log);
      renameSync(tmp, object);
    }
    done++;
    opts.onProgress?.(`nvcc ${done}/${units.length}: ${u.name}${cached ? ' (cached)' : ` (${((Date.now() - u0) / 1000).toFixed(1)} s)`}`);
    return { unit: u.name, family: u.kernel?.family ?? 'launcher', config: u.kernel?.config ?? {}, ptxas: parsePtxasReport(log), cached, ms: Date.now() - u0, object };
  }), opts.jobs ?? Math.max(1, availableParallelism()));
  const bad: string[] = [];
  for (const [i, r] of reports.entries()) {
    if (units[i].kernel?.allowSpills) continue;
    for (const k of r.ptxas) if (k.spillStores + k.spillLoads > 0 || k.stackBytes > 0) {
      bad.push(`${r.unit}: ${k.kernel} on ${k.arch}: ${k.stackBytes} bytes stack, ${k.spillStores}/${k.spillLoads} bytes spill stores/loads`);
    }
  }
  if (bad.length) throw new ResourceError(`ptxas reports spills or stack frames (a config must allow them explicitly):\n  ${bad.join('\n  ')}`);
  const library = path.join(dir, 'libmodel.so');
  opts.onProgress?.(`linking ${path.basename(library)}`);
  const r = await execa(nvcc, ['-shared', '-o', library, ...reports.map((x) => x.object), ...gencode], { reject: false, all: true });
  if (r.exitCode !== 0) throw new Error(`nvcc link of ${library} failed:\n${r.all ?? ''}`);
  return { library, units: reports.map(({ object: _o, ...rest }) => rest), archs, ms: Date.now() - t0 };
}

/** g++ -DLFC_EMU build of libmodel-emu.so into `dir` (cached by content hash). */
export async function buildEmuLibrary(dir: string, src: CudaSources, opts: { onProgress?: (m: string) => void; optimize?: string; jobs?: number } = {}): Promise<{ library: string; ms: number; cached: boolean }> {
  const gxx = findTool('g++');
  if (!gxx) throw new ToolMissingError('g++');
  const cudaInc = cudaIncludeDir();
  if (!cudaInc) throw new ToolMissingError('cuda_fp16.h (CUDA include folder)');
  const t0 = Date.now();
  const files = writeCudaSources(dir, src);
  const tdir = templatesDir();
  const runtime = path.join(tdir, 'emu', 'lfc_emu_runtime.cpp');
  const flags = ['-std=c++20', opts.optimize ?? '-O1', '-fPIC', '-DLFC_EMU', '-I', path.join(tdir, 'intrinsics'), '-I', path.join(tdir, 'emu'), '-I', path.join(tdir, 'common'), '-I', cudaInc];
  const headers = ['intrinsics/lfc_intrinsics.cuh', 'common/lfc_common.cuh', 'common/lfc_abi.h', 'common/lfc_abi_spec.h', 'emu/lfc_emu.h', 'emu/lfc_emu_runtime.cpp'].map((h) => readText(path.join(tdir, h)));
  const objDir = path.join(cacheDir(), 'emu');
  mkdirSync(objDir, { recursive: true });
  const units = [
    ...src.kernels.map((k, i) => ({ name: k.name, file: files.kernels[i], source: k.source })),
    { name: 'launcher', file: files.launcher, source: src.launcher },
    { name: 'lfc_emu_runtime', file: runtime, source: readText(runtime) },
  ];
  let done = 0, allCached = true;
  const objects = await pool(units.map((u) => async () => {
    const object = path.join(objDir, `${u.name}-${hash(u.source, ...headers, flags.join(' '))}.o`);
    if (!existsSync(object)) {
      allCached = false;
      const tmp = `${object}.${process.pid}.tmp`;
      const r = await execa(gxx, [...flags, '-c', '-x', 'c++', u.file, '-o', tmp], { reject: false, all: true });
      if (r.exitCode !== 0) throw new Error(`g++ (emulator build) failed on ${u.file}:\n${r.all ?? ''}`);
      renameSync(tmp, object);
    }
    opts.onProgress?.(`g++ (emulator) ${++done}/${units.length}: ${u.name}`);
    return object;
  }), opts.jobs ?? Math.max(1, availableParallelism()));
  const library = path.join(dir, 'libmodel-emu.so');
  const tmpLib = `${library}.${process.pid}.tmp`;
  const r = await execa(gxx, ['-shared', '-o', tmpLib, ...objects], { reject: false, all: true });
  if (r.exitCode !== 0) throw new Error(`g++ link of ${library} failed:\n${r.all ?? ''}`);
  renameSync(tmpLib, library);
  return { library, ms: Date.now() - t0, cached: allCached };
}

function readText(f: string): string {
  return existsSync(f) ? readFileSync(f, 'utf8') : '';
}
