/**
 * The tuning database: bucket keys, JSON round trip and its errors, the committed files parse,
 * kernelFor falls back to the family chooser when the DB has nothing for a step (or the target is
 * 'all', or the entries do not compose), and honours the DB's choices when it does: linear
 * buckets compose into GEMV + tiles + split-K, attention decode/prefill parts by most wins;
 * RenderedKernel.tuning and the report line say where configs came from.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { kernelFor } from '../../compiler/codegen/families/index.js';
import * as attention from '../../compiler/codegen/families/attention.js';
import * as linear from '../../compiler/codegen/families/linear.js';
import type { CodegenContext } from '../../compiler/codegen/kernel.js';
import { dbDir, emptyDb, loadDb, makeEntry, parseDb, saveDb, setTuningDb, tuningReportLine, type TuneDb } from '../../compiler/tune/db.js';
import { problemFor, problemKey, type AttentionChoice, type LinearChoice, type TuneProblem } from '../../compiler/tune/spaces.js';
import type { Step } from '../../runtime/plan.js';

const ctx = (target: CodegenContext['target']): CodegenContext => ({
  dtype: 'bfloat16', target, kv: { blockSize: 16, kvHeads: 8, headDim: 128 }, limits: { maxTokens: 512, maxSeqs: 64, maxContext: 4096, numSms: 132 },
});
const lin: Extract<Step, { kind: 'linear' }> = { kind: 'linear', x: 'x', weight: 'w', outs: [{ buffer: 'y', start: 0, end: 4096 }], K: 4096, N: 4096, activation: 'silu' };
const att: Extract<Step, { kind: 'attention' }> = { kind: 'attention', layer: 0, q: 'q', out: 'o', heads: 32, kvHeads: 8, headDim: 128, scale: 0.088 };

const linP = (T: number): TuneProblem => problemFor(lin, 'bfloat16', { kind: 'prefill', T })!;
const gemv = (cols: number, warps: number): LinearChoice => ({ path: 'gemv', cols, warps });
const gemm = (bm: number, bn: number, wm: number, wn: number, stages: number, split = false): LinearChoice => ({ path: 'gemm', tile: { bm, bn, bk: 32, warpsM: wm, warpsN: wn, stages }, splitK: split ? { maxSplits: 4, minSlices: 4 } : null });
const measured = (ms: number) => ({ source: 'measured' as const, ms, floorMs: ms / 2, ratioToFloor: 2 });

function db(entries: ReturnType<typeof makeEntry>[], gpu = 'h100'): TuneDb {
  const d = emptyDb(gpu);
  for (const e of entries) d.entries[e.key] = e;
  return d;
}

afterEach(() => { setTuningDb('h100', undefined); setTuningDb('a100', undefined); });

describe('bucket keys', () => {
  it('T in powers of two, context buckets for attention', () => {
    expect(problemKey(problemFor(lin, 'bfloat16', { kind: 'decode', B: 3, context: 100 })!)).toBe('linear|bf16|N4096|K4096|dense|T4');
    expect(problemKey(problemFor(lin, 'float16', { kind: 'prefill', T: 100 })!)).toBe('linear|f16|N4096|K4096|dense|T128');
    expect(problemKey(problemFor({ ...lin, format: { kind: 'int4_group', groupSize: 64, scale: 's' } }, 'bfloat16', { kind: 'prefill', T: 1 })!)).toBe('linear|bf16|N4096|K4096|int4_groupg64|T1');
    // decode: B sequences × 1 token after `context` cached: context after the step is context + 1.
    expect(problemKey(problemFor(att, 'bfloat16', { kind: 'decode', B: 8, context: 1024 })!)).toBe('attention|bf16|D128|H32|KV8|decode|T8|C2048');
    expect(problemKey(problemFor(att, 'bfloat16', { kind: 'decode', B: 8, context: 1023 })!)).toBe('attention|bf16|D128|H32|KV8|decode|T8|C1024');
    expect(problemKey(problemFor(att, 'bfloat16', { kind: 'prefill', T: 300 })!)).toBe('attention|bf16|D128|H32|KV8|prefill|T512|C512');
    expect(problemFor({ kind: 'add', a: 'a', b: 'b', out: 'c', features: 8 } as Step, 'bfloat16', { kind: 'prefill', T: 4 })).toBeUndefined();
  });
});

describe('database files', () => {
  it('round trip through JSON, entries sorted by key', () => {
    const d = db([makeEntry(linP(64), gemm(64, 128, 2, 2, 3), measured(0.05)), makeEntry(linP(1), gemv(4, 8), { source: 'model', floorMs: 0.01, predictedMs: 0.02 })]);
    const file = join(mkdtempSync(join(tmpdir(), 'lfc-tune-db-')), 'h100.json');
    saveDb(file, d);
    const back = loadDb(file);
    expect(back).toEqual(JSON.parse(JSON.stringify(d)));
    expect(Object.keys(JSON.parse(readFileSync(file, 'utf8')).entries)).toEqual([...Object.keys(d.entries)].sort());
    expect(loadDb(join(file, '..', 'missing.json'), 'a100')).toEqual(emptyDb('a100'));
  });

  it('reject a malformed file with a message naming the field', () => {
    const e = makeEntry(linP(1), gemv(4, 8), measured(0.1));
    expect(() => parseDb('{', 'x.json')).toThrow(/x.json: not valid JSON/);
    expect(() => parseDb(JSON.stringify({ ...emptyDb('h100'), schema: 'other' }), 'x.json')).toThrow(/'schema' is "other"/);
    expect(() => parseDb(JSON.stringify({ ...emptyDb('h100'), entries: { wrong: e } }), 'x.json')).toThrow(/entry 'wrong' has key/);
    expect(() => parseDb(JSON.stringify({ ...emptyDb('h100'), entries: { [e.key]: { ...e, source: 'guess' } } }), 'x.json')).toThrow(/source must be 'measured' or 'model'/);
  });

  it('the committed databases parse and name their GPU', () => {
    const dir = dbDir()!;
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(files).toEqual(expect.arrayContaining(['a100.json', 'h100.json']));
    for (const f of files) expect(parseDb(readFileSync(join(dir, f), 'utf8'), f).gpu).toBe(f.replace('.json', ''));
  });
});

describe('kernelFor and the database', () => {
  it('falls back to the family chooser when the DB has no entry for the step, or the target is all', () => {
    setTuningDb('h100', db([makeEntry(linP(64), gemm(64, 64, 2, 2, 2), measured(0.1))]));
    const other = { ...lin, N: 1024 };
    const k = kernelFor(other, ctx('h100'));
    expect(k.name).toBe(linear.render(linear.configForLinear(other, ctx('h100'))).name);
    expect(k.tuning).toBeUndefined();
    expect(kernelFor(lin, ctx('all')).tuning).toBeUndefined();
    expect(kernelFor(lin, ctx('all')).name).toBe(linear.render(linear.configForLinear(lin, ctx('all'))).name);
    // a100 has its own (empty) database.
    setTuningDb('a100', emptyDb('a100'));
    expect(kernelFor(lin, ctx('a100')).tuning).toBeUndefined();
  });

  it('honours linear bucket winners: GEMV up to the last GEMV bucket, one tile per run, split-K up to its last bucket', () => {
    setTuningDb('h100', db([
      makeEntry(linP(1), gemv(4, 8), measured(0.02)),
      makeEntry(linP(2), gemv(2, 4), measured(0.03)),
      makeEntry(linP(64), gemm(64, 128, 2, 2, 3, true), measured(0.05)),
      makeEntry(linP(128), gemm(64, 128, 2, 2, 3), measured(0.07)),
      makeEntry(linP(1024), gemm(128, 128, 2, 4, 4), measured(0.3)),
    ]));
    const k = kernelFor(lin, ctx('h100'));
    const c = k.config as linear.LinearConfig;
    expect(c.gemv).toEqual({ maxT: 2, cols: 2, warps: 4 });
    expect(c.tiles).toEqual([
      { bm: 64, bn: 128, bk: 32, warpsM: 2, warpsN: 2, stages: 3, maxT: 128 },
      { bm: 128, bn: 128, bk: 32, warpsM: 2, warpsN: 4, stages: 4, maxT: null },
    ]);
    expect(c.splitK).toEqual({ maxSplits: 4, minSlices: 4, maxT: 64, maxN: 4096 });
    expect(c.activation).toBe('silu'); // the step's epilogue, whatever the DB
    expect(k.tuning).toEqual({ source: 'measured', gpu: 'h100', entries: ['linear|bf16|N4096|K4096|dense|T1', 'linear|bf16|N4096|K4096|dense|T1024', 'linear|bf16|N4096|K4096|dense|T128', 'linear|bf16|N4096|K4096|dense|T2', 'linear|bf16|N4096|K4096|dense|T64'] });
    expect(tuningReportLine([k, kernelFor(att, ctx('h100'))])).toMatch(/^Configs: 1 unit\(s\) from measurement \(compiler\/tune\/db\/h100.json\): lfc_linear.*; 0 from the analytic model; 1 from the families' choosers\.$/);
  });

  it('a tile bucket first keeps GEMV below it; a model entry makes the config model-sourced', () => {
    setTuningDb('h100', db([makeEntry(linP(4), gemm(32, 64, 1, 2, 2), { source: 'model', floorMs: 0.01, predictedMs: 0.02 })]));
    const k = kernelFor(lin, ctx('h100'));
    expect((k.config as linear.LinearConfig).gemv.maxT).toBe(2);
    expect((k.config as linear.LinearConfig).tiles).toEqual([{ bm: 32, bn: 64, bk: 32, warpsM: 1, warpsN: 2, stages: 2, maxT: null }]);
    expect(k.tuning?.source).toBe('model');
    expect(tuningReportLine([k])).toMatch(/0 unit\(s\) from measurement.*1 from the analytic model: lfc_linear/);
  });

  it('honours attention winners: the decode part winning most buckets, the prefill tile', () => {
    const ap = (s: Parameters<typeof problemFor>[2]) => problemFor(att, 'bfloat16', s)!;
    const X: AttentionChoice = { mode: 'decode', tile: { warps: 1, rowTilesPerWarp: 1, kvWarps: 2, blockN: 32, stages: 3 }, split: { maxSplits: 16, minKeysPerSplit: 128, ctasPerSm: 8 } };
    const Y: AttentionChoice = { mode: 'decode', tile: { warps: 1, rowTilesPerWarp: 1, kvWarps: 4, blockN: 16, stages: 2 }, split: { maxSplits: 8, minKeysPerSplit: 512, ctasPerSm: 2 } };
    const P: AttentionChoice = { mode: 'prefill', tile: { warps: 4, rowTilesPerWarp: 1, kvWarps: 2, blockN: 32, stages: 2 } };
    setTuningDb('h100', db([
      makeEntry(ap({ kind: 'decode', B: 1, context: 1024 }), X, measured(0.02)),
      makeEntry(ap({ kind: 'decode', B: 1, context: 4096 }), X, measured(0.05)),
      makeEntry(ap({ kind: 'decode', B: 32, context: 4096 }), Y, measured(0.4)),
      makeEntry(ap({ kind: 'prefill', T: 2048 }), P, measured(0.9)),
    ]));
    const k = kernelFor(att, ctx('h100'));
    const c = k.config as attention.AttentionConfig;
    expect(c.decode).toEqual({ ...attention.configForAttention(att, ctx('h100')).decode, ...X.tile, ...X.split });
    expect(c.prefill).toEqual(P.tile);
    expect(k.tuning?.entries).toHaveLength(4);
  });

  it('ignores entries that do not compose (warns, uses the chooser)', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    setTuningDb('h100', db([makeEntry(linP(64), gemm(64, 128, 2, 2, 7), measured(0.05))]));
    const k = kernelFor(lin, ctx('h100'));
    expect(k.tuning).toBeUndefined();
    expect(k.name).toBe(linear.render(linear.configForLinear(lin, ctx('h100'))).name);
    expect(warn.mock.calls[0][0]).toMatch(/do not compose .*stages must be 2..4/);
    warn.mockRestore();
  });
});

// A database written by hand in a folder picked by $LFC_TUNE_DB.
describe('LFC_TUNE_DB', () => {
  it('points kernelFor at another folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lfc-tune-dir-'));
    writeFileSync(join(dir, 'h100.json'), JSON.stringify(db([makeEntry(linP(1), gemv(1, 2), measured(0.01))])));
    const { clearTuningDbCache } = await import('../../compiler/tune/db.js');
    const old = process.env.LFC_TUNE_DB;
    process.env.LFC_TUNE_DB = dir;
    clearTuningDbCache();
    try {
      const k = kernelFor(lin, ctx('h100'));
      expect((k.config as linear.LinearConfig).gemv).toEqual({ maxT: 1, cols: 1, warps: 2 });
    } finally {
      if (old === undefined) delete process.env.LFC_TUNE_DB; else process.env.LFC_TUNE_DB = old;
      clearTuningDbCache();
    }
  });
});
