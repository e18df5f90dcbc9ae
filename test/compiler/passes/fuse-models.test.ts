/**
 * The fusion pipeline on every shipped export (models/*.onnx): the graph after CANONICALIZE + FUSE
 * computes what the imported graph computes (reference interpreter, random decoder inputs, 1e-5),
 * and the LLaMA / GPT-2 exports fuse completely: every norm, every MLP activation, every weight
 * product, with no near misses reported.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../../../compiler/ops/index.js';
import type { Graph } from '../../../compiler/ir/graph.js';
import { run } from '../../../compiler/ir/interpret.js';
import { importModelFile } from '../../../compiler/onnx/import.js';
import { CANONICALIZE } from '../../../compiler/passes/canonicalize.js';
import { runPipeline, type FusionEvent } from '../../../compiler/passes/driver.js';
import { FUSE } from '../../../compiler/passes/pipeline.js';
import { decoderFeeds, maxAbsDiff } from '../../helpers/decoder.js';

const MODELS = join(import.meta.dirname, '../../../models');
const files = existsSync(MODELS) ? readdirSync(MODELS).filter((f) => f.endsWith('.onnx')).sort() : [];
const manifest = existsSync(join(MODELS, 'manifest.json'))
  ? (JSON.parse(readFileSync(join(MODELS, 'manifest.json'), 'utf8')) as Record<string, { arch: string; num_layers: number; vocab_size: number }>)
  : {};

/** The manifest entry of a file (coder-draft.no-past.onnx → coder-draft). */
const infoOf = (file: string) => manifest[file.replace(/(\.no-past)?\.onnx$/, '')];

/** Op counts: 'lfc.AddNorm/rms', 'lfc.Linear/gelu_tanh', 'Sigmoid', ... */
function opCounts(g: Graph): Map<string, number> {
  const c = new Map<string, number>();
  for (const n of g.nodes) {
    const variant = (n.attrs.get('kind') ?? n.attrs.get('activation')) as string | undefined;
    const k = `${n.domain ? `${n.domain}.` : ''}${n.opType}${variant ? `/${variant}` : ''}`;
    c.set(k, (c.get(k) ?? 0) + 1);
  }
  return c;
}

const count = (c: Map<string, number>, prefix: string): number =>
  [...c].filter(([k]) => k === prefix || k.startsWith(`${prefix}/`)).reduce((s, [, n]) => s + n, 0);

describe.each(files)('%s', (file) => {
  const info = infoOf(file);
  const original = importModelFile(join(MODELS, file)).graph;
  const fused = importModelFile(join(MODELS, file)).graph;
  let events: FusionEvent[] = [];
  runPipeline(fused, CANONICALIZE);
  events = runPipeline(fused, FUSE);
  const counts = opCounts(fused);

  it('computes the same outputs after fusion (interpreter, 1e-5)', () => {
    const spec = { batch: 2, seq: 3, past: file.includes('no-past') ? 0 : 2, vocab: info?.vocab_size ?? 256, seed: 7 };
    const feedsA = decoderFeeds(original, spec);
    const a = run(original, feedsA);
    const b = run(fused, decoderFeeds(fused, spec));
    for (const [name, t] of a) {
      const u = b.get(name);
      expect(u, `output ${name}`).toBeDefined();
      expect(maxAbsDiff(t, u!), `output ${name}`).toBeLessThan(1e-5);
    }
  });

  it('reports no near misses', () => {
    expect(events.filter((e) => e.outcome === 'missed').map((e) => `${e.rule} ${e.node}: ${e.detail}`)).toEqual([]);
  });

  it.runIf(info?.arch === 'llama')('fuses every RMSNorm, residual Add, SwiGLU and weight product (LLaMA)', () => {
    const L = info!.num_layers;
    expect(count(counts, 'lfc.RMSNorm') + count(counts, 'lfc.AddNorm/rms')).toBe(2 * L + 1);
    expect(count(counts, 'lfc.AddNorm/rms')).toBe(2 * L);
    expect(count(counts, 'lfc.GatedAct/silu')).toBe(L);
    // per layer: merged QKV, o_proj, gate, up, down; plus lm_head
    expect(count(counts, 'lfc.Linear')).toBe(5 * L + 1);
    expect(count(counts, 'Split')).toBe(L);
    for (const op of ['Sigmoid', 'Pow', 'ReduceMean', 'Sqrt', 'Reciprocal', 'Tanh', 'Erf', 'LayerNormalization', 'Gemm']) {
      expect(counts.get(op) ?? 0, op).toBe(0);
    }
    // MatMuls left: attention (QKᵀ and ·V per layer) and RoPE's frequency product.
    expect(counts.get('MatMul') ?? 0).toBe(2 * L + 1);
  });

  it.runIf(info?.arch === 'gpt2')('fuses every LayerNorm, residual Add, GELU and weight product (GPT-2)', () => {
    const L = info!.num_layers;
    expect(count(counts, 'lfc.LayerNorm') + count(counts, 'lfc.AddNorm/layer')).toBe(2 * L + 1);
    expect(count(counts, 'lfc.Linear/gelu_tanh') + count(counts, 'lfc.Activation/gelu_tanh')).toBe(L);
    // per layer: c_attn, c_proj, c_fc, mlp c_proj; plus the tied lm_head
    expect(count(counts, 'lfc.Linear')).toBe(4 * L + 1);
    for (const op of ['Tanh', 'Pow', 'ReduceMean', 'LayerNormalization', 'Gemm']) expect(counts.get(op) ?? 0, op).toBe(0);
  });

  it('records a fusion event per fused op', () => {
    const fusedOps = [...counts].filter(([k]) => k.startsWith('lfc.')).reduce((s, [, n]) => s + n, 0);
    expect(events.filter((e) => e.outcome === 'fused').length).toBeGreaterThanOrEqual(fusedOps);
  });
});
