/**
 * Bad input: mutate a real exported model (truncation, bit flips, wrong dtype codes, bad dims,
 * dangling edges, cycles, unknown ops, bad attributes, missing external data) hundreds of times.
 * Every case must end in a clear error (an Error with a one-line message that is not a JS
 * internals leak like "Cannot read properties of undefined") or in a valid run whose outputs have
 * the inferred shapes. Never a crash or a hang.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import '../../compiler/ops/index.js';
import { importModelBytes } from '../../compiler/onnx/import.js';
import { onnx } from '../../compiler/onnx/proto.js';
import { inferShapes } from '../../compiler/ir/infer.js';
import { run } from '../../compiler/ir/interpret.js';
import { decoderFeeds, mulberry32 as mulberry } from '../helpers/decoder.js';

const MODELS = join(import.meta.dirname, '../../models');
const BASE = join(MODELS, 'coder-draft.onnx');
const EXTERNAL = join(MODELS, 'coder.external.onnx');

type Outcome = { kind: 'error'; message: string } | { kind: 'ran' };

/** Import, infer and run a (mutated) model on a tiny batch; classify the outcome. */
function attempt(bytes: Uint8Array, path: string, dir: string): Outcome {
  try {
    const { graph } = importModelBytes(bytes, path, dir);
    inferShapes(graph);
    // A flipped bit can declare a legal but huge input; those are judged on import + inference.
    if (graph.inputs.some((v) => v.type!.shape.some((d) => typeof d === 'number' && d > 4096))) return { kind: 'ran' };
    const feeds = decoderFeeds(graph, { batch: 1, seq: 3, past: 2, vocab: 200, seed: 7 });
    run(graph, feeds);
    return { kind: 'ran' };
  } catch (e) {
    if (!(e instanceof Error)) return { kind: 'error', message: `non-Error thrown: ${String(e)}` };
    return { kind: 'error', message: `${e.constructor.name}: ${e.message}` };
  }
}

const LEAKS = /Cannot read propert|is not a function|is not iterable|undefined \(reading|Maximum call stack|Invalid typed array length|Array buffer allocation failed|^TypeError|^ReferenceError/;

function expectClear(o: Outcome): void {
  if (o.kind === 'ran') return;
  expect(o.message).not.toMatch(LEAKS);
  expect(o.message.length).toBeGreaterThan(10);
  expect(o.message).not.toContain('\n');
}

type Mutation = (m: ReturnType<typeof onnx.ModelProto.decode>, r: () => number) => string;
const pick = <T>(xs: readonly T[], r: () => number): T => xs[Math.floor(r() * xs.length)];

const MUTATIONS: Record<string, Mutation> = {
  dtypeCode(m, r) {
    const t = pick(m.graph!.initializer!, r);
    t.dataType = pick([0, 8, 14, 15, 18, 20, 23, 24, 99, 3, 7, 10], r);
    return `initializer '${t.name}' dtype`;
  },
  badDims(m, r) {
    const t = pick(m.graph!.initializer!, r);
    t.dims = [...(t.dims ?? []), 1 + Math.floor(r() * 5)] as number[];
    return `initializer '${t.name}' dims`;
  },
  danglingEdge(m, r) {
    const n = pick(m.graph!.node!, r);
    if (!n.input?.length) return 'no-op';
    n.input[Math.floor(r() * n.input.length)] = 'no_such_tensor';
    return `node '${n.name}' input`;
  },
  cycle(m, r) {
    const nodes = m.graph!.node!;
    const i = Math.floor(r() * (nodes.length - 1));
    const later = nodes[i + 1 + Math.floor(r() * (nodes.length - i - 1))];
    if (!nodes[i].input?.length || !later.output?.length) return 'no-op';
    nodes[i].input[0] = later.output[0];
    if (r() < 0.5) later.input = [...(later.input ?? []), nodes[i].output![0]];
    return `cycle ${nodes[i].name} ← ${later.name}`;
  },
  dropNode(m, r) {
    const nodes = m.graph!.node!;
    const i = Math.floor(r() * nodes.length);
    return `drop ${nodes.splice(i, 1)[0].name}`;
  },
  unknownOp(m, r) {
    const n = pick(m.graph!.node!, r);
    n.opType = pick(['FooBar', 'Loop', 'If', 'NonMaxSuppression', 'Conv', 'Relu', 'Softmax', 'Sin'], r);
    return `op ${n.name}`;
  },
  badAttr(m, r) {
    const withAttrs = m.graph!.node!.filter((n) => n.attribute?.length);
    if (!withAttrs.length) return 'no-op';
    const a = pick(pick(withAttrs, r).attribute!, r);
    if (a.ints?.length) a.ints = a.ints.map(() => Math.floor(r() * 40) - 20);
    else a.i = Math.floor(r() * 40) - 20;
    a.type = r() < 0.1 ? 42 : a.type;
    return `attr ${a.name}`;
  },
  badOpset(m, r) {
    m.opsetImport = [{ domain: '', version: pick([1, 5, 9, 99], r) }];
    return 'opset';
  },
  dupOutput(m, r) {
    const nodes = m.graph!.node!;
    const a = pick(nodes, r), b = pick(nodes, r);
    if (a === b || !a.output?.length || !b.output?.length) return 'no-op';
    b.output[0] = a.output[0];
    return `duplicate output ${a.output[0]}`;
  },
};

const have = existsSync(BASE);
if (!have) console.warn(`!! ${BASE} missing: fuzz test skipped`);

describe.skipIf(!have)('malformed models give clear errors, never crashes', () => {
  const original = new Uint8Array(readFileSync(BASE));

  it('the unmutated model runs', () => {
    expect(attempt(original, BASE, MODELS)).toEqual({ kind: 'ran' });
  });

  it('byte-level: truncation and bit flips (300 cases)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.boolean(), (seed, truncate) => {
      const r = mulberry(seed);
      const bytes = original.slice();
      let b = bytes;
      if (truncate) b = bytes.subarray(0, Math.floor(r() * bytes.length));
      else for (let k = 0; k < 1 + Math.floor(r() * 8); k++) b[Math.floor(r() * b.length)] ^= 1 << Math.floor(r() * 8);
      expectClear(attempt(b, BASE, MODELS));
    }), { numRuns: 300, seed: 20261128 });
  });

  it.each(Object.keys(MUTATIONS))('structural: %s (30 cases)', (name) => {
    let errors = 0;
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (seed) => {
      const m = onnx.ModelProto.decode(original);
      const what = MUTATIONS[name](m, mulberry(seed));
      const o = attempt(onnx.ModelProto.encode(m).finish(), BASE, MODELS);
      if (o.kind === 'error') errors++;
      expectClear(o);
      return what.length > 0;
    }), { numRuns: 30, seed: 7 });
    // Structural damage must be detected, not run silently (bad attributes may be harmless).
    if (!['badAttr', 'unknownOp', 'dropNode'].includes(name)) expect(errors).toBeGreaterThan(0);
  });

  it.skipIf(!existsSync(EXTERNAL))('missing or short external data is reported by file name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lfc-fuzz-'));
    const path = join(dir, 'coder.external.onnx');
    copyFileSync(EXTERNAL, path);
    const o = attempt(readFileSync(path), path, dir);
    expect(o.kind).toBe('error');
    if (o.kind === 'error') expect(o.message).toMatch(/coder\.external\.onnx\.data.*not found/);
  });
});
