/**
 * lfc's own position-wise ops (domain 'lfc', opset 1), the targets of the norm, MLP and linear
 * fusion passes (compiler/passes/fuse-*.ts). Each works on the last axis only, so the plan can run
 * it on ragged [T, hidden] rows. The references compute in float64 and round once to the output
 * dtype, like the ONNX ops they replace.
 *
 *   RMSNorm(x[..., H], gamma[H]) {epsilon}                 y = x / sqrt(mean(x²) + ε) · γ
 *   LayerNorm(x[..., H], gamma[H], beta[H]?) {epsilon}     y = (x − μ) / sqrt(σ² + ε) · γ + β
 *   AddNorm(x, residual, gamma, beta?) {kind, epsilon}     sum = x + residual (rounded to the
 *        → (y, sum)                                        dtype), y = norm(sum); kind 'rms'|'layer'
 *   Activation(x) {kind}                                   silu | gelu_tanh | gelu_erf | relu
 *   GatedAct(gate, up) {kind}                              act(gate) · up
 *   Linear(x[..., K], weight[K, N], bias[N]?)              y = x·W + b, then the optional activation
 *        {activation?}
 *
 * The registered list also carries the already-fused norm and GELU forms of other domains
 * (fused-forms.ts), which the same passes lower to these ops.
 */
export { ACTIVATIONS, activationFn, type ActivationKind };
import { storeRounded, Tensor } from '../../runtime/tensor.js';
import { dimEq, shapeStr, type Dim } from '../ir/dim.js';
import { ACTIVATIONS, activationFn, type ActivationKind } from './activation.js';
import { fusedFormOps } from './fused-forms.js';
import { expectFloat, fromValues, sameDtype } from './math-common.js';
import { matmul } from './nn.js';
import type { InferContext, InputInfo, OpContext, OpDef } from './registry.js';
import { req } from './util.js';

function activationAttr(ctx: OpContext, name: string, required: boolean): ActivationKind | undefined {
  if (!required && !ctx.attrs.has(name)) return undefined;
  const k = ctx.attrs.string(name);
  if (!(ACTIVATIONS as readonly string[]).includes(k)) ctx.fail(`attribute '${name}' is '${k}', expected one of ${ACTIVATIONS.join(', ')}`);
  return k as ActivationKind;
}

/** Fail unless `p` is a vector of x's last dim (per-channel parameter of a last-axis op). */
function checkChannel(ctx: InferContext, p: InputInfo | undefined, h: Dim, what: string): void {
  if (!p) return;
  if (p.shape.length !== 1 || !dimEq(p.shape[0], h)) ctx.fail(`${what} must be [${String(h)}] (x's last dim), got ${shapeStr(p.shape)}`);
}

function lastDim(ctx: InferContext, x: InputInfo): Dim {
  if (x.shape.length === 0) ctx.fail('x must have rank ≥ 1');
  return x.shape[x.shape.length - 1];
}

type NormKind = 'rms' | 'layer';

/**
 * Normalise every row of `x` (last axis) into a float64 array: RMS or layer norm, then γ and β.
 */
function normRows(kind: NormKind, x: Tensor, gamma: Tensor, beta: Tensor | undefined, eps: number): Float64Array {
  const h = x.shape[x.rank - 1] ?? 1;
  const rows = h === 0 ? 0 : x.size / h;
  const a = x.data, g = gamma.data, b = beta?.data;
  const y = new Float64Array(x.size);
  for (let r = 0; r < rows; r++) {
    const o = r * h;
    let mean = 0;
    if (kind === 'layer') {
      for (let j = 0; j < h; j++) mean += a[o + j];
      mean /= h;
    }
    let ss = 0;
    for (let j = 0; j < h; j++) { const d = a[o + j] - mean; ss += d * d; }
    const inv = 1 / Math.sqrt(ss / h + eps);
    for (let j = 0; j < h; j++) y[o + j] = (a[o + j] - mean) * inv * g[j] + (b ? b[j] : 0);
  }
  return y;
}

function normOp(name: 'RMSNorm' | 'LayerNorm', kind: NormKind): OpDef {
  return {
    name, domain: 'lfc', since: [1],
    infer(ctx) {
      const x = ctx.input(0);
      expectFloat(ctx, x, 'x');
      sameDtype(ctx, ctx.inputs, ['x', 'gamma', 'beta']);
      const h = lastDim(ctx, x);
      checkChannel(ctx, ctx.input(1), h, 'gamma');
      if (kind === 'rms' && ctx.inputs[2]) ctx.fail('RMSNorm takes no beta');
      checkChannel(ctx, ctx.inputs[2], h, 'beta');
      return [{ dtype: x.dtype, shape: [...x.shape] }];
    },
    evaluate(ctx, inputs) {
      const x = req(ctx, inputs, 0, 'x'), gamma = req(ctx, inputs, 1, 'gamma');
      const y = normRows(kind, x, gamma, inputs[2], ctx.attrs.float('epsilon', 1e-5));
      return [fromValues(x.dtype, x.shape, y)];
    },
  };
}

function normKind(ctx: OpContext): NormKind {
  const k = ctx.attrs.string('kind');
  if (k !== 'rms' && k !== 'layer') ctx.fail(`attribute 'kind' is '${k}', expected 'rms' or 'layer'`);
  return k;
}

const addNormOp: OpDef = {
  name: 'AddNorm', domain: 'lfc', since: [1],
  infer(ctx) {
    const x = ctx.input(0), r = ctx.input(1);
    expectFloat(ctx, x, 'x');
    sameDtype(ctx, ctx.inputs, ['x', 'residual', 'gamma', 'beta']);
    if (x.shape.length !== r.shape.length || !x.shape.every((d, i) => dimEq(d, r.shape[i]))) {
      ctx.fail(`x ${shapeStr(x.shape)} and residual ${shapeStr(r.shape)} must have the same shape`);
    }
    const kind = normKind(ctx);
    const h = lastDim(ctx, x);
    checkChannel(ctx, ctx.input(2), h, 'gamma');
    if (kind === 'rms' && ctx.inputs[3]) ctx.fail("kind 'rms' takes no beta");
    checkChannel(ctx, ctx.inputs[3], h, 'beta');
    return [{ dtype: x.dtype, shape: [...x.shape] }, { dtype: x.dtype, shape: [...x.shape] }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'x'), r = req(ctx, inputs, 1, 'residual'), gamma = req(ctx, inputs, 2, 'gamma');
    if (x.shape.join() !== r.shape.join()) ctx.fail(`x [${x.shape}] and residual [${r.shape}] differ in shape`);
    const sum = Tensor.zeros(x.dtype, x.shape);
    for (let i = 0; i < x.size; i++) sum.data[i] = x.data[i] + r.data[i];
    storeRounded(sum);
    const y = normRows(normKind(ctx), sum, gamma, inputs[3], ctx.attrs.float('epsilon', 1e-5));
    return [fromValues(x.dtype, x.shape, y), sum];
  },
};

const activationOp: OpDef = {
  name: 'Activation', domain: 'lfc', since: [1],
  infer(ctx) {
    const x = ctx.input(0);
    expectFloat(ctx, x, 'x');
    activationAttr(ctx, 'kind', true);
    return [{ dtype: x.dtype, shape: [...x.shape] }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'x');
    const f = activationFn(activationAttr(ctx, 'kind', true)!);
    return [fromValues(x.dtype, x.shape, Float64Array.from(x.data as ArrayLike<number>, f))];
  },
};

const gatedActOp: OpDef = {
  name: 'GatedAct', domain: 'lfc', since: [1],
  infer(ctx) {
    const g = ctx.input(0), u = ctx.input(1);
    expectFloat(ctx, g, 'gate');
    sameDtype(ctx, ctx.inputs, ['gate', 'up']);
    activationAttr(ctx, 'kind', true);
    if (g.shape.length !== u.shape.length || !g.shape.every((d, i) => dimEq(d, u.shape[i]))) {
      ctx.fail(`gate ${shapeStr(g.shape)} and up ${shapeStr(u.shape)} must have the same shape`);
    }
    return [{ dtype: g.dtype, shape: [...g.shape] }];
  },
  evaluate(ctx, inputs) {
    const g = req(ctx, inputs, 0, 'gate'), u = req(ctx, inputs, 1, 'up');
    if (g.shape.join() !== u.shape.join()) ctx.fail(`gate [${g.shape}] and up [${u.shape}] differ in shape`);
    const f = activationFn(activationAttr(ctx, 'kind', true)!);
    const y = new Float64Array(g.size);
    for (let i = 0; i < y.length; i++) y[i] = f(g.data[i]) * u.data[i];
    return [fromValues(g.dtype, g.shape, y)];
  },
};

const linearOp: OpDef = {
  name: 'Linear', domain: 'lfc', since: [1],
  infer(ctx) {
    const x = ctx.input(0), w = ctx.input(1), b = ctx.inputs[2];
    expectFloat(ctx, x, 'x');
    sameDtype(ctx, ctx.inputs, ['x', 'weight', 'bias']);
    activationAttr(ctx, 'activation', false);
    if (w.shape.length !== 2) ctx.fail(`weight must be [K, N], got ${shapeStr(w.shape)}`);
    const k = lastDim(ctx, x), [k2, n] = w.shape;
    if (!dimEq(k, k2)) ctx.fail(`x ${shapeStr(x.shape)} has K = ${String(k)} but weight ${shapeStr(w.shape)} has K = ${String(k2)}`);
    checkChannel(ctx, b, n, 'bias');
    return [{ dtype: x.dtype, shape: [...x.shape.slice(0, -1), n] }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'x'), w = req(ctx, inputs, 1, 'weight'), b = inputs[2];
    const act = activationAttr(ctx, 'activation', false);
    const y = matmul(ctx, x, w, x.dtype);
    if (!b && !act) return [y];
    const n = w.shape[1], f = act ? activationFn(act) : (v: number) => v;
    const out = new Float64Array(y.size);
    for (let i = 0; i < y.size; i++) out[i] = f(y.data[i] + (b ? b.data[i % n] : 0));
    return [fromValues(x.dtype, y.shape, out)];
  },
};

export const lfcNnOps: OpDef[] = [
  normOp('RMSNorm', 'rms'),
  normOp('LayerNorm', 'layer'),
  addNormOp,
  activationOp,
  gatedActOp,
  linearOp,
  ...fusedFormOps,
];
