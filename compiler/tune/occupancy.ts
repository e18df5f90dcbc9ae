/**
 * Occupancy: how many CTAs of a kernel one SM holds at once, from ptxas' report (registers per
 * thread, static shared memory) plus the launch's dynamic shared memory and block size, following
 * the CUDA occupancy rules (CUDA C Programming Guide, "Compute capabilities" table; cuda_occupancy.h):
 *
 *   - registers: allocated per warp in units of 256 (ceil(regs·32 / 256)·256 per warp), from the
 *     64K-register file split into 4 sub-partitions of 16K; warps per SM by registers =
 *     floor(16384 / regsPerWarp)·4; CTAs = floor(that / warpsPerCta). A CTA whose warps (rounded
 *     up to a multiple of 4) need more than 64K registers cannot launch at all.
 *   - shared memory: static + dynamic + 1 KB reserved per CTA (sm_80+), rounded up to 128 B;
 *     CTAs = floor(smemPerSm / that), with smemPerSm the largest carveout (sm_80: 164 KB, sm_90:
 *     228 KB) and a per-CTA maximum of 163 KB / 227 KB (static + dynamic, opt-in).
 *   - threads: at most 2048 threads = 64 warps per SM (block size rounded up to whole warps).
 *   - at most 32 CTAs per SM.
 */
import type { PtxasKernelReport } from '../build/cuda-build.js';

export interface SmLimits {
  arch: 'sm_80' | 'sm_90a';
  regsPerSm: number;
  regSubPartitions: number;
  regAllocUnit: number;
  maxRegsPerThread: number;
  regsPerBlock: number;
  smemPerSm: number;
  smemPerBlock: number;
  smemReservedPerBlock: number;
  smemAllocUnit: number;
  maxThreadsPerSm: number;
  maxWarpsPerSm: number;
  maxCtasPerSm: number;
}

const COMMON = {
  regsPerSm: 65536, regSubPartitions: 4, regAllocUnit: 256, maxRegsPerThread: 255, regsPerBlock: 65536,
  smemReservedPerBlock: 1024, smemAllocUnit: 128, maxThreadsPerSm: 2048, maxWarpsPerSm: 64, maxCtasPerSm: 32,
};

export const SM_LIMITS: Record<'sm_80' | 'sm_90a', SmLimits> = {
  sm_80: { arch: 'sm_80', ...COMMON, smemPerSm: 164 * 1024, smemPerBlock: 163 * 1024 },
  sm_90a: { arch: 'sm_90a', ...COMMON, smemPerSm: 228 * 1024, smemPerBlock: 227 * 1024 },
};

export type OccupancyLimiter = 'registers' | 'shared memory' | 'threads' | 'blocks';

export interface Occupancy {
  /** CTAs resident per SM (0: the kernel cannot launch with these resources). */
  ctasPerSm: number;
  /** Warps resident per SM (ctasPerSm · warps per CTA). */
  warpsPerSm: number;
  /** warpsPerSm / 64. */
  fraction: number;
  /** The resource that sets ctasPerSm (the first in this order on ties). */
  limiter: OccupancyLimiter;
  /** CTAs per SM each resource alone would allow. */
  byResource: Record<OccupancyLimiter, number>;
  /** Why it cannot launch (ctasPerSm 0). */
  reason?: string;
}

export interface KernelResources {
  threadsPerBlock: number;
  registers: number;
  /** Static shared memory (ptxas). */
  staticSmem: number;
  /** Dynamic shared memory of the launch. */
  dynamicSmem: number;
}

const roundUp = (x: number, unit: number) => Math.ceil(x / unit) * unit;

export function occupancy(r: KernelResources, arch: 'sm_80' | 'sm_90a'): Occupancy {
  const L = SM_LIMITS[arch];
  const warps = Math.ceil(r.threadsPerBlock / 32);
  const regs = Math.max(1, r.registers);
  const regsPerWarp = roundUp(regs * 32, L.regAllocUnit);
  const warpsByRegs = Math.floor(L.regsPerSm / L.regSubPartitions / regsPerWarp) * L.regSubPartitions;
  const smemPerCta = roundUp(r.staticSmem + r.dynamicSmem + L.smemReservedPerBlock, L.smemAllocUnit);
  const byResource: Record<OccupancyLimiter, number> = {
    registers: Math.floor(warpsByRegs / warps),
    'shared memory': Math.floor(L.smemPerSm / smemPerCta),
    threads: Math.floor(L.maxWarpsPerSm / warps),
    blocks: L.maxCtasPerSm,
  };
  let reason: string | undefined;
  if (r.threadsPerBlock < 1 || r.threadsPerBlock > 1024) reason = `${r.threadsPerBlock} threads per block (1..1024)`;
  else if (regs > L.maxRegsPerThread) reason = `${regs} registers per thread (at most ${L.maxRegsPerThread})`;
  else if (regsPerWarp * roundUp(warps, L.regSubPartitions) > L.regsPerBlock) reason = `${warps} warps × ${regsPerWarp} registers per warp exceed ${L.regsPerBlock} registers per block`;
  else if (r.staticSmem + r.dynamicSmem > L.smemPerBlock) reason = `${r.staticSmem + r.dynamicSmem} bytes of shared memory per block (${arch} allows ${L.smemPerBlock})`;
  const order: OccupancyLimiter[] = ['registers', 'shared memory', 'threads', 'blocks'];
  let limiter: OccupancyLimiter = 'blocks';
  let ctas = Infinity;
  for (const k of order) if (byResource[k] < ctas) { ctas = byResource[k]; limiter = k; }
  if (reason) ctas = 0;
  return { ctasPerSm: ctas, warpsPerSm: ctas * warps, fraction: (ctas * warps) / L.maxWarpsPerSm, limiter, byResource, ...(reason ? { reason } : {}) };
}

/** Occupancy of one ptxas entry at a block size and dynamic shared memory. */
export function occupancyOf(p: PtxasKernelReport, threadsPerBlock: number, dynamicSmem: number): Occupancy {
  const arch = p.arch.startsWith('sm_90') ? 'sm_90a' : 'sm_80';
  return occupancy({ threadsPerBlock, registers: p.registers, staticSmem: p.sharedBytes, dynamicSmem }, arch);
}
