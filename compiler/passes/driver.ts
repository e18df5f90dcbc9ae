/**
 * The pass driver. A pass is a named graph transformation; most are tables of declarative rewrite
 * rules (STYLE.md: tinygrad's pattern tables) applied by `rewritePass` until nothing changes.
 * After every pass the driver restores the invariants other passes rely on (topological order,
 * no dead values, fresh shape inference), can dump the graph (`--dump-after=PASS`) and reports
 * progress.
 */
import type { Graph, Node } from '../ir/graph.js';
import { pruneValues, removeNode, topoSort } from '../ir/edit.js';
import { inferShapes } from '../ir/infer.js';

/** What fusion passes record per layer: what was fused, and why a pattern did not match. */
export interface FusionEvent {
  pass: string;
  rule: string;
  /** Node the match was rooted at. */
  node: string;
  outcome: 'fused' | 'missed';
  detail: string;
}

export interface PassContext {
  readonly events: FusionEvent[];
  fused(pass: string, rule: string, node: Node, detail: string): void;
  missed(pass: string, rule: string, node: Node, why: string): void;
}

export interface Pass {
  name: string;
  description: string;
  /** The pass leaves the graph cleaned up and inferred itself (rewrite passes do, per round). */
  selfCleaning?: boolean;
  /** Returns the number of changes made. */
  run(g: Graph, ctx: PassContext): number;
}

/** One rewrite rule: tried on every node whose op type is in `ops`; returns true if it rewrote. */
export interface Rule {
  name: string;
  /** Op types the rule roots at, in `domain` ('' = ai.onnx, the default). */
  ops: readonly string[];
  domain?: string;
  apply(g: Graph, node: Node, ctx: PassContext): boolean;
}

export function rewritePass(name: string, description: string, rules: readonly Rule[], maxRounds = 20): Pass {
  return {
    name, description, selfCleaning: true,
    run(g, ctx) {
      let total = 0;
      for (let round = 0; round < maxRounds; round++) {
        let changed = 0;
        for (const node of [...g.nodes]) {
          if (node.removed) continue; // removed by an earlier rewrite this round
          for (const r of rules) {
            if (!r.ops.includes(node.opType) || node.domain !== (r.domain ?? '')) continue;
            if (r.apply(g, node, ctx)) { changed++; break; }
          }
        }
        if (changed === 0) break;
        total += changed;
        cleanup(g);
        inferShapes(g, { incremental: true });
      }
      return total;
    },
  };
}

/** Remove nodes whose outputs nobody uses (dead code), repeatedly. */
export function deadCode(g: Graph): number {
  let removed = 0;
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (n.outputs.every((o) => o.consumers.length === 0 && !g.outputs.includes(o))) { removeNode(g, n); removed++; }
  }
  return removed;
}

export function cleanup(g: Graph): void {
  deadCode(g);
  topoSort(g);
  pruneValues(g);
}

export interface PipelineOptions {
  /** Print the graph after this pass ('all' for every pass). */
  dumpAfter?: string;
  onDump?: (pass: string, g: Graph) => void;
  onPass?: (pass: Pass, changes: number, ms: number) => void;
}

export function runPipeline(g: Graph, passes: readonly Pass[], opts: PipelineOptions = {}): FusionEvent[] {
  const events: FusionEvent[] = [];
  const ctx: PassContext = {
    events,
    fused: (pass, rule, node, detail) => events.push({ pass, rule, node: node.name, outcome: 'fused', detail }),
    missed: (pass, rule, node, detail) => events.push({ pass, rule, node: node.name, outcome: 'missed', detail }),
  };
  if (opts.dumpAfter && opts.dumpAfter !== 'all' && opts.dumpAfter !== 'import' && !passes.some((p) => p.name === opts.dumpAfter)) {
    throw new Error(`--dump-after: no pass named '${opts.dumpAfter}' (passes: import, ${passes.map((p) => p.name).join(', ')}, all)`);
  }
  inferShapes(g);
  if (opts.dumpAfter === 'import' || opts.dumpAfter === 'all') opts.onDump?.('import', g);
  for (const p of passes) {
    const t0 = performance.now();
    const changes = p.run(g, ctx);
    if (changes > 0 && !p.selfCleaning) {
      cleanup(g);
      inferShapes(g, { incremental: true });
    }
    opts.onPass?.(p, changes, performance.now() - t0);
    if (opts.dumpAfter === p.name || opts.dumpAfter === 'all') opts.onDump?.(p.name, g);
  }
  return events;
}
