/**
 * The CUDA backend: runs a compiled artifact's libmodel.so (or libmodel-emu.so, the same launcher
 * and kernels built for lfc's CPU emulator) through its C ABI (templates/launcher.cu.hbs), bound
 * with koffi. Same Backend interface as the reference backend: the engine cannot tell them apart.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import koffi from 'koffi';
import { validateBatch, type RaggedBatch } from '../../batch.js';
import { parsePlan, type Plan } from '../../plan.js';
import type { Backend, DeviceSampleRows, DeviceVerifyRequest } from '../backend.js';
import { bf16Decode, fp16Decode } from '../../floats.js';
import type { CudaBackendOptions } from './options.js';

export type { CudaBackendOptions } from './options.js';

interface Abi {
  create: (weights: string, device: number, numBlocks: number, maxTokens: number, maxSeqs: number, graphs: number) => unknown;
  forward: (...args: unknown[]) => number;
  forwardSample: (...args: unknown[]) => number;
  forwardVerify: (...args: unknown[]) => number;
  copyBlocks: (m: unknown, pairs: Int32Array, n: number) => number;
  stats: (m: unknown, out: BigInt64Array, n: number) => number;
  profile: (m: unknown, T: number, B: number, L: number, maxNew: number, maxCtx: number, iters: number, out: Float32Array) => number;
  destroy: (m: unknown) => void;
  dumping: (m: unknown, on: number) => number;
  dump: (m: unknown, step: number, j: number, out: Uint16Array | null, capacity: number) => number | bigint;
  lastError: () => string;
  limits: (out: Int32Array) => number;
}

const libs = new Map<string, Abi>();

function bind(file: string): Abi {
  let abi = libs.get(file);
  if (abi) return abi;
  const lib = koffi.load(file);
  abi = {
    create: lib.func('void* lfc_create(const char*, int, int, int, int, int)'),
    forward: lib.func('int lfc_forward(void*, int, int, int, int, const int32_t*, const int32_t*, const int32_t*, const int32_t*, const int32_t*, const int32_t*, const int32_t*, float*)'),
    forwardSample: lib.func('int lfc_forward_sample(void*, int, int, int, int, const int32_t*, const int32_t*, const int32_t*, const int32_t*, const int32_t*, const int32_t*, const int32_t*, const float*, const int32_t*, const float*, const uint64_t*, const int64_t*, int32_t*, float*)'),
    forwardVerify: lib.func('int lfc_forward_verify(void*, int, int, int, int, const int32_t*, const int32_t*, const int32_t*, const int32_t*, const int32_t*, const int32_t*, const int32_t*, int, const int32_t*, const int32_t*, const int32_t*, const float*, const int32_t*, const float*, const int32_t*, const float*, const uint64_t*, const int64_t*, int32_t*)'),
    copyBlocks: lib.func('int lfc_copy_blocks(void*, const int32_t*, int)'),
    stats: lib.func('int lfc_stats(void*, int64_t*, int)'),
    profile: lib.func('int lfc_profile(void*, int, int, int, int, int, int, float*)'),
    destroy: lib.func('void lfc_destroy(void*)'),
    dumping: lib.func('int lfc_debug_dumping(void*, int)'),
    dump: lib.func('int64_t lfc_debug_dump(void*, int, int, void*, int64_t)'),
    lastError: lib.func('const char* lfc_last_error()'),
    limits: lib.func('int lfc_limits(int*)'),
  };
  libs.set(file, abi);
  return abi;
}

export interface CudaStats { forwards: number; graphReplays: number; graphCaptures: number; eagerForwards: number; workspaceBytes: number; numSms: number }

export class CudaBackend implements Backend {
  readonly numBlocks: number;
  readonly maxTokens: number;
  readonly maxSeqs: number;
  /** From the artifact's hints.json for this GPU (SM count: 108 → A100, else H100 figures). */
  readonly specMaxBatchTokens?: number;
  private handle: unknown;
  private readonly abi: Abi;

  constructor(readonly plan: Plan, readonly library: string, weightsPath: string, opts: CudaBackendOptions = {}) {
    this.numBlocks = opts.numBlocks ?? Math.ceil((4 * plan.model.maxPositions) / plan.kv.blockSize);
    if (!existsSync(library)) throw new Error(`${library} does not exist: build it with lfc compile --target ${opts.emulator ? 'emu' : 'h100|a100|all'}`);
    this.abi = bind(library);
    const limits = new Int32Array(2);
    this.abi.limits(limits);
    // Defaults: the limits the artifact was compiled for (lfc compile --max-tokens/--max-seqs).
    this.maxTokens = opts.maxTokens ?? limits[0];
    this.maxSeqs = opts.maxSeqs ?? limits[1];
    this.handle = this.abi.create(weightsPath, opts.device ?? 0, this.numBlocks, this.maxTokens, this.maxSeqs, opts.cudaGraphs === false ? 0 : 1);
    if (!this.handle) throw new Error(`lfc_create (${path.basename(library)}): ${this.abi.lastError()}`);
    const hints = path.join(path.dirname(library), 'hints.json');
    if (existsSync(hints)) {
      try {
        const h = JSON.parse(readFileSync(hints, 'utf8')) as { specMaxBatchTokens?: Record<string, number> };
        const gpu = this.stats().numSms === 108 ? 'a100' : 'h100';
        this.specMaxBatchTokens = h.specMaxBatchTokens?.[gpu];
      } catch (e) {
        throw new Error(`${hints}: ${(e as Error).message}`);
      }
    }
  }

  forwardSample(batch: RaggedBatch, rows: DeviceSampleRows): { tokens: Int32Array; logprobs: Float32Array } {
    this.check(batch);
    const L = batch.logitIndices.length;
    for (const [k, a] of Object.entries(rows)) if ((a as ArrayLike<unknown>).length !== L) throw new Error(`forwardSample: rows.${k} has ${(a as ArrayLike<unknown>).length} entries, the batch ${L} logit rows`);
    const tokens = new Int32Array(L), logprobs = new Float32Array(L);
    const T = batch.tokens.length, B = batch.seqStarts.length - 1;
    const rc = this.abi.forwardSample(this.handle, T, B, L, batch.maxBlocksPerSeq, batch.tokens, batch.positions, batch.seqStarts, batch.contextLens,
      batch.blockTables, batch.slotMapping, batch.logitIndices, rows.temperature, rows.topK, rows.topP, rows.seed, rows.counter, tokens, logprobs);
    if (rc !== 0) throw new Error(`lfc_forward_sample: ${this.abi.lastError()}`);
    return { tokens, logprobs };
  }

  forwardVerify(batch: RaggedBatch, r: DeviceVerifyRequest): Int32Array {
    this.check(batch);
    const L = batch.logitIndices.length, S = r.logitRows.length;
    if (r.draftStarts.length !== S + 1) throw new Error(`forwardVerify: draftStarts has ${r.draftStarts.length} entries, expected ${S + 1}`);
    if (r.draftProbs && r.draftProbs.length !== r.draftTokens.length * this.plan.model.vocab) throw new Error('forwardVerify: draftProbs must hold one vocabulary row per draft');
    const out = new Int32Array(L);
    const T = batch.tokens.length, B = batch.seqStarts.length - 1;
    const rc = this.abi.forwardVerify(this.handle, T, B, L, batch.maxBlocksPerSeq, batch.tokens, batch.positions, batch.seqStarts, batch.contextLens,
      batch.blockTables, batch.slotMapping, batch.logitIndices, S, r.logitRows, r.draftStarts, r.draftTokens, r.draftProbs ?? null, r.hasDraftProbs ?? null,
      r.temperature, r.topK, r.topP, r.seed, r.position, out);
    if (rc !== 0) throw new Error(`lfc_forward_verify: ${this.abi.lastError()}`);
    return out;
  }

  private check(batch: RaggedBatch): void {
    if (!this.handle) throw new Error('CUDA backend is closed');
    const T = batch.tokens.length, B = batch.seqStarts.length - 1;
    if (T > this.maxTokens) throw new Error(`batch has ${T} tokens; this backend was sized for ${this.maxTokens}`);
    if (B > this.maxSeqs) throw new Error(`batch has ${B} sequences; this backend was sized for ${this.maxSeqs}`);
    validateBatch(batch, this.plan.kv.blockSize, this.numBlocks, this.plan.model.vocab);
    for (const p of batch.positions) {
      if (p >= this.plan.model.maxPositions) throw new Error(`position ${p} is beyond the model's ${this.plan.model.maxPositions} positions`);
    }
  }

  forward(batch: RaggedBatch): Float32Array {
    this.check(batch);
    const T = batch.tokens.length, B = batch.seqStarts.length - 1, L = batch.logitIndices.length;
    const out = new Float32Array(L * this.plan.model.vocab);
    const rc = this.abi.forward(this.handle, T, B, L, batch.maxBlocksPerSeq, batch.tokens, batch.positions, batch.seqStarts, batch.contextLens,
      batch.blockTables, batch.slotMapping, batch.logitIndices, out);
    if (rc !== 0) throw new Error(`lfc_forward: ${this.abi.lastError()}`);
    return out;
  }

  copyBlocks(pairs: readonly (readonly [number, number])[]): void {
    if (!pairs.length) return;
    const flat = new Int32Array(pairs.flatMap(([s, d]) => [s, d]));
    if (this.abi.copyBlocks(this.handle, flat, pairs.length) !== 0) throw new Error(`lfc_copy_blocks: ${this.abi.lastError()}`);
  }

  stats(): CudaStats {
    const o = new BigInt64Array(6);
    this.abi.stats(this.handle, o, 6);
    const n = Array.from(o, Number);
    return { forwards: n[0], graphReplays: n[1], graphCaptures: n[2], eagerForwards: n[3], workspaceBytes: n[4], numSms: n[5] };
  }

  /**
   * Mean milliseconds of each plan step over `iters` eager runs of `batch` (which this runs once
   * through forward first, so its ints are on the device). Benchmarks only: it rewrites the batch's
   * KV slots with the same values.
   */
  profile(batch: RaggedBatch, iters = 10): Float32Array {
    this.forward(batch);
    const B = batch.seqStarts.length - 1;
    let maxNew = 0, maxCtx = 0;
    for (let b = 0; b < B; b++) { maxNew = Math.max(maxNew, batch.seqStarts[b + 1] - batch.seqStarts[b]); maxCtx = Math.max(maxCtx, batch.contextLens[b]); }
    const out = new Float32Array(this.plan.steps.length);
    if (this.abi.profile(this.handle, batch.tokens.length, B, batch.logitIndices.length, maxNew, maxCtx, iters, out) !== 0) throw new Error(`lfc_profile: ${this.abi.lastError()}`);
    return out;
  }

  /**
   * Debugging: run `batch` eagerly keeping every step's output buffers, and return them decoded to
   * fp32: outputs[i][j] is output j of step i (compiler/plan/memory.ts bufferFields order), [T, features].
   */
  forwardWithDumps(batch: RaggedBatch): { logits: Float32Array; outputs: Float32Array[][] } {
    this.abi.dumping(this.handle, 1);
    try {
      const logits = this.forward(batch);
      const decode = this.plan.dtype === 'bfloat16' ? bf16Decode : fp16Decode;
      const outputs = this.plan.steps.map((_, i) => {
        const outs: Float32Array[] = [];
        for (let j = 0; ; j++) {
          const bytes = Number(this.abi.dump(this.handle, i, j, null, 0));
          if (bytes < 0) break;
          const raw = new Uint16Array(bytes / 2);
          this.abi.dump(this.handle, i, j, raw, bytes);
          outs.push(Float32Array.from(raw, decode));
        }
        return outs;
      });
      return { logits, outputs };
    } finally {
      this.abi.dumping(this.handle, 0);
    }
  }

  /** Free the device memory now (otherwise it lives until the process exits). */
  close(): void {
    if (this.handle) this.abi.destroy(this.handle);
    this.handle = null;
  }
}

/** Load artifact folder `dir` (plan.json, weights.bin, libmodel.so / libmodel-emu.so) on the CUDA backend. */
export function loadCudaBackend(dir: string, options: CudaBackendOptions = {}): CudaBackend {
  const planFile = path.join(dir, 'plan.json');
  if (!existsSync(planFile)) throw new Error(`${dir} has no plan.json: is it an lfc artifact?`);
  const plan = parsePlan(readFileSync(planFile, 'utf8'), planFile);
  const lib = path.join(dir, options.emulator ? 'libmodel-emu.so' : 'libmodel.so');
  return new CudaBackend(plan, lib, path.join(dir, 'weights.bin'), options);
}
