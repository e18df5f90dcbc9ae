/**
 * inline-if: lfc plans have no control flow, so every If is replaced by one of its branches.
 *
 *   use_cache_branch   Hugging Face Optimum's merged decoder: one If switched by the graph input
 *                      `use_cache_branch` (bool [1]); then_branch is the with-past decoder. The plan
 *                      always runs with a (paged) cache, and the with-past graph with an empty past
 *                      is the prefill, so the then_branch is inlined, `use_cache_branch` is taken as
 *                      true everywhere else it is read, and it is removed from the graph inputs. What
 *                      remains compiles like any with-past export.
 *   constant           an If whose condition is known at compile time: the taken branch is inlined.
 *
 * Any other If (a condition computed at run time) cannot be put in ragged/paged form: the pass
 * reports it as a miss and leaves it, and lowering fails naming the node (never a wrong plan). Inlined values lose their types and are inferred again in
 * the main graph (so its dim equations, e.g. total = past + sequence, are the main graph's own).
 */
import { Tensor } from '../../runtime/tensor.js';
import { addConstant, freshName, replaceAllUses } from '../ir/edit.js';
import type { Graph, Node, Value } from '../ir/graph.js';
import { ownedBy } from '../ir/subgraph.js';
import { branch, knownCondition } from '../ops/control.js';
import { LoweringError } from '../plan/lower.js';
import type { Pass } from './driver.js';

export const USE_CACHE_BRANCH = 'use_cache_branch';

/** The `use_cache_branch` graph input of an Optimum merged decoder, if `g` has one. */
export function useCacheInput(g: Graph): Value | undefined {
  const v = g.inputs.find((x) => x.name === USE_CACHE_BRANCH);
  const n = v?.type?.shape.reduce<number>((a, d) => a * (typeof d === 'number' ? d : NaN), 1);
  return v && v.type?.dtype === 'bool' && n === 1 ? v : undefined;
}

/** Move the nodes and values of `sub` into `g` in place of `node`, whose outputs become sub's outputs. */
function inlineBranch(g: Graph, node: Node, sub: Graph): void {
  if (sub.outputs.length < node.outputs.length) {
    throw new LoweringError(`${node.label}: branch '${sub.name}' has ${sub.outputs.length} outputs, the node ${node.outputs.length}`);
  }
  for (const v of [...sub.values.values()]) {
    if (g.values.has(v.name)) v.name = freshName(g, v.name);
    g.values.set(v.name, v);
    if (!v.initializer) { v.type = undefined; v.known = undefined; }
  }
  for (const n of sub.nodes) {
    for (const v of n.inputs) if (v && !ownedBy(sub, v) && !v.consumers.includes(n)) v.consumers.push(n);
  }
  g.nodes.splice(g.nodes.indexOf(node), 0, ...sub.nodes);
  node.outputs.forEach((o, i) => replaceAllUses(g, o, sub.outputs[i]));
  // Detach the If itself (its output names may now belong to the branch's outputs).
  for (const v of node.inputs) {
    const k = v ? v.consumers.indexOf(node) : -1;
    if (k >= 0) v!.consumers.splice(k, 1);
  }
  g.nodes.splice(g.nodes.indexOf(node), 1);
  node.removed = true;
}

export const inlineIf: Pass = {
  name: 'inline-if',
  description: "replace If nodes by a branch: Optimum's use_cache_branch → the with-past branch; constant conditions → the taken branch",
  run(g, ctx) {
    const useCache = useCacheInput(g);
    let changes = 0;
    let first: Node | undefined;
    const kept = new Set<Node>();
    for (let node = findIf(g, kept); node; node = findIf(g, kept)) {
      const cond = node.inputs[0];
      let take: 'then_branch' | 'else_branch';
      if (useCache && cond === useCache) {
        take = 'then_branch';
        ctx.fused('inline-if', 'merged-decoder', node, `If on '${USE_CACHE_BRANCH}': inlined then_branch (the with-past decoder)`);
      } else {
        const known = knownCondition(node);
        if (known === undefined) {
          // Left in place: lowering then fails naming this node, with this reason in the report.
          ctx.missed('inline-if', 'if', node, `cannot be lowered: its condition '${cond?.name ?? '(missing)'}' is computed at run time ` +
            `(lfc inlines an If only when it is switched by the '${USE_CACHE_BRANCH}' graph input of an Optimum merged decoder or by a compile-time constant)`);
          kept.add(node);
          continue;
        }
        take = known ? 'then_branch' : 'else_branch';
        ctx.fused('inline-if', 'constant-condition', node, `condition is ${known} at compile time: inlined ${take}`);
      }
      first ??= node;
      inlineBranch(g, node, branch({ node, fail: (m) => { throw new LoweringError(`${node.label}: ${m}`); } }, take));
      changes++;
    }
    if (useCache && !kept.size) {
      if (useCache.consumers.length) replaceAllUses(g, useCache, addConstant(g, Tensor.from('bool', [1], [1]), `${USE_CACHE_BRANCH}/true`));
      if (!g.outputs.includes(useCache)) {
        g.inputs.splice(g.inputs.indexOf(useCache), 1);
        g.values.delete(useCache.name);
        ctx.fused('inline-if', 'merged-decoder', first ?? { name: USE_CACHE_BRANCH } as Node,
          `graph input '${USE_CACHE_BRANCH}' removed: the plan always runs the cache branch (prefill is the cache branch with an empty past)`);
        changes++;
      }
    }
    return changes;
  },
};

function findIf(g: Graph, kept: ReadonlySet<Node>): Node | undefined {
  return g.nodes.find((n) => n.opType === 'If' && n.domain === '' && !kept.has(n));
}
