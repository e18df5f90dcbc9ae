import type { OpDef } from './registry.js';

export const shapeOps: OpDef[] = [];
