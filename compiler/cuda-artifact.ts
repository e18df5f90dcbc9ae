/**
 * The CUDA half of `lfc compile`: after writeArtifact (plan.json, weights.bin), render each step's
 * kernel unit, write kernels/*.cu and launcher.cu, build libmodel.so with nvcc (or
 * libmodel-emu.so for the CPU emulator), and write report.md. Without nvcc every source is still
 * written and the result says, loudly, that nothing was built.
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Plan } from '../runtime/plan.js';
import { buildEmuLibrary, buildGpuLibrary, writeCudaSources, type UnitReport } from './build/artifact-build.js';
import { findTool } from './build/cuda-build.js';
import { kernelFor, sampleKernelFor } from './codegen/families/index.js';
import { verifyKernelFor } from './codegen/families/spec-verify.js';
import type { GpuTarget } from './codegen/kernel.js';
import { generateCudaSources, type CudaSources } from './codegen/launcher.js';
import { tuningReportLine } from './tune/db.js';
import { GPU_PEAKS, kernelTable, rooflineTable } from './codegen/report.js';
import { stepCost } from './kernels/cost.js';

export type BuildTarget = GpuTarget | 'all' | 'emu';

export interface CudaArtifactOptions {
  target: BuildTarget;
  maxTokens?: number;
  maxSeqs?: number;
  /** Write sources only. */
  noBuild?: boolean;
  /** The compiler's fusion report (compile.ts formatReport), for report.md. */
  fusionReport?: string;
  /** Skip the generated TypeScript module (index.ts): the GPU check's bundle leaves ts-morph out. */
  noModule?: boolean;
  onProgress?: (m: string) => void;
}

export interface CudaArtifactResult {
  sources: CudaSources;
  files: string[];
  /** The library built, if any. */
  library?: string;
  units?: UnitReport[];
  /** Lines for the user: what was and was not built, and why. */
  notes: string[];
}

export async function buildCudaArtifact(plan: Plan, dir: string, opts: CudaArtifactOptions): Promise<CudaArtifactResult> {
  const progress = opts.onProgress ?? (() => {});
  const gpuTarget = opts.target === 'emu' ? 'all' : opts.target;
  const sources = generateCudaSources(plan, { target: gpuTarget, maxTokens: opts.maxTokens, maxSeqs: opts.maxSeqs, kernelFor, sampleKernelFor, verifyKernelFor });
  progress(`rendered ${sources.kernels.length} kernel units for ${plan.steps.length} steps (${[...new Set(sources.kernels.map((k) => k.family))].join(', ')})`);
  const written = writeCudaSources(dir, sources);
  const files = [...written.kernels, written.launcher];
  const notes: string[] = [];
  let library: string | undefined;
  let units: UnitReport[] | undefined;
  if (opts.noBuild) {
    notes.push('sources written; nothing built (--no-build)');
  } else if (opts.target === 'emu') {
    if (!findTool('g++')) {
      notes.push('!!! g++ not found: libmodel-emu.so was NOT built (sources are written) !!!');
    } else {
      const r = await buildEmuLibrary(dir, sources, { onProgress: progress });
      library = r.library;
      notes.push(`built ${path.basename(r.library)} for lfc's CPU emulator in ${(r.ms / 1000).toFixed(1)} s${r.cached ? ' (objects cached)' : ''}`);
    }
  } else if (!findTool('nvcc')) {
    notes.push('!!! nvcc not found: libmodel.so was NOT built; kernels/*.cu and launcher.cu are written. Install the CUDA toolkit and rerun, or use --target emu !!!');
  } else {
    const r = await buildGpuLibrary(dir, sources, { target: gpuTarget, onProgress: progress });
    library = r.library;
    units = r.units;
    notes.push(`built ${path.basename(r.library)} for ${r.archs.join(' + ')} in ${(r.ms / 1000).toFixed(1)} s`);
  }
  if (library) files.push(library);
  const companions = ['tokenizer.json', 'tokenizer_config.json', 'config.json', 'generation_config.json'].filter((f) => existsSync(path.join(dir, f)));
  const libs = { gpu: existsSync(path.join(dir, 'libmodel.so')) ? 'libmodel.so' : undefined, emu: existsSync(path.join(dir, 'libmodel-emu.so')) ? 'libmodel-emu.so' : undefined };
  if (!opts.noModule) {
    // Loaded on use through a computed specifier, so bundles of this file (scripts/gpu) do not pull
    // in ts-morph and the TypeScript compiler.
    const mod = (await import(new URL('./codegen/module.js', import.meta.url).href)) as typeof import('./codegen/module.js');
    const moduleFile = path.join(dir, 'index.ts');
    writeFileSync(moduleFile, mod.generateModule(plan, { libraries: libs, files: companions }));
    files.push(moduleFile);
  }
  const hintsFile = path.join(dir, 'hints.json');
  writeFileSync(hintsFile, JSON.stringify(runtimeHints(plan), null, 1) + '\n');
  files.push(hintsFile);
  const report = path.join(dir, 'report.md');
  writeFileSync(report, reportMarkdown(plan, sources, units, notes, opts.fusionReport));
  files.push(report);
  return { sources, files, library, units, notes };
}

/**
 * Run-time hints from the cost model (hints.json, read by runtime/backends/cuda): per GPU, the
 * step size (tokens) from which the model's GEMMs (linear and logits steps: weights read once,
 * FLOPs growing with the tokens) are compute-bound by the roofline. Below it a step costs about
 * the same whatever its token count, so verifying k drafts per sequence is nearly free; above it
 * every draft token costs compute, and the engine turns speculation off (issue 10's back-off:
 * vLLM's speculation is 1.4-1.8x slower at high load). Attention is left out: its K/V reads grow
 * with the sequences, not with the drafts, so it does not decide the threshold.
 */
export function runtimeHints(plan: Plan): { specMaxBatchTokens: Record<GpuTarget, number>; source: string } {
  const gemms = plan.steps.filter((s) => s.kind === 'linear' || s.kind === 'logits');
  const ridge = (g: GpuTarget): number => {
    const peak = GPU_PEAKS[g];
    for (let T = 1; T <= 8192; T++) {
      let flops = 0, bytes = 0;
      for (const s of gemms) {
        const c = stepCost(plan, s, { T, contextTokens: T, attendedKeys: T, L: T }, { weightBytes: 2 });
        flops += c.flops;
        bytes += c.bytes;
      }
      if (flops / peak.bf16Flops >= bytes / peak.bandwidth) return T;
    }
    return 8192;
  };
  return { specMaxBatchTokens: { a100: ridge('a100'), h100: ridge('h100') }, source: 'roofline of the linear/logits steps (compiler/kernels/cost.ts, datasheet peaks): first step size that is compute-bound' };
}

function reportMarkdown(plan: Plan, src: CudaSources, units: UnitReport[] | undefined, notes: string[], fusion?: string): string {
  const L: string[] = [];
  L.push(`# ${plan.model.name}: CUDA artifact`, '');
  L.push('> The CUDA path is compiled and checked on lfc\'s CPU emulator; it has not yet been run on a GPU.', '');
  for (const n of notes) L.push(`- ${n}`);
  L.push('', `Plan: ${plan.steps.length} steps, activations ${plan.dtype}, KV cache [blocks, ${plan.kv.blockSize}, ${plan.kv.kvHeads}, ${plan.kv.headDim}] × ${plan.kv.layers} layers; ` +
    `limits ${src.limits.maxTokens} tokens / ${src.limits.maxSeqs} sequences per forward; workspace ${src.workspaceBytes} bytes.`, '');
  if (fusion) L.push('## Fusion', '', '```', fusion, '```', '');
  L.push('## Kernel units', '', '| unit | family | steps | config |', '|---|---|---|---|');
  for (const k of src.kernels) {
    const steps = src.stepKernel.map((n, i) => (n === k.name ? i : -1)).filter((i) => i >= 0);
    L.push(`| ${k.name} | ${k.family} | ${steps.length} | \`${JSON.stringify(k.config)}\` |`);
  }
  L.push('', tuningReportLine(src.kernels));
  if (units) {
    L.push('', '## ptxas resources', '');
    L.push(kernelTable(units.map((u) => ({ name: u.unit, family: u.family, config: u.config, ptxas: u.ptxas }))));
  }
  L.push('', '## Roofline estimate', '', rooflineTable(plan));
  return L.join('\n') + '\n';
}
