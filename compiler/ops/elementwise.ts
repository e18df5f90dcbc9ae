import type { OpDef } from './registry.js';

export const elementwiseOps: OpDef[] = [];
