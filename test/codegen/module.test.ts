/**
 * The generated TypeScript module (compiler/codegen/module.ts), type-checked as a user project
 * would see it: a temporary folder with the generated coder/index.ts, an app that uses it, a
 * strict nodenext tsconfig, and node_modules/lfc resolving 'lfc/runtime'.
 *
 * node_modules/lfc is a link to this repository, so 'lfc/runtime' resolves through package.json
 * exports to the real built types (dist/runtime/index.d.ts; `npm test` builds dist first). Only
 * when dist is missing (or predates loadCudaBackend) does it fall back to a stub package whose
 * .d.ts copies the runtime's signatures by hand; update STUB when they change.
 *
 * With dist present, the module also runs: transpiled by esbuild beside a written artifact, it
 * finds its folder from import.meta.url and loads the reference backend.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileModel, writeArtifact } from '../../compiler/compile.js';
import { fileKey, generateModule } from '../../compiler/codegen/module.js';
import type { Plan } from '../../runtime/plan.js';

const ROOT = join(import.meta.dirname, '../..');
const MODEL = join(ROOT, 'models/coder.onnx');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const DIST_TYPES = join(ROOT, 'dist/runtime/index.d.ts');
/** LFC_TEST_STUB_RUNTIME=1 forces the stub (to check it still matches the real signatures). */
const USE_DIST = !process.env.LFC_TEST_STUB_RUNTIME && existsSync(DIST_TYPES) && readFileSync(DIST_TYPES, 'utf8').includes('loadCudaBackend');

/** Hand copy of the runtime's exports the generated module uses (fallback when dist is missing). */
const STUB = `
export interface PlanModelInfo { name: string; family: 'llama' | 'gpt2' | 'unknown'; vocab: number; hidden: number; layers: number; heads: number; kvHeads: number; headDim: number; maxPositions: number; bos?: number; eos?: number }
export interface Plan { schema: 'lfc.plan'; version: 1; model: PlanModelInfo; dtype: 'float32' | 'float16' | 'bfloat16'; steps: unknown[] }
export interface RaggedBatch { tokens: Int32Array; positions: Int32Array; seqStarts: Int32Array; contextLens: Int32Array; blockTables: Int32Array; maxBlocks: number; slotMapping: Int32Array; logitIndices: Int32Array }
export interface Backend {
  readonly plan: Plan;
  readonly numBlocks: number;
  readonly maxTokens: number;
  forward(batch: RaggedBatch): Float32Array;
  copyBlocks(pairs: readonly (readonly [number, number])[]): void;
}
export interface CudaBackendOptions { device?: number; numBlocks?: number; maxTokens?: number; maxSeqs?: number; emulator?: boolean; cudaGraphs?: boolean }
export declare function loadCudaBackend(dir: string, options?: CudaBackendOptions): Backend;
export interface Artifact { dir: string; plan: Plan; weights: Uint8Array }
export declare function loadArtifact(dir: string): Artifact;
export interface ReferenceOptions { numBlocks?: number; maxTokens?: number; onLinearInput?: (stepIndex: number, x: Float32Array, T: number, K: number) => void }
export declare class ReferenceBackend implements Backend {
  readonly plan: Plan;
  readonly numBlocks: number;
  readonly maxTokens: number;
  constructor(plan: Plan, weightsBin: Uint8Array, opts?: ReferenceOptions);
  forward(batch: RaggedBatch): Float32Array;
  copyBlocks(pairs: readonly (readonly [number, number])[]): void;
}
`;

interface TscResult { code: number; out: string }
function tsc(dir: string): TscResult {
  try {
    return { code: 0, out: execFileSync(process.execPath, [TSC, '-p', '.', '--pretty', 'false'], { cwd: dir, encoding: 'utf8' }) };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { code: err.status, out: `${err.stdout}${err.stderr}` };
  }
}

describe.skipIf(!existsSync(MODEL))('generated module', () => {
  let plan: Plan;
  let src: string;
  let dir: string;
  const companions = ['tokenizer.json', 'tokenizer_config.json'];

  beforeAll(() => {
    const r = compileModel(MODEL, { dtype: 'bfloat16' });
    expect(r.error).toBeUndefined();
    plan = r.plan!;
    src = generateModule(plan, { libraries: { gpu: 'libmodel.so', emu: 'libmodel-emu.so' }, files: companions });
    dir = mkdtempSync(join(tmpdir(), 'lfc-module-'));
    mkdirSync(join(dir, 'coder'));
    writeFileSync(join(dir, 'coder/index.ts'), src);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    mkdirSync(join(dir, 'node_modules/@types'), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules/@types/node'), join(dir, 'node_modules/@types/node'), 'dir');
    if (USE_DIST) symlinkSync(ROOT, join(dir, 'node_modules/lfc'), 'dir');
    else {
      mkdirSync(join(dir, 'node_modules/lfc'));
      writeFileSync(join(dir, 'node_modules/lfc/package.json'), JSON.stringify({ name: 'lfc', type: 'module', exports: { './runtime': { types: './runtime.d.ts' } } }));
      writeFileSync(join(dir, 'node_modules/lfc/runtime.d.ts'), STUB);
    }
    const m = plan.model;
    writeFileSync(join(dir, 'app.ts'), `
import { artifact, dtype, kv, load, loadReference, model, type Backend, type CudaBackendOptions, type ReferenceBackendOptions } from './coder/index.js';
const opts: CudaBackendOptions = { device: 0, maxTokens: 256, maxSeqs: 8, cudaGraphs: true };
export const gpu = (): Backend => load(opts);
export const emu = (): Backend => load({ emulator: true });
export const none = (): Backend => load();
const refOpts: ReferenceBackendOptions = { maxTokens: 16 };
export const ref = (): Backend => loadReference(refOpts);
export const refBlocks = (): number => loadReference().numBlocks;
const vocab: ${m.vocab} = model.vocab;
const family: '${m.family}' = model.family;
const layers: ${m.layers} = model.layers;
const heads: [${m.heads}, ${m.kvHeads}, ${m.headDim}] = [model.heads, model.kvHeads, model.headDim];
const act: 'bfloat16' = dtype;
const block: ${plan.kv.blockSize} = kv.blockSize;
const kvDtype: 'bfloat16' = kv.dtype;
const dir: string = artifact.dir;
const files: ['plan.json', 'weights.bin', 'libmodel.so', 'libmodel-emu.so', 'tokenizer.json', 'tokenizer_config.json'] =
  [artifact.plan, artifact.weights, artifact.library, artifact.emulatorLibrary, artifact.tokenizer, artifact.tokenizerConfig];
export const all = { vocab, family, layers, heads, act, block, kvDtype, dir, files };
`);
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
      files: ['coder/index.ts', 'app.ts'],
    }));
  }, 120_000);

  afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  it('exports typed constants and loaders with doc comments', () => {
    const m = plan.model;
    expect(src).toContain("from 'lfc/runtime'");
    expect(src).toMatch(/export const model = \{[^]*?vocab: \d+,[^]*?\} as const;/);
    expect(src).toContain(`name: '${m.name}'`);
    expect(src).toContain(`vocab: ${m.vocab},`);
    expect(src).toContain(`kvHeads: ${m.kvHeads},`);
    if (m.bos !== undefined) expect(src).toContain(`bos: ${m.bos},`);
    expect(src).toContain("export const dtype = 'bfloat16' as const;");
    expect(src).toContain('dir: dirname(fileURLToPath(import.meta.url)),');
    expect(src).toContain('export function load(options?: CudaBackendOptions): Backend {');
    expect(src).toContain('return loadCudaBackend(artifact.dir, options);');
    expect(src).toContain('export function loadReference(options?: ReferenceBackendOptions): ReferenceBackend {');
    for (const name of ['model', 'kv', 'dtype', 'artifact']) expect(src).toMatch(new RegExp(`\\*/\\nexport const ${name} =`));
    for (const name of ['load', 'loadReference']) expect(src).toMatch(new RegExp(`\\*/\\nexport function ${name}\\(`));
  });

  it('names only the libraries that were built, and defaults to the emulator when only it was', () => {
    const none = generateModule(plan, { libraries: {} });
    expect(none).not.toContain('library:');
    expect(none).not.toContain('emulatorLibrary:');
    expect(none).toContain('No library was built');
    const emuOnly = generateModule(plan, { libraries: { emu: 'libmodel-emu.so' } });
    expect(emuOnly).toContain("emulatorLibrary: 'libmodel-emu.so'");
    expect(emuOnly).toContain('return loadCudaBackend(artifact.dir, { emulator: true, ...options });');
    expect(fileKey('tokenizer_config.json')).toBe('tokenizerConfig');
    expect(fileKey('generation_config.json')).toBe('generationConfig');
    expect(() => generateModule(plan, { libraries: {}, files: ['plan.txt'] })).toThrow(/clashes with artifact.plan/);
  });

  it(`type-checks in a strict nodenext project against ${USE_DIST ? 'the built dist/runtime types' : 'the stub runtime types'}`, () => {
    const r = tsc(dir);
    expect(r.out).toBe('');
    expect(r.code).toBe(0);
  }, 60_000);

  it('rejects wrong usage', () => {
    writeFileSync(join(dir, 'misuse.ts'), `
import { load, model } from './coder/index.js';
load({ device: 'x' });
model.vocab = 1;
const d: 'float16' = '' as typeof import('./coder/index.js').dtype;
`);
    const cfg = JSON.parse(readFileSync(join(dir, 'tsconfig.json'), 'utf8'));
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ ...cfg, files: [...cfg.files, 'misuse.ts'] }));
    try {
      const r = tsc(dir);
      expect(r.code).not.toBe(0);
      const errors = r.out.split('\n').filter((l) => l.includes('error TS'));
      expect(errors.filter((l) => !l.startsWith('misuse.ts('))).toEqual([]);
      expect(errors.some((l) => l.startsWith('misuse.ts(3,') && l.includes('TS2322'))).toBe(true); // device: string
      expect(errors.some((l) => l.startsWith('misuse.ts(4,') && l.includes('TS2540'))).toBe(true); // read-only
      expect(errors.some((l) => l.startsWith('misuse.ts(5,') && l.includes('TS2322'))).toBe(true); // dtype literal
    } finally {
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(cfg));
      rmSync(join(dir, 'misuse.ts'));
    }
  }, 60_000);

  it.skipIf(!USE_DIST)('runs from its artifact folder: finds its files and loads the reference backend', async () => {
    const art = join(dir, 'coder');
    const r = compileModel(MODEL, { dtype: 'bfloat16' });
    const written = writeArtifact(r, art, MODEL).map((f) => basename(f));
    const { transformSync } = await import('esbuild');
    writeFileSync(join(art, 'index.js'), transformSync(generateModule(r.plan!, { libraries: {}, files: written.filter((f) => companions.includes(f)) }), { loader: 'ts', format: 'esm' }).code);
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', `
      import { artifact, model, loadReference } from ${JSON.stringify(join(art, 'index.js'))};
      import { existsSync } from 'node:fs';
      import { join } from 'node:path';
      const b = loadReference({ maxTokens: 8 });
      console.log(JSON.stringify({ dir: artifact.dir, plan: existsSync(join(artifact.dir, artifact.plan)), weights: existsSync(join(artifact.dir, artifact.weights)), name: b.plan.model.name, vocab: model.vocab, maxTokens: b.maxTokens }));
    `], { cwd: dir, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ dir: art, plan: true, weights: true, name: plan.model.name, vocab: plan.model.vocab, maxTokens: 8 });
  }, 120_000);
});
