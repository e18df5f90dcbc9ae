/**
 * A readable text form of a graph, one node per line, for `--dump-after` and error reports:
 *
 *   graph main (opset ai.onnx 17)
 *     input  %input_ids: int64[batch_size, sequence_length]
 *     const  %wte: float32[259, 128]  (external)
 *     %x: float32[batch_size, sequence_length, 128] = Gather(%wte, %input_ids) {axis=0}   # /embed/Gather
 *     output %logits
 */
import { Tensor } from '../../runtime/tensor.js';
import { shapeStr } from './dim.js';
import type { AttrValue, Graph, Value } from './graph.js';

const typeStr = (v: Value): string => (v.type ? `${v.type.dtype}${shapeStr(v.type.shape)}` : '?');

function attrStr(a: AttrValue): string {
  if (a instanceof Tensor) return a.toString();
  if (Array.isArray(a)) return `[${a.map((x) => (typeof x === 'number' ? +x.toPrecision(6) : JSON.stringify(x))).join(',')}]`;
  if (typeof a === 'number') return String(+a.toPrecision(7));
  if (typeof a === 'string') return JSON.stringify(a);
  return '<graph>';
}

export function printGraph(g: Graph, opts: { constants?: boolean } = {}): string {
  const L: string[] = [];
  L.push(`graph ${g.name} (opset ${[...g.opsets].map(([d, v]) => `${d || 'ai.onnx'} ${v}`).join(', ')})`);
  for (const v of g.inputs) L.push(`  input  %${v.name}: ${typeStr(v)}`);
  if (opts.constants ?? true) {
    const used = new Set(g.nodes.flatMap((n) => n.inputs));
    for (const v of g.values.values()) {
      if (!v.initializer || !used.has(v)) continue;
      const small = v.known && v.known.length <= 8 ? ` = [${v.known.join(', ')}]` : '';
      L.push(`  const  %${v.name}: ${typeStr(v)}${small}${v.initializer.external ? '  (external)' : ''}`);
    }
  }
  for (const [k, e] of g.dimEquations) L.push(`  dim    ${k} = ${e}`);
  for (const n of g.nodes) {
    const outs = n.outputs.map((o) => `%${o.name}: ${typeStr(o)}`).join(', ');
    const ins = n.inputs.map((v) => (v ? `%${v.name}` : '_')).join(', ');
    const attrs = n.attrs.size ? ` {${[...n.attrs].map(([k, a]) => `${k}=${attrStr(a)}`).join(', ')}}` : '';
    const op = n.domain ? `${n.domain}.${n.opType}` : n.opType;
    L.push(`  ${outs} = ${op}(${ins})${attrs}   # ${n.name}`);
  }
  for (const v of g.outputs) L.push(`  output %${v.name}: ${typeStr(v)}`);
  return L.join('\n');
}
