#!/usr/bin/env node
/**
 * Packs what the GPU machine needs to run lfc's Node code there (it has Python, torch and the CUDA
 * toolkit, but no Node and no network) into scripts/gpu/.bundle/:
 *
 *   node.xz            this machine's node binary (process.execPath), xz-compressed (the `xz` CLI;
 *                      without it gzip -9 from node:zlib, as node.gz: the GPU machine has no Node to
 *                      undo brotli, while Python's stdlib reads both xz and gzip);
 *   <entry>.mjs        an esbuild bundle of the entry file (TypeScript or JavaScript) and everything it
 *                      imports, with koffi left external;
 *   node_modules/      koffi's JavaScript and its linux-x64 (glibc) native prebuild;
 *   run.sh             unpacks node on first use (xz, else python3 -m lzma/gzip) and runs the bundle.
 *
 * The bundle keeps its place in the repository (scripts/gpu/.bundle), so code that finds files by
 * walking up from import.meta.url (templates/, models/) finds the working tree's copies there.
 * Hand it to the device with `carry: ['scripts/gpu/.bundle']` and run `sh scripts/gpu/.bundle/run.sh ARGS`.
 *
 *   node scripts/gpu/bundle.mjs ENTRY [--out DIR]
 *
 * Prints each file's size and the total; fails when the total exceeds 60 MiB (what one device call
 * carries is 64 MiB in all).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { constants, createGzip } from 'node:zlib';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');
const LIMIT = 60 * 2 ** 20;

const { values, positionals } = parseArgs({ allowPositionals: true, options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
if (values.help || positionals.length !== 1) {
  console.error('usage: node scripts/gpu/bundle.mjs ENTRY [--out DIR]   (ENTRY: a .ts/.mts/.js/.mjs file to bundle)');
  process.exit(values.help ? 0 : 2);
}
const entry = resolve(positionals[0]);
if (!existsSync(entry)) { console.error(`bundle: no such entry file: ${entry}`); process.exit(2); }
const out = resolve(values.out ?? join(HERE, '.bundle'));
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(`bundle: packs a linux-x64 node and koffi build; this is ${process.platform}-${process.arch}`);
  process.exit(2);
}
const t0 = performance.now();
const log = (m) => console.error(`[bundle] ${m}`);

// 1. node, compressed (kept from the last run when it is the same binary: xz -9 takes a minute or more).
const hasXz = spawnSync('xz', ['--version'], { stdio: 'ignore' }).status === 0;
const nodeArchive = hasXz ? 'node.xz' : 'node.gz';
const nodeStat = statSync(process.execPath);
const stamp = JSON.stringify({ path: process.execPath, version: process.version, size: nodeStat.size, mtime: nodeStat.mtimeMs, archive: nodeArchive });
const stampFile = join(out, `${nodeArchive}.source.json`);
const reuse = existsSync(join(out, nodeArchive)) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp;
for (const e of existsSync(out) ? readdirSync(out) : []) {
  if (!(reuse && (e === nodeArchive || e === basename(stampFile)))) rmSync(join(out, e), { recursive: true, force: true });
}
mkdirSync(out, { recursive: true });
if (reuse) {
  log(`reusing ${nodeArchive} of ${process.execPath} (${process.version}) from the last run`);
} else if (hasXz) {
  log(`compressing ${process.execPath} (${mib(statSync(process.execPath).size)}) with xz -9 -T0 …`);
  execFileSync('sh', ['-c', 'xz -9 -T0 -c "$1" > "$2"', 'sh', process.execPath, join(out, nodeArchive)], { stdio: 'inherit' });
} else {
  log(`no xz CLI here: compressing ${process.execPath} with node:zlib gzip -9 instead (larger than xz; Python's gzip module unpacks it on the GPU machine)`);
  await pipeline(createReadStream(process.execPath), createGzip({ level: constants.Z_BEST_COMPRESSION }), createWriteStream(join(out, nodeArchive)));
}
if (!reuse) writeFileSync(stampFile, stamp);

// 2. The entry, bundled.
const { build } = await import('esbuild');
const bundleName = basename(entry).replace(/\.(m?[jt]s|cts|cjs|tsx?)$/, '') + '.mjs';
const res = await build({
  entryPoints: [entry],
  outfile: join(out, bundleName),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: `node${process.versions.node.split('.')[0]}`,
  external: ['koffi'],
  // CommonJS dependencies bundled into ESM still call require() for Node built-ins.
  banner: { js: "import { createRequire as __lfcCreateRequire } from 'node:module'; const require = __lfcCreateRequire(import.meta.url);" },
  logLevel: 'warning',
  metafile: true,
});
const inputs = Object.keys(res.metafile.inputs).length;

// 3. koffi: its JavaScript and the glibc linux-x64 prebuild (musl, other platforms and C++ sources left out).
const koffiSrc = join(ROOT, 'node_modules/koffi');
const prebuildSrc = join(ROOT, 'node_modules/@koromix/koffi-linux-x64');
const koffiUsed = Object.values(res.metafile.outputs).some((o) => o.imports.some((i) => i.path === 'koffi'));
if (koffiUsed) {
  if (!existsSync(koffiSrc) || !existsSync(join(prebuildSrc, 'linux_x64/koffi.node'))) {
    console.error('bundle: the entry imports koffi but node_modules/koffi or @koromix/koffi-linux-x64 is missing (npm ci)');
    process.exit(1);
  }
  copyTree(koffiSrc, join(out, 'node_modules/koffi'), (rel) =>
    !/^(doc|vendor|lib)\//.test(rel) && /\.(js|cjs|json|d\.ts|txt)$/.test(rel) && !rel.startsWith('src/koffi/src/abi/'));
  copyTree(prebuildSrc, join(out, 'node_modules/@koromix/koffi-linux-x64'), (rel) => rel === 'index.js' || rel === 'package.json' || rel === 'linux_x64/koffi.node');
}

// 4. run.sh
writeFileSync(join(out, 'run.sh'), `#!/bin/sh
# Runs ${bundleName} (bundled from ${relative(ROOT, entry)}) with the node packed beside it.
set -e
D=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$D/node" ]; then
  if [ -f "$D/node.xz" ] && command -v xz >/dev/null 2>&1; then xz -dc "$D/node.xz" > "$D/node.tmp"
  elif [ -f "$D/node.xz" ]; then python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$D/node.xz" "$D/node.tmp"
  else python3 -c 'import gzip,shutil,sys; shutil.copyfileobj(gzip.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$D/node.gz" "$D/node.tmp"
  fi
  chmod +x "$D/node.tmp" && mv "$D/node.tmp" "$D/node"
fi
if [ "$1" = "--node" ]; then shift; exec "$D/node" "$@"; fi
exec "$D/node" "$D/${bundleName}" "$@"
`);
chmodSync(join(out, 'run.sh'), 0o755);

// 5. Sizes.
const files = walk(out).map((f) => ({ f: relative(out, f), size: statSync(f).size })).sort((a, b) => b.size - a.size);
const total = files.reduce((a, x) => a + x.size, 0);
const shown = files.slice(0, 6);
for (const { f, size } of shown) console.log(`${mib(size).padStart(10)}  ${f}`);
if (files.length > shown.length) console.log(`${mib(files.slice(shown.length).reduce((a, x) => a + x.size, 0)).padStart(10)}  (${files.length - shown.length} more files)`);
console.log(`${mib(total).padStart(10)}  total in ${relative(process.cwd(), out) || '.'} (${files.length} files; ${inputs} modules bundled; node ${process.version} as ${nodeArchive}; ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
if (total > LIMIT) {
  console.error(`bundle: ${mib(total)} exceeds the ${mib(LIMIT)} limit`);
  process.exit(1);
}

function mib(n) { return `${(n / 2 ** 20).toFixed(2)} MiB`; }

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

function copyTree(src, dst, keep) {
  for (const f of walk(src)) {
    const rel = relative(src, f).split('\\').join('/');
    if (!keep(rel)) continue;
    mkdirSync(dirname(join(dst, rel)), { recursive: true });
    copyFileSync(f, join(dst, rel));
  }
}
