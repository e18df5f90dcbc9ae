/**
 * lfc's compiler API: ONNX import, IR, shape inference, reference interpreter.
 */
import './ops/index.js';

export { importModelFile, importModelBytes, type ImportedModel } from './onnx/import.js';
export { encodeTensorProto, decodeTensorProto } from './onnx/tensor.js';
export { Graph, Node, Value } from './ir/graph.js';
export * from './ir/dim.js';
export { inferShapes } from './ir/infer.js';
export { run } from './ir/interpret.js';
export { summarize, type ModelSummary } from './inspect.js';
export { registeredOps } from './ops/registry.js';
export { runConformance, formatReport } from './conformance/runner.js';
