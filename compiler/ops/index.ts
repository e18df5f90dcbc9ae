/**
 * Registers every op family with the registry. Importing this module is what makes ops known.
 */
import { registerOps } from './registry.js';
import { elementwiseOps } from './elementwise.js';
import { reduceOps } from './reduce.js';
import { nnOps } from './nn.js';
import { quantOps } from './quant.js';
import { shapeOps } from './shape.js';
import { tensorOps } from './tensor.js';
import { lfcNnOps } from './lfc-nn.js';
import { lfcAttentionOps } from './lfc-attention.js';
import { controlOps } from './control.js';
import { matMulNBitsOps } from './matmul-nbits.js';

let done = false;
export function registerAllOps(): void {
  if (done) return;
  done = true;
  for (const defs of [elementwiseOps, reduceOps, nnOps, quantOps, shapeOps, tensorOps, lfcNnOps, lfcAttentionOps, controlOps, matMulNBitsOps]) registerOps(defs);
}
registerAllOps();

export { resolveOp, registeredOps, type OpDef, type InferContext, type OpContext } from './registry.js';
