/**
 * The reference backend: runs a Plan on the CPU with each kernel family's reference (the spec
 * every CUDA kernel is tested against), over a paged KV cache in typed arrays. Activations live
 * in one arena planned by the compiler (plan.buffers[].column); weights are views of weights.bin.
 */
import { validateBatch, type RaggedBatch } from '../batch.js';
import { activation, addNorm, embedding, linear, logits, pagedAttention, quant, rope, unfusedAttention } from '../kernels/index.js';
import { storeRounder } from '../kernels/common.js';
import type { Plan, Step } from '../plan.js';
import type { Backend } from './backend.js';

export interface ReferenceOptions {
  /** KV cache blocks (default: enough for 4 sequences at maxPositions). */
  numBlocks?: number;
  /** Tokens one forward may carry (default 512). */
  maxTokens?: number;
  /** Called with each linear step's input x [T, K] before it runs (calibration for quantization). */
  onLinearInput?: (stepIndex: number, x: Float32Array, T: number, K: number) => void;
  /**
   * Attention implementation: 'flash' (default), the fused single-pass paged reference; 'unfused',
   * the naive baseline of the ablation (kernels/unfused-attention.ts: K/V gathered, QKᵀ
   * materialised, softmax, ·V), equal within fp32 rounding.
   */
  attention?: 'flash' | 'unfused';
  /** Called after each step with a reader of the activation buffers as they are then ([T, features]). */
  onStep?: (stepIndex: number, read: (buffer: string) => Float32Array) => void;
}

export class ReferenceBackend implements Backend {
  readonly numBlocks: number;
  readonly maxTokens: number;
  private readonly onLinearInput?: ReferenceOptions['onLinearInput'];
  private readonly onStep?: ReferenceOptions['onStep'];
  readonly attention: NonNullable<ReferenceOptions['attention']>;
  private readonly w = new Map<string, Float32Array>();
  /** Packed quantized weights (plan dtype int8/uint8). */
  private readonly qw = new Map<string, Int8Array | Uint8Array>();
  private readonly arena: Float32Array;
  private readonly cols = new Map<string, { col: number; features: number }>();
  private readonly kCache: Float32Array[] = [];
  private readonly vCache: Float32Array[] = [];
  private readonly ropeScratch: Float32Array;

  constructor(readonly plan: Plan, weightsBin: Uint8Array, opts: ReferenceOptions = {}) {
    const { kv, model } = plan;
    this.maxTokens = opts.maxTokens ?? 512;
    this.onLinearInput = opts.onLinearInput;
    this.onStep = opts.onStep;
    this.attention = opts.attention ?? 'flash';
    if (this.attention !== 'flash' && this.attention !== 'unfused') throw new Error(`ReferenceBackend: attention must be 'flash' or 'unfused', got '${String(this.attention)}'`);
    this.numBlocks = opts.numBlocks ?? Math.ceil((4 * model.maxPositions) / kv.blockSize);
    const dv = new DataView(weightsBin.buffer, weightsBin.byteOffset, weightsBin.byteLength);
    for (const e of plan.weights) {
      if (e.offset + e.bytes > weightsBin.byteLength) throw new Error(`weights.bin is ${weightsBin.byteLength} bytes; weight '${e.name}' needs bytes ${e.offset}..${e.offset + e.bytes}`);
      if (e.dtype === 'int8' || e.dtype === 'uint8') {
        const raw = weightsBin.slice(e.offset, e.offset + e.bytes);
        this.qw.set(e.name, e.dtype === 'int8' ? new Int8Array(raw.buffer, raw.byteOffset, raw.byteLength) : raw);
        continue;
      }
      const a = new Float32Array(e.bytes / 4);
      for (let i = 0; i < a.length; i++) a[i] = dv.getFloat32(e.offset + 4 * i, true);
      this.w.set(e.name, a);
    }
    this.arena = new Float32Array(plan.arenaFeatures * this.maxTokens);
    for (const b of plan.buffers) this.cols.set(b.name, { col: b.column, features: b.features });
    const cacheSize = this.numBlocks * kv.blockSize * kv.kvHeads * kv.headDim;
    for (let l = 0; l < kv.layers; l++) { this.kCache.push(new Float32Array(cacheSize)); this.vCache.push(new Float32Array(cacheSize)); }
    this.ropeScratch = new Float32Array(this.maxTokens * model.headDim);
  }

  private buf(name: string, T: number): Float32Array {
    const c = this.cols.get(name);
    if (!c) throw new Error(`plan refers to unknown buffer '${name}'`);
    const start = c.col * this.maxTokens;
    return this.arena.subarray(start, start + T * c.features);
  }

  private weight(name: string): Float32Array {
    const w = this.w.get(name);
    if (!w) throw new Error(`plan refers to unknown weight '${name}'`);
    return w;
  }

  private packed(name: string): Int8Array | Uint8Array {
    const w = this.qw.get(name);
    if (!w) throw new Error(`plan refers to unknown packed weight '${name}'`);
    return w;
  }

  /** A linear step with a quantized weight format (runtime/kernels/quant.ts). */
  private quantLinear(s: Extract<Step, { kind: 'linear' }>, T: number, dtype: Plan['dtype']): Float32Array {
    const f = s.format!;
    const common = {
      x: this.buf(s.x, T), bias: s.bias ? this.weight(s.bias) : undefined, residual: s.residual ? this.buf(s.residual, T) : undefined,
      activation: s.activation, smooth: f.smooth ? this.weight(f.smooth) : undefined, T, K: s.K, N: s.N, dtype,
    };
    if (f.kind === 'int8_channel') {
      const q = this.packed(s.weight);
      return quant.linearW8A8({ ...common, weight: { q: new Int8Array(q.buffer, q.byteOffset, q.byteLength), scale: this.weight(f.scale) } });
    }
    const zero = f.zero ? this.packed(f.zero) : undefined;
    const p = this.packed(s.weight);
    return quant.linearW4A16({ ...common, weight: {
      packed: new Uint8Array(p.buffer, p.byteOffset, p.byteLength), scale: this.weight(f.scale),
      zero: zero ? new Uint8Array(zero.buffer, zero.byteOffset, zero.byteLength) : new Uint8Array(this.weight(f.scale).length).fill(8),
      groupSize: f.groupSize ?? 128,
    } });
  }

  copyBlocks(pairs: readonly (readonly [number, number])[]): void {
    const { blockSize, kvHeads, headDim } = this.plan.kv;
    const n = blockSize * kvHeads * headDim;
    for (const caches of [this.kCache, this.vCache]) {
      for (const c of caches) for (const [src, dst] of pairs) c.copyWithin(dst * n, src * n, src * n + n);
    }
  }

  forward(batch: RaggedBatch): Float32Array {
    const T = batch.tokens.length;
    if (T > this.maxTokens) throw new Error(`batch has ${T} tokens; this backend was sized for ${this.maxTokens}`);
    validateBatch(batch, this.plan.kv.blockSize, this.numBlocks, this.plan.model.vocab);
    for (const p of batch.positions) {
      if (p >= this.plan.model.maxPositions) throw new Error(`position ${p} is beyond the model's ${this.plan.model.maxPositions} positions`);
    }
    let result: Float32Array | undefined;
    for (const [i, s] of this.plan.steps.entries()) {
      if (this.onLinearInput && s.kind === 'linear') this.onLinearInput(i, this.buf(s.x, T), T, s.K);
      const r = this.step(s, batch, T);
      if (r) result = r;
      this.onStep?.(i, (name) => this.buf(name, T).slice());
    }
    if (!result) throw new Error('plan has no logits step');
    return result;
  }

  private step(s: Step, batch: RaggedBatch, T: number): Float32Array | undefined {
    const dtype = this.plan.dtype;
    switch (s.kind) {
      case 'embedding': {
        const out = embedding.reference({ tokens: s.indices === 'tokens' ? batch.tokens : batch.positions, table: this.weight(s.table), V: s.vocab, H: s.hidden, dtype });
        this.buf(s.out, T).set(out);
        return;
      }
      case 'add': {
        const a = this.buf(s.a, T), b = this.buf(s.b, T), o = this.buf(s.out, T);
        const r = storeRounder(dtype);
        for (let i = 0; i < o.length; i++) o[i] = r ? r(a[i] + b[i]) : a[i] + b[i];
        return;
      }
      case 'add_norm': {
        const res = addNorm.reference({
          x: this.buf(s.x, T), residual: s.residual ? this.buf(s.residual, T) : undefined, gamma: this.weight(s.gamma),
          beta: s.beta ? this.weight(s.beta) : undefined, kind: s.norm, eps: s.eps, T, H: s.hidden, dtype,
        });
        if (s.sumOut) this.buf(s.sumOut, T).set(res.residual!);
        this.buf(s.out, T).set(res.y);
        return;
      }
      case 'linear': {
        const y = s.format ? this.quantLinear(s, T, dtype) : linear.reference({
          x: this.buf(s.x, T), weight: this.weight(s.weight), bias: s.bias ? this.weight(s.bias) : undefined,
          residual: s.residual ? this.buf(s.residual, T) : undefined, activation: s.activation, T, K: s.K, N: s.N, dtype,
        });
        if (s.outs.length === 1 && s.outs[0].start === 0 && s.outs[0].end === s.N) { this.buf(s.outs[0].buffer, T).set(y); return; }
        for (const o of s.outs) {
          const w = o.end - o.start, dst = this.buf(o.buffer, T);
          for (let t = 0; t < T; t++) dst.set(y.subarray(t * s.N + o.start, t * s.N + o.end), t * w);
        }
        return;
      }
      case 'gated_act': {
        const f = activation.activationFn(s.activation);
        const r = storeRounder(dtype);
        const g = this.buf(s.gate, T), u = this.buf(s.up, T), o = this.buf(s.out, T);
        for (let i = 0; i < o.length; i++) { const v = f(g[i]) * u[i]; o[i] = r ? r(v) : v; }
        return;
      }
      case 'activation':
        this.buf(s.out, T).set(activation.reference({ x: this.buf(s.x, T), activation: s.activation, dtype }));
        return;
      case 'rope': {
        const out = this.buf(s.out, T);
        out.set(this.buf(s.x, T));
        const cos = this.weight(s.cos), sin = this.weight(s.sin);
        rope.reference({
          q: out, k: this.ropeScratch.subarray(0, T * s.headDim), positions: batch.positions, T, Hq: s.heads, Hkv: 1, D: s.headDim,
          rotaryDim: s.rotaryDim, style: s.style, table: { cos, sin, P: cos.length / (s.rotaryDim / 2) }, dtype,
        });
        return;
      }
      case 'cache_write': {
        const { blockSize, kvHeads, headDim, dtype: cacheDtype } = this.plan.kv;
        rope.cacheWrite({
          k: this.buf(s.k, T), v: this.buf(s.v, T), kCache: this.kCache[s.layer], vCache: this.vCache[s.layer], slotMapping: batch.slotMapping,
          T, Hkv: kvHeads, D: headDim, blockSize, numBlocks: this.numBlocks, cacheDtype,
        });
        return;
      }
      case 'attention': {
        const out = (this.attention === 'unfused' ? unfusedAttention : pagedAttention).reference({
          q: this.buf(s.q, T), kCache: this.kCache[s.layer], vCache: this.vCache[s.layer], batch, Hq: s.heads, Hkv: s.kvHeads, D: s.headDim,
          blockSize: this.plan.kv.blockSize, numBlocks: this.numBlocks, scale: s.scale, dtype,
        });
        this.buf(s.out, T).set(out);
        return;
      }
      case 'logits':
        return logits.reference({ hidden: this.buf(s.x, T), logitIndices: batch.logitIndices, weight: this.weight(s.weight), bias: s.bias ? this.weight(s.bias) : undefined, T, H: s.hidden, V: s.vocab });
    }
  }
}
