/**
 * Einsum-12: a general Einstein summation. The equation is parsed into one list of labels per
 * operand ('...' becomes one label per broadcast dim, right-aligned across operands); the output
 * is the explicit right-hand side, or (implicit form) the ellipsis dims followed by the letters
 * used exactly once, in alphabetical order. Evaluation is one generic loop over every label, output
 * labels outermost: a label repeated in one operand walks its diagonal (its strides add up), a
 * label missing from the output is summed over.
 */
import { sizeOf, storeRounded, stridesOf, Tensor } from '../../runtime/tensor.js';
import { dimEq, dimStr, isSym, type Dim } from '../ir/dim.js';
import { sameDtype } from './math-common.js';
import type { OpContext, OpDef } from './registry.js';

interface Parsed {
  /** Labels of each operand's axes. */
  operands: string[][];
  /** Labels of the output's axes. */
  output: string[];
}

const ELL = '...';

/** Split one term into letters and the ellipsis marker. */
function terms(ctx: OpContext, term: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < term.length; i++) {
    if (term.startsWith(ELL, i)) {
      if (out.includes(ELL)) ctx.fail(`term '${term}' has more than one ellipsis`);
      out.push(ELL);
      i += 2;
    } else if (/[a-zA-Z]/.test(term[i])) {
      out.push(term[i]);
    } else {
      ctx.fail(`unexpected character '${term[i]}' in equation term '${term}'`);
    }
  }
  return out;
}

/** Parse the equation for operands of the given ranks. */
export function parseEinsum(ctx: OpContext, equation: string, ranks: readonly number[]): Parsed {
  const eq = equation.replace(/\s+/g, '');
  const [lhs, rhs, extra] = eq.split('->');
  if (extra !== undefined) ctx.fail(`equation '${equation}' has more than one '->'`);
  const ins = lhs.split(',').map((t) => terms(ctx, t));
  if (ins.length !== ranks.length) ctx.fail(`equation '${equation}' has ${ins.length} operands but the node has ${ranks.length} inputs`);
  // Ellipsis dims of each operand; named '…k' counting from the right so they align like numpy.
  let ellRank = 0;
  const operands = ins.map((t, i) => {
    const letters = t.filter((l) => l !== ELL).length;
    const hasEll = t.includes(ELL);
    const e = ranks[i] - letters;
    if ((!hasEll && e !== 0) || e < 0) {
      ctx.fail(`operand ${i} has rank ${ranks[i]} but term '${t.join('')}' names ${letters} axes`);
    }
    ellRank = Math.max(ellRank, e);
    return t.flatMap((l) => (l === ELL ? Array.from({ length: e }, (_, k) => `…${e - 1 - k}`) : [l]));
  });
  const ellLabels = Array.from({ length: ellRank }, (_, k) => `…${ellRank - 1 - k}`);
  let output: string[];
  if (rhs !== undefined) {
    const t = terms(ctx, rhs);
    output = t.flatMap((l) => (l === ELL ? ellLabels : [l]));
    for (const l of output) {
      if (!operands.some((o) => o.includes(l))) ctx.fail(`output label '${l}' does not appear in any operand`);
    }
    if (new Set(output).size !== output.length) ctx.fail(`output term '${rhs}' repeats a label`);
  } else {
    const counts = new Map<string, number>();
    for (const o of ins) for (const l of o) if (l !== ELL) counts.set(l, (counts.get(l) ?? 0) + 1);
    output = [...ellLabels, ...[...counts].filter(([, c]) => c === 1).map(([l]) => l).sort()];
  }
  return { operands, output };
}

/** Size of each label from the operands' shapes (1 broadcasts against anything). */
function labelSizes<T extends Dim>(ctx: OpContext, p: Parsed, shapes: readonly (readonly T[])[]): Map<string, T | 1> {
  const sizes = new Map<string, T | 1>();
  p.operands.forEach((labels, i) => labels.forEach((l, ax) => {
    const d = shapes[i][ax];
    const cur = sizes.get(l);
    if (cur === undefined || cur === 1) { sizes.set(l, d); return; }
    if (d === 1 || dimEq(cur, d)) return;
    if (isSym(cur) || isSym(d)) { if (ctx.equate) sizes.set(l, ctx.equate(cur, d) as T); return; }
    ctx.fail(`label '${l.replace('…', '...')}' has size ${dimStr(cur)} in one place and ${dimStr(d)} in operand ${i}`);
  }));
  return sizes;
}

export const einsumOp: OpDef = {
  name: 'Einsum',
  since: [12],
  infer(ctx) {
    const ins = ctx.inputs.map((_, i) => ctx.input(i));
    const dtype = sameDtype(ctx, ins);
    const p = parseEinsum(ctx, ctx.attrs.string('equation'), ins.map((i) => i.shape.length));
    const sizes = labelSizes(ctx, p, ins.map((i) => i.shape));
    return [{ dtype, shape: p.output.map((l) => sizes.get(l)!) }];
  },
  evaluate(ctx, inputs) {
    const ins = inputs.map((t, i) => t ?? ctx.fail(`input ${i} is required`));
    const p = parseEinsum(ctx, ctx.attrs.string('equation'), ins.map((t) => t.rank));
    const sizeOfLabel = labelSizes(ctx, p, ins.map((t) => t.shape));
    const summed = [...sizeOfLabel.keys()].filter((l) => !p.output.includes(l));
    const labels = [...p.output, ...summed];
    const sizes = labels.map((l) => sizeOfLabel.get(l)!);
    // strides[op][label]: how far operand op's offset moves when the label advances.
    const strides = ins.map((t, op) => {
      const st = stridesOf(t.shape);
      return labels.map((l) => p.operands[op].reduce((s, ol, ax) => (ol === l && t.shape[ax] !== 1 ? s + st[ax] : s), 0));
    });
    const outShape = p.output.map((l) => sizeOfLabel.get(l)!);
    const out = Tensor.zeros(ins[0].dtype, outShape);
    const inner = sizeOf(summed.map((l) => sizeOfLabel.get(l)!));
    const total = sizeOf(sizes);
    if (inner === 0 || total === 0) return [out];
    const data = ins.map((t) => t.data);
    const offs = new Array<number>(ins.length).fill(0);
    const counter = new Array<number>(labels.length).fill(0);
    let acc = 0;
    for (let it = 0, o = 0; it < total; it++) {
      let prod = 1;
      for (let k = 0; k < data.length; k++) prod *= data[k][offs[k]];
      acc += prod;
      if ((it + 1) % inner === 0) { out.data[o++] = acc; acc = 0; }
      for (let l = labels.length - 1; l >= 0; l--) {
        counter[l]++;
        for (let k = 0; k < offs.length; k++) offs[k] += strides[k][l];
        if (counter[l] < sizes[l]) break;
        for (let k = 0; k < offs.length; k++) offs[k] -= strides[k][l] * sizes[l];
        counter[l] = 0;
      }
    }
    return [storeRounded(out)];
  },
};
