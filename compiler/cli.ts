#!/usr/bin/env node
/**
 * The `lfc` command line. Options are declared once (commander), which generates `--help`.
 *
 * Exit codes: 0 success; 1 a comparison did not match (`lfc run`); 2 an error (bad input, bad
 * flag, unsupported model). Errors print one line naming the file, node, tensor or flag; the
 * stack trace only with --verbose.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { importModelFile } from './onnx/import.js';
import { formatSummary, summarize } from './inspect.js';
import { runDataDir } from './run-data.js';
import { compileModel, formatReport, writeArtifact } from './compile.js';
import type { BuildTarget } from './cuda-artifact.js';
import type { Backend } from '../runtime/backends/backend.js';
import { parseQuantizeKind } from './passes/quantize.js';
import { interpreterOracle, verifyPlan } from './verify.js';
import { ortOracle } from './ort-oracle.js';
import { basename, join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import './ops/index.js';

const EXIT_MISMATCH = 1;
const EXIT_ERROR = 2;

function nonNegative(flag: string) {
  return (v: string): number => {
    const x = Number(v);
    if (!Number.isFinite(x) || x < 0) throw new InvalidArgumentError(`${flag} must be a non-negative number, got '${v}'`);
    return x;
  };
}

const program = new Command('lfc')
  .description('Compile ONNX decoder LLMs into fused CUDA kernels and serve them from Node.')
  .version('0.1.0')
  .option('--verbose', 'print stack traces on errors')
  .showHelpAfterError()
  .configureOutput({ outputError: (s, write) => write(s) })
  .exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : EXIT_ERROR);
  })
  .addHelpText('after', `
Examples:
  $ lfc inspect models/coder.onnx
  $ lfc inspect models/coder.onnx --json
  $ lfc run model.onnx --data test_data_set_0 --rtol 1e-3 --atol 1e-5

Exit codes: 0 ok, 1 outputs do not match the reference (run), 2 error.`);

program.command('inspect')
  .description('summarise a model without reading its weights: I/O with symbolic shapes, ops, parameters, architecture')
  .argument('<model>', 'path to a .onnx file (external data is found relative to it)')
  .option('--json', 'machine-readable output')
  .action((model: string, opts: { json?: boolean }) => {
    const s = summarize(importModelFile(model));
    console.log(opts.json ? JSON.stringify(s, null, 2) : formatSummary(s));
    if (s.inferenceError) process.exitCode = EXIT_ERROR;
  });

program.command('run')
  .description('run the reference interpreter on an ONNX test-data folder; write or compare output_N.pb')
  .argument('<model>', 'path to a .onnx file')
  .requiredOption('--data <dir>', 'folder with input_N.pb (and optionally output_N.pb)')
  .addOption(new Option('--rtol <r>', 'relative tolerance').default(1e-3).argParser(nonNegative('--rtol')))
  .addOption(new Option('--atol <a>', 'absolute tolerance').default(1e-7).argParser(nonNegative('--atol')))
  .option('--json', 'machine-readable output')
  .addHelpText('after', '\nExit: 0 all outputs match or were written, 1 a mismatch, 2 error.')
  .action((model: string, opts: { data: string; rtol: number; atol: number; json?: boolean }) => {
    const reports = runDataDir(importModelFile(model), opts.data, { rtol: opts.rtol, atol: opts.atol });
    if (opts.json) console.log(JSON.stringify(reports, null, 2));
    else {
      for (const r of reports) {
        const err = r.maxAbsError !== undefined ? ` max abs ${r.maxAbsError.toExponential(3)}, max rel ${r.maxRelError!.toExponential(3)}` : '';
        console.log(`${r.file} ${r.name} ${r.dtype}[${r.shape.join(',')}]: ${r.status}${err}${r.detail ? ` (${r.detail})` : ''}`);
      }
    }
    if (reports.some((r) => r.status === 'mismatch')) process.exitCode = EXIT_MISMATCH;
  });

function positiveInt(flag: string) {
  return (v: string): number => {
    const x = Number(v);
    if (!Number.isInteger(x) || x <= 0) throw new InvalidArgumentError(`${flag} must be a positive integer, got '${v}'`);
    return x;
  };
}

const dtypeOption = (def = 'fp32') => new Option('--dtype <dtype>', 'activation storage dtype').choices(['fp32', 'fp16', 'bf16']).default(def);
const DTYPES = { fp32: 'float32', fp16: 'float16', bf16: 'bfloat16' } as const;

program.command('compile')
  .description('compile an ONNX decoder into a plan (plan.json, weights.bin, fusion report)')
  .argument('<model>', 'path to a .onnx file')
  .option('-o, --out <dir>', 'output folder (default generated/<model name>)')
  .addOption(new Option('--emit <what>', "'all': plan + CUDA sources + build; 'cuda': plan + CUDA sources, no build; 'plan': plan only").choices(['all', 'cuda', 'plan']).default('all'))
  .addOption(new Option('--target <gpu>', "GPU to build for: a100 (sm_80), h100 (sm_90a), all (both), or emu (lfc's CPU emulator: libmodel-emu.so)").choices(['a100', 'h100', 'all', 'emu']).default('all'))
  .addOption(new Option('--max-tokens <n>', 'most tokens one forward may carry (sizes the CUDA workspace)').default(512).argParser(positiveInt('--max-tokens')))
  .addOption(new Option('--max-seqs <n>', 'most sequences one forward may carry').default(64).argParser(positiveInt('--max-seqs')))
  .addOption(dtypeOption('bf16'))
  .addOption(new Option('--block-size <n>', 'KV cache block size in tokens').default(16).argParser(positiveInt('--block-size')))
  .addOption(new Option('--max-positions <n>', 'positions the rope/position tables cover (default: the model\'s, else 2048)').argParser(positiveInt('--max-positions')))
  .option('--dump-after <pass>', "print the graph after a pass ('import', a pass name, or 'all')")
  .option('--json', 'print the report as JSON')
  .option('-q, --quiet', 'no progress lines')
  .option('--quantize <kind>', 'quantize linear weights: int8 (W8A8, SmoothQuant) or int4 (W4A16, group-wise, AWQ-style)')
  .option('--calibration <file>', 'calibration text for --quantize (default models/data/calib.txt)')
  .addOption(new Option('--group-size <n>', 'int4 group size along K').default(128).argParser(positiveInt('--group-size')))
  .option('--exclude <names>', 'comma-separated weight names/sources to keep fp32 (logits and embeddings always stay fp32)')
  .addHelpText('after', '\nExample:\n  $ lfc compile models/coder.onnx -o generated/coder --dump-after fuse-attention\n  $ lfc compile models/coder.onnx --quantize int4 --group-size 128')
  .action(async (model: string, opts: { out?: string; emit: 'all' | 'cuda' | 'plan'; target: BuildTarget; maxTokens: number; maxSeqs: number; dtype: keyof typeof DTYPES; blockSize: number; maxPositions?: number; dumpAfter?: string; json?: boolean; quiet?: boolean; quantize?: string; calibration?: string; groupSize: number; exclude?: string }) => {
    const progress = (m: string) => { if (!opts.quiet && !opts.json) console.error(`[lfc] ${m}`); };
    if (opts.quantize) parseQuantizeKind(opts.quantize);
    if (opts.emit !== 'plan' && opts.dtype === 'fp32') throw new Error(`--dtype fp32: the CUDA artifact stores activations in bf16 or fp16; use --dtype bf16|fp16, or --emit plan for an fp32 plan`);
    const r = compileModel(model, {
      quantize: opts.quantize ? { kind: opts.quantize, calibration: opts.calibration, groupSize: opts.groupSize, exclude: opts.exclude?.split(',') } : undefined,
      dtype: DTYPES[opts.dtype], blockSize: opts.blockSize, maxPositions: opts.maxPositions, dumpAfter: opts.dumpAfter,
      onDump: (pass, text) => console.log(`=== after ${pass} ===\n${text}`), onProgress: progress,
    });
    if (opts.json) console.log(JSON.stringify({ events: r.events, timings: r.timings, error: r.error, plan: r.plan && { model: r.plan.model, steps: r.plan.steps.length } }, null, 2));
    else console.log(formatReport(r));
    if (r.error) { process.exitCode = EXIT_ERROR; return; }
    const dir = opts.out ?? join('generated', basename(model).replace(/\.onnx$/, ''));
    const files = writeArtifact(r, dir, model);
    progress(`wrote ${files.join(', ')}`);
    if (opts.emit === 'plan') return;
    const { buildCudaArtifact } = await import('./cuda-artifact.js');
    const c = await buildCudaArtifact(r.plan!, dir, { target: opts.target, maxTokens: opts.maxTokens, maxSeqs: opts.maxSeqs, noBuild: opts.emit === 'cuda', onProgress: progress, fusionReport: formatReport(r) });
    for (const n of c.notes) console.error(`[lfc] ${n}`);
    progress(`wrote ${c.files.length} CUDA artifact files (kernels/, launcher.cu${c.library ? `, ${basename(c.library)}` : ''}, report.md)`);
  });

program.command('verify')
  .description('compile, then check the plan against the original graph on random ragged batch compositions')
  .argument('<model>', 'path to a .onnx file')
  .addOption(dtypeOption())
  .addOption(new Option('--seed <s>', 'random seed').default(1).argParser(positiveInt('--seed')))
  .addOption(new Option('--cases <n>', 'random batch compositions').default(4).argParser(positiveInt('--cases')))
  .addOption(new Option('--atol <a>', 'max abs error on logits (defaults: fp32 1e-4, fp16 5e-2, bf16 3e-1)').argParser(nonNegative('--atol')))
  .option('--oracle <which>', "'onnxruntime' (default when installed) or 'interpreter'")
  .addOption(new Option('--backend <b>', "backend under test: reference, or emu (the CUDA artifact built for lfc's CPU emulator; needs --dtype bf16|fp16)").choices(['reference', 'emu']).default('reference'))
  .option('--json', 'machine-readable output')
  .addHelpText('after', '\nExit: 0 within tolerance, 1 beyond, 2 error.\nExample:\n  $ lfc verify models/coder.onnx --backend emu --dtype bf16 --cases 2')
  .action(async (model: string, opts: { dtype: keyof typeof DTYPES; seed: number; cases: number; atol?: number; oracle?: string; backend: 'reference' | 'emu'; json?: boolean }) => {
    const progress = (m: string) => { if (!opts.json) console.error(`[lfc] ${m}`); };
    if (opts.backend === 'emu' && opts.dtype === 'fp32') throw new Error('--backend emu: the CUDA artifact needs --dtype bf16 or fp16');
    const r = compileModel(model, { dtype: DTYPES[opts.dtype], onProgress: progress });
    if (r.error) { console.log(formatReport(r)); process.exitCode = EXIT_ERROR; return; }
    let makeBackend: (() => Backend) | undefined;
    if (opts.backend === 'emu') {
      const { buildCudaArtifact } = await import('./cuda-artifact.js');
      const { CudaBackend } = await import('../runtime/backends/cuda/index.js');
      const dir = join('generated', '.cache', `verify-emu-${basename(model, '.onnx')}-${opts.dtype}`);
      writeArtifact(r, dir, model);
      const c = await buildCudaArtifact(r.plan!, dir, { target: 'emu', maxTokens: 256, maxSeqs: 8, onProgress: progress });
      if (!c.library) throw new Error(`--backend emu: ${c.notes.join('; ')}`);
      makeBackend = () => new CudaBackend(r.plan!, c.library!, join(dir, 'weights.bin'), { numBlocks: 64, maxTokens: 256, maxSeqs: 8 });
    }
    let oracle = opts.oracle === 'interpreter' ? undefined : await ortOracle(model, r.original);
    if (!oracle && opts.oracle === 'onnxruntime') throw new Error('--oracle onnxruntime: onnxruntime-node is not installed');
    const which = oracle ? 'onnxruntime' : 'lfc interpreter';
    oracle ??= interpreterOracle(r.original);
    // Defaults: fp32 storage must match to 1e-4; fp16 (11-bit mantissa) and bf16 (8-bit) round
    // every stored activation, which on logits of magnitude ~10 costs ~1e-2 and ~1e-1.
    const atol = opts.atol ?? { fp32: 1e-4, fp16: 5e-2, bf16: 3e-1 }[opts.dtype];
    const cases = await verifyPlan(r.plan!, r.weights!.pack(), {
      seed: opts.seed, cases: opts.cases, atol, oracle, makeBackend,
      onCase: (c) => { if (!opts.json) console.log(`${c.name}: ${c.sequences} sequences, ${c.tokens} tokens in ${c.steps} steps: max abs ${c.maxAbsError.toExponential(2)}, max rel ${c.maxRelError.toExponential(2)} ${c.ok ? 'ok' : 'FAIL'}`); },
    });
    if (opts.json) console.log(JSON.stringify({ oracle: which, atol, cases }, null, 2));
    else console.log(`oracle: ${which}; tolerance ${atol}`);
    if (cases.some((c) => !c.ok)) process.exitCode = EXIT_MISMATCH;
  });

program.command('tune')
  .description('autotune the linear and attention kernels of an artifact on this GPU (or the emulator: a dry run) into the tuning database')
  .argument('<artifact>', 'artifact folder (plan.json + weights.bin; bf16 or fp16)')
  .addOption(new Option('--target <gpu>', 'h100, a100, or emu (lfc\'s CPU emulator: exercises the whole path, timings meaningless)').choices(['a100', 'h100', 'emu']).makeOptionMandatory())
  .option('--out <file>', 'database file (default compiler/tune/db/<gpu>.json; emu: ARTIFACT/tune-emu.json)')
  .addOption(new Option('--top-k <k>', 'candidates timed per problem and shape besides the chooser\'s').default(3).argParser(positiveInt('--top-k')))
  .option('--decode <list>', 'decode shapes B:context, comma-separated (e.g. 1:1024,32:4096)')
  .option('--prefill <list>', 'prefill prompt lengths, comma-separated (e.g. 128,2048)')
  .addOption(new Option('--iters <n>', 'profile iterations per repetition').argParser(positiveInt('--iters')))
  .addOption(new Option('--reps <n>', 'repetitions (the median is kept)').argParser(positiveInt('--reps')))
  .option('--model-only', 'no GPU: write the analytic model\'s best candidate per problem as source "model" entries (a measured run replaces them)')
  .action(async (artifact: string, opts: { target: 'a100' | 'h100' | 'emu'; out?: string; topK: number; decode?: string; prefill?: string; iters?: number; reps?: number; modelOnly?: boolean }) => {
    const { tune, formatTune } = await import('./tune/tune.js');
    const shapes = opts.decode === undefined && opts.prefill === undefined ? undefined : [
      ...(opts.decode ?? '').split(',').filter(Boolean).map((x) => {
        const [B, context] = x.split(':').map(Number);
        if (!(Number.isInteger(B) && B > 0 && Number.isInteger(context) && context >= 0)) throw new Error(`--decode: '${x}' is not B:context`);
        return { kind: 'decode' as const, B, context };
      }),
      ...(opts.prefill ?? '').split(',').filter(Boolean).map((x) => {
        const T = Number(x);
        if (!(Number.isInteger(T) && T > 0)) throw new Error(`--prefill: '${x}' is not a positive integer`);
        return { kind: 'prefill' as const, T };
      }),
    ];
    const r = await tune({ artifact, target: opts.target, out: opts.out, topK: opts.topK, shapes, iters: opts.iters, reps: opts.reps, modelOnly: opts.modelOnly, onProgress: (m) => console.error(`[lfc tune] ${m}`) });
    console.log(formatTune(r));
  });

/**
 * An artifact folder for ARTIFACT: a compiled folder, or an .onnx compiled once and cached by content
 * hash (fp32 plan for the reference backend; bf16 with libmodel.so / libmodel-emu.so for cuda / emu).
 */
async function resolveArtifact(artifact: string | undefined, progress: (m: string) => void, backend: 'reference' | 'cuda' | 'emu' = 'reference'): Promise<string> {
  const model = artifact ?? DEFAULT_MODEL;
  if (existsSync(join(model, 'plan.json'))) return model;
  if (!model.endsWith('.onnx')) throw new Error(`'${model}' is neither an artifact folder (with plan.json) nor an .onnx file`);
  const hash = createHash('sha256').update(readFileSync(model)).update('lfc-plan-v1').update(backend === 'reference' ? '' : `cuda-${backend}`).digest('hex').slice(0, 16);
  const dir = join('generated', '.cache', `${basename(model, '.onnx')}-${backend === 'reference' ? '' : backend + '-'}${hash}`);
  const lib = backend === 'cuda' ? 'libmodel.so' : backend === 'emu' ? 'libmodel-emu.so' : 'plan.json';
  if (existsSync(join(dir, 'plan.json')) && existsSync(join(dir, lib))) return dir;
  progress(`compiling ${model} (first use; cached in ${dir})`);
  const r = compileModel(model, { onProgress: progress, dtype: backend === 'reference' ? 'float32' : 'bfloat16' });
  if (r.error) throw new Error(`${model} cannot be compiled:\n${formatReport(r)}`);
  writeArtifact(r, dir, model);
  if (backend !== 'reference') {
    const { buildCudaArtifact } = await import('./cuda-artifact.js');
    const c = await buildCudaArtifact(r.plan!, dir, { target: backend === 'emu' ? 'emu' : 'all', onProgress: progress });
    if (!c.library) throw new Error(`${model}: the ${backend} backend needs ${lib}, which was not built: ${c.notes.join('; ')}`);
  }
  return dir;
}

const DEFAULT_MODEL = join(import.meta.dirname, '../../models/coder.onnx');

/** --draft / --ngram / --spec / --spec-k / --spec-max-batch-tokens and the ablation's --kv / --attention (issue 13), shared by generate and serve. */
function specFlags(c: Command): Command {
  return c
    .addOption(new Option('--kv <policy>', "KV allocation: paged (blocks on demand) or contiguous (each request reserves its maximum length at admission: the ablation's naive baseline)").choices(['paged', 'contiguous']).default('paged'))
    .addOption(new Option('--attention <impl>', "attention on the reference backend: flash (fused single pass) or unfused (QKᵀ materialised, softmax, ·V: the ablation's naive baseline)").choices(['flash', 'unfused']).default('flash'))
    .addOption(new Option('--spec <mode>', 'speculative decoding: off, ngram (prompt lookup, n = --ngram or 3) or draft (needs --draft); default: on when --draft or --ngram is given').choices(['off', 'ngram', 'draft']))
    .option('--draft <artifact>', 'speculative decoding with a draft model (artifact folder or .onnx, same vocabulary)')
    .addOption(new Option('--ngram <n>', 'speculative decoding with n-gram prompt lookup (match the last n..1 tokens)').argParser(positiveInt('--ngram')))
    .addOption(new Option('--spec-k <k>', 'most draft tokens per step (adapted per request from its acceptance rate)').default(4).argParser(positiveInt('--spec-k')))
    .addOption(new Option('--spec-max-batch-tokens <n>', "no speculation in steps with more tokens than this (default: the artifact's cost-model threshold on the CUDA backend, else 64)").argParser(positiveInt('--spec-max-batch-tokens')));
}

async function specFromFlags(opts: { draft?: string; ngram?: number; spec?: 'off' | 'ngram' | 'draft'; specK: number; specMaxBatchTokens?: number }, progress: (m: string) => void) {
  if (opts.spec === 'off') return undefined;
  if (opts.spec === 'draft' && opts.draft === undefined) throw new Error('--spec draft needs --draft <artifact>');
  if (opts.spec === 'ngram') opts = { ...opts, draft: undefined, ngram: opts.ngram ?? 3 };
  if (opts.spec === 'draft') opts = { ...opts, ngram: undefined };
  if (opts.draft === undefined && opts.ngram === undefined) return undefined;
  const { specOptions } = await import('../runtime/spec/index.js');
  return specOptions({ draftDir: opts.draft === undefined ? undefined : await resolveArtifact(opts.draft, progress), ngram: opts.ngram, k: opts.specK, maxBatchTokens: opts.specMaxBatchTokens });
}

specFlags(program.command('generate')
  .description('generate text with a compiled artifact (or an .onnx, compiled on first use; default: the shipped coder model)')
  .argument('[artifact]', 'artifact folder or .onnx file (omit to use models/coder.onnx)')
  .argument('[prompt]', 'the prompt text')
  .addOption(new Option('--max-tokens <n>', 'tokens to generate').default(64).argParser(positiveInt('--max-tokens')))
  .addOption(new Option('--temperature <t>', '0 = greedy').default(0).argParser(nonNegative('--temperature')))
  .addOption(new Option('--top-p <p>', 'nucleus sampling').argParser(nonNegative('--top-p')))
  .addOption(new Option('--top-k <k>', 'top-k sampling').argParser(positiveInt('--top-k')))
  .addOption(new Option('--seed <s>', 'sampling seed').default(0).argParser(nonNegative('--seed')))
  .option('--stop <text...>', 'stop strings')
  .option('--no-stream', 'print the completion at the end instead of as it is generated')
  .addOption(new Option('--backend <b>', "execution backend: reference (TypeScript kernels), cuda (libmodel.so), emu (libmodel-emu.so on lfc's CPU emulator)").choices(['reference', 'cuda', 'emu']).default('reference'))
  .option('--json', 'print tokens, timings and usage as JSON'))
  .addHelpText('after', '\nExamples:\n  $ lfc generate "def fibonacci(n):"\n  $ lfc generate generated/coder "import os" --max-tokens 128 --temperature 0.8 --seed 7\n  $ lfc generate "def f(x):" --draft models/coder-draft.onnx --spec-k 4')
  .action(async (a: string | undefined, b: string | undefined, opts: { maxTokens: number; temperature: number; topP?: number; topK?: number; seed: number; stop?: string[]; stream: boolean; backend: 'reference' | 'cuda' | 'emu'; json?: boolean; draft?: string; ngram?: number; spec?: 'off' | 'ngram' | 'draft'; kv: 'paged' | 'contiguous'; attention: 'flash' | 'unfused'; specK: number; specMaxBatchTokens?: number }) => {
    const [artifact, prompt] = b === undefined ? [undefined, a] : [a, b];
    if (prompt === undefined) throw new Error('generate: a prompt is required (lfc generate [ARTIFACT] "prompt")');
    const progress = (m: string) => { if (!opts.json) console.error(`[lfc] ${m}`); };
    const { Engine } = await import('../runtime/engine.js');
    const dir = await resolveArtifact(artifact, progress, opts.backend), speculative = await specFromFlags(opts, progress);
    const engine = Engine.load(dir, { backend: opts.backend, kv: opts.kv, attention: opts.attention, ...(speculative ? { speculative } : {}) });
    const stream = engine.stream(prompt, {
      max_tokens: opts.maxTokens, temperature: opts.temperature, seed: opts.seed, stop: opts.stop,
      ...(opts.topP !== undefined ? { top_p: opts.topP } : {}), ...(opts.topK !== undefined ? { top_k: opts.topK } : {}),
    });
    if (!opts.json && opts.stream) process.stdout.write(prompt);
    for (;;) {
      const r = await stream.next();
      if (r.done) {
        const c = r.value;
        if (opts.json) console.log(JSON.stringify({ prompt, ...c, tokensPerSecond: c.usage.completionTokens / (c.timings.totalMs / 1000), engine: { kv: engine.scheduler.config.kv, attention: (engine.backend as { attention?: string }).attention ?? 'flash', spec: engine.spec?.proposer.name ?? 'off' } }, null, 2));
        else {
          if (!opts.stream) process.stdout.write(prompt + c.text);
          process.stdout.write('\n');
          progress(`${c.usage.completionTokens} tokens, ${c.finishReason}; first token ${c.timings.ttftMs.toFixed(0)} ms, ${(c.usage.completionTokens / (c.timings.totalMs / 1000)).toFixed(1)} tok/s`);
          const m = engine.spec?.metrics;
          if (m) progress(`speculative (${engine.spec!.proposer.name}): ${m.numAcceptedTokens}/${m.numDraftTokens} drafts accepted, ${engine.stats.steps} target forwards`);
        }
        break;
      }
      if (!opts.json && opts.stream) process.stdout.write(r.value.text);
    }
  });

specFlags(program.command('serve')
  .description('serve a compiled artifact (or an .onnx, compiled on first use; default: the shipped coder model) over an OpenAI-compatible HTTP API')
  .argument('[artifact]', 'artifact folder or .onnx file (omit to use models/coder.onnx)')
  .addOption(new Option('--port <n>', 'TCP port (0 = any free port)').default(8000).argParser((v) => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < 0 || x > 65535) throw new InvalidArgumentError(`--port must be an integer in 0..65535, got '${v}'`);
    return x;
  }))
  .option('--host <host>', 'interface to listen on', '127.0.0.1')
  .option('--api-key <key>', 'require Authorization: Bearer <key> on /v1/* (default: $LFC_API_KEY, else none)')
  .option('--model-name <name>', 'the model id clients send (default: the artifact folder name)')
  .option('--chat-template <file>', 'a Jinja chat template (Hugging Face format) for /v1/chat/completions (default: "role: content" lines, then "assistant: ")')
  .addOption(new Option('--scheduler <policy>', "batching policy ('static' only as a benchmark baseline)").choices(['continuous', 'static']).default('continuous'))
  .addOption(new Option('--max-seqs <n>', 'sequences per step').default(16).argParser(positiveInt('--max-seqs')))
  .addOption(new Option('--max-batched-tokens <n>', 'tokens per step').default(256).argParser(positiveInt('--max-batched-tokens')))
  .addOption(new Option('--backend <b>', "execution backend: reference (TypeScript kernels), cuda (libmodel.so), emu (libmodel-emu.so on lfc's CPU emulator)").choices(['reference', 'cuda', 'emu']).default('reference')))
  .addHelpText('after', '\nExamples:\n  $ lfc serve --port 8000\n  $ curl localhost:8000/v1/completions -H "Content-Type: application/json" -d \'{"prompt": "def f(x):", "max_tokens": 32}\'')
  .action(async (artifact: string | undefined, opts: { port: number; host: string; apiKey?: string; modelName?: string; chatTemplate?: string; scheduler: 'continuous' | 'static'; maxSeqs: number; maxBatchedTokens: number; backend: 'reference' | 'cuda' | 'emu'; draft?: string; ngram?: number; spec?: 'off' | 'ngram' | 'draft'; kv: 'paged' | 'contiguous'; attention: 'flash' | 'unfused'; specK: number; specMaxBatchTokens?: number }) => {
    const progress = (m: string) => console.error(`[lfc] ${m}`);
    const { Engine } = await import('../runtime/engine.js');
    const { serve, jinjaChatTemplate } = await import('../runtime/server/index.js');
    const chatTemplate = opts.chatTemplate === undefined ? undefined : jinjaChatTemplate(readFileSync(opts.chatTemplate, 'utf8'));
    const dir = await resolveArtifact(artifact, progress, opts.backend);
    const speculative = await specFromFlags(opts, progress);
    const engine = Engine.load(dir, { backend: opts.backend, policy: opts.scheduler, kv: opts.kv, attention: opts.attention, maxSeqs: opts.maxSeqs, maxBatchedTokens: opts.maxBatchedTokens, maxTokens: opts.maxBatchedTokens, ...(speculative ? { speculative } : {}) });
    const modelName = opts.modelName ?? basename(artifact ? artifact.replace(/\/+$/, '') : DEFAULT_MODEL).replace(/\.onnx$/, '');
    const server = await serve(engine, { port: opts.port, host: opts.host, apiKey: opts.apiKey ?? process.env.LFC_API_KEY, modelName, ...(chatTemplate ? { chatTemplate } : {}) });
    console.log(`lfc serving ${modelName} at ${server.url}/v1 (scheduler ${opts.scheduler}, kv ${opts.kv}, attention ${opts.attention}${opts.apiKey ?? process.env.LFC_API_KEY ? ', API key required' : ''})`);
    const stop = (sig: string) => {
      progress(`${sig}: finishing in-flight requests (up to 10 s), then exiting`);
      server.close().then(() => process.exit(0), () => process.exit(EXIT_ERROR));
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });

try {
  await program.parseAsync(process.argv);
} catch (e) {
  const verbose = process.argv.includes('--verbose');
  console.error(`lfc: ${verbose ? (e as Error).stack : (e as Error).message}`);
  process.exit(EXIT_ERROR);
}
