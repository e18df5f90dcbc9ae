/**
 * Properties of the data-movement ops (fast-check): Transpose by a perm then its inverse is the
 * identity; Slice matches a naive per-element reading of the spec; Reshape and Concat/Split round
 * trip; inference agrees with evaluation on concrete inputs (shapes and known contents), and
 * symbolic inference agrees with it under any binding of the symbols.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evalDim, type Dim } from '../../../compiler/ir/dim.js';
import { sizeOf, stridesOf } from '../../../runtime/tensor.js';
import { evaluate, i64, info, infer, INT64_MAX, INT64_MIN, ints, iota, sym } from './shape-helpers.js';

const shapeArb = (minRank = 1, maxRank = 4) => fc.array(fc.integer({ min: 1, max: 4 }), { minLength: minRank, maxLength: maxRank });
const permOf = (rank: number) => fc.shuffledSubarray([...Array(rank).keys()], { minLength: rank, maxLength: rank });

/** Slice as the spec words it, one element at a time: clamp, then walk from start towards end. */
function naiveSlice(shape: number[], data: number[], starts: number[], ends: number[], axes: number[], steps: number[]): { shape: number[]; data: number[] } {
  const ranges = shape.map((d) => Array.from({ length: d }, (_, i) => i));
  axes.forEach((a0, k) => {
    const a = a0 < 0 ? a0 + shape.length : a0;
    const d = shape[a], step = steps[k];
    let st = starts[k] < 0 ? starts[k] + d : starts[k];
    let en = ends[k] < 0 ? ends[k] + d : ends[k];
    if (step > 0) { st = Math.min(Math.max(st, 0), d); en = Math.min(Math.max(en, 0), d); } else { st = Math.min(Math.max(st, 0), d - 1); en = Math.min(Math.max(en, -1), d - 1); }
    const picked: number[] = [];
    for (let i = st; step > 0 ? i < en : i > en; i += step) picked.push(i);
    ranges[a] = picked;
  });
  const strides = stridesOf(shape);
  const out: number[] = [];
  const walk = (axis: number, off: number): void => {
    if (axis === shape.length) { out.push(data[off]); return; }
    for (const i of ranges[axis]) walk(axis + 1, off + i * strides[axis]);
  };
  walk(0, 0);
  return { shape: ranges.map((r) => r.length), data: out };
}

const index = fc.oneof(fc.integer({ min: -7, max: 7 }), fc.constantFrom(INT64_MAX, INT64_MIN, 1000, -1000));

const sliceCase = shapeArb(1, 3).chain((shape) =>
  fc.shuffledSubarray([...shape.keys()], { minLength: 1 }).chain((axes) => fc.record({
    shape: fc.constant(shape),
    axes: fc.constant(axes.map((a) => (a % 2 ? a - shape.length : a))),
    starts: fc.array(index, { minLength: axes.length, maxLength: axes.length }),
    ends: fc.array(index, { minLength: axes.length, maxLength: axes.length }),
    steps: fc.array(fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: -3, max: -1 })), { minLength: axes.length, maxLength: axes.length }),
  })));

describe('data-movement properties', () => {
  it('Transpose by perm then by its inverse is the identity', () => {
    fc.assert(fc.property(shapeArb().chain((s) => fc.tuple(fc.constant(s), permOf(s.length))), ([shape, perm]) => {
      const x = iota(shape);
      const inv = perm.map((_, i) => perm.indexOf(i));
      const y = evaluate('Transpose', [x], { attrs: { perm } })[0];
      expect(y.shape).toEqual(perm.map((p) => shape[p]));
      const z = evaluate('Transpose', [y], { attrs: { perm: inv } })[0];
      expect([z.shape, z.toArray()]).toEqual([shape, x.toArray()]);
    }));
  });

  it('Slice matches the per-element definition, and infer agrees (shape and known)', () => {
    fc.assert(fc.property(sliceCase, (c) => {
      const x = iota(c.shape);
      const want = naiveSlice(c.shape, x.toArray(), c.starts, c.ends, c.axes, c.steps);
      const n = c.axes.length;
      const y = evaluate('Slice', [x, i64([n], c.starts), i64([n], c.ends), i64([n], c.axes), i64([n], c.steps)])[0];
      expect([y.shape, y.toArray()]).toEqual([want.shape, want.data]);
      const o = infer('Slice', [info('int64', c.shape, x.toArray()), ints(...c.starts), ints(...c.ends), ints(...c.axes), ints(...c.steps)])[0];
      expect([o.shape, o.known]).toEqual([want.shape, want.data]);
    }));
  });

  it('Reshape round trips', () => {
    fc.assert(fc.property(shapeArb(), fc.integer({ min: 0, max: 3 }), (shape, cut) => {
      const x = iota(shape);
      const k = Math.min(cut, shape.length);
      // keep the first k dims (0 = copy), flatten the rest (-1)
      const target = [...Array(k).fill(0), -1];
      const y = evaluate('Reshape', [x, i64([target.length], target)])[0];
      expect(y.shape).toEqual([...shape.slice(0, k), sizeOf(shape.slice(k))]);
      const z = evaluate('Reshape', [y, i64([shape.length], shape)])[0];
      expect([z.shape, z.toArray()]).toEqual([shape, x.toArray()]);
    }));
  });

  it('Concat then Split round trips', () => {
    const c = shapeArb(1, 3).chain((shape) => fc.record({
      shape: fc.constant(shape),
      axis: fc.integer({ min: 0, max: shape.length - 1 }),
      sizes: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 4 }),
    }));
    fc.assert(fc.property(c, ({ shape, axis, sizes }) => {
      let next = 0;
      const parts = sizes.map((n) => {
        const s = shape.map((d, i) => (i === axis ? n : d));
        const t = iota(s);
        t.data.forEach((_, i) => { t.data[i] = next++; });
        return t;
      });
      const cat = evaluate('Concat', parts, { attrs: { axis } })[0];
      expect(cat.shape[axis]).toBe(sizes.reduce((a, b) => a + b, 0));
      const back = evaluate('Split', [cat, i64([sizes.length], sizes)], { attrs: { axis }, outputs: sizes.length });
      back.forEach((t, i) => expect([t.shape, t.toArray()]).toEqual([parts[i].shape, parts[i].toArray()]));
    }));
  });

  it('symbolic inference agrees with evaluation under any binding', () => {
    const bs = sym('batch'), ss = sym('seq');
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }),
      (bv, sv, f1, f2) => {
        const env = new Map([['batch', bv], ['seq', sv]]);
        const bind = (ds: readonly Dim[]) => ds.map((d) => evalDim(d, env));
        const x = iota([bv, sv, f1 * f2]);
        const cases: [Dim[], number[]][] = [[[0, 0, f1, -1], [0, 0, f1, -1]], [[-1, f1 * f2], [-1, f1 * f2]], [[bs, -1], [bv, -1]]];
        for (const [symT, numT] of cases) {
          const o = infer('Reshape', [info('float32', [bs, ss, f1 * f2]), ints(...symT)])[0];
          const y = evaluate('Reshape', [x, i64([numT.length], numT)])[0];
          expect(bind(o.shape)).toEqual(y.shape);
        }
        const cat = infer('Concat', [info('float32', [bs, ss, f1]), info('float32', [bs, 2, f1])], { attrs: { axis: 1 } })[0];
        expect(bind(cat.shape)).toEqual([bv, sv + 2, f1]);
        const last = infer('Slice', [info('float32', [bs, ss, f1]), ints(-1), ints(INT64_MAX), ints(1)])[0];
        expect(bind(last.shape)).toEqual(naiveSlice([bv, sv, f1], iota([bv, sv, f1]).toArray(), [-1], [INT64_MAX], [1], [1]).shape);
      },
    ));
  });
});
