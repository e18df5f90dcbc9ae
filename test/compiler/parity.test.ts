/**
 * Whole decoder exports through lfc's reference interpreter vs onnxruntime-node, on seeded random
 * inputs: logits and present KV must agree to 1e-4 (max abs), with and without a KV past, and for
 * left-padded batches.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../../compiler/ops/index.js';
import { importModelFile } from '../../compiler/onnx/import.js';
import { inferShapes } from '../../compiler/ir/infer.js';
import { run } from '../../compiler/ir/interpret.js';
import { decoderFeeds, maxAbsDiff, runOrt } from '../helpers/decoder.js';

const MODELS = join(import.meta.dirname, '../../models');
const files = existsSync(MODELS) ? readdirSync(MODELS).filter((f) => f.endsWith('.onnx')).sort() : [];

const cases = [
  { label: 'prefill, batch 2, no past', batch: 2, seq: 5, past: 0 },
  { label: 'decode step with past 6', batch: 2, seq: 1, past: 6 },
  { label: 'chunk of 3 with past 4', batch: 1, seq: 3, past: 4 },
  { label: 'left-padded batch', batch: 2, seq: 6, past: 0, leftPad: [3, 0] },
];

describe.each(files)('%s: lfc reference interpreter vs onnxruntime', (file) => {
  const path = join(MODELS, file);
  const withPast = !file.includes('no-past');
  it.each(cases.filter((c) => withPast || c.past === 0))('$label', async (c) => {
    const { graph } = importModelFile(path);
    inferShapes(graph);
    const vocabDim = graph.outputs[0].type!.shape.at(-1);
    const vocab = typeof vocabDim === 'number' ? Math.min(vocabDim, 259) : 259;
    const feeds = decoderFeeds(graph, { ...c, vocab, seed: 1234 });
    const ours = run(graph, feeds);
    const ref = await runOrt(path, feeds);
    expect([...ours.keys()].sort()).toEqual([...ref.keys()].sort());
    for (const [name, t] of ours) {
      const err = maxAbsDiff(t, ref.get(name)!);
      expect(err, `${name} max abs error`).toBeLessThanOrEqual(1e-4);
    }
  });
});
