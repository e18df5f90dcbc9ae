import type { OpDef } from './registry.js';

export const tensorOps: OpDef[] = [];
