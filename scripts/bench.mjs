#!/usr/bin/env node
/**
 * `npm run bench -- <name>`: lfc's CPU benchmarks. Each writes a JSON result under
 * bench/results/ named after the machine, and prints a short table.
 *
 *   import   load + shape-infer models/llama-32l-tiny.onnx (a 7B LLaMA's 32-layer node
 *            structure at tiny widths, weights in external data that must not be read)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const root = join(import.meta.dirname, '..');
const lfc = await import(join(root, 'dist/compiler/index.js'));

const benches = {
  async import() {
    const model = join(root, 'models/llama-32l-tiny.onnx');
    const times = [];
    let nodes = 0, externalRead = false, symbolic = 0;
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      const m = lfc.importModelFile(model);
      lfc.inferShapes(m.graph);
      times.push(performance.now() - t0);
      nodes = m.graph.nodes.length;
      // Inspection must not have read external weights: loading is lazy and cached per initializer.
      externalRead = m.graph.initializers.some((v) => v.initializer.external && v.initializer.loaded);
      symbolic = [...m.graph.values.values()].filter((v) => v.type?.shape.some((d) => typeof d !== 'number')).length;
    }
    const first = times[0];
    times.sort((a, b) => a - b);
    return {
      model: 'models/llama-32l-tiny.onnx', nodes, symbolicValues: symbolic,
      firstRunMs: +first.toFixed(1), medianMs: +times[3].toFixed(1), runs: times.length,
      goalMs: 1000, externalDataRead: externalRead,
    };
  },
};

const name = process.argv[2] ?? 'import';
if (!benches[name]) { console.error(`bench: unknown benchmark '${name}' (have: ${Object.keys(benches).join(', ')})`); process.exit(2); }
const result = { bench: name, machine: { host: hostname(), cpu: cpus()[0]?.model, cores: cpus().length, node: process.version }, date: new Date().toISOString(), result: await benches[name]() };
console.log(JSON.stringify(result, null, 2));
const dir = join(root, 'bench/results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, `${name}-cpu-${cpus().length}core.json`), JSON.stringify(result, null, 2) + '\n');
