/**
 * `lfc compile`: import → canonicalise → fuse → lower → plan.json + weights.bin + report.
 *
 * The pipeline is a readable list of named passes (STYLE.md); `dumpAfter` prints the graph after
 * any of them. The report says, per layer, what was fused and, where a pattern did not match, why.
 * A graph that cannot be put in ragged/paged form fails with that report, never with a
 * half-lowered plan.
 */
import { quantizePlan, type QuantizeOptions, type QuantizeReport } from './passes/quantize.js';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { StorageDType } from '../runtime/kernels/common.js';
import type { Plan } from '../runtime/plan.js';
import { printGraph } from './ir/print.js';
import type { Graph } from './ir/graph.js';
import { importModelFile } from './onnx/import.js';
import { inferShapes } from './ir/infer.js';
import { CANONICALIZE } from './passes/canonicalize.js';
import { runPipeline, type FusionEvent, type Pass } from './passes/driver.js';
import { fuseAttention, fuseRope } from './passes/fuse-attention.js';
import { fuseAttentionForms } from './passes/fuse-attention-forms.js';
import { FUSE } from './passes/pipeline.js';
import { inlineIf } from './passes/inline-if.js';
import { lower, LoweringError } from './plan/lower.js';
import { decodeShape, planCost, prefillShape } from './kernels/cost.js';
import type { WeightTable } from './plan/weights.js';
import './ops/index.js';

export const PIPELINE: readonly Pass[] = [inlineIf, ...CANONICALIZE, fuseAttentionForms, ...FUSE, fuseRope, fuseAttention];

export interface CompileOptions {
  dtype?: StorageDType;
  blockSize?: number;
  maxPositions?: number;
  dumpAfter?: string;
  onDump?: (pass: string, text: string) => void;
  onProgress?: (message: string) => void;
  /** Quantize the linear steps after lowering (compiler/passes/quantize.ts, issue 11). */
  quantize?: Omit<QuantizeOptions, 'onProgress'>;
}

export interface CompileResult {
  graph: Graph;
  /** The graph as imported (imported again on first use), for verification against the original. */
  readonly original: Graph;
  plan?: Plan;
  weights?: WeightTable;
  events: FusionEvent[];
  error?: string;
  timings: { pass: string; ms: number; changes: number }[];
  /** With `quantize`: the packed weights.bin (replacing `weights`) and the per-layer report. */
  quantized?: { weights: Uint8Array; report: QuantizeReport };
}

export function compileModel(path: string, opts: CompileOptions = {}): CompileResult {
  const t0 = performance.now();
  const { graph } = importModelFile(path);
  let orig: Graph | undefined;
  const lazyOriginal = {
    get original(): Graph {
      if (!orig) { orig = importModelFile(path).graph; inferShapes(orig); }
      return orig;
    },
  };
  const timings: CompileResult['timings'] = [{ pass: 'import', ms: performance.now() - t0, changes: 0 }];
  opts.onProgress?.(`imported ${basename(path)}: ${graph.nodes.length} nodes`);
  const events = runPipeline(graph, PIPELINE, {
    dumpAfter: opts.dumpAfter,
    onDump: (p, g) => opts.onDump?.(p, printGraph(g)),
    onPass: (p, changes, ms) => {
      timings.push({ pass: p.name, ms, changes });
      opts.onProgress?.(`${p.name}: ${changes} change${changes === 1 ? '' : 's'} (${ms.toFixed(0)} ms), ${graph.nodes.length} nodes`);
    },
  });
  const t1 = performance.now();
  try {
    const { plan, weights } = lower(graph, {
      name: basename(path).replace(/\.onnx$/, ''), file: basename(path),
      dtype: opts.dtype, blockSize: opts.blockSize, maxPositions: opts.maxPositions ?? defaultMaxPositions(graph),
    });
    timings.push({ pass: 'lower', ms: performance.now() - t1, changes: plan.steps.length });
    opts.onProgress?.(`lowered to ${plan.steps.length} steps, ${plan.weights.length} weights`);
    if (opts.quantize) {
      const t2 = performance.now();
      const q = quantizePlan(plan, weights.pack(), { ...opts.quantize, onProgress: opts.onProgress });
      timings.push({ pass: `quantize-${q.report.kind}`, ms: performance.now() - t2, changes: q.report.layers.length });
      return Object.defineProperties({ graph, plan: q.plan, weights, events, timings, quantized: { weights: q.weights, report: q.report } }, Object.getOwnPropertyDescriptors(lazyOriginal)) as CompileResult;
    }
    return Object.defineProperties({ graph, plan, weights, events, timings }, Object.getOwnPropertyDescriptors(lazyOriginal)) as CompileResult;
  } catch (e) {
    if (!(e instanceof LoweringError)) throw e;
    return Object.defineProperties({ graph, events, timings, error: e.message }, Object.getOwnPropertyDescriptors(lazyOriginal)) as CompileResult;
  }
}

/** GPT-2 style models carry their position table; rotary ones default to 2048 positions. */
function defaultMaxPositions(g: Graph): number {
  const pos = g.nodes.find((n) => n.opType === 'Gather' && n.inputs[1]?.name === 'position_ids' && n.inputs[0]?.initializer);
  return pos ? pos.inputs[0]!.initializer!.shape[0] : 2048;
}

/** Per-layer fusion report: fused patterns and misses with reasons. */
export function formatReport(r: CompileResult): string {
  const L: string[] = [];
  const layerOf = (node: string) => /layers?\.(\d+)|\/h\.(\d+)\//.exec(node);
  const groups = new Map<string, FusionEvent[]>();
  for (const e of r.events) {
    const m = layerOf(e.node);
    const k = m ? `layer ${m[1] ?? m[2]}` : 'model';
    groups.set(k, [...(groups.get(k) ?? []), e]);
  }
  for (const [k, evs] of groups) {
    const fused = new Map<string, number>();
    for (const e of evs.filter((x) => x.outcome === 'fused')) fused.set(e.rule, (fused.get(e.rule) ?? 0) + 1);
    L.push(`${k}: ${[...fused].map(([rule, n]) => `${rule}${n > 1 ? ` ×${n}` : ''}`).join(', ') || 'nothing fused'}`);
    for (const e of evs.filter((x) => x.outcome === 'missed')) L.push(`  not fused (${e.rule}): ${e.detail} [${e.node}]`);
  }
  if (r.plan) {
    const p = r.plan;
    L.push(`plan: ${p.steps.length} steps, ${p.model.layers} layers, ${p.weights.length} weights (${(r.weights!.totalBytes / 2 ** 20).toFixed(2)} MiB), ` +
      `activation arena ${p.arenaFeatures} values/token (${((p.arenaFeatures * 4 * 512) / 2 ** 20).toFixed(2)} MiB at 512 tokens)`);
  }
  if (r.plan) {
    const d = planCost(r.plan, decodeShape(1, 512)), pf = planCost(r.plan, prefillShape(512));
    const g = (x: number) => (x >= 1e9 ? `${(x / 1e9).toFixed(2)} G` : `${(x / 1e6).toFixed(2)} M`);
    L.push(`cost: decode (1 sequence, 512 context) ${g(d.flops)}FLOP, ${g(d.bytes)}B moved (${(d.flops / d.bytes).toFixed(2)} FLOP/B); ` +
      `prefill 512 tokens ${g(pf.flops)}FLOP, ${g(pf.bytes)}B (${(pf.flops / pf.bytes).toFixed(1)} FLOP/B)`);
  }
  if (r.error) L.push(`error: ${r.error}`);
  return L.join('\n');
}

/** Files beside a model that travel into its artifact (Hugging Face tokenizer and config). */
const COMPANIONS = ['tokenizer.json', 'tokenizer_config.json', 'config.json', 'generation_config.json'];

/** Write plan.json, weights.bin, report.{txt,json} and the model's tokenizer files into `dir`. */
export function writeArtifact(r: CompileResult, dir: string, modelPath?: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files = ['plan.json', 'weights.bin', 'report.txt', 'report.json'];
  for (const f of COMPANIONS) {
    const src = modelPath && join(dirname(modelPath), f);
    if (src && existsSync(src)) { copyFileSync(src, join(dir, f)); files.push(f); }
  }
  writeFileSync(join(dir, 'plan.json'), JSON.stringify(r.plan, null, 1) + '\n');
  if (r.quantized) writeFileSync(join(dir, 'weights.bin'), r.quantized.weights);
  else r.weights!.write(join(dir, 'weights.bin'));
  writeFileSync(join(dir, 'report.txt'), formatReport(r) + '\n');
  writeFileSync(join(dir, 'report.json'), JSON.stringify({ events: r.events, timings: r.timings, quantize: r.quantized?.report }, null, 1) + '\n');
  return files.map((f) => join(dir, f));
}
