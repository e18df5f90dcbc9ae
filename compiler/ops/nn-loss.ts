/**
 * Loss ONNX ops: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (log-softmax over the class
 * axis, then the same NLL), with optional class weights, ignore_index and reduction none/sum/mean.
 * Shapes: input [N, C, d1, ...], target [N, d1, ...] of class indices; `mean` divides by the sum
 * of the weights of the targets that count (their number, without weights), as the spec does.
 */
import { isInteger } from '../../runtime/dtype.js';
import { sizeOf, Tensor } from '../../runtime/tensor.js';
import { dimEq, shapeStr, type Dim } from '../ir/dim.js';
import { axisView, expectChannels, expectFloat, forEachLine, fromValues } from './math-common.js';
import { logSoftmaxLine } from './reduce.js';
import type { InferContext, OpContext, OpDef, OutputInfo } from './registry.js';
import { req } from './util.js';

type Reduction = 'none' | 'sum' | 'mean';

function reductionOf(ctx: OpContext): Reduction {
  const r = ctx.attrs.string('reduction', 'mean');
  if (r !== 'none' && r !== 'sum' && r !== 'mean') ctx.fail(`reduction must be none, sum or mean, got '${r}'`);
  return r;
}

/** Check input [N, C, d...] against target [N, d...] and weight [C]; the loss output's info. */
function inferLoss(ctx: InferContext): OutputInfo {
  const x = ctx.input(0), t = ctx.input(1), w = ctx.inputs[2];
  expectFloat(ctx, x, 'input');
  if (!isInteger(t.dtype)) ctx.fail(`target must be an integer tensor, got ${t.dtype}`);
  const want = [x.shape[0], ...x.shape.slice(2)];
  if (x.shape.length < 2 || t.shape.length !== want.length || !t.shape.every((d, i) => dimEq(d, want[i]))) {
    ctx.fail(`target ${shapeStr(t.shape)} does not match input ${shapeStr(x.shape)} (want [N, d1, ...])`);
  }
  if (w && (w.shape.length !== 1 || !dimEq(w.shape[0], x.shape[1]))) ctx.fail(`weight must be [C] = [${x.shape[1]}], got ${shapeStr(w.shape)}`);
  return { dtype: x.dtype, shape: reductionOf(ctx) === 'none' ? [...t.shape] as Dim[] : [] };
}

/** NLL of log-probabilities `logp` [N, C, d...] for `target`, reduced as the node asks. */
function nll(ctx: OpContext, logp: Tensor, target: Tensor, weight: Tensor | undefined): Tensor {
  const ignore = ctx.attrs.has('ignore_index') ? ctx.attrs.int('ignore_index') : undefined;
  const reduction = reductionOf(ctx);
  const v = axisView(logp.shape, 1);
  if (weight) expectChannels(ctx, weight, v.len, 'weight');
  if (target.size !== v.outer * v.inner) ctx.fail(`target [${target.shape.join(',')}] does not match input [${logp.shape.join(',')}]`);
  const loss = new Float64Array(target.size);
  let wsum = 0;
  let k = 0; // forEachLine visits [N, d...] in order, i.e. target's order
  forEachLine(v, (base, stride) => {
    const c = target.data[k];
    let w = 0;
    if (c !== ignore) {
      if (!(c >= 0 && c < v.len)) ctx.fail(`target ${c} at ${k} is not a class index in [0, ${v.len})`);
      w = weight ? weight.data[c] : 1;
      loss[k] = -logp.data[base + c * stride] * w;
    }
    wsum += w;
    k++;
  });
  if (reduction === 'none') {
    return fromValues(logp.dtype, target.shape, loss);
  }
  const sum = loss.reduce((a, b) => a + b, 0);
  const weighted = weight !== undefined || ignore !== undefined;
  return Tensor.scalar(logp.dtype, reduction === 'sum' ? sum : sum / (weighted ? wsum : sizeOf(target.shape)));
}

const nllOp: OpDef = {
  name: 'NegativeLogLikelihoodLoss',
  since: [12, 13],
  infer: (ctx) => [inferLoss(ctx)],
  evaluate(ctx, inputs) {
    return [nll(ctx, req(ctx, inputs, 0, 'input'), req(ctx, inputs, 1, 'target'), inputs[2])];
  },
};

const sceOp: OpDef = {
  name: 'SoftmaxCrossEntropyLoss',
  since: [12, 13],
  infer(ctx) {
    const x = ctx.input(0);
    return [inferLoss(ctx), { dtype: x.dtype, shape: [...x.shape] }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'scores');
    const v = axisView(x.shape, 1);
    const tmp = new Float64Array(x.size);
    forEachLine(v, (base, stride) => logSoftmaxLine(x.data, tmp, base, stride, v.len));
    const logp = fromValues(x.dtype, x.shape, tmp);
    return [nll(ctx, logp, req(ctx, inputs, 1, 'labels'), inputs[2]), logp];
  },
};

export const lossOps: OpDef[] = [nllOp, sceOp];
