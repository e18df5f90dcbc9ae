/**
 * Real kernels written against templates/intrinsics/lfc_intrinsics.cuh (test/emu/programs/kernels.cuh):
 * they run on the CPU emulator against plain references, a planted missing __syncthreads is caught,
 * and the same source compiles with nvcc for sm_80 and sm_90a with a clean ptxas report.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileEmu, compileNvcc, findTool, parsePtxasReport } from '../../compiler/build/cuda-build.js';

const PROGRAMS = join(import.meta.dirname, 'programs');
const work = mkdtempSync(join(tmpdir(), 'lfc-emu-'));
const hasGxx = findTool('g++') !== null;
const hasNvcc = findTool('nvcc') !== null;
if (!hasNvcc) console.warn('!!!!! nvcc NOT FOUND: the sm_80/sm_90a compile checks of test/emu are SKIPPED !!!!!');
if (!hasGxx) console.warn('!!!!! g++ NOT FOUND: the CPU emulator tests of test/emu are SKIPPED !!!!!');

function run(exe: string) {
  const r = spawnSync(exe, [], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

describe.skipIf(!hasGxx)('emulator: kernels', () => {
  it('block_reduce_sum and tile_gemm_16x8x16 (cp.async, ldmatrix, mma.sync) match their references', () => {
    const { output } = compileEmu(join(PROGRAMS, 'kernels_emu.cpp'), { output: join(work, 'kernels') });
    const r = run(output);
    expect(r.out).toContain('PASS block_reduce_sum');
    expect(r.out).toContain('PASS tile_gemm_16x8x16');
    expect(r.status, r.out).toBe(0);
  });

  it('a planted missing __syncthreads in block_reduce_sum gives a wrong sum that the check catches', () => {
    const { output } = compileEmu(join(PROGRAMS, 'kernels_emu.cpp'), {
      output: join(work, 'kernels-planted'),
      defines: ['LFC_PLANTED_MISSING_SYNC'],
    });
    const r = run(output);
    expect(r.out).toContain('FAIL block_reduce_sum');
    expect(r.status).toBe(1);
  });
});

describe.skipIf(!hasNvcc)('nvcc: kernels', () => {
  it('kernels.cuh compiles for sm_80 and sm_90a; ptxas reports registers and no spills', () => {
    const res = compileNvcc(join(PROGRAMS, 'kernels_nvcc.cu'), join(work, 'kernels.o'), [PROGRAMS]);
    const names = new Set(res.kernels.map((k) => `${k.kernel}@${k.arch}`));
    for (const arch of ['sm_80', 'sm_90a'])
      for (const k of ['_Z16block_reduce_sumPKfiPf', '_Z17tile_gemm_16x8x16PK6__halfS1_Pf'])
        expect(names.has(`${k}@${arch}`), `${k} for ${arch} in\n${res.log}`).toBe(true);
    for (const k of res.kernels) {
      expect(k.registers).toBeGreaterThan(0);
      expect(k.spillStores + k.spillLoads).toBe(0);
    }
    const gemm = res.kernels.find((k) => k.kernel.includes('tile_gemm') && k.arch === 'sm_80');
    expect(gemm?.sharedBytes).toBe(768); // sA 512 + sB 256
  });

  it('every GPU-branch intrinsic (mma f16/bf16/s8, ldmatrix x1/x2/x4 .trans, cp.async 4/8/16, bar.sync) assembles', () => {
    const res = compileNvcc(join(PROGRAMS, 'intrinsics_nvcc.cu'), join(work, 'intrinsics.o'));
    expect(res.kernels.map((k) => k.arch).sort()).toEqual(['sm_80', 'sm_90a']);
    for (const k of res.kernels) {
      expect(k.kernel).toBe('_Z15every_intrinsicPKiPfPi');
      expect(k.registers).toBeGreaterThan(0);
      expect(k.spillStores + k.spillLoads).toBe(0);
    }
    console.log(`nvcc sm_80+sm_90a compile of intrinsics_nvcc.cu: ${res.ms} ms`);
  });
});

describe('ptxas report parser', () => {
  it('reads entry, arch, registers, smem, stack and spills (smem omitted when 0)', () => {
    const log = [
      "ptxas info    : Compiling entry function '_Z1kPf' for 'sm_90a'",
      'ptxas info    : Function properties for _Z1kPf',
      '    16 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads',
      'ptxas info    : Used 40 registers, used 1 barriers, 376 bytes cmem[0]',
      "ptxas info    : Compiling entry function '_Z1gv' for 'sm_80'",
      'ptxas info    : Function properties for _Z1gv',
      '    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads',
      'ptxas info    : Used 12 registers, 1024 bytes smem, 356 bytes cmem[0]',
    ].join('\n');
    expect(parsePtxasReport(log)).toEqual([
      { kernel: '_Z1kPf', arch: 'sm_90a', registers: 40, sharedBytes: 0, stackBytes: 16, spillStores: 8, spillLoads: 4 },
      { kernel: '_Z1gv', arch: 'sm_80', registers: 12, sharedBytes: 1024, stackBytes: 0, spillStores: 0, spillLoads: 0 },
    ]);
  });
});
