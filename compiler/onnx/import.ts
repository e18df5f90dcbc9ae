/**
 * ONNX model → ir.Graph.
 *
 * Decodes the protobuf, resolves opset imports per domain, turns initializers (lazily loaded,
 * external data included) and Constant nodes into constant values, declared input/output types
 * into symbolic shapes (dim_param → symbol), and links nodes into SSA values. Every structural
 * defect a file can have (truncation, unknown element types, dangling edges, duplicate producers,
 * cycles, missing external files) is reported as one error naming the file and the node or tensor.
 * Weights are not read: inspecting a 10 GB export touches only its graph.
 *
 * GRAPH attributes (If branches, Loop bodies) become ir Graphs, imported the same way. A subgraph
 * node may name a value of an enclosing graph (ONNX outer scope): it is resolved to that Value,
 * and the node holding the subgraph gets it as an extra input after its ONNX inputs
 * (ir/subgraph.ts explains why).
 */
import { readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { dtypeFromOnnx } from '../../runtime/dtype.js';
import { Tensor } from '../../runtime/tensor.js';
import { SymDim, type Dim } from '../ir/dim.js';
import { Graph, KNOWN_LIMIT, Node, type AttrValue, type Initializer, type Value, type ValueType } from '../ir/graph.js';
import { ATTR, num, onnx, type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type ValueInfoProto } from './proto.js';
import { initializerFromProto } from './tensor.js';
import { topoSort } from '../ir/edit.js';
import { capturedValues, ownedBy, topoSortSubgraph } from '../ir/subgraph.js';

export interface ImportedModel {
  graph: Graph;
  path: string;
  irVersion: number;
  producer: string;
  /** Declared types of graph inputs/outputs/value_info, by value name. */
  declared: Map<string, ValueType>;
}


export class OnnxImportError extends Error {}

export function importModelFile(path: string): ImportedModel {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new OnnxImportError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return importModelBytes(bytes, path, dirname(path));
}

export function importModelBytes(bytes: Uint8Array, path: string, baseDir: string | undefined): ImportedModel {
  const file = basename(path);
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new OnnxImportError(`${file}: not a valid ONNX model (protobuf: ${(e as Error).message})`);
  }
  try {
    return { ...convert(model, file, baseDir), path };
  } catch (e) {
    if (e instanceof OnnxImportError) throw e;
    throw new OnnxImportError(`${file}: ${(e as Error).message}`);
  }
}

/**
 * Names with control characters or invalid UTF-8 only come from corrupt files; reject them so
 * that every later message can quote names as they are.
 */
function checkName(name: string, what: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\ufffd]/.test(name)) {
    throw new Error(`${what} name ${JSON.stringify(name).slice(0, 80)} contains control characters or invalid UTF-8 (corrupt file?)`);
  }
  return name;
}

function convert(model: ModelProto, file: string, baseDir: string | undefined): Omit<ImportedModel, 'path'> {
  const gp = model.graph;
  if (!gp) throw new Error('model has no graph');
  const g = new Graph();
  g.name = gp.name || 'main';
  for (const o of model.opsetImport ?? []) {
    const domain = o.domain === 'ai.onnx' ? '' : (o.domain ?? '');
    g.opsets.set(domain, num(o.version));
  }
  if (g.opsets.size === 0) throw new Error('model imports no opset');
  for (const m of model.metadataProps ?? []) if (m.key) g.meta[m.key] = m.value ?? '';
  const declared = new Map<string, ValueType>();
  buildGraph(g, gp, baseDir, declared, undefined);
  return { graph: g, irVersion: num(model.irVersion), producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '), declared };
}

/** Names visible to a subgraph: a value of this graph or of an enclosing one. */
interface Scope { lookup(name: string): Value | undefined }

/** Fill `g` from `gp`; `outer` is set for subgraphs (names not defined here resolve through it). */
function buildGraph(g: Graph, gp: GraphProto, baseDir: string | undefined, declared: Map<string, ValueType>, outer: Scope | undefined): void {
  const local = new Set<string>();
  for (const [i, t] of (gp.initializer ?? []).entries()) local.add(t.name || `initializer_${i}`);
  for (const vi of gp.input ?? []) if (vi.name) local.add(vi.name);
  for (const np of gp.node ?? []) for (const o of np.output ?? []) if (o) local.add(o);
  const resolve = (name: string): Value => (!outer || local.has(name) ? g.value(name) : (outer.lookup(name) ?? g.value(name)));
  const scope: Scope = { lookup: (name) => (local.has(name) ? g.value(name) : outer?.lookup(name)) };
  const declare = (vi: ValueInfoProto, what: string): ValueType | undefined => {
    const name = checkName(vi.name ?? '', what);
    const tt = vi.type?.tensorType;
    if (!tt) {
      if (vi.type && Object.keys(vi.type).length > 0) throw new Error(`${what} '${name}': only tensor types are supported`);
      return undefined;
    }
    const dtype = dtypeFromOnnx(tt.elemType ?? 0, `${what} '${name}'`);
    if (!tt.shape) return undefined; // rank unknown: inference decides
    const shape: Dim[] = (tt.shape.dim ?? []).map((d, i) => {
      if (d.dimParam) return SymDim.symbol(checkName(d.dimParam, `${what} '${name}' dim_param`));
      if (d.dimValue !== undefined && d.dimValue !== null) {
        const v = num(d.dimValue);
        if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${what} '${name}': invalid dim ${v} at axis ${i}`);
        return v;
      }
      return SymDim.symbol(`${name}_dim${i}`);
    });
    const t = { dtype, shape };
    declared.set(name, t);
    return t;
  };

  // Initializers first: in IR < 4 they also appear among graph inputs, where they are not inputs.
  const initNames = new Set<string>();
  for (const [i, t] of (gp.initializer ?? []).entries()) {
    const name = checkName(t.name || `initializer_${i}`, 'initializer');
    if (initNames.has(name)) throw new Error(`initializer '${name}' is defined twice`);
    initNames.add(name);
    setConstant(g.value(name), initializerFromProto(t, `initializer '${name}'`, baseDir));
  }
  for (const vi of gp.input ?? []) {
    const t = declare(vi, 'graph input');
    if (initNames.has(vi.name ?? '')) continue;
    if (!vi.name) throw new Error('a graph input has no name');
    const v = g.value(vi.name);
    if (!t && !outer) throw new Error(`graph input '${vi.name}' has no tensor type`);
    if (t) v.type = t; // subgraph inputs (Loop bodies) may leave types to inference
    g.inputs.push(v);
  }
  for (const vi of gp.valueInfo ?? []) declare(vi, 'value_info');

  const seenNames = new Set<string>();
  for (const [idx, np] of (gp.node ?? []).entries()) {
    const name = np.name && !seenNames.has(np.name) ? np.name : `${np.opType ?? 'node'}_${idx}`;
    seenNames.add(name);
    addNode(g, np, name, idx, baseDir, resolve, scope);
  }
  for (const vi of gp.output ?? []) {
    const t = declare(vi, 'graph output');
    if (!vi.name) throw new Error('a graph output has no name');
    const v = outer && !local.has(vi.name) ? outer.lookup(vi.name) : g.values.get(vi.name);
    if (!v || (ownedBy(g, v) && !v.producer && !v.initializer && !g.inputs.includes(v))) {
      throw new Error(`graph output '${vi.name}' is not produced by any node, input or initializer`);
    }
    if (t && !v.type && !v.producer && ownedBy(g, v)) v.type = t;
    g.outputs.push(v);
  }
  checkEdges(g);
  if (!outer) { topoSort(g); return; }
  topoSortSubgraph(g);
  // Outer values list only their own graph's nodes as consumers (the node holding this subgraph
  // gets them as extra inputs instead).
  const own = new Set(g.nodes);
  for (const v of capturedValues(g)) {
    for (let i = v.consumers.length - 1; i >= 0; i--) if (own.has(v.consumers[i])) v.consumers.splice(i, 1);
  }
}

/** A GRAPH attribute as an ir Graph, its outer-scope names resolved through `scope`. */
function importSubgraph(gp: GraphProto, where: string, parent: Graph, scope: Scope, baseDir: string | undefined): Graph {
  const sg = new Graph();
  sg.name = gp.name || where;
  for (const [d, v] of parent.opsets) sg.opsets.set(d, v);
  try {
    buildGraph(sg, gp, baseDir, new Map(), scope);
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
  return sg;
}

function setConstant(v: Value, init: Initializer): void {
  v.initializer = init;
  v.type = { dtype: init.dtype, shape: [...init.shape] };
  const n = init.shape.reduce((a, b) => a * b, 1);
  if (!init.external && n <= KNOWN_LIMIT && init.dtype !== 'string') v.known = init.load().toArray();
}

function addNode(
  g: Graph, np: NodeProto, name: string, idx: number, baseDir: string | undefined, resolve: (name: string) => Value, scope: Scope,
): void {
  const opType = checkName(np.opType ?? '', `node #${idx} op_type`);
  checkName(name, `node #${idx}`);
  for (const v of [...(np.input ?? []), ...(np.output ?? [])]) checkName(v, `node '${name}' input/output`);
  if (!opType) throw new Error(`node #${idx} ('${name}') has no op_type`);
  const domain = checkName(np.domain === 'ai.onnx' ? '' : (np.domain ?? ''), `node '${name}' domain`);
  const opset = g.opsets.get(domain);
  const label = `${opType} node '${name}'`;
  if (opset === undefined) throw new Error(`${label}: domain '${domain}' is not among the model's opset imports`);
  const attrs = new Map<string, AttrValue>();
  for (const a of np.attribute ?? []) {
    if (!a.name) throw new Error(`${label}: an attribute has no name`);
    const where = `${label}: attribute '${a.name}'`;
    const v = (a.type ?? inferAttrType(a)) === ATTR.GRAPH
      ? importSubgraph(a.g ?? {}, where, g, scope, baseDir)
      : attrValue(a, where, baseDir);
    if (v !== undefined) attrs.set(a.name, v);
  }
  const outputs = (np.output ?? []).map((o, i) => g.value(o || `${name}:unused_output_${i}`));
  for (const o of outputs) {
    if (o.producer || o.initializer || g.inputs.includes(o)) throw new Error(`${label}: output '${o.name}' is already defined elsewhere`);
  }
  if (opType === 'Constant' && domain === '') {
    if (outputs.length !== 1) throw new Error(`${label}: Constant must have exactly one output`);
    setConstant(outputs[0], constantValue(attrs, label));
    return;
  }
  const inputs = (np.input ?? []).map((i) => (i ? resolve(i) : undefined));
  const captured = new Set<Value>();
  for (const a of attrs.values()) if (a instanceof Graph) for (const v of capturedValues(a)) captured.add(v);
  g.addNode(new Node(name, opType, domain, opset, attrs), [...inputs, ...captured], outputs);
}

/** Constant's one attribute as an initializer. */
function constantValue(attrs: Map<string, AttrValue>, label: string): Initializer {
  if (attrs.size !== 1) throw new Error(`${label}: Constant needs exactly one value attribute, has ${attrs.size}`);
  const [[k, v]] = [...attrs];
  let t: Tensor;
  switch (k) {
    case 'value': if (!(v instanceof Tensor)) throw new Error(`${label}: 'value' must be a tensor`); t = v; break;
    case 'value_float': t = Tensor.from('float32', [], [v as number]); break;
    case 'value_int': t = Tensor.from('int64', [], [v as number]); break;
    case 'value_floats': t = Tensor.from('float32', [(v as number[]).length], v as number[]); break;
    case 'value_ints': t = Tensor.from('int64', [(v as number[]).length], v as number[]); break;
    default: throw new Error(`${label}: Constant attribute '${k}' is not supported`);
  }
  return { dtype: t.dtype, shape: t.shape, byteLength: t.data.byteLength, load: () => t };
}

function attrValue(a: AttributeProto, where: string, baseDir: string | undefined): AttrValue | undefined {
  const type = a.type ?? inferAttrType(a);
  switch (type) {
    case ATTR.FLOAT: return a.f ?? 0;
    case ATTR.INT: return num(a.i);
    case ATTR.STRING: return new TextDecoder().decode(a.s ?? new Uint8Array());
    case ATTR.TENSOR: if (!a.t) throw new Error(`${where}: tensor missing`); return initializerFromProto(a.t, where, baseDir).load();
    case ATTR.FLOATS: return [...(a.floats ?? [])];
    case ATTR.INTS: return (a.ints ?? []).map((x) => num(x));
    case ATTR.STRINGS: return (a.strings ?? []).map((s) => new TextDecoder().decode(s));
    case ATTR.GRAPHS: return undefined; // no supported op takes a list of graphs (GRAPH: importSubgraph)
    default: throw new Error(`${where}: attribute type ${type} is not supported`);
  }
}

/** IR < 3 files may omit the attribute type: infer it from the field that is set. */
function inferAttrType(a: AttributeProto): number {
  if (a.ints && a.ints.length) return ATTR.INTS;
  if (a.floats && a.floats.length) return ATTR.FLOATS;
  if (a.strings && a.strings.length) return ATTR.STRINGS;
  if (a.t) return ATTR.TENSOR;
  if (a.g) return ATTR.GRAPH;
  if (a.s && a.s.length) return ATTR.STRING;
  if (a.f) return ATTR.FLOAT;
  return ATTR.INT;
}

/** Every input of every node must come from somewhere (captured outer values were resolved by name). */
function checkEdges(g: Graph): void {
  const inputs = new Set(g.inputs);
  for (const n of g.nodes) {
    for (const v of n.inputs) {
      if (v && ownedBy(g, v) && !v.producer && !v.initializer && !inputs.has(v)) {
        throw new Error(`${n.label}: input '${v.name}' is not produced by any node, graph input or initializer`);
      }
    }
  }
}
