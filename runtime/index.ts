/**
 * lfc runtime: what a service that imports a generated artifact loads. It never imports the
 * compiler (ARCHITECTURE.md): tensors, dtypes and, later, the Plan contract and kernel references.
 */
export * from './dtype.js';
export * from './floats.js';
export * from './tensor.js';
export * from './batch.js';
export * from './plan.js';
export * from './tokenizer.js';
export * from './artifact.js';
export * from './engine.js';
export { ReferenceBackend } from './backends/reference.js';
export type { Backend } from './backends/backend.js';
export { Scheduler } from './scheduler.js';
export { KvBlockManager } from './kv/block-manager.js';
export { Sampler, resolveSamplingParams, type SamplingParams } from './sampling.js';
export { CudaBackend, loadCudaBackend, type CudaBackendOptions, type CudaStats } from './backends/cuda/index.js';
