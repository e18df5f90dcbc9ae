/**
 * Lowering: a fused graph (lfc ops over [batch, seq, …] tensors) → a Plan over ragged tokens.
 *
 * Demand-driven from the graph outputs (logits, present KV): each value is classified as
 *
 *   tok     a token-wise activation, stored as a plan buffer [T, features]; the graph may view it
 *           through Reshape/Transpose (`axes` says which graph axis is batch, seq, or which
 *           feature dim of the buffer), which costs nothing in the ragged form
 *   cache   the KV of one layer: Concat(past, new) (or the new K/V of a no-past export) becomes a
 *           write into the paged cache, and attention reads the cache through block tables
 *   posfn   a function of position_ids only (RoPE cos/sin): hoisted into tables by evaluating its
 *           subgraph for every position 0..maxPositions-1
 *   const   an initializer (weights)
 *
 * Everything else (masks, shape arithmetic) is never demanded, so it disappears. A value the
 * rules cannot express is an error naming the node: lfc never emits a half-lowered plan.
 */
import { Tensor } from '../../runtime/tensor.js';
import type { BufferEntry, Plan, Step } from '../../runtime/plan.js';
import { PLAN_SCHEMA, PLAN_VERSION } from '../../runtime/plan.js';
import type { StorageDType } from '../../runtime/kernels/common.js';
import { dimEq, dimMul, dimStr, isSym, shapeStr, type Dim } from '../ir/dim.js';
import { Graph, type Node, type Value } from '../ir/graph.js';
import { ancestors } from '../ir/edit.js';
import { run } from '../ir/interpret.js';
import { constValue } from '../passes/canonicalize.js';
import { WeightTable } from './weights.js';
import { planMemory } from './memory.js';

/** Graph axis roles: batch, sequence, both flattened (b-major), or a feature dim of the buffer. */
type Axis = 'b' | 's' | 'bs' | number;
interface Tok { kind: 'tok'; buf: string; feat: number[]; axes: Axis[] }
interface Cache { kind: 'cache'; layer: number; newValue: Tok }
interface PosFn { kind: 'posfn'; value: Value }
interface Const { kind: 'const'; t: Tensor; value: Value }
interface Special { kind: 'input_ids' | 'position_ids' | 'past' | 'other'; value: Value }
type Lowered = Tok | Cache | PosFn | Const | Special;

export class LoweringError extends Error {}

export interface LowerOptions {
  name: string;
  file: string;
  dtype?: StorageDType;
  blockSize?: number;
  maxPositions?: number;
}

export interface Lowering { plan: Plan; weights: WeightTable }

const prod = (xs: number[]): number => xs.reduce((a, b) => a * b, 1);

export function lower(g: Graph, opts: LowerOptions): Lowering {
  const L = new Lowerer(g, opts);
  return L.run();
}

class Lowerer {
  readonly steps: Step[] = [];
  readonly buffers = new Map<string, number>(); // name → features
  readonly weights = new WeightTable();
  readonly memo = new Map<Value, Lowered>();
  readonly producerStep = new Map<string, number>();
  readonly batchDim: Dim;
  readonly seqDim: Dim;
  readonly maxPositions: number;
  layers = 0;
  heads = 0; kvHeads = 0; headDim = 0;
  rope?: { style: 'half' | 'interleaved'; rotaryDim: number };
  readonly caches = new Map<number, { k?: Tok; v?: Tok; written?: boolean }>();

  constructor(readonly g: Graph, readonly opts: LowerOptions) {
    const ids = g.inputs.find((v) => v.name === 'input_ids');
    if (!ids || ids.type!.shape.length !== 2) throw new LoweringError(`graph input 'input_ids' [batch, sequence] is required (inputs: ${g.inputs.map((v) => v.name).join(', ')})`);
    [this.batchDim, this.seqDim] = ids.type!.shape;
    this.maxPositions = opts.maxPositions ?? 2048;
  }

  fail(node: Node | undefined, msg: string): never {
    throw new LoweringError(node ? `${node.label}: ${msg}` : msg);
  }

  newBuf(base: string, features: number): string {
    let name = base.replace(/[^A-Za-z0-9_.]/g, '_').replace(/^_+/, '');
    for (let i = 1; this.buffers.has(name); i++) name = `${base}_${i}`;
    this.buffers.set(name, features);
    return name;
  }

  emit(s: Step, outs: string[]): void {
    for (const o of outs) this.producerStep.set(o, this.steps.length);
    this.steps.push(s);
  }

  /** A fresh token-wise value laid out like the graph value `v` ([b, s, f…] order). */
  tokFor(v: Value, node: Node): Tok {
    const axes: Axis[] = [];
    const feat: number[] = [];
    for (const d of v.type!.shape) {
      const role = this.role(d, axes);
      if (role) axes.push(role);
      else if (typeof d === 'number') { axes.push(feat.length); feat.push(d); }
      else this.fail(node, `output '${v.name}' has dim ${dimStr(d)} that is neither batch, sequence nor a constant`);
    }
    if (!tokenAxes(axes)) this.fail(node, `output '${v.name}' ${shapeStr(v.type!.shape)} is not token-wise`);
    return { kind: 'tok', buf: this.newBuf(v.name, prod(feat)), feat, axes };
  }

  /** The token role of a graph dim not yet used in `axes`. */
  role(d: Dim, axes: Axis[]): Axis | undefined {
    if (dimEq(d, this.batchDim) && !axes.includes('b')) return 'b';
    if (dimEq(d, this.seqDim) && !axes.includes('s')) return 's';
    if (dimEq(d, dimMul(this.batchDim, this.seqDim)) && !axes.includes('bs')) return 'bs';
    return undefined;
  }

  tok(v: Value | undefined, node: Node, what: string): Tok {
    if (!v) this.fail(node, `${what} is missing`);
    const l = this.value(v);
    if (l.kind === 'posfn') return this.materialize(v, node);
    if (l.kind !== 'tok') this.fail(node, `${what} '${v.name}' is a ${l.kind} value, expected token-wise activations`);
    return l;
  }

  readonly materialized = new Map<Value, Tok>();
  /**
   * A function of position_ids used as an activation (GPT-2's learned positions, any
   * position-only subgraph): tabulate it and gather its rows by position.
   */
  materialize(v: Value, node: Node): Tok {
    let t = this.materialized.get(v);
    if (t) return t;
    const table = this.tabulate(v, node);
    const out = this.tokFor(v, node);
    const w = this.weights.add(`${v.name}.table`, v.name, table);
    this.emit({ kind: 'embedding', out: out.buf, table: w, vocab: table.shape[0], hidden: table.shape[1], indices: 'positions' }, [out.buf]);
    t = out;
    this.materialized.set(v, t);
    return t;
  }

  constant(v: Value | undefined, node: Node, what: string): Tensor {
    const t = constValue(v);
    if (!t) this.fail(node, `${what} '${v?.name}' must be a constant (initializer)`);
    return t;
  }

  /** Feature order of a tok in graph-axis order must equal buffer order for kernels that read it flat. */
  requireBufferOrder(t: Tok, node: Node, what: string, layout: string): void {
    const f = t.axes.filter((a): a is number => typeof a === 'number');
    if (f.some((x, i) => x !== i)) this.fail(node, `${what} must be laid out as ${layout} per token`);
  }

  value(v: Value): Lowered {
    let l = this.memo.get(v);
    if (!l) { l = this.lowerValue(v); this.memo.set(v, l); }
    return l;
  }

  lowerValue(v: Value): Lowered {
    if (v.initializer) return { kind: 'const', t: v.initializer.load(), value: v };
    if (this.g.inputs.includes(v)) {
      if (v.name === 'input_ids') return { kind: 'input_ids', value: v };
      if (v.name === 'position_ids') return { kind: 'position_ids', value: v };
      if (v.name.startsWith('past_key_values.') || v.name.startsWith('past_')) return { kind: 'past', value: v };
      return { kind: 'other', value: v };
    }
    const n = v.producer!;
    if (this.dependsOnlyOnPositions(v)) return { kind: 'posfn', value: v };
    const key = n.domain ? `${n.domain}.${n.opType}` : n.opType;
    const rule = RULES[key];
    if (!rule) this.fail(n, `cannot be lowered to the ragged form (no plan rule for ${key}; the fusion report says which pattern did not match)`);
    return rule(this, n, n.outputs.indexOf(v));
  }

  readonly posOnly = new Map<Value, boolean>();
  dependsOnlyOnPositions(v: Value): boolean {
    const known = this.posOnly.get(v);
    if (known !== undefined) return known;
    let r: boolean;
    if (v.initializer) r = true;
    else if (this.g.inputs.includes(v)) r = v.name === 'position_ids';
    else {
      const n = v.producer!;
      // (Shape(position_ids) qualifies: tabulation feeds position_ids [1, maxPositions].)
      r = n.inputs.every((i) => !i || this.dependsOnlyOnPositions(i)) && n.inputs.some((i) => i && !i.initializer);
    }
    this.posOnly.set(v, r);
    return r;
  }

  /** Tabulate a position function: rows 0..maxPositions-1 of `v` ([b, s, F] → [P, F]). */
  readonly tables = new Map<Value, Tensor>();
  tabulate(v: Value, node: Node): Tensor {
    let t = this.tables.get(v);
    if (!t) { t = this.tabulateUncached(v, node); this.tables.set(v, t); }
    return t;
  }

  tabulateUncached(v: Value, node: Node): Tensor {
    const { nodes, inputs } = ancestors(this.g, v);
    const sub = new Graph();
    sub.nodes.push(...nodes);
    sub.inputs.push(...inputs);
    sub.outputs.push(v);
    const P = this.maxPositions;
    const feeds = new Map<string, Tensor>();
    for (const i of inputs) {
      if (i.name !== 'position_ids') this.fail(node, `position table '${v.name}' depends on input '${i.name}'`);
      feeds.set(i.name, Tensor.from(i.type!.dtype, [1, P], Array.from({ length: P }, (_, p) => p)));
    }
    let t: Tensor;
    try { t = run(sub, feeds).get(v.name)!; } catch (e) { this.fail(node, `cannot tabulate '${v.name}' for ${P} positions: ${(e as Error).message}`); }
    if (t.shape.length !== 3 || t.shape[0] !== 1 || t.shape[1] !== P) this.fail(node, `position table '${v.name}' has shape [${t.shape}], expected [1, ${P}, F]`);
    return t.reshape([P, t.shape[2]]);
  }

  run(): Lowering {
    const logits = this.g.outputs.find((o) => o.name === 'logits') ?? this.g.outputs[0];
    if (!logits) this.fail(undefined, 'graph has no outputs');
    for (const o of this.g.outputs) if (o !== logits && !o.name.startsWith('present')) this.fail(o.producer, `graph output '${o.name}' is neither logits nor a present KV cache`);
    for (const o of this.g.outputs) this.value(o);
    const lt = this.value(logits);
    if (lt.kind !== 'tok') this.fail(logits.producer, `'${logits.name}' is not token-wise`);
    // The logits projection runs only on the rows the batch asks for.
    const si = this.producerStep.get(lt.buf);
    const s = si === undefined ? undefined : this.steps[si];
    if (!s || s.kind !== 'linear' || s.activation || s.residual || s.outs.length !== 1) this.fail(logits.producer, `logits must come from a plain linear projection`);
    this.steps[si!] = { kind: 'logits', x: s.x, weight: s.weight, bias: s.bias, hidden: s.K, vocab: s.N };
    this.buffers.delete(lt.buf);
    for (const [layer, c] of this.caches) if (!c.written) this.fail(undefined, `layer ${layer}: KV cache is produced but no attention reads it`);
    const embed = this.steps.find((x) => x.kind === 'embedding' && x.indices === 'tokens');
    if (!embed || embed.kind !== 'embedding') this.fail(undefined, 'no token embedding found');
    const bufs: BufferEntry[] = [...this.buffers].map(([name, features]) => ({ name, features, column: 0 }));
    const arena = planMemory(this.steps, bufs);
    const dtype = this.opts.dtype ?? 'float32';
    // GEMM operands (linear and logits weights, embedding tables) are stored in the activation
    // dtype on the GPU (templates/common/lfc_abi.h): round them here, so the reference backend
    // and the CUDA kernels compute with the same values.
    if (dtype !== 'float32') {
      const matrices = new Set<string>();
      for (const s of this.steps) {
        if (s.kind === 'linear' || s.kind === 'logits') matrices.add(s.weight);
        else if (s.kind === 'embedding') matrices.add(s.table);
      }
      for (const m of matrices) this.weights.roundTo(m, dtype);
    }
    const plan: Plan = {
      schema: PLAN_SCHEMA, version: PLAN_VERSION,
      model: {
        name: this.opts.name, family: this.rope ? 'llama' : 'gpt2', vocab: (this.steps[si!] as { vocab: number }).vocab, hidden: embed.hidden,
        layers: this.layers, heads: this.heads, kvHeads: this.kvHeads, headDim: this.headDim, maxPositions: this.maxPositions,
        ...(this.rope ? { rope: this.rope } : {}),
      },
      dtype,
      kv: { blockSize: this.opts.blockSize ?? 16, dtype, layers: this.layers, kvHeads: this.kvHeads, headDim: this.headDim },
      weights: this.weights.entries(),
      buffers: bufs,
      arenaFeatures: arena,
      steps: this.steps,
      source: { file: this.opts.file, outputs: this.g.outputs.map((o) => o.name) },
    };
    return { plan, weights: this.weights };
  }
}

/**
 * Whether graph axes hold one row per token in (batch, seq) order: b before s, or both
 * flattened as one b-major axis; token axes precede no feature axis they would interleave with.
 */
function tokenAxes(axes: Axis[]): boolean {
  if (axes.includes('bs')) return !axes.includes('b') && !axes.includes('s');
  const b = axes.indexOf('b'), s = axes.indexOf('s');
  return b >= 0 && s > b;
}


type RuleFn = (L: Lowerer, n: Node, outIndex: number) => Lowered;

/** A view of the same buffer with graph axes rearranged (Reshape/Transpose/…). */
function view(L: Lowerer, n: Node): Lowered {
  const src = L.value(n.inputs[0]!);
  const out = n.outputs[0];
  if (src.kind !== 'tok') {
    if (src.kind === 'posfn') return { kind: 'posfn', value: out };
    L.fail(n, `views of ${src.kind} values are not supported`);
  }
  const inShape = n.inputs[0]!.type!.shape, outShape = out.type!.shape;
  if (n.opType === 'Transpose') {
    const perm = (n.attrs.get('perm') as number[] | undefined) ?? inShape.map((_, i) => inShape.length - 1 - i);
    return { ...src, axes: perm.map((p) => src.axes[p]) };
  }
  // Reshape-like: batch and seq must survive as axes; features regroup without reordering.
  const bufOrder = src.axes.filter((a): a is number => typeof a === 'number');
  if (bufOrder.some((x, i) => x !== i)) L.fail(n, `reshaping a transposed view (${shapeStr(inShape)} → ${shapeStr(outShape)}) would need a copy`);
  const axes: Axis[] = [];
  const feat: number[] = [];
  for (const d of outShape) {
    const role = L.role(d, axes);
    if (role) axes.push(role);
    else if (typeof d === 'number') { axes.push(feat.length); feat.push(d); }
    else L.fail(n, `reshape to ${shapeStr(outShape)} mixes the batch or sequence axis with features`);
  }
  if (!tokenAxes(axes) || !tokenAxes(src.axes) || prod(feat) !== prod(src.feat)) {
    L.fail(n, `reshape ${shapeStr(inShape)} → ${shapeStr(outShape)} does not keep one row per token`);
  }
  return { kind: 'tok', buf: src.buf, feat, axes };
}

function linearStep(L: Lowerer, n: Node, x: Tok, w: Tensor, bias: Tensor | undefined, activation?: string): Lowered {
  const [K, N] = w.shape;
  if (w.shape.length !== 2 || prod(x.feat) !== K) L.fail(n, `weight [${w.shape}] does not match input features ${prod(x.feat)}`);
  L.requireBufferOrder(x, n, 'linear input', 'contiguous features');
  const out = L.tokFor(n.outputs[0], n);
  const weight = L.weights.add(`${n.name}.weight`, n.inputs[1]!.name, transpose2d(w));
  const b = bias ? L.weights.add(`${n.name}.bias`, n.inputs[2]?.name ?? '', bias) : undefined;
  L.emit({ kind: 'linear', x: x.buf, weight, ...(b ? { bias: b } : {}), outs: [{ buffer: out.buf, start: 0, end: N }], K, N, ...(activation ? { activation: activation as 'silu' } : {}) }, [out.buf]);
  return out;
}

function transpose2d(w: Tensor): Tensor {
  const [K, N] = w.shape;
  const t = Tensor.zeros('float32', [N, K]);
  for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) t.data[j * K + k] = w.data[k * N + j];
  return t;
}

function normStep(L: Lowerer, n: Node, kind: 'rms' | 'layer', eps: number, x: Tok, residual: Tok | undefined, gamma: Tensor, beta: Tensor | undefined, outIndex: number): Lowered {
  const H = prod(x.feat);
  if (gamma.size !== H) L.fail(n, `gamma has ${gamma.size} values for hidden ${H}`);
  const y = L.tokFor(n.outputs[0], n);
  const sum = residual ? L.tokFor(n.outputs[1] ?? n.outputs[0], n) : undefined;
  const gw = L.weights.add(`${n.name}.gamma`, n.inputs[residual ? 2 : 1]!.name, gamma);
  const bw = beta ? L.weights.add(`${n.name}.beta`, '', beta) : undefined;
  L.emit({ kind: 'add_norm', x: x.buf, ...(residual ? { residual: residual.buf, sumOut: sum!.buf } : {}), out: y.buf, gamma: gw, ...(bw ? { beta: bw } : {}), norm: kind, eps, hidden: H }, [y.buf, ...(sum ? [sum.buf] : [])]);
  const res: Lowered[] = [y, ...(sum ? [sum] : [])];
  for (const [i, o] of n.outputs.entries()) if (i !== outIndex && res[i]) L.memo.set(o, res[i]);
  return res[outIndex];
}

const ACT: Record<string, string> = { silu: 'silu', gelu_tanh: 'gelu_tanh', gelu_erf: 'gelu_erf', relu: 'relu' };

const RULES: Record<string, RuleFn> = {
  Reshape: view, Transpose: view, Squeeze: view, Unsqueeze: view, Flatten: view, Identity: view,

  Gather(L, n) {
    const table = L.constant(n.inputs[0], n, 'embedding table');
    const idx = L.value(n.inputs[1]!);
    if ((n.attrs.get('axis') ?? 0) !== 0 || table.rank !== 2) L.fail(n, 'only row gathers from a [rows, hidden] table are embeddings');
    if (idx.kind !== 'input_ids' && idx.kind !== 'position_ids') L.fail(n, `gathers with '${n.inputs[1]!.name}', not input_ids or position_ids`);
    const out = L.tokFor(n.outputs[0], n);
    const w = L.weights.add(`${n.name}.table`, n.inputs[0]!.name, table);
    L.emit({ kind: 'embedding', out: out.buf, table: w, vocab: table.shape[0], hidden: table.shape[1], indices: idx.kind === 'input_ids' ? 'tokens' : 'positions' }, [out.buf]);
    return out;
  },

  Add(L, n) {
    const a = L.tok(n.inputs[0], n, 'Add input A'), b = L.tok(n.inputs[1], n, 'Add input B');
    if (prod(a.feat) !== prod(b.feat)) L.fail(n, 'adds token-wise values of different widths');
    const out = L.tokFor(n.outputs[0], n);
    L.emit({ kind: 'add', a: a.buf, b: b.buf, out: out.buf, features: prod(a.feat) }, [out.buf]);
    return out;
  },

  MatMul(L, n) {
    return linearStep(L, n, L.tok(n.inputs[0], n, 'MatMul input'), L.constant(n.inputs[1], n, 'MatMul weight'), undefined);
  },

  Gemm(L, n) {
    if ((n.attrs.get('transA') ?? 0) !== 0 || (n.attrs.get('alpha') ?? 1) !== 1 || (n.attrs.get('beta') ?? 1) !== 1) L.fail(n, 'Gemm with transA/alpha/beta is not a plain linear layer');
    let w = L.constant(n.inputs[1], n, 'Gemm weight');
    if (n.attrs.get('transB')) w = transpose2d(w);
    const bias = n.inputs[2] ? L.constant(n.inputs[2], n, 'Gemm bias') : undefined;
    return linearStep(L, n, L.tok(n.inputs[0], n, 'Gemm input'), w, bias);
  },

  'lfc.Linear'(L, n) {
    const bias = n.inputs[2] ? L.constant(n.inputs[2], n, 'bias') : undefined;
    const act = n.attrs.get('activation') as string | undefined;
    return linearStep(L, n, L.tok(n.inputs[0], n, 'Linear input'), L.constant(n.inputs[1], n, 'Linear weight'), bias, act && act !== 'none' ? ACT[act] : undefined);
  },

  Split(L, n, outIndex) {
    const x = L.tok(n.inputs[0], n, 'Split input');
    const rank = n.inputs[0]!.type!.shape.length;
    const axis = ((n.attrs.get('axis') as number | undefined) ?? 0 + rank) % rank;
    if (x.axes[axis] !== x.feat.length - 1 || x.feat.length !== 1) L.fail(n, 'only splits of the feature axis of [b, s, F] are supported');
    const si = L.producerStep.get(x.buf);
    const s = si === undefined ? undefined : L.steps[si];
    if (!s || s.kind !== 'linear' || s.outs.length !== 1 || n.inputs[0]!.consumers.length !== 1) return L.fail(n, 'Split must directly follow a linear projection it alone consumes');
    const outs = n.outputs.map((o) => L.tokFor(o, n));
    let start = 0;
    s.outs = outs.map((o) => { const r = { buffer: o.buf, start, end: start + prod(o.feat) }; start = r.end; return r; });
    L.buffers.delete(x.buf);
    for (const o of outs) L.producerStep.set(o.buf, si!);
    n.outputs.forEach((o, i) => L.memo.set(o, outs[i]));
    return outs[outIndex];
  },

  'lfc.RMSNorm'(L, n) {
    return normStep(L, n, 'rms', n.attrs.get('epsilon') as number, L.tok(n.inputs[0], n, 'x'), undefined, L.constant(n.inputs[1], n, 'gamma'), undefined, 0);
  },
  'lfc.LayerNorm'(L, n) {
    const beta = n.inputs[2] ? L.constant(n.inputs[2], n, 'beta') : undefined;
    return normStep(L, n, 'layer', n.attrs.get('epsilon') as number, L.tok(n.inputs[0], n, 'x'), undefined, L.constant(n.inputs[1], n, 'gamma'), beta, 0);
  },
  LayerNormalization(L, n) {
    const rank = n.inputs[0]!.type!.shape.length;
    if ((((n.attrs.get('axis') as number | undefined) ?? -1) + rank) % rank !== rank - 1) L.fail(n, 'LayerNormalization must normalise the last axis');
    const beta = n.inputs[2] ? L.constant(n.inputs[2], n, 'beta') : undefined;
    return normStep(L, n, 'layer', (n.attrs.get('epsilon') as number | undefined) ?? 1e-5, L.tok(n.inputs[0], n, 'x'), undefined, L.constant(n.inputs[1], n, 'scale'), beta, 0);
  },
  'lfc.AddNorm'(L, n, outIndex) {
    const kind = n.attrs.get('kind') as 'rms' | 'layer';
    const beta = n.inputs[3] ? L.constant(n.inputs[3], n, 'beta') : undefined;
    return normStep(L, n, kind, n.attrs.get('epsilon') as number, L.tok(n.inputs[0], n, 'x'), L.tok(n.inputs[1], n, 'residual'), L.constant(n.inputs[2], n, 'gamma'), beta, outIndex);
  },

  'lfc.GatedAct'(L, n) {
    const gate = L.tok(n.inputs[0], n, 'gate'), up = L.tok(n.inputs[1], n, 'up');
    const out = L.tokFor(n.outputs[0], n);
    L.emit({ kind: 'gated_act', gate: gate.buf, up: up.buf, out: out.buf, features: prod(out.feat), activation: ACT[n.attrs.get('kind') as string] as 'silu' }, [out.buf]);
    return out;
  },
  'lfc.Activation'(L, n) {
    const x = L.tok(n.inputs[0], n, 'x');
    const out = L.tokFor(n.outputs[0], n);
    L.emit({ kind: 'activation', x: x.buf, out: out.buf, features: prod(out.feat), activation: ACT[n.attrs.get('kind') as string] as 'silu' }, [out.buf]);
    return out;
  },

  'lfc.Rope'(L, n) {
    const x = L.tok(n.inputs[0], n, 'x');
    L.requireBufferOrder(x, n, 'rope input', '[heads, head_dim]');
    if (x.axes[1] !== 0 || x.axes[3] !== 1) L.fail(n, 'rope input must be [batch, heads, seq, head_dim]');
    const [heads, D] = x.feat;
    const tables = [1, 2].map((i) => {
      const c = L.value(n.inputs[i]!);
      if (c.kind !== 'posfn') L.fail(n, `cos/sin input '${n.inputs[i]!.name}' does not depend on position_ids alone`);
      return L.tabulate(n.inputs[i]!, n);
    });
    const R = tables[0].shape[1];
    const half = R / 2;
    // rotate_half tables repeat their frequencies: keep one half. Interleaved ones (lfc.Rope
    // style 'interleaved', from fuse-attention-forms) repeat each per pair (2i, 2i+1): keep every other.
    const style = (n.attrs.get('style') as 'half' | 'interleaved' | undefined) ?? 'half';
    const [at, bt] = style === 'interleaved' ? [(i: number) => 2 * i, (i: number) => 2 * i + 1] : [(i: number) => i, (i: number) => i + half];
    const halves = tables.map((t, ti) => {
      const h = Tensor.zeros('float32', [L.maxPositions, half]);
      for (let p = 0; p < L.maxPositions; p++) for (let i = 0; i < half; i++) {
        const a = t.data[p * R + at(i)], b = t.data[p * R + bt(i)];
        if (a !== b) L.fail(n, `${ti ? 'sin' : 'cos'} table is not ${style === 'half' ? 'rotate_half' : 'interleaved'} shaped (position ${p}, dim ${i}: ${a} vs ${b})`);
        h.data[p * half + i] = a;
      }
      return h;
    });
    const cos = L.weights.addShared('rope.cos', n.inputs[1]!.name, halves[0]);
    const sin = L.weights.addShared('rope.sin', n.inputs[2]!.name, halves[1]);
    L.rope = { style, rotaryDim: R };
    const out = L.tokFor(n.outputs[0], n);
    L.emit({ kind: 'rope', x: x.buf, out: out.buf, heads, headDim: D, rotaryDim: R, style, cos, sin }, [out.buf]);
    return { ...out, axes: x.axes, feat: x.feat };
  },

  Concat(L, n) {
    const [p, x] = n.inputs;
    const past = p && L.value(p);
    if (!past || past.kind !== 'past' || !x) L.fail(n, 'only Concat(past_key_values, new) of a KV cache is supported on activations');
    const m = /^past_key_values\.(\d+)\.(key|value)$/.exec(p!.name) ?? /^past_(key|value)_(\d+)$/.exec(p!.name);
    if (!m) return L.fail(n, `cannot tell the layer of past input '${p!.name}'`);
    const layer = Number(m[1]);
    return { kind: 'cache', layer, newValue: L.tok(x, n, 'new K/V') };
  },

  'lfc.Attention'(L, n) {
    const q = L.tok(n.inputs[0], n, 'q');
    if (q.axes[1] !== 0 || q.axes[3] !== 1) L.fail(n, 'q must be [batch, heads, seq, head_dim]');
    const kv = [n.inputs[1], n.inputs[2]].map((v, i) => {
      const l = L.value(v!);
      const t = l.kind === 'cache' ? l.newValue : l.kind === 'tok' ? l : L.fail(n, `${i ? 'v' : 'k'} is a ${l.kind} value`);
      if (t.axes[1] !== 0 || t.axes[3] !== 1) L.fail(n, `${i ? 'v' : 'k'} must be [batch, kv_heads, seq, head_dim]`);
      return t;
    });
    const [heads, D] = q.feat, [kvHeads] = kv[0].feat;
    const layer = L.layers++;
    L.heads = heads; L.kvHeads = kvHeads; L.headDim = D;
    L.caches.set(layer, { k: kv[0], v: kv[1], written: true });
    L.emit({ kind: 'cache_write', layer, k: kv[0].buf, v: kv[1].buf }, []);
    const out = L.tokFor(n.outputs[0], n);
    L.emit({ kind: 'attention', layer, q: q.buf, out: out.buf, heads, kvHeads, headDim: D, scale: n.attrs.get('scale') as number }, [out.buf]);
    return out;
  },
};

export { isSym };
