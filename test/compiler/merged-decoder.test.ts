/**
 * Hugging Face Optimum's merged decoder (one If switched by `use_cache_branch`), on a real merged
 * model (models/merged/coder-draft.merged.onnx, scripts/models/merge_decoder.py): subgraph import
 * with outer-scope references, the If op in inference and in the interpreter (against
 * onnxruntime on both branch values), and compilation through the cache branch: the plan has the
 * steps of the with-past export and matches onnxruntime on the merged file.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import '../../compiler/ops/index.js';
import { compileModel, formatReport } from '../../compiler/compile.js';
import { Graph } from '../../compiler/ir/graph.js';
import { inferShapes } from '../../compiler/ir/infer.js';
import { run } from '../../compiler/ir/interpret.js';
import { shapeStr } from '../../compiler/ir/dim.js';
import { importModelBytes, importModelFile } from '../../compiler/onnx/import.js';
import { onnx } from '../../compiler/onnx/proto.js';
import { ortOracle } from '../../compiler/ort-oracle.js';
import { runPipeline } from '../../compiler/passes/driver.js';
import { inlineIf } from '../../compiler/passes/inline-if.js';
import { interpreterOracle, verifyPlan } from '../../compiler/verify.js';
import { Tensor } from '../../runtime/tensor.js';
import { decoderFeeds, maxAbsDiff, mulberry32 } from '../helpers/decoder.js';

const MODELS = join(import.meta.dirname, '../../models');
const MERGED = join(MODELS, 'merged/coder-draft.merged.onnx');
const WITH_PAST = join(MODELS, 'coder-draft.onnx');
const have = existsSync(MERGED) && existsSync(WITH_PAST);
if (!have) console.warn(`!! ${MERGED} missing (scripts/models/merge_decoder.py): merged-decoder tests skipped`);

/** Decoder feeds for the merged graph: the with-past export's feeds plus use_cache_branch. */
function mergedFeeds(cache: boolean, seq: number, past: number): Map<string, Tensor> {
  const { graph } = importModelFile(WITH_PAST);
  const feeds = decoderFeeds(graph, { batch: 2, seq, past, vocab: 259, seed: 99 });
  feeds.set('use_cache_branch', Tensor.from('bool', [1], [cache ? 1 : 0]));
  return feeds;
}

async function runOrtMerged(path: string, feeds: Map<string, Tensor>): Promise<Map<string, Tensor>> {
  const s = await ort.InferenceSession.create(path);
  const f: Record<string, ort.Tensor> = {};
  for (const [k, t] of feeds) {
    f[k] = t.dtype === 'int64' ? new ort.Tensor('int64', BigInt64Array.from(t.toArray().map(BigInt)), [...t.shape])
      : t.dtype === 'bool' ? new ort.Tensor('bool', t.toArray().map((x) => x !== 0), [...t.shape])
        : new ort.Tensor('float32', Float32Array.from(t.data as Float32Array), [...t.shape]);
  }
  const res = await s.run(f);
  await s.release();
  return new Map(Object.entries(res).map(([k, v]) => [k, new Tensor('float32', v.dims.map(Number), Float32Array.from(v.data as Float32Array))]));
}

/** The merged model with its If's condition replaced: `edit` gets the decoded model. */
function variant(edit: (m: ReturnType<typeof onnx.ModelProto.decode>) => void): string {
  const m = onnx.ModelProto.decode(readFileSync(MERGED));
  edit(m);
  const dir = mkdtempSync(join(tmpdir(), 'lfc-merged-'));
  const path = join(dir, 'variant.onnx');
  writeFileSync(path, onnx.ModelProto.encode(m).finish());
  return path;
}

describe.skipIf(!have)('Optimum merged decoder', () => {
  it('imports: one If, branches are typed ir Graphs reading outer values', () => {
    const { graph } = importModelFile(MERGED);
    expect(graph.nodes.map((n) => n.opType)).toEqual(['If']);
    const node = graph.nodes[0];
    const then = node.attrs.get('then_branch'), els = node.attrs.get('else_branch');
    expect(then).toBeInstanceOf(Graph);
    expect(els).toBeInstanceOf(Graph);
    const t = then as Graph, e = els as Graph;
    expect(t.inputs).toEqual([]);
    // As in Optimum, branch outputs are named like the If's outputs: separate scopes, separate Values.
    expect(t.outputs[0].name).toBe('logits');
    expect(e.outputs[0].name).toBe('logits');
    expect(t.outputs[0]).not.toBe(graph.outputs[0]);
    expect(t.outputs.map((v) => v.name)).toHaveLength(graph.outputs.length);
    // Outer-scope names resolve to the outer Values themselves ...
    const ids = graph.inputs.find((v) => v.name === 'input_ids')!;
    expect(t.nodes.some((n) => n.inputs.includes(ids))).toBe(true);
    expect(e.nodes.some((n) => n.inputs.includes(ids))).toBe(true);
    const weight = t.nodes.flatMap((n) => n.inputs).find((v) => v?.initializer)!;
    expect(graph.values.get(weight.name)).toBe(weight); // shared initializer, owned by the main graph
    // ... which the If lists after its condition, and whose consumers are main-graph nodes only.
    expect(node.inputs[0]!.name).toBe('use_cache_branch');
    expect(node.inputs).toContain(ids);
    expect(node.inputs).toContain(weight);
    expect(ids.consumers).toEqual([node]);

    inferShapes(graph);
    const types = graph.outputs.map((v) => `${v.name}: ${v.type!.dtype}${shapeStr(v.type!.shape)}`);
    // Branch dims merge through each branch's own equations: the no-past branch proves
    // sequence_length = total_sequence_length, the cache branch total = past + sequence.
    expect(types[0]).toBe('logits: float32[batch_size, sequence_length, 259]');
    expect(types[1]).toBe('present.0.key: float32[batch_size, 2, total_sequence_length, 32]');
    for (const b of [t, e]) {
      const untyped = [...b.values.values()].filter((v) => !v.type).map((v) => v.name);
      expect(untyped).toEqual([]);
    }
    expect(shapeStr(t.outputs[1].type!.shape)).toBe('[batch_size, 2, past_sequence_length + sequence_length, 32]');
    expect(shapeStr(e.outputs[1].type!.shape)).toBe('[batch_size, 2, total_sequence_length, 32]');
    expect(shapeStr(t.outputs[0].type!.shape)).toBe('[batch_size, sequence_length, 259]');
  });

  it.each([
    { cache: true, seq: 2, past: 3 },
    { cache: true, seq: 4, past: 0 },
    { cache: false, seq: 4, past: 0 },
  ])('interpreter matches onnxruntime: use_cache_branch=$cache, seq $seq, past $past', async ({ cache, seq, past }) => {
    const { graph } = importModelFile(MERGED);
    inferShapes(graph);
    const feeds = mergedFeeds(cache, seq, past);
    const ours = run(graph, feeds);
    const ref = await runOrtMerged(MERGED, feeds);
    expect([...ours.keys()].sort()).toEqual([...ref.keys()].sort());
    for (const [name, t] of ours) expect(maxAbsDiff(t, ref.get(name)!), name).toBeLessThanOrEqual(1e-4);
    expect(ours.get('present.0.key')!.shape).toEqual([2, 2, past + seq, 32]);
  });

  const r = have ? compileModel(MERGED, { maxPositions: 256 }) : undefined;

  it('compiles through the cache branch: the steps of the with-past export, use_cache_branch gone', () => {
    expect(r!.error, formatReport(r!)).toBeUndefined();
    const base = compileModel(WITH_PAST, { maxPositions: 256 });
    expect(r!.plan!.steps.length).toBe(base.plan!.steps.length);
    // The same plan, names included (the branch keeps the exporter's names, as in Optimum).
    expect(JSON.stringify(r!.plan!.steps)).toBe(JSON.stringify(base.plan!.steps));
    expect(Buffer.from(r!.weights!.pack()).equals(Buffer.from(base.weights!.pack()))).toBe(true);
    expect(r!.graph.inputs.map((v) => v.name)).toEqual(base.graph.inputs.map((v) => v.name));
    expect(r!.graph.nodes.some((n) => n.opType === 'If')).toBe(false);
    const ev = r!.events.filter((e) => e.pass === 'inline-if');
    expect(ev.map((e) => e.detail).join('\n')).toMatch(/inlined then_branch[\s\S]*'use_cache_branch' removed/);
    expect(r!.original.inputs.at(-1)!.name).toBe('use_cache_branch'); // verification runs the merged graph itself
  });

  it('verifyPlan against onnxruntime on the merged file: max abs ≤ 1e-4', async () => {
    const oracle = (await ortOracle(MERGED, r!.original))!;
    const cases = await verifyPlan(r!.plan!, r!.weights!.pack(), { seed: 3, cases: 3, atol: 1e-4, oracle });
    for (const c of cases) expect(c.maxAbsError, JSON.stringify(c)).toBeLessThanOrEqual(1e-4);
  });

  it('verifyPlan against the interpreter running the If (no-past branch): max abs ≤ 1e-4', async () => {
    const [c] = await verifyPlan(r!.plan!, r!.weights!.pack(), { seed: 11, cases: 1, atol: 1e-4, oracle: interpreterOracle(r!.original) });
    expect(c.maxAbsError, JSON.stringify(c)).toBeLessThanOrEqual(1e-4);
  });

  it('an If on a compile-time constant inlines the taken branch', () => {
    for (const value of [0, 1]) {
      const path = variant((m) => {
        const g = m.graph!;
        g.node!.unshift(onnx.NodeProto.create({
          name: 'cond_const', opType: 'Constant', output: ['cond'],
          attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: { name: 'c', dataType: 9, dims: [1], int32Data: [value] } }],
        }));
        g.node![1].input = ['cond'];
      });
      const c = compileModel(path, { maxPositions: 64 });
      expect(c.error, formatReport(c)).toBeUndefined();
      expect(c.events.find((e) => e.rule === 'constant-condition')!.detail).toContain(value ? 'then_branch' : 'else_branch');
      expect(c.graph.inputs.some((v) => v.name === 'use_cache_branch')).toBe(false);
      expect(c.plan!.steps.length).toBe(r!.plan!.steps.length);
    }
  });

  it('an If on a condition computed at run time cannot be lowered (clear error naming the node)', () => {
    const path = variant((m) => {
      const g = m.graph!;
      g.node!.unshift(
        onnx.NodeProto.create({ name: 'any_kept', opType: 'ReduceMax', input: ['attention_mask'], output: ['mask_max'] }),
        onnx.NodeProto.create({ name: 'to_bool', opType: 'Cast', input: ['mask_max'], output: ['cond'], attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: 9 }] }),
      );
      g.node![2].input = ['cond'];
    });
    const c = compileModel(path, { maxPositions: 64 });
    expect(c.plan).toBeUndefined();
    expect(c.error).toMatch(/^If node 'optimum::if': cannot be lowered/);
    const report = formatReport(c);
    expect(report).toContain("not fused (if): cannot be lowered: its condition 'cond' is computed at run time");
    expect(report).toContain('[optimum::if]');
    expect(c.graph.inputs.some((v) => v.name === 'use_cache_branch')).toBe(true); // nothing half-done
  });

  it('subgraph import errors name the If node and the branch', () => {
    const m = onnx.ModelProto.decode(readFileSync(MERGED));
    const then = m.graph!.node![0].attribute!.find((a) => a.name === 'then_branch')!.g!;
    then.node![5].input![0] = 'no_such_value';
    const name = then.node![5].name;
    expect(() => importModelBytes(onnx.ModelProto.encode(m).finish(), 'm.onnx', MODELS))
      .toThrow(new RegExp(`If node 'optimum::if': attribute 'then_branch': .*node '${name.replace(/[/.]/g, '\\$&')}': input 'no_such_value' is not produced`));
    const m2 = onnx.ModelProto.decode(readFileSync(MERGED));
    m2.graph!.node![0].attribute = m2.graph!.node![0].attribute!.filter((a) => a.name !== 'else_branch');
    const { graph } = importModelBytes(onnx.ModelProto.encode(m2).finish(), 'm.onnx', MODELS);
    expect(() => inferShapes(graph)).toThrow(/If node 'optimum::if': attribute 'else_branch' is required/);
  });

  it('damaged branches give clear one-line errors, never crashes (60 cases)', () => {
    const LEAKS = /Cannot read propert|is not a function|is not iterable|undefined \(reading|Maximum call stack|^TypeError|^ReferenceError/;
    const bytes = new Uint8Array(readFileSync(MERGED));
    let errors = 0;
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (seed) => {
      const rnd = mulberry32(seed);
      const m = onnx.ModelProto.decode(bytes);
      const attrs = m.graph!.node![0].attribute!;
      const b = attrs[Math.floor(rnd() * attrs.length)].g!;
      const nodes = b.node!;
      const n = nodes[Math.floor(rnd() * nodes.length)];
      const k = Math.floor(rnd() * 5);
      if (k === 0 && n.input?.length) n.input[0] = 'no_such_value';
      else if (k === 1) n.opType = 'FooBar';
      else if (k === 2) nodes.splice(nodes.indexOf(n), 1);
      else if (k === 3) b.output!.pop();
      else if (n.output?.length) n.output[0] = 'logits'; // shadows the outer output name
      try {
        const { graph } = importModelBytes(onnx.ModelProto.encode(m).finish(), 'm.onnx', MODELS);
        inferShapes(graph);
      } catch (e) {
        errors++;
        const msg = `${(e as Error).constructor.name}: ${(e as Error).message}`;
        expect(msg).not.toMatch(LEAKS);
        expect(msg).not.toContain('\n');
        expect(msg).toMatch(/If node 'optimum::if'|optimum::if/);
      }
    }), { numRuns: 60, seed: 4 });
    expect(errors).toBeGreaterThan(40); // most damage is detected at import or inference
  });
});

describe('nested If with outer-scope references two levels up', () => {
  const A = onnx.AttributeProto.AttributeType;
  const f32 = (name: string, dims: number[]) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
  const bool1 = (name: string) => ({ name, type: { tensorType: { elemType: 9, shape: { dim: [{ dimValue: 1 }] } } } });
  const node = (name: string, opType: string, input: string[], output: string[], attribute: object[] = []) => onnx.NodeProto.create({ name, opType, input, output, attribute });
  // y = c1 ? (c2 ? x + w : -x) : x * w, with w an outer initializer and 'y' reused as a name inside the branches.
  const inner = {
    name: 'inner', output: [f32('y', [3])],
    node: [node('in_if', 'If', ['c2'], ['y'], [
      { name: 'then_branch', type: A.GRAPH, g: { name: 't2', node: [node('add', 'Add', ['x', 'w'], ['y'])], output: [f32('y', [3])] } },
      { name: 'else_branch', type: A.GRAPH, g: { name: 'e2', node: [node('neg', 'Neg', ['x'], ['y'])], output: [f32('y', [3])] } },
    ])],
  };
  const model = onnx.ModelProto.create({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'nested', input: [f32('x', [3]), bool1('c1'), bool1('c2')], output: [f32('y', [3])],
      initializer: [{ name: 'w', dataType: 1, dims: [3], floatData: [1, 2, 3] }],
      node: [node('out_if', 'If', ['c1'], ['y'], [
        { name: 'then_branch', type: A.GRAPH, g: inner },
        { name: 'else_branch', type: A.GRAPH, g: { name: 'e1', node: [node('mul', 'Mul', ['x', 'w'], ['y'])], output: [f32('y', [3])] } },
      ])],
    },
  });
  const bytes = onnx.ModelProto.encode(model).finish();

  it('captures x, w and c2 on the outer If; the interpreter matches onnxruntime on every branch', async () => {
    const { graph } = importModelBytes(bytes, 'nested.onnx', undefined);
    inferShapes(graph);
    const outer = graph.nodes[0];
    expect(outer.inputs.map((v) => v!.name).sort()).toEqual(['c1', 'c2', 'w', 'x']);
    const t = outer.attrs.get('then_branch') as Graph;
    expect(t.nodes[0].inputs.map((v) => v!.name).sort()).toEqual(['c2', 'w', 'x']);
    expect(t.nodes[0].inputs.includes(graph.inputs[0])).toBe(true); // the outer Value itself
    const dir = mkdtempSync(join(tmpdir(), 'lfc-nested-'));
    const path = join(dir, 'nested.onnx');
    writeFileSync(path, bytes);
    const s = await ort.InferenceSession.create(path);
    const x = [0.5, -1, 2];
    for (const c1 of [true, false]) for (const c2 of [true, false]) {
      const feeds = new Map([['x', Tensor.from('float32', [3], x)], ['c1', Tensor.from('bool', [1], [+c1])], ['c2', Tensor.from('bool', [1], [+c2])]]);
      const ours = run(graph, feeds).get('y')!.toArray();
      const ref = await s.run({ x: new ort.Tensor('float32', Float32Array.from(x), [3]), c1: new ort.Tensor('bool', [c1], [1]), c2: new ort.Tensor('bool', [c2], [1]) });
      expect(ours, `c1=${c1} c2=${c2}`).toEqual(Array.from(ref.y.data as Float32Array));
    }
    await s.release();
  });

  it('inline-if inlines nested Ifs on compile-time constants down to the taken leaf', () => {
    const m = onnx.ModelProto.decode(bytes);
    m.graph!.input = m.graph!.input!.filter((v) => v.name === 'x');
    m.graph!.initializer!.push({ name: 'c1', dataType: 9, dims: [1], int32Data: [1] }, { name: 'c2', dataType: 9, dims: [1], int32Data: [0] });
    const { graph } = importModelBytes(onnx.ModelProto.encode(m).finish(), 'nested.onnx', undefined);
    const events = runPipeline(graph, [inlineIf]);
    expect(graph.nodes.map((n) => n.opType)).toEqual(['Neg']);
    expect(events.filter((e) => e.rule === 'constant-condition').map((e) => e.node)).toEqual(['out_if', 'in_if']);
    expect(graph.outputs.map((v) => v.name)).toEqual(['y']);
    expect(run(graph, new Map([['x', Tensor.from('float32', [3], [0.5, -1, 2])]])).get('y')!.toArray()).toEqual([-0.5, 1, -2]);
  });
});
