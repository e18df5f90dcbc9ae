import type { OpDef } from './registry.js';

export const quantOps: OpDef[] = [];
