/**
 * Loading a compiled artifact folder (plan.json + weights.bin) as written by `lfc compile`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePlan, type Plan } from './plan.js';

export interface Artifact { dir: string; plan: Plan; weights: Uint8Array }

export function loadArtifact(dir: string): Artifact {
  const planPath = join(dir, 'plan.json');
  let text: string;
  try { text = readFileSync(planPath, 'utf8'); } catch { throw new Error(`${dir}: not an lfc artifact (no plan.json); compile a model with 'lfc compile'`); }
  const plan = parsePlan(text, planPath);
  let weights: Uint8Array;
  try { weights = readFileSync(join(dir, 'weights.bin')); } catch { throw new Error(`${dir}: weights.bin is missing`); }
  return { dir, plan, weights };
}
