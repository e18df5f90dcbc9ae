/**
 * Kernel references (ARCHITECTURE.md, "Kernel families"): the semantics every CUDA kernel of a
 * family is tested against, and what the reference backend runs. One namespace per family.
 */
export * as activation from './activation.js';
export * as addNorm from './add-norm.js';
export * as embedding from './embedding.js';
export * as linear from './linear.js';
export * as logits from './logits.js';
export * as pagedAttention from './paged-attention.js';
export * as quant from './quant.js';
export * as rope from './rope.js';
export * as unfusedAttention from './unfused-attention.js';
export type { StorageDType } from './common.js';
