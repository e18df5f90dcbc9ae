/**
 * Smoke entry of scripts/gpu/bundle.mjs: checks that a bundled lfc module runs with the packed node
 * and that koffi's native prebuild loads and calls into libc (as the CUDA backend calls libmodel.so).
 *
 *   node scripts/gpu/bundle.mjs scripts/gpu/smoke.ts && sh scripts/gpu/.bundle/run.sh
 */
import koffi from 'koffi';
import { roundBf16 } from '../../runtime/floats.js';

const libc = koffi.load('libc.so.6');
const getpid = libc.func('int getpid()');
const pid = getpid() as number;
console.log(JSON.stringify({ node: process.version, koffi: koffi.version, pidMatches: pid === process.pid, bf16Of1_001: roundBf16(1.001) }));
if (pid !== process.pid) process.exit(1);
