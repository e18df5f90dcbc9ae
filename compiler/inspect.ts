/**
 * `lfc inspect`: a summary of an ONNX model read without touching its weights: producer, opsets,
 * inputs and outputs with symbolic shapes (after shape inference), op histogram, parameters and
 * bytes by dtype, and the decoder architecture it looks like.
 */
import { sizeOf } from '../runtime/tensor.js';
import { shapeStr } from './ir/dim.js';
import type { Graph } from './ir/graph.js';
import { inferShapes } from './ir/infer.js';
import type { ImportedModel } from './onnx/import.js';

export interface ModelSummary {
  file: string;
  producer: string;
  irVersion: number;
  opsets: Record<string, number>;
  inputs: { name: string; dtype: string; shape: string }[];
  outputs: { name: string; dtype: string; shape: string }[];
  nodes: number;
  ops: Record<string, number>;
  parameters: { total: number; bytes: number; byDtype: Record<string, { count: number; bytes: number }> };
  externalData: string[];
  architecture: Architecture;
  /** Set when shape inference failed; the summary then shows declared types only. */
  inferenceError?: string;
}

export interface Architecture {
  family: 'gpt2' | 'llama' | 'unknown';
  layers?: number;
  vocab?: number;
  hidden?: number;
  /** Facts the guess rests on. */
  evidence: string[];
}

export function summarize(m: ImportedModel): ModelSummary {
  const g = m.graph;
  let inferenceError: string | undefined;
  try { inferShapes(g); } catch (e) { inferenceError = (e as Error).message; }
  const io = (vs: typeof g.inputs) => vs.map((v) => {
    const t = v.type ?? m.declared.get(v.name);
    return { name: v.name, dtype: t?.dtype ?? '?', shape: t ? shapeStr(t.shape) : '?' };
  });
  const ops: Record<string, number> = {};
  for (const n of g.nodes) {
    const k = n.domain ? `${n.domain}.${n.opType}` : n.opType;
    ops[k] = (ops[k] ?? 0) + 1;
  }
  const byDtype: Record<string, { count: number; bytes: number }> = {};
  let total = 0, bytes = 0;
  const external = new Set<string>();
  for (const v of g.initializers) {
    const init = v.initializer!;
    const n = sizeOf(init.shape);
    const e = (byDtype[init.dtype] ??= { count: 0, bytes: 0 });
    e.count += n; e.bytes += init.byteLength;
    total += n; bytes += init.byteLength;
    if (init.external) external.add(init.external.path);
  }
  return {
    file: m.path, producer: m.producer || 'unknown', irVersion: m.irVersion,
    opsets: Object.fromEntries([...g.opsets].map(([d, v]) => [d || 'ai.onnx', v])),
    inputs: io(g.inputs), outputs: io(g.outputs), nodes: g.nodes.length,
    ops: Object.fromEntries(Object.entries(ops).sort(([, a], [, b]) => b - a)),
    parameters: { total, bytes, byDtype },
    externalData: [...external],
    architecture: detectArchitecture(g, ops),
    inferenceError,
  };
}

/**
 * Guess the decoder family from what exporters emit. LLaMA-like: RMSNorm (Pow·ReduceMean·Sqrt
 * without mean subtraction, or SimplifiedLayerNormalization), rotary embeddings (Sin/Cos or
 * cos/sin tables with Neg+Concat rotate_half), SiLU gating (Sigmoid·Mul). GPT-2: LayerNorm, GELU
 * (Tanh or Erf), learned positions (two embedding Gathers).
 */
export function detectArchitecture(g: Graph, ops: Record<string, number>): Architecture {
  const evidence: string[] = [];
  const has = (op: string) => (ops[op] ?? 0) > 0;
  const embeddingGathers = g.nodes.filter((n) => n.opType === 'Gather' && n.inputs[0]?.initializer && n.inputs[0].initializer.shape.length === 2);
  const layers = ops.Softmax ?? 0;
  // Vocabulary: the last dim of the logits output; the token embedding is the table with that many rows.
  const logits = g.outputs.find((v) => v.name === 'logits') ?? g.outputs[0];
  const vocabDim = logits?.type?.shape.at(-1);
  const tables = embeddingGathers.map((n) => n.inputs[0]!.initializer!.shape);
  const emb = tables.find((s) => s[0] === vocabDim) ?? [...tables].sort((a, b) => b[0] - a[0])[0];
  const layerNorm = has('LayerNormalization') || (has('ReduceMean') && has('Sub') && has('Pow'));
  const rms = has('SimplifiedLayerNormalization') || has('com.microsoft.SimplifiedLayerNormalization') ||
    (has('Pow') && has('ReduceMean') && has('Sqrt') && !has('LayerNormalization') && !(ops.Sub >= layers && layers > 0));
  const rotary = (has('Neg') && has('Concat') && (has('Sin') || has('Cos') || has('Slice')));
  const silu = has('Sigmoid') && has('Mul');
  const gelu = has('Tanh') || has('Erf') || has('Gelu') || has('com.microsoft.FastGelu');
  let family: Architecture['family'] = 'unknown';
  if (rms && rotary && silu) {
    family = 'llama';
    evidence.push('RMSNorm (no mean subtraction)', 'rotary embeddings (rotate_half)', 'SiLU-gated MLP');
  } else if (layerNorm && gelu && embeddingGathers.length >= 2) {
    family = 'gpt2';
    evidence.push('LayerNorm', 'GELU', 'learned position embeddings');
  }
  if (layers) evidence.push(`${layers} attention softmaxes`);
  return { family, layers: layers || undefined, vocab: emb?.[0], hidden: emb?.[1], evidence };
}

export function formatSummary(s: ModelSummary): string {
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;
  const L: string[] = [];
  L.push(`${s.file}`);
  L.push(`  producer     ${s.producer} (IR ${s.irVersion})`);
  L.push(`  opsets       ${Object.entries(s.opsets).map(([d, v]) => `${d} ${v}`).join(', ')}`);
  const a = s.architecture;
  L.push(`  architecture ${a.family}${a.layers ? `, ${a.layers} layers` : ''}${a.hidden ? `, hidden ${a.hidden}` : ''}${a.vocab ? `, vocab ${a.vocab}` : ''}${a.evidence.length ? ` (${a.evidence.join('; ')})` : ''}`);
  L.push('  inputs');
  for (const i of s.inputs) L.push(`    ${i.name.padEnd(32)} ${i.dtype}${i.shape}`);
  L.push('  outputs');
  for (const o of s.outputs) L.push(`    ${o.name.padEnd(32)} ${o.dtype}${o.shape}`);
  L.push(`  parameters   ${s.parameters.total.toLocaleString('en-US')} in ${mb(s.parameters.bytes)}` +
    (s.externalData.length ? ` (external: ${s.externalData.map((p) => p.split('/').pop()).join(', ')})` : ''));
  for (const [d, e] of Object.entries(s.parameters.byDtype)) L.push(`    ${d.padEnd(12)} ${e.count.toLocaleString('en-US').padStart(14)}  ${mb(e.bytes)}`);
  L.push(`  nodes        ${s.nodes}`);
  L.push(`    ${Object.entries(s.ops).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  if (s.inferenceError) L.push(`  !! shape inference failed: ${s.inferenceError}`);
  return L.join('\n');
}
