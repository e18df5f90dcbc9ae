#!/usr/bin/env node
/**
 * `npm run conformance [-- FILTER]`: run the ONNX node tests and print the per-op report.
 * Exit 0 when nothing failed, 1 otherwise.
 */
import { DEFAULT_NODE_TESTS, formatReport, runConformance } from './runner.js';

const filter = process.argv[2];
const rep = runConformance(process.env.ONNX_NODE_TESTS ?? DEFAULT_NODE_TESTS, filter ? (n) => n.includes(filter) : undefined);
console.log(formatReport(rep));
process.exit(rep.results.some((r) => r.status === 'failed') ? 1 : 0);
