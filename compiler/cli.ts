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

try {
  await program.parseAsync(process.argv);
} catch (e) {
  const verbose = process.argv.includes('--verbose');
  console.error(`lfc: ${verbose ? (e as Error).stack : (e as Error).message}`);
  process.exit(EXIT_ERROR);
}
