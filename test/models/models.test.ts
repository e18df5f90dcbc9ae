// Checks the ONNX exports in models/ with onnxruntime-node: they load, the with-past and no-past
// exports agree, KV-cache decoding from an empty past reproduces full-prompt logits, left padding
// does not change the logits of real tokens, and the held-out bits/byte match models/data/metrics.json.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MODELS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models');
const TOL = 1e-4;

interface ModelInfo {
  arch: string;
  trained: boolean;
  num_layers: number;
  num_kv_heads: number;
  head_dim: number;
  vocab_size: number;
  bos: number;
  pad: number;
  files: { with_past: string; no_past?: string; external?: string };
}

const manifest = JSON.parse(readFileSync(join(MODELS, 'manifest.json'), 'utf8')) as Record<string, ModelInfo>;
const metrics = JSON.parse(readFileSync(join(MODELS, 'data', 'metrics.json'), 'utf8')) as {
  bits_per_byte: Record<string, number>;
  procedure: { bytes: number; chunk: number };
};
const heldout = readFileSync(join(MODELS, 'data', 'heldout.txt'));

const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 2, interOpNumThreads: 1 };
const sessions = new Map<string, ort.InferenceSession>();
async function session(file: string): Promise<ort.InferenceSession> {
  let s = sessions.get(file);
  if (!s) {
    s = await ort.InferenceSession.create(join(MODELS, file), opts);
    sessions.set(file, s);
  }
  return s;
}

const i64 = (vals: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(vals.map(BigInt)), dims);

/** Tokens of a short code prompt: [BOS] + UTF-8 bytes. */
function promptTokens(m: ModelInfo, text: string): number[] {
  return [m.bos, ...Buffer.from(text, 'utf8')];
}

type Past = Record<string, ort.Tensor>;

function emptyPast(m: ModelInfo, batch: number): Past {
  const past: Past = {};
  for (let i = 0; i < m.num_layers; i++) {
    for (const kv of ['key', 'value']) {
      past[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [batch, m.num_kv_heads, 0, m.head_dim]);
    }
  }
  return past;
}

/** One step of the with-past export; returns logits [b, s, V] and the new past. */
async function stepWithPast(
  s: ort.InferenceSession,
  m: ModelInfo,
  ids: number[][],
  mask: number[][],
  pos: number[][],
  past: Past,
): Promise<{ logits: ort.Tensor; past: Past }> {
  const b = ids.length;
  const out = await s.run({
    input_ids: i64(ids.flat(), [b, ids[0].length]),
    attention_mask: i64(mask.flat(), [b, mask[0].length]),
    position_ids: i64(pos.flat(), [b, pos[0].length]),
    ...past,
  });
  const next: Past = {};
  for (let i = 0; i < m.num_layers; i++) {
    for (const kv of ['key', 'value']) next[`past_key_values.${i}.${kv}`] = out[`present.${i}.${kv}`];
  }
  return { logits: out.logits, past: next };
}

/** Row `t` of sequence `bi` of logits [b, s, V]. */
function row(logits: ort.Tensor, bi: number, t: number): Float32Array {
  const [, s, v] = logits.dims;
  const d = logits.data as Float32Array;
  return d.subarray((bi * s + t) * v, (bi * s + t + 1) * v);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

const PROMPT = 'def fibonacci(n):\n    if n < 2:\n        return n\n';
const PROMPT2 = 'import os\nclass A:\n';

afterAll(async () => {
  for (const s of sessions.values()) await s.release();
});

describe('models/*.onnx', () => {
  it('every shipped .onnx loads and has the HF input/output names', async () => {
    const files = readdirSync(MODELS).filter((f) => f.endsWith('.onnx'));
    expect(files.length).toBeGreaterThanOrEqual(8);
    for (const f of files) {
      const s = await session(f);
      expect(s.inputNames.slice(0, 3)).toEqual(['input_ids', 'attention_mask', 'position_ids']);
      expect(s.outputNames[0]).toBe('logits');
      const name = f.replace(/\.(no-past|external)\.onnx$|\.onnx$/, '');
      const m = manifest[name];
      expect(m, f).toBeDefined();
      if (f.endsWith('.no-past.onnx')) {
        expect(s.inputNames.length).toBe(3);
        expect(s.outputNames.length).toBe(1);
      } else {
        expect(s.inputNames.length).toBe(3 + 2 * m.num_layers);
        expect(s.inputNames[3]).toBe('past_key_values.0.key');
        expect(s.inputNames[4]).toBe('past_key_values.0.value');
        expect(s.outputNames.length).toBe(1 + 2 * m.num_layers);
        expect(s.outputNames[1]).toBe('present.0.key');
        expect(s.outputNames[2]).toBe('present.0.value');
      }
    }
  });

  for (const [name, m] of Object.entries(manifest)) {
    describe(name, () => {
      const toks = promptTokens(m, PROMPT);
      const n = toks.length;
      let full: ort.Tensor; // with-past export, whole prompt from an empty past

      beforeAll(async () => {
        const s = await session(m.files.with_past);
        full = (await stepWithPast(s, m, [toks], [toks.map(() => 1)], [range(0, n)], emptyPast(m, 1))).logits;
        expect(full.dims).toEqual([1, n, m.vocab_size]);
      });

      if (m.files.no_past) {
        it('with-past (empty past) and no-past exports agree on logits', async () => {
          const s = await session(m.files.no_past!);
          const out = await s.run({
            input_ids: i64(toks, [1, n]),
            attention_mask: i64(toks.map(() => 1), [1, n]),
            position_ids: i64(range(0, n), [1, n]),
          });
          expect(maxAbsDiff(out.logits.data as Float32Array, full.data as Float32Array)).toBeLessThan(TOL);
        });
      }

      if (m.files.external) {
        it('external-data copy gives the same logits', async () => {
          const s = await session(m.files.external!);
          const out = await stepWithPast(s, m, [toks], [toks.map(() => 1)], [range(0, n)], emptyPast(m, 1));
          expect(maxAbsDiff(out.logits.data as Float32Array, full.data as Float32Array)).toBe(0);
        });
      }

      it('token-by-token KV-cache decoding reproduces full-prompt logits', async () => {
        const s = await session(m.files.with_past);
        let past = emptyPast(m, 1);
        let worst = 0;
        // first a chunk of 5 tokens (prefill), then one token at a time
        const first = 5;
        let r = await stepWithPast(s, m, [toks.slice(0, first)], [range(0, first).map(() => 1)], [range(0, first)], past);
        for (let t = 0; t < first; t++) worst = Math.max(worst, maxAbsDiff(row(r.logits, 0, t), row(full, 0, t)));
        past = r.past;
        for (let t = first; t < n; t++) {
          r = await stepWithPast(s, m, [[toks[t]]], [range(0, t + 1).map(() => 1)], [[t]], past);
          expect(r.past['past_key_values.0.key'].dims).toEqual([1, m.num_kv_heads, t + 1, m.head_dim]);
          worst = Math.max(worst, maxAbsDiff(row(r.logits, 0, 0), row(full, 0, t)));
          past = r.past;
        }
        expect(worst).toBeLessThan(TOL);
      });

      it('a left-padded batch of 2 gives the same logits for real tokens as unpadded runs', async () => {
        const s = await session(m.files.with_past);
        const a = toks;
        const b = promptTokens(m, PROMPT2);
        const alone = (await stepWithPast(s, m, [b], [b.map(() => 1)], [range(0, b.length)], emptyPast(m, 1))).logits;
        const padN = a.length - b.length;
        const bPadded = [...Array(padN).fill(m.pad), ...b];
        const maskB = [...Array(padN).fill(0), ...b.map(() => 1)];
        // HF: position_ids = cumsum(mask) - 1, pads get 1
        const posB = maskB.map((v, i) => (v ? i - padN : 1));
        const r = await stepWithPast(s, m, [a, bPadded], [a.map(() => 1), maskB], [range(0, a.length), posB], emptyPast(m, 2));
        let worst = 0;
        for (let t = 0; t < a.length; t++) worst = Math.max(worst, maxAbsDiff(row(r.logits, 0, t), row(full, 0, t)));
        for (let t = 0; t < b.length; t++) worst = Math.max(worst, maxAbsDiff(row(r.logits, 1, padN + t), row(alone, 0, t)));
        // and two padded decode steps through the cache
        let past = r.past;
        const maskA = a.map(() => 1);
        const extA = [...a];
        const extB = [...b];
        for (const [ta, tb] of [
          [32, 10],
          [10, 32],
        ]) {
          maskA.push(1);
          maskB.push(1);
          const step = await stepWithPast(s, m, [[ta], [tb]], [maskA, maskB], [[extA.length], [extB.length]], past);
          past = step.past;
          extA.push(ta);
          extB.push(tb);
          const refA = await stepWithPast(s, m, [extA], [extA.map(() => 1)], [range(0, extA.length)], emptyPast(m, 1));
          const refB = await stepWithPast(s, m, [extB], [extB.map(() => 1)], [range(0, extB.length)], emptyPast(m, 1));
          worst = Math.max(worst, maxAbsDiff(row(step.logits, 0, 0), row(refA.logits, 0, extA.length - 1)));
          worst = Math.max(worst, maxAbsDiff(row(step.logits, 1, 0), row(refB.logits, 0, extB.length - 1)));
        }
        expect(worst).toBeLessThan(TOL);
      });

      if (m.trained && m.files.no_past) {
        it('held-out bits/byte matches models/data/metrics.json within 1%', async () => {
          // Procedure (see models/README.md): the first 16384 bytes of heldout.txt in 64 chunks of
          // 256 bytes; each chunk is fed as [BOS] + chunk[0..255) with position_ids 0..255, and the
          // logits at position t predict chunk[t]. bits/byte = mean cross-entropy (log2) over all bytes.
          const { bytes, chunk } = metrics.procedure;
          const s = await session(m.files.no_past!);
          const nChunks = bytes / chunk;
          const perRun = 8;
          let bits = 0;
          for (let c0 = 0; c0 < nChunks; c0 += perRun) {
            const ids: number[] = [];
            for (let c = c0; c < c0 + perRun; c++) {
              ids.push(m.bos, ...heldout.subarray(c * chunk, (c + 1) * chunk - 1));
            }
            const out = await s.run({
              input_ids: i64(ids, [perRun, chunk]),
              attention_mask: i64(ids.map(() => 1), [perRun, chunk]),
              position_ids: i64(Array.from({ length: perRun }, () => range(0, chunk)).flat(), [perRun, chunk]),
            });
            for (let bi = 0; bi < perRun; bi++) {
              for (let t = 0; t < chunk; t++) {
                const l = row(out.logits, bi, t);
                let mx = -Infinity;
                for (const x of l) mx = Math.max(mx, x);
                let z = 0;
                for (const x of l) z += Math.exp(x - mx);
                const target = heldout[(c0 + bi) * chunk + t];
                bits += (Math.log(z) + mx - l[target]) / Math.LN2;
              }
            }
          }
          const bpb = bits / bytes;
          const expected = metrics.bits_per_byte[name];
          expect(expected).toBeGreaterThan(0);
          expect(Math.abs(bpb - expected) / expected).toBeLessThan(0.01);
        });
      }
    });
  }

  it('target (coder) is clearly better than the draft on held-out text', () => {
    expect(metrics.bits_per_byte['coder']).toBeLessThan(metrics.bits_per_byte['coder-draft'] - 0.1);
  });

  it('the external data files exist next to their models', () => {
    for (const m of Object.values(manifest)) {
      const f = (m.files as Record<string, string>).external_data;
      if (f) expect(existsSync(join(MODELS, f))).toBe(true);
    }
  });
});
