/**
 * The occupancy calculator against values worked out by hand from the CUDA occupancy rules
 * (sm_80 and sm_90: 64K registers in 4 sub-partitions of 16384, allocated per warp in units of 256;
 * shared memory per SM 164 KB = 167936 B (sm_80) / 228 KB = 233472 B (sm_90), per CTA + 1024 B
 * reserved, rounded to 128 B; 64 warps and 32 CTAs per SM). Each case writes out the arithmetic.
 */
import { describe, expect, it } from 'vitest';
import { occupancy, occupancyOf } from '../../compiler/tune/occupancy.js';

describe('occupancy', () => {
  it('register-limited (sm_80): 255 registers, 128 threads', () => {
    // per warp: ceil(255·32 / 256)·256 = ceil(31.875)·256 = 8192; per sub-partition floor(16384 / 8192) = 2 warps → 8 warps/SM
    // CTAs = floor(8 / 4 warps) = 2. smem: 0 + 1024 → floor(167936 / 1024) = 164; threads: 64 / 4 = 16; blocks 32.
    const o = occupancy({ threadsPerBlock: 128, registers: 255, staticSmem: 0, dynamicSmem: 0 }, 'sm_80');
    expect(o).toMatchObject({ ctasPerSm: 2, warpsPerSm: 8, fraction: 8 / 64, limiter: 'registers' });
    expect(o.byResource).toEqual({ registers: 2, 'shared memory': 164, threads: 16, blocks: 32 });
  });

  it('registers per sub-partition, not per SM: 96 registers, 1 warp per CTA', () => {
    // per warp: 96·32 = 3072 (a multiple of 256); per sub-partition floor(16384 / 3072) = 5 → 20 warps/SM → 20 CTAs
    // (65536 / 3072 = 21.3 would say 21: the sub-partitions leave 16384 − 5·3072 = 1024 registers each unused).
    // threads: 64 / 1 = 64; blocks 32; smem floor(167936 / 1024) = 164.
    const o = occupancy({ threadsPerBlock: 32, registers: 96, staticSmem: 0, dynamicSmem: 0 }, 'sm_80');
    expect(o).toMatchObject({ ctasPerSm: 20, limiter: 'registers' });
  });

  it('shared-memory-limited, sm_80 vs sm_90a: 48 KB dynamic, 128 threads, 32 registers', () => {
    // per CTA: 49152 + 1024 = 50176 (= 392·128, already rounded). sm_80: floor(167936 / 50176) = 3 (4·50176 = 200704 > 167936);
    // sm_90a: floor(233472 / 50176) = 4 (5·50176 = 250880 > 233472). registers: 32·32 = 1024 per warp → 16 per
    // sub-partition → 64 warps → 16 CTAs; threads 16.
    expect(occupancy({ threadsPerBlock: 128, registers: 32, staticSmem: 0, dynamicSmem: 49152 }, 'sm_80')).toMatchObject({ ctasPerSm: 3, limiter: 'shared memory', warpsPerSm: 12 });
    expect(occupancy({ threadsPerBlock: 128, registers: 32, staticSmem: 0, dynamicSmem: 49152 }, 'sm_90a')).toMatchObject({ ctasPerSm: 4, limiter: 'shared memory', warpsPerSm: 16 });
  });

  it('static + dynamic shared memory round up to 128 B: 100 KB dynamic + 40 B static', () => {
    // 102400 + 40 + 1024 = 103464 → rounded up to 103552 (809·128). sm_80: floor(167936 / 103552) = 1; sm_90a: floor(233472 / 103552) = 2.
    const r = { threadsPerBlock: 256, registers: 64, staticSmem: 40, dynamicSmem: 102400 };
    expect(occupancy(r, 'sm_80').ctasPerSm).toBe(1);
    expect(occupancy(r, 'sm_90a').ctasPerSm).toBe(2);
    // Through a ptxas report: static shared memory from ptxas, arch from its name.
    const p = { kernel: 'k', arch: 'sm_90a', registers: 64, sharedBytes: 40, stackBytes: 0, spillStores: 0, spillLoads: 0 };
    expect(occupancyOf(p, 256, 102400).ctasPerSm).toBe(2);
  });

  it('thread-limited: 1024 threads, 16 registers', () => {
    // threads: 64 warps / 32 = 2. registers: 16·32 = 512 per warp → 32 per sub-partition → 128 warps → 4 CTAs. smem 164.
    expect(occupancy({ threadsPerBlock: 1024, registers: 16, staticSmem: 0, dynamicSmem: 0 }, 'sm_80')).toMatchObject({ ctasPerSm: 2, limiter: 'threads', fraction: 1 });
  });

  it('CTA-limited: 32 threads, 16 registers, no shared memory', () => {
    // registers: 128 warps → 128 CTAs; smem 164; threads 64; blocks 32 → 32 CTAs = 32 warps = 50 %.
    expect(occupancy({ threadsPerBlock: 32, registers: 16, staticSmem: 0, dynamicSmem: 0 }, 'sm_90a')).toMatchObject({ ctasPerSm: 32, limiter: 'blocks', fraction: 0.5 });
  });

  it('cannot launch: too much shared memory per CTA, or too many registers per CTA', () => {
    // 163 KB + 1 B on sm_80 (cap 166912); fine on sm_90a (cap 232448): 166913 + 1024 → 168064; floor(233472 / 168064) = 1.
    expect(occupancy({ threadsPerBlock: 128, registers: 32, staticSmem: 0, dynamicSmem: 166913 }, 'sm_80')).toMatchObject({ ctasPerSm: 0, reason: expect.stringMatching(/166913 bytes.*166912/) });
    expect(occupancy({ threadsPerBlock: 128, registers: 32, staticSmem: 0, dynamicSmem: 166913 }, 'sm_90a').ctasPerSm).toBe(1);
    // 255 registers × 1024 threads: 32 warps × 8192 = 262144 > 65536 registers per block.
    expect(occupancy({ threadsPerBlock: 1024, registers: 255, staticSmem: 0, dynamicSmem: 0 }, 'sm_80')).toMatchObject({ ctasPerSm: 0, reason: expect.stringMatching(/65536 registers per block/) });
  });
});
