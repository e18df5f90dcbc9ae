/**
 * The op registry: one entry per (domain, op type, since-version), each with shape inference and
 * a CPU reference evaluation side by side (STYLE.md §1).
 *
 * A model that imports ai.onnx opset N gets, for each op, the registered definition with the
 * highest `since` ≤ N. An op type lfc does not know, or knows only from a later opset, is reported
 * with the node that uses it. One definition may serve several ONNX versions whose semantics it
 * handles itself (by checking `ctx.opset`), e.g. Squeeze-1 (axes attribute) and Squeeze-13
 * (axes input).
 */
import type { DType } from '../../runtime/dtype.js';
import type { Tensor } from '../../runtime/tensor.js';
import type { Attrs } from '../ir/attrs.js';
import type { Dim } from '../ir/dim.js';
import type { Node } from '../ir/graph.js';

/** What shape inference knows about one input. */
export interface InputInfo {
  readonly dtype: DType;
  readonly shape: readonly Dim[];
  /** Flattened contents, when known (shape arithmetic); entries may be symbolic. */
  readonly known?: readonly Dim[];
}

/** What shape inference says about one output. */
export interface OutputInfo {
  dtype: DType;
  shape: Dim[];
  known?: Dim[];
}

export interface OpContext {
  readonly node: Node;
  readonly attrs: Attrs;
  /** Opset version of the node's domain imported by the model. */
  readonly opset: number;
  /** Throw an error naming the node. */
  fail(message: string): never;
  /**
   * Record that two symbolic dims must be equal at run time (broadcasting a mask over
   * total_sequence_length against scores over past_sequence_length + sequence_length); returns
   * the form to use from now on. Absent at evaluation time.
   */
  equate?(a: Dim, b: Dim): Dim;
}

export interface InferContext extends OpContext {
  /** One entry per declared input; undefined where an optional input is omitted. */
  readonly inputs: readonly (InputInfo | undefined)[];
  /** Input i, failing with a clear message when it is omitted. */
  input(i: number): InputInfo;
  /** Input i's contents as plain numbers when fully known and numeric, else undefined. */
  numbers(i: number): number[] | undefined;
}

export interface OpDef {
  readonly name: string;
  /** '' is ai.onnx. */
  readonly domain?: string;
  /** ONNX versions this definition implements (its own since-versions, ascending). */
  readonly since: readonly number[];
  /** Number of outputs the node may declare is checked by the driver against infer's result. */
  infer(ctx: InferContext): OutputInfo[];
  /** Reference semantics on concrete tensors; undefined entries are omitted optional inputs. */
  evaluate(ctx: OpContext, inputs: readonly (Tensor | undefined)[]): Tensor[];
}

const table = new Map<string, OpDef[]>();
const key = (domain: string, name: string): string => `${domain === 'ai.onnx' ? '' : domain}::${name}`;

export function registerOp(def: OpDef): void {
  const k = key(def.domain ?? '', def.name);
  const list = table.get(k) ?? [];
  list.push(def);
  table.set(k, list);
}

export function registerOps(defs: readonly OpDef[]): void { for (const d of defs) registerOp(d); }

/** The definition for an op at an opset, or a reason why there is none. */
export function resolveOp(domain: string, name: string, opset: number): OpDef | string {
  const list = table.get(key(domain, name));
  if (!list) return `op ${domain && domain !== 'ai.onnx' ? `${domain}.` : ''}${name} is not supported by lfc`;
  let best: OpDef | undefined;
  let bestSince = -1;
  for (const d of list) {
    for (const s of d.since) if (s <= opset && s > bestSince) { best = d; bestSince = s; }
  }
  if (!best) {
    const first = Math.min(...list.flatMap((d) => d.since));
    return `op ${name} at opset ${opset} is not supported (lfc implements it from opset ${first})`;
  }
  return best;
}

/** All registered op names, for `--help`, docs and the conformance report. */
export function registeredOps(): { domain: string; name: string; since: number[] }[] {
  return [...table.entries()].map(([k, defs]) => {
    const [domain, name] = k.split('::');
    return { domain, name, since: defs.flatMap((d) => [...d.since]).sort((a, b) => a - b) };
  }).sort((a, b) => a.name.localeCompare(b.name));
}
