// compiler/build/cuda-build.ts: compiles a .cu file two ways.
//  - nvcc for sm_80 and sm_90a with `-Xptxas -v`, parsing the ptxas report per kernel and arch;
//  - g++ -DLFC_EMU against templates/emu (the CPU emulator of issue 6) into an executable or .so.
// Tools are looked up on PATH (nvcc also at /usr/local/cuda/bin); a missing tool is reported by
// name through `findTool` returning null, and the compile functions throw a ToolMissingError.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** One kernel's resource use as ptxas reports it for one architecture. */
export interface PtxasKernelReport {
  kernel: string; // mangled entry name
  arch: string; // e.g. 'sm_80', 'sm_90a'
  registers: number;
  sharedBytes: number;
  stackBytes: number;
  spillStores: number;
  spillLoads: number;
}

export class ToolMissingError extends Error {
  constructor(readonly tool: string) {
    super(`${tool} not found on PATH: it is needed to build CUDA sources (install the CUDA toolkit / g++ 12+)`);
  }
}

/** templates/ of this package (works from compiler/build and dist/compiler/build). */
export function templatesDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'templates', 'intrinsics'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('templates/intrinsics not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return path.join(dir, 'templates');
}

/** Absolute path of `tool`, or null when it is not installed. */
export function findTool(tool: 'nvcc' | 'g++'): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  const fallback = tool === 'nvcc' ? '/usr/local/cuda/bin/nvcc' : null;
  return fallback && existsSync(fallback) ? fallback : null;
}

/** CUDA include folder with cuda_fp16.h / cuda_bf16.h for host (emulator) builds. */
export function cudaIncludeDir(): string | null {
  const nvcc = findTool('nvcc');
  const candidates = [
    ...(nvcc ? [path.join(path.dirname(path.dirname(nvcc)), 'include')] : []),
    '/usr/local/cuda/include',
  ];
  return candidates.find((d) => existsSync(path.join(d, 'cuda_fp16.h'))) ?? null;
}

export const GPU_ARCHS = [
  { compute: 'compute_80', sm: 'sm_80' },
  { compute: 'compute_90a', sm: 'sm_90a' },
] as const;

/**
 * Parses `ptxas -v` output. Per entry it prints, in order:
 *   Compiling entry function 'NAME' for 'sm_80'
 *   Function properties for NAME / N bytes stack frame, N bytes spill stores, N bytes spill loads
 *   Used N registers, [used N barriers,] [N bytes smem,] N bytes cmem[0]
 */
export function parsePtxasReport(text: string): PtxasKernelReport[] {
  const out: PtxasKernelReport[] = [];
  let cur: PtxasKernelReport | null = null;
  for (const line of text.split('\n')) {
    const entry = /Compiling entry function '([^']+)' for '(sm_\w+)'/.exec(line);
    if (entry) {
      cur = { kernel: entry[1], arch: entry[2], registers: 0, sharedBytes: 0, stackBytes: 0, spillStores: 0, spillLoads: 0 };
      out.push(cur);
      continue;
    }
    if (!cur) continue;
    const frame = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (frame) {
      cur.stackBytes = Number(frame[1]);
      cur.spillStores = Number(frame[2]);
      cur.spillLoads = Number(frame[3]);
    }
    const used = /Used (\d+) registers/.exec(line);
    if (used) {
      cur.registers = Number(used[1]);
      const smem = /(\d+) bytes smem/.exec(line);
      cur.sharedBytes = smem ? Number(smem[1]) : 0;
    }
  }
  return out;
}

export interface NvccResult {
  object: string;
  kernels: PtxasKernelReport[];
  log: string;
  ms: number;
}

/** nvcc -c for sm_80 and sm_90a with the ptxas report parsed. Throws with the log on failure. */
export function compileNvcc(source: string, object: string, includeDirs: string[] = []): NvccResult {
  const nvcc = findTool('nvcc');
  if (!nvcc) throw new ToolMissingError('nvcc');
  const args = ['-c', '-std=c++20', '-o', object, '-Xptxas', '-v', '-I', path.join(templatesDir(), 'intrinsics'), '-I', path.join(templatesDir(), 'common')];
  for (const a of GPU_ARCHS) args.push('-gencode', `arch=${a.compute},code=${a.sm}`);
  for (const d of includeDirs) args.push('-I', d);
  args.push(source);
  const t0 = Date.now();
  const r = spawnSync(nvcc, args, { encoding: 'utf8' });
  const log = (r.stdout ?? '') + (r.stderr ?? '');
  if (r.status !== 0) throw new Error(`nvcc failed (${r.status}) on ${source}:\n${log}`);
  return { object, kernels: parsePtxasReport(log), log, ms: Date.now() - t0 };
}

export interface EmuBuildOptions {
  output: string;
  shared?: boolean; // build a .so (-shared -fPIC) instead of an executable
  defines?: string[]; // e.g. ['LFC_PLANTED_MISSING_SYNC']
  includeDirs?: string[];
  optimize?: string; // default -O1 (compile time matters more than speed for tests)
}

/** g++ -std=c++20 -DLFC_EMU against templates/emu and templates/intrinsics. */
export function compileEmu(source: string | string[], opts: EmuBuildOptions): { output: string; ms: number } {
  const gxx = findTool('g++');
  if (!gxx) throw new ToolMissingError('g++');
  const cudaInc = cudaIncludeDir();
  if (!cudaInc) throw new ToolMissingError('cuda_fp16.h (CUDA include folder)');
  const t = templatesDir();
  const args = ['-std=c++20', opts.optimize ?? '-O1', '-DLFC_EMU', '-I', path.join(t, 'intrinsics'), '-I', path.join(t, 'emu'), '-I', path.join(t, 'common'), '-I', cudaInc];
  for (const d of opts.defines ?? []) args.push('-D' + d);
  for (const d of opts.includeDirs ?? []) args.push('-I', d);
  if (opts.shared) args.push('-shared', '-fPIC');
  args.push('-x', 'c++', ...(Array.isArray(source) ? source : [source]), '-o', opts.output);
  const t0 = Date.now();
  try {
    execFileSync(gxx, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; status?: number };
    throw new Error(`g++ failed (${err.status}) on ${String(source)}:\n${err.stderr ?? ''}`);
  }
  return { output: opts.output, ms: Date.now() - t0 };
}
