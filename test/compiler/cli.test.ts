/**
 * The `lfc` command as a user runs it (the built dist/compiler/cli.js): help, inspect, run, and
 * its error contract (one line naming the file/flag, exit code 2; mismatch exit 1).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeTensorProto } from '../../compiler/onnx/tensor.js';
import { Tensor } from '../../runtime/tensor.js';
import { writeFileSync } from 'node:fs';

const ROOT = join(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/compiler/cli.js');
const MODEL = join(ROOT, 'models/coder-draft.onnx');
const NODE_TESTS = '/usr/share/libonnx-testdata/data/node';

function lfc(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe.skipIf(!existsSync(CLI))('lfc CLI', () => {
  it('--help lists commands, examples and exit codes', () => {
    const r = lfc('--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/inspect/);
    expect(r.out).toMatch(/Examples:/);
    expect(r.out).toMatch(/Exit codes/);
  });

  it.skipIf(!existsSync(MODEL))('inspect --json describes a shipped model', () => {
    const r = lfc('inspect', MODEL, '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out);
    expect(s.architecture.family).toBe('llama');
    expect(s.inputs.map((i: { name: string }) => i.name).slice(0, 3)).toEqual(['input_ids', 'attention_mask', 'position_ids']);
    expect(s.outputs[0]).toMatchObject({ name: 'logits', dtype: 'float32', shape: '[batch_size, sequence_length, 259]' });
    expect(s.parameters.total).toBeGreaterThan(100_000);
    expect(s.inferenceError).toBeUndefined();
  });

  it('a missing file is one line on stderr and exit 2', () => {
    const r = lfc('inspect', 'nope/missing.onnx');
    expect(r.code).toBe(2);
    expect(r.err.trim()).toBe('lfc: nope/missing.onnx: cannot read (ENOENT)');
  });

  it('a bad flag value names the flag and exits 2', () => {
    const r = lfc('run', MODEL, '--data', '.', '--rtol', 'abc');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--rtol must be a non-negative number, got 'abc'/);
  });

  it.skipIf(!existsSync(join(NODE_TESTS, 'test_matmul_2d')))('run compares with output_N.pb: match 0, mismatch 1, written when absent', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lfc-cli-'));
    cpSync(join(NODE_TESTS, 'test_matmul_2d'), dir, { recursive: true });
    const data = join(dir, 'test_data_set_0');
    let r = lfc('run', join(dir, 'model.onnx'), '--data', data);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/output_0.pb c float32\[3,3\]: match/);

    // a reference that differs → exit 1
    writeFileSync(join(data, 'output_0.pb'), encodeTensorProto(Tensor.from('float32', [3, 3], new Array(9).fill(7)), 'c'));
    r = lfc('run', join(dir, 'model.onnx'), '--data', data);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/mismatch/);

    // no reference → written, then it matches itself
    rmSync(join(data, 'output_0.pb'));
    r = lfc('run', join(dir, 'model.onnx'), '--data', data, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)[0].status).toBe('written');
    expect(readdirSync(data)).toContain('output_0.pb');
    copyFileSync(join(NODE_TESTS, 'test_matmul_2d/test_data_set_0/output_0.pb'), join(data, 'output_0.pb'));
    expect(lfc('run', join(dir, 'model.onnx'), '--data', data).code).toBe(0);
  });

  it.skipIf(!existsSync(MODEL))('run on a decoder export with inputs matched by name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lfc-cli-dec-'));
    const feeds: [string, Tensor][] = [
      ['input_ids', Tensor.from('int64', [1, 3], [10, 20, 30])],
      ['attention_mask', Tensor.from('int64', [1, 3], [1, 1, 1])],
      ['position_ids', Tensor.from('int64', [1, 3], [0, 1, 2])],
    ];
    // write them in reverse order so that position matching would be wrong
    feeds.reverse().forEach(([n, t], i) => writeFileSync(join(dir, `input_${i}.pb`), encodeTensorProto(t, n)));
    const r = lfc('run', MODEL.replace('.onnx', '.no-past.onnx'), '--data', dir);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/output_0.pb logits float32\[1,3,259\]: written/);
  });
});
