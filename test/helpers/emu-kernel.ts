/**
 * Build rendered kernels for the CPU emulator (g++ -DLFC_EMU, with the CUDA runtime shims of
 * templates/emu/lfc_emu_runtime.cpp) into a shared library and load it with koffi; or compile them
 * with nvcc for sm_80 + sm_90a and return ptxas' per-kernel report.
 *
 * `wrapper` is C++ that defines extern "C" entry points with flat arguments (pointers and ints)
 * filling the lfc_abi.h struct and calling the launch function, e.g.
 *   #include "lfc_abi.h"
 *   cudaError_t lfc_add_bf16(const LfcAddArgs&, cudaStream_t);
 *   extern "C" int run(const void* a, const void* b, void* o, long n) {
 *     LfcAddArgs x{a, b, o, n}; return lfc_add_bf16(x, nullptr); }
 * Host typed arrays are "device" memory on the emulator, so koffi passes them directly.
 * Builds are cached by content hash under the OS temp folder (CI compiles each config once).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import koffi from 'koffi';
import { compileEmu, compileNvcc, findTool, templatesDir, type PtxasKernelReport } from '../../compiler/build/cuda-build.js';
import type { RenderedKernel } from '../../compiler/codegen/kernel.js';

export const hasGxx = findTool('g++') !== null;
export const hasNvcc = findTool('nvcc') !== null;
if (!hasNvcc) console.warn('!!!!! nvcc NOT FOUND: sm_80/sm_90a compile checks of generated kernels are SKIPPED !!!!!');
if (!hasGxx) console.warn('!!!!! g++ NOT FOUND: emulator runs of generated kernels are SKIPPED !!!!!');

const CACHE = join(tmpdir(), 'lfc-kernel-cache');

/** The shared headers every unit includes: part of each cache key, so editing them rebuilds. */
function headers(): string[] {
  const t = templatesDir();
  return ['intrinsics', 'emu', 'common'].flatMap((d) => readdirSync(join(t, d)).sort().map((f) => readFileSync(join(t, d, f), 'utf8')));
}

function hashOf(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 20);
}

function writeSources(dir: string, kernels: RenderedKernel[]): string[] {
  mkdirSync(dir, { recursive: true });
  return kernels.map((k) => {
    const f = join(dir, `${k.name}.cu`);
    writeFileSync(f, k.source);
    return f;
  });
}

/** g++ -DLFC_EMU build of kernels + wrapper + runtime shims → koffi library (cached). */
export function buildEmuLib(kernels: RenderedKernel[], wrapper: string): koffi.IKoffiLib {
  const runtime = join(templatesDir(), 'emu', 'lfc_emu_runtime.cpp');
  const key = hashOf(wrapper, ...kernels.map((k) => k.source), ...headers(), 'emu-v2');
  const dir = join(CACHE, key);
  const so = join(dir, 'lib.so');
  if (!existsSync(so)) {
    const srcs = writeSources(dir, kernels);
    const w = join(dir, 'wrapper.cpp');
    writeFileSync(w, wrapper);
    const tmp = join(dir, `lib.${process.pid}.so`);
    compileEmu([...srcs, w, runtime], { output: tmp, shared: true });
    renameSync(tmp, so);
  }
  return koffi.load(so);
}

/** nvcc for sm_80 + sm_90a (-Xptxas -v) of each kernel; the ptxas report of all (cached). */
export function compileKernelsNvcc(kernels: RenderedKernel[]): PtxasKernelReport[] {
  const out: PtxasKernelReport[] = [];
  for (const k of kernels) {
    const dir = join(CACHE, hashOf(k.source, ...headers(), 'nvcc-v2'));
    const srcs = writeSources(dir, [k]);
    out.push(...compileNvcc(srcs[0], join(dir, `${k.name}.o`)).kernels);
  }
  return out;
}
