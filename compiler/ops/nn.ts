import type { OpDef } from './registry.js';

export const nnOps: OpDef[] = [];
