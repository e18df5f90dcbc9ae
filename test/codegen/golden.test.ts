/**
 * Golden files of representative generated kernels (the coder model's configs): a change to a
 * template or a chooser shows up as a reviewable diff of test/codegen/golden/*.cu.golden. These do not
 * check correctness (the emulator and nvcc tests do); they make changes to generated code
 * deliberate. After reviewing a diff: LFC_UPDATE_GOLDEN=1 npx vitest run test/codegen/golden.test.ts
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileModel } from '../../compiler/compile.js';
import { kernelFor, sampleKernelFor } from '../../compiler/codegen/families/index.js';
import { generateCudaSources, type CudaSources } from '../../compiler/codegen/launcher.js';

const GOLDEN = join(import.meta.dirname, 'golden');
const update = process.env.LFC_UPDATE_GOLDEN === '1';
let src: CudaSources;

beforeAll(() => {
  const r = compileModel(join(import.meta.dirname, '../../models/coder.onnx'), { dtype: 'bfloat16' });
  src = generateCudaSources(r.plan!, { target: 'h100', kernelFor, sampleKernelFor, maxTokens: 512, maxSeqs: 64 });
}, 60_000);

describe('generated CUDA matches its golden files', () => {
  for (const family of ['add_norm', 'linear', 'rope', 'attention', 'logits'] as const) {
    it(`${family} (first unit of the coder plan)`, () => {
      const k = src.kernels.find((x) => x.family === family);
      expect(k, `no ${family} unit`).toBeDefined();
      const file = join(GOLDEN, `${family}.cu.golden`);
      if (update || !existsSync(file)) writeFileSync(file, k!.source);
      expect(k!.source, `templates/${family} output changed: review git diff of ${file}`).toBe(readFileSync(file, 'utf8'));
    });
  }
  it('launcher', () => {
    const file = join(GOLDEN, 'launcher.cu.golden');
    if (update || !existsSync(file)) writeFileSync(file, src.launcher);
    expect(src.launcher).toBe(readFileSync(file, 'utf8'));
  });
});
