import type { OpDef } from './registry.js';

export const lfcAttentionOps: OpDef[] = [];
