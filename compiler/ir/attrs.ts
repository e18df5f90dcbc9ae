/**
 * Typed access to a node's attributes, with errors that name the node and the attribute.
 */
import { Tensor } from '../../runtime/tensor.js';
import type { AttrValue, Node } from './graph.js';

export class Attrs {
  constructor(private readonly node: Pick<Node, 'attrs' | 'label'>) {}

  has(name: string): boolean { return this.node.attrs.has(name); }

  private get(name: string): AttrValue | undefined { return this.node.attrs.get(name); }

  private fail(name: string, what: string): never {
    throw new Error(`${this.node.label}: attribute '${name}' ${what}`);
  }

  int(name: string, dflt?: number): number {
    const v = this.get(name);
    if (v === undefined) return dflt ?? this.fail(name, 'is required');
    if (typeof v !== 'number') this.fail(name, 'must be an int');
    return v;
  }

  float(name: string, dflt?: number): number { return this.int(name, dflt); }

  ints(name: string, dflt?: number[]): number[] {
    const v = this.get(name);
    if (v === undefined) return dflt ?? this.fail(name, 'is required');
    if (!Array.isArray(v)) this.fail(name, 'must be a list of ints');
    return v as number[];
  }

  /** Like ints, but undefined when absent. */
  optInts(name: string): number[] | undefined { return this.has(name) ? this.ints(name) : undefined; }

  floats(name: string, dflt?: number[]): number[] { return this.ints(name, dflt); }

  string(name: string, dflt?: string): string {
    const v = this.get(name);
    if (v === undefined) return dflt ?? this.fail(name, 'is required');
    if (typeof v !== 'string') this.fail(name, 'must be a string');
    return v;
  }

  strings(name: string, dflt?: string[]): string[] {
    const v = this.get(name);
    if (v === undefined) return dflt ?? this.fail(name, 'is required');
    if (!Array.isArray(v)) this.fail(name, 'must be a list of strings');
    return v as string[];
  }

  tensor(name: string): Tensor {
    const v = this.get(name);
    if (!(v instanceof Tensor)) this.fail(name, 'must be a tensor');
    return v;
  }

  optTensor(name: string): Tensor | undefined { return this.has(name) ? this.tensor(name) : undefined; }
}
