#!/usr/bin/python3
"""Build an Optimum-style merged decoder from a with-past and a no-past export of the same weights.

    /usr/bin/python3 scripts/models/merge_decoder.py            # models/merged/coder-draft.merged.onnx

(In a subfolder: the tests that check every models/*.onnx expect the plain HF decoder I/O.)

Hugging Face Optimum (`optimum.onnx.merge_decoders`) merges `decoder_model.onnx` (no past) and
`decoder_with_past_model.onnx` into one graph: the outer graph has the with-past inputs plus
`use_cache_branch` (bool [1]) and a single If node switched by it; then_branch is the with-past
graph, else_branch the no-past graph (which ignores the past inputs and still outputs presents);
initializers live once in the outer graph (deduplicated by content) and both branches read them
through outer-scope references. This script does the same with onnx 1.12 only (no torch/optimum):

- outer inputs: those of the with-past export + `use_cache_branch`; outputs: logits, present.*;
- then_branch: the with-past graph's nodes; else_branch: the no-past graph's nodes, whose
  `present.{i}.key/value` outputs are its own new K/V (the values the with-past graph concatenates
  to the past: found by the producing node's name, which the two torch exports share);
- as in Optimum, branch values keep the exporter's names, so both branches (separate scopes) use
  the same names, and their outputs are named like the If's outputs (`logits`, `present.*`):
  subgraph names shadow outer ones (onnx.checker and onnxruntime accept this; `--prefix` makes
  them unique instead); initializers are shared by content under the with-past export's names.
"""
import argparse
import hashlib
import os

import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.normpath(os.path.join(HERE, '..', '..', 'models'))


def content_key(t):
    arr = numpy_helper.to_array(t)
    return (t.data_type, tuple(t.dims), hashlib.sha256(arr.tobytes()).hexdigest())


def branch(graph, prefix, shared, outer_names, outputs, name):
    """graph's nodes as a subgraph: produced values prefixed, initializers mapped to shared names."""
    init_map = {t.name: shared[content_key(t)] for t in graph.initializer}
    produced = {o for n in graph.node for o in n.output if o}

    def rename(x):
        if not x:
            return x
        if x in produced:
            return prefix + x
        if x in init_map:
            return init_map[x]
        if x in outer_names:
            return x
        raise ValueError(f'{graph.name}: value {x!r} is neither produced, an initializer nor an outer input')

    nodes = []
    for n in graph.node:
        m = onnx.NodeProto()
        m.CopyFrom(n)
        m.name = prefix + n.name
        m.input[:] = [rename(x) for x in n.input]
        m.output[:] = [rename(x) for x in n.output]
        nodes.append(m)
    outs = []
    for vi, src in outputs:
        o = onnx.ValueInfoProto()
        o.CopyFrom(vi)
        o.name = rename(src)
        outs.append(o)
    return helper.make_graph(nodes, name, inputs=[], outputs=outs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', default='coder-draft')
    ap.add_argument('--out', default=None)
    ap.add_argument('--prefix', action='store_true', help='prefix branch values (/with_past, /no_past) instead of keeping the exporter names')
    a = ap.parse_args()
    wp = onnx.load(os.path.join(MODELS, f'{a.model}.onnx'))
    np_ = onnx.load(os.path.join(MODELS, f'{a.model}.no-past.onnx'))
    g, h = wp.graph, np_.graph

    shared = {}
    inits = []
    for t in g.initializer:
        k = content_key(t)
        if k not in shared:
            shared[k] = t.name
            inits.append(t)
    missing = [t.name for t in h.initializer if content_key(t) not in shared]
    if missing:
        raise SystemExit(f'no-past initializers not in the with-past export: {missing[:5]}')

    outer_inputs = list(g.input) + [helper.make_tensor_value_info('use_cache_branch', TensorProto.BOOL, [1])]
    outer_names = {i.name for i in outer_inputs}

    # then_branch: the with-past graph, its outputs as they are.
    pre_then, pre_else = ('/with_past', '/no_past') if a.prefix else ('', '')
    then_g = branch(g, pre_then, shared, outer_names, [(o, o.name) for o in g.output], 'with_past')

    # else_branch: the no-past graph; presents are the new K/V the with-past graph concatenates.
    prod_wp = {o: n for n in g.node for o in n.output}
    h_values = {o for n in h.node for o in n.output}
    else_outputs = [(h.output[0], h.output[0].name)]
    for o in g.output[1:]:
        concat = prod_wp[o.name]
        assert concat.op_type == 'Concat' and concat.input[0].startswith('past_key_values.'), concat.name
        new = concat.input[1]
        if new not in h_values:
            raise SystemExit(f'{o.name}: the no-past export has no value {new!r} (new K/V of {concat.name})')
        vi = onnx.ValueInfoProto()
        vi.CopyFrom(o)
        dims = vi.type.tensor_type.shape.dim
        dims[2].dim_param = 'sequence_length'  # no past: present holds the new tokens only
        else_outputs.append((vi, new))
    else_g = branch(h, pre_else, shared, outer_names, else_outputs, 'no_past')

    if_node = helper.make_node('If', ['use_cache_branch'], [o.name for o in g.output], name='optimum::if',
                               then_branch=then_g, else_branch=else_g)
    graph = helper.make_graph([if_node], f'{a.model}-merged', outer_inputs, list(g.output), initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)],
                              producer_name='lfc merge_decoder.py (Optimum merged-decoder layout)')
    model.ir_version = wp.ir_version
    onnx.checker.check_model(model, full_check=True)
    out = a.out or os.path.join(MODELS, 'merged', f'{a.model}.merged.onnx')
    os.makedirs(os.path.dirname(out), exist_ok=True)
    onnx.save(model, out)
    print(f'{out}: {os.path.getsize(out)} bytes, {len(inits)} shared initializers, '
          f'then_branch {len(then_g.node)} nodes, else_branch {len(else_g.node)} nodes')


if __name__ == '__main__':
    main()
