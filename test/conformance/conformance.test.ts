/**
 * The ONNX node tests (Debian libonnx-testdata) through import → inference → reference
 * interpreter. Every test whose ops lfc supports must pass; the ops decoder exports need must
 * each be exercised by at least one passing test. Set LFC_CONFORMANCE_REPORT=1 to print the
 * per-op table.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_NODE_TESTS, formatReport, runConformance } from '../../compiler/conformance/runner.js';

/** Ops issue #2 requires, each with at least one ONNX node test in ONNX 1.12's suite. */
const REQUIRED = `Add Sub Mul Div Pow Sqrt Reciprocal Neg Abs Exp Log Tanh Erf Sigmoid Relu Softmax
LogSoftmax MatMul Gemm Gather Reshape Transpose Unsqueeze Squeeze Concat Slice Split Shape Size
Expand Where Equal Less LessOrEqual Greater GreaterOrEqual Not And Or Cast CastLike
ConstantOfShape Range Trilu ReduceMean ReduceSum ReduceMax CumSum
LayerNormalization Identity Max Min Clip Sin Cos IsNaN Tile ArgMax Einsum ScatterND GatherND
Flatten DequantizeLinear QuantizeLinear DynamicQuantizeLinear MatMulInteger`.split(/\s+/);

const have = existsSync(DEFAULT_NODE_TESTS);
if (!have) console.warn(`!! ONNX node tests missing at ${DEFAULT_NODE_TESTS}: install libonnx-testdata (.ci/run does)`);

describe.skipIf(!have)('ONNX node conformance', () => {
  const rep = runConformance();
  if (process.env.LFC_CONFORMANCE_REPORT) console.log(formatReport(rep));

  it('passes every test whose ops are supported', () => {
    const failed = rep.results.filter((r) => r.status === 'failed').map((r) => `${r.name}: ${r.reason}`);
    expect(failed).toEqual([]);
  });

  it.each(REQUIRED)('exercises %s with at least one passing test', (op) => {
    expect(rep.byOp.get(op)?.passed ?? 0).toBeGreaterThan(0);
  });
});
