/**
 * lfc runtime: what a service that imports a generated artifact loads. It never imports the
 * compiler (ARCHITECTURE.md): tensors, dtypes and, later, the Plan contract and kernel references.
 */
export * from './dtype.js';
export * from './floats.js';
export * from './tensor.js';
export * from './batch.js';
export * from './plan.js';
