/**
 * Each intrinsic of templates/intrinsics/lfc_intrinsics.cuh on the CPU emulator against a scalar
 * model of its PTX ISA semantics (test/emu/programs/intrinsics_emu.cpp prints one PASS/FAIL line
 * per check; wgmma, its matrix descriptors and TMA included), and planted bugs the emulator must stop: a __syncthreads reached by half a block
 * (deadlock report) and an out-of-bounds dynamic shared memory access.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileEmu, findTool } from '../../compiler/build/cuda-build.js';

const hasGxx = findTool('g++') !== null;
if (!hasGxx) console.warn('!!!!! g++ NOT FOUND: the CPU emulator intrinsic tests of test/emu are SKIPPED !!!!!');

const CHECKS = [
  'mma_m16n8k16_f16 all lanes/registers vs matrix product',
  'mma_m16n8k16_bf16 all lanes/registers vs matrix product',
  'mma_m16n8k32_s8 all lanes/registers vs matrix product (exact)',
  'mma_m16n8k32_e4m3 all lanes/registers vs matrix product of decoded e4m3',
  'mbarrier arrive / try_wait.parity over two phases, expect_tx + complete_tx',
  '__shfl_sync broadcast lane 5',
  '__shfl_sync width 8',
  '__shfl_up_sync delta 3 (low lanes keep their value)',
  '__shfl_down_sync delta 3 width 16 (segment end keeps its value)',
  '__shfl_xor_sync mask 9',
  '__ballot_sync / __any_sync / __all_sync',
  'ldmatrix x1 vs direct loads',
  'ldmatrix x2 vs direct loads',
  'ldmatrix x4 vs direct loads',
  'ldmatrix x1.trans vs direct loads',
  'ldmatrix x2.trans vs direct loads',
  'ldmatrix x4.trans vs direct loads',
  'cp.async 4/8/16: completion at wait_group<1> (older groups) and wait_group<0>; uncommitted stays pending',
  'atomicAdd int/float on global memory over 3 blocks',
  'atomicAdd on shared memory per block',
  'named_barrier_sync(id, 64) hands data between warp pairs',
  'make_smem_desc: start>>4 bits 0-13, LBO>>4 16-29, SBO>>4 32-45, base offset 49-51, swizzle 62-63 (128B=1 64B=2 32B=3)',
  // sm_90a wgmma from shared-memory descriptors (A and B laid out by the test's own swizzle formula)
  ...['no swizzle', 'swizzle 32B', 'swizzle 64B', 'swizzle 128B'].flatMap((sw) =>
    [64, 128].flatMap((n) =>
      ['bf16', 'f16'].map((t) => `wgmma m64n${n}k16 ${t} descriptors, ${sw}: A*B (scale-d 0) and C+A*B vs matrix product`),
    ),
  ),
  'wgmma m64n256k16 bf16 descriptors, swizzle 128B: A*B (scale-d 0) and C+A*B vs matrix product',
  'wgmma m64n8k16 f16 descriptors, swizzle 32B: A*B (scale-d 0) and C+A*B vs matrix product',
  'wgmma m64n64k16 bf16 A from registers, B 128B swizzle: 1+A*B vs matrix product',
  'wgmma m64n64k16 f16 A from registers, B 128B swizzle: 1+A*B vs matrix product',
  // TMA
  'TMA 2D box with out-of-bounds edges (zero fill), 128B swizzle, element by element; bulk copy; mbarrier completes only after the bytes land',
  'TMA 128B-swizzled tiles -> wgmma m64n64k16 bf16 (2 warpgroups, 4 k-steps) vs matrix product',
];

describe.skipIf(!hasGxx)('emulator: intrinsics against scalar models', () => {
  let exe = '';
  let all = { status: -1 as number | null, out: '' };
  const run = (arg?: string) => {
    const r = spawnSync(exe, arg ? [arg] : [], { encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
  };
  beforeAll(() => {
    const work = mkdtempSync(join(tmpdir(), 'lfc-emu-'));
    exe = compileEmu(join(import.meta.dirname, 'programs', 'intrinsics_emu.cpp'), { output: join(work, 'intrinsics') }).output;
    all = run();
  });

  for (const name of CHECKS) it(name, () => expect(all.out).toContain(`PASS ${name}\n`));

  it('every check ran and none failed', () => {
    expect(all.out).not.toContain('FAIL');
    expect(all.out.match(/^PASS /gm)?.length).toBe(CHECKS.length);
    expect(all.status, all.out).toBe(0);
  });

  it('planted bug: __syncthreads reached by half the block is reported as a deadlock', () => {
    const r = run('planted-deadlock');
    expect(r.status).toBe(3);
    expect(r.out).toContain('deadlock in block 0,0,0');
    expect(r.out).toContain('threads 0-15: __syncthreads');
    expect(r.out).toContain('threads 16-31: exited');
  });

  it('limitation is reported, not silent: two warp collectives with different masks gathering at once', () => {
    const r = run('mixed-masks');
    expect(r.out).toContain('warp collectives with different masks overlap in one warp (not emulated)');
    expect(r.status).toBe(3);
  });

  it('planted bug: an out-of-bounds dynamic shared access is reported (the in-bounds launch passes)', () => {
    const r = run('planted-smem-oob');
    expect(r.out).toContain('in-bounds dynamic shared access ok');
    expect(r.out).toContain('dynamic shared memory access out of bounds (block 0,0,0 thread 63)');
    expect(r.status).toBe(3);
  });
});
