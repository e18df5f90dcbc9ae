import type { OpDef } from './registry.js';

export const lfcNnOps: OpDef[] = [];
