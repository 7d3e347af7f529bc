"""Pictures of the computation graph: which tensors and ops produced a result, and the gradients they got.

Every op on tensors that need a gradient records itself in its output's ``_ctx`` (see ``autograd.py``), so
following ``_ctx.inputs`` back from a loss finds the whole graph. This module walks it and draws it:

- ``build_graph(tensor)`` returns the graph as plain data (``Graph``: a list of ``Node`` and a list of
  ``Edge``), used by the renderers and handy in tests;
- ``draw_graph(tensor, "graph.png")`` draws it with matplotlib (PNG, SVG, PDF: the format follows the
  suffix) and returns the ``matplotlib.figure.Figure``;
- ``to_dot(tensor)`` returns the same graph as Graphviz DOT text (``dot -Tsvg graph.dot -o graph.svg``);
- ``name_parameters(model)`` sets each parameter's ``.name`` to its dotted name (``"fc1.weight"``), so the
  pictures (and ``repr``) say which weight is which; ``params=model`` does the same for one picture only;
- ``retain_grads(tensor)`` asks every intermediate tensor of the graph to keep its ``.grad``, so that after
  ``backward`` every node, not only the leaves, shows its gradient.
- ``trace_backward(loss)`` runs ``loss.backward()`` and returns a table of what it did, step by step: each
  tensor in the order backward visits it, the op whose backward ran there with the formula from its
  docstring, the shapes in and out, and the norm of the gradient that arrived.

In Jupyter, ``draw_graph``'s figure shows itself inline (it has ``_repr_png_``), and so does the trace.

What the picture shows. One node per tensor (label: name if it has one, shape, dtype, and ‖grad‖, the
gradient's Euclidean norm, wherever a ``.grad`` exists), one node per op (its ``Function`` class name), and
edges in data-flow order: input tensor → op → output tensor. Data flows left to right, so ``backward()``
visits the picture from right to left. Node kinds, told apart by colour and shape:

    parameter      orange box      a ``Parameter`` (or a tensor named in ``params=``): a learnable weight
    leaf           green box       any other tensor you created with ``requires_grad=True``
    constant       grey dashed     a tensor that needs no gradient: input data, labels, Python numbers
    intermediate   blue box        a result computed by an op
    output         red box         the tensor you asked to draw (e.g. the loss)
    op             grey ellipse    a ``Function``: its ``forward`` made the tensor to its right

When to draw. ``backward()`` frees the graph as it goes (it drops every op's saved arrays and its links to
its inputs), so afterwards there is nothing left to draw and these functions raise a ``RuntimeError``.
The recommended order, which also shows the gradients:

    retain_grads(loss)                 # optional: every node keeps its gradient, not only the leaves
    loss.backward(retain_graph=True)   # keep the graph...
    draw_graph(loss, "graph.png")      # ...to draw it, now with gradient norms

Drawing before ``backward()`` works too (no gradients yet), and ``g = build_graph(loss)`` taken before a
plain ``backward()`` is a snapshot that ``draw_graph(g, ...)`` and ``to_dot(g)`` accept later.

Large graphs. The layout is layered (a simplified Sugiyama method, as Graphviz's ``dot`` uses):
longest-path layers from the inputs, leaves pulled right next to their first use, long edges routed through
invisible waypoints, barycenter sweeps to reduce crossings and a least-squares placement that straightens
the edges. Fonts keep their size and the figure grows with the graph, so any picture stays readable when
zoomed (prefer SVG for big ones). Beyond ``max_nodes`` (default 150) nodes, only the ``max_nodes`` nodes
nearest the output are drawn and one dashed node "⋯ N earlier nodes" stands for the rest; pass
``max_nodes=None`` to draw everything. ``to_dot`` never cuts unless asked: Graphviz copes with big graphs.

Nothing here changes matplotlib's global state: figures are ``matplotlib.figure.Figure`` objects, never
``pyplot``, so no backend is selected and no window opens.
"""
import bisect
import inspect
import re
import weakref
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from .fileio import atomic_path
from .nn.module import Parameter
from .plots import save_figure
from .autograd import GraphFreedError, Tensor, graph_order

__all__ = ["Graph", "Node", "Edge", "build_graph", "draw_graph", "to_dot", "name_parameters", "retain_grads",
           "trace_backward", "BackwardTrace", "TraceStep"]

# kind -> (fill colour, border colour, legend text). ColorBrewer colours, readable when printed in grey.
STYLES = {
    "parameter": ("#fdd49e", "#d95f0e", "parameter (learnable weight)"),
    "leaf": ("#c7e9c0", "#31a354", "leaf with requires_grad=True"),
    "constant": ("#f7f7f7", "#969696", "constant (no gradient: data, labels, numbers)"),
    "intermediate": ("#deebf7", "#3182bd", "intermediate result"),
    "output": ("#fcbba1", "#cb181d", "output"),
    "op": ("#eeeeee", "#525252", "op (Function): forward runs left to right"),
    "cut": ("#ffffff", "#969696", "earlier part of the graph, not drawn (max_nodes)"),
}


@dataclass(frozen=True)
class Node:
    """One node of the graph. ``kind`` is one of ``STYLES``' keys; ``id`` is ``"t<i>"`` for tensors and
    ``"op<i>"`` for ops, numbered in data-flow order. Tensor fields are None on op nodes and vice versa."""

    id: str
    kind: str
    label: str  # the text drawn in the node, lines separated by "\n"
    name: Optional[str] = None  # the tensor's name (or the parameter's dotted name)
    shape: Optional[tuple] = None
    dtype: Optional[str] = None
    grad_norm: Optional[float] = None  # ‖grad‖₂, if the tensor has a .grad
    op: Optional[str] = None  # the Function's class name, on op nodes


class Edge(NamedTuple):
    """``src`` → ``dst`` in data-flow order. On tensor → op edges, ``arg`` is the name of the argument of
    the op's ``forward`` the tensor is passed as (``"a"``, ``"b"`` for ``a @ b``); None on op → tensor."""

    src: str
    dst: str
    arg: Optional[str] = None


@dataclass
class Graph:
    """The graph as plain data: nodes in data-flow order (every node after the nodes it is computed from),
    edges, the id of the output node and how many nodes were left out (``max_nodes``)."""

    nodes: list
    edges: list
    output: str
    hidden: int = 0
    title: str = ""
    _tensors: dict = field(default_factory=dict, repr=False, compare=False)  # node id -> weakref to Tensor
    _by_id: dict = field(default=None, repr=False, compare=False)

    def node(self, node_id):
        if self._by_id is None:
            self._by_id = {n.id: n for n in self.nodes}
        return self._by_id[node_id]

    def tensor(self, node_id):
        """The Tensor behind a tensor node, to look at its ``.data`` or ``.grad``; None once it no longer
        exists (the graph holds only weak references, so a snapshot never keeps arrays alive)."""
        ref = self._tensors.get(node_id)
        return None if ref is None else ref()

    def inputs_of(self, node_id):
        """Ids of the nodes with an edge into ``node_id``, in argument order."""
        return [e.src for e in self.edges if e.dst == node_id]

    def outputs_of(self, node_id):
        return [e.dst for e in self.edges if e.src == node_id]


# --- naming ------------------------------------------------------------------------------------------------
def name_parameters(model, overwrite=True):
    """Set ``p.name`` to its dotted name (``"fc1.weight"``, ``"0.bias"``) for every parameter of ``model``.

    Names then appear in every picture of any graph the parameters take part in, and in ``repr(p)``. A
    parameter shared by two modules keeps the first name. With ``overwrite=False``, names already set are
    kept. Returns ``model``, so ``model = name_parameters(Net())`` works.
    """
    seen = set()
    for name, p in model.named_parameters():
        if id(p) in seen or (not overwrite and p.name is not None):
            continue
        seen.add(id(p))
        p.name = name
    return model


def _param_names(params):
    """{id(tensor): name} from a Module, a {name: tensor} mapping or an iterable of (name, tensor) pairs."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        params = params.named_parameters()
    elif hasattr(params, "items"):
        params = params.items()
    names = {}
    for name, p in params:
        names.setdefault(id(p), name)
    return names


# --- walking the graph -------------------------------------------------------------------------------------
def _freed_error(what):
    return RuntimeError(
        f"{what}: the graph that produced this tensor was freed by backward() (it drops every op's links to its "
        "inputs to save memory), so there is nothing left to walk. Either draw before backward(), or keep the "
        "graph and get gradient norms too:  loss.backward(retain_graph=True); draw_graph(loss, 'graph.png')"
    )


def _walk(tensor, what):
    """Tensors of the graph in data-flow order (each after all its inputs): an iterative depth-first search
    from the output, inputs in argument order. Constants (inputs that need no gradient) are included."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{what}: expected a Tensor, got {type(tensor).__name__}")
    if tensor._ctx is None:
        raise ValueError(
            f"{what}: this tensor is a leaf (no op produced it, or it was computed inside no_grad() or from "
            "tensors that do not require grad), so it has no graph. Draw a result computed from tensors with "
            "requires_grad=True, e.g. the loss."
        )
    try:
        return graph_order(tensor, constants=True)
    except GraphFreedError:
        raise _freed_error(what) from None


def retain_grads(tensor):
    """Make every intermediate tensor of ``tensor``'s graph keep its ``.grad`` after ``backward`` (normally
    only leaves do), so pictures show a gradient on every node. Call it before ``backward``; returns ``tensor``."""
    for t in _walk(tensor, "retain_grads"):
        if t._ctx is not None:
            t.retain_grad()
    return tensor


_ARG_NAMES = {}


def _arg_names(fn):
    """Names of the arrays ``fn.forward`` takes, e.g. ("x", "weight", "bias") for Linear."""
    cls = type(fn)
    if cls not in _ARG_NAMES:
        try:
            params = list(inspect.signature(cls.forward).parameters.values())[1:]  # skip self
            _ARG_NAMES[cls] = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
        except (TypeError, ValueError):
            _ARG_NAMES[cls] = []
    names = _ARG_NAMES[cls]
    return [names[i] if i < len(names) else f"input {i}" for i in range(len(fn.inputs))]


def _shape_text(shape):
    return "scalar" if shape == () else str(shape)  # Python's spelling: (784,) for a vector


def _tensor_node(t, node_id, kind, name):
    shape, dtype = tuple(t.shape), str(t.data.dtype)
    lines = []
    if name is not None:
        lines.append(str(name))
    elif kind == "constant" and t.numel() == 1:
        lines.append(f"{t.data.item():.4g}")  # a Python number that met a tensor, e.g. the 2 in x * 2
    lines.append(f"{_shape_text(shape)} {dtype}")
    grad_norm = None
    if t.grad is not None:
        grad_norm = float(np.linalg.norm(np.asarray(t.grad, dtype=np.float64)))
        lines.append(f"‖grad‖ = {grad_norm:.3g}")
    return Node(node_id, kind, "\n".join(lines), name=name, shape=shape, dtype=dtype, grad_norm=grad_norm)


def op_name(fn):
    """The op a Function computes, whichever kernel set ran it: ``FastConv2dFunction`` and ``Conv2dFunction``
    are both "Conv2d", ``FastLinear`` is "Linear" (its formula, from the docstring of the class that ran,
    stays the implementation's own)."""
    name = type(fn).__name__
    if name.startswith("Fast") and name[4:5].isupper():
        name = name[4:]
    return name[: -len("Function")] if name.endswith("Function") and name != "Function" else name


def build_graph(tensor, params=None, max_nodes=None):
    """The graph that produced ``tensor``, as a ``Graph`` of plain ``Node``s and ``Edge``s.

    ``params``: a Module, a ``{name: tensor}`` mapping or (name, tensor) pairs; those tensors are shown as
    parameters with these names (without changing their ``.name``). ``max_nodes``: keep only that many nodes,
    the nearest to the output, plus one ``"cut"`` node standing for the rest (None keeps all).

    Raises ``RuntimeError`` if ``backward()`` already freed the graph (see the module docstring for the
    order that works), ``ValueError`` if ``tensor`` is a leaf.
    """
    if isinstance(tensor, Graph):  # already a snapshot: used as it is
        return tensor
    names = _param_names(params)
    order = _walk(tensor, "build_graph")
    if max_nodes is not None and max_nodes < 1:
        raise ValueError(f"max_nodes must be at least 1 or None, got {max_nodes}")
    total = len(order) + sum(1 for t in order if t._ctx is not None)  # tensors + ops
    keep_tensors, keep_ops = _nearest(tensor, max_nodes, total)

    nodes, edges, tensor_id, cut_targets, refs = [], [], {}, [], {}
    n_ops = 0
    for t in order:
        if keep_tensors is not None and id(t) not in keep_tensors:
            continue
        node_id = f"t{len(tensor_id)}"
        if t is tensor:
            kind = "output"
        elif t._ctx is not None:
            kind = "intermediate"
        elif isinstance(t, Parameter) or id(t) in names:
            kind = "parameter"
        elif t.requires_grad:
            kind = "leaf"
        else:
            kind = "constant"
        if t._ctx is not None and (keep_ops is None or id(t) in keep_ops):
            fn = t._ctx
            op_id = f"op{n_ops}"
            n_ops += 1
            nodes.append(Node(op_id, "op", op_name(fn), op=op_name(fn)))
            for x, arg in zip(fn.inputs, _arg_names(fn)):
                if x is not None:
                    edges.append(Edge(tensor_id[id(x)], op_id, arg))
            edges.append(Edge(op_id, node_id))
        elif t._ctx is not None:
            cut_targets.append(node_id)  # its op was cut: the summary node feeds it
        tensor_id[id(t)] = node_id
        refs[node_id] = weakref.ref(t)
        nodes.append(_tensor_node(t, node_id, kind, names.get(id(t), t.name)))
    hidden = total - len(nodes)
    if hidden:
        label = f"⋯ {hidden} earlier\nnodes not drawn"
        nodes.insert(0, Node("cut", "cut", label))
        edges[:0] = [Edge("cut", target) for target in cut_targets]
    what = tensor.name or "tensor"
    n_tensors = sum(1 for n in nodes if n.kind not in ("op", "cut"))
    title = f"Computation graph of {what}: {n_tensors} tensors, {n_ops} ops"
    if hidden:
        title += f" (the {len(nodes) - 1} nodes nearest the output; {hidden} more not drawn)"
    return Graph(nodes, edges, tensor_id[id(tensor)], hidden, title, refs)


def _nearest(tensor, max_nodes, total):
    """The tensors and ops (as sets of ``id(tensor)``; an op is identified by its output) within the first
    ``max_nodes`` nodes of a breadth-first walk back from the output; (None, None) when all fit.

    An op is kept only together with all its inputs, so every drawn op shows its complete argument list."""
    if max_nodes is None:
        return None, None
    tensors, ops = {id(tensor)}, set()
    queue = deque([tensor])
    count = 1
    while queue:
        t = queue.popleft()
        if t._ctx is None:
            continue
        new = [x for x in t._ctx.inputs if x is not None and id(x) not in tensors]
        new = list({id(x): x for x in new}.values())  # a tensor passed twice (x * x) is one node
        if count + 1 + len(new) > max_nodes:
            continue
        ops.add(id(t))
        count += 1 + len(new)
        for x in new:
            tensors.add(id(x))
            queue.append(x)
    if count == total:
        return None, None
    return tensors, ops


# --- Graphviz ------------------------------------------------------------------------------------------------
def _dot_quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(tensor, path=None, *, params=None, max_nodes=None):
    """The graph as Graphviz DOT text (render with ``dot -Tsvg graph.dot -o graph.svg``); also written to
    ``path`` (atomically) if given. ``tensor`` may be a Tensor or a ``Graph`` from ``build_graph``."""
    graph = build_graph(tensor, params=params, max_nodes=max_nodes)
    lines = [
        "// " + graph.title,
        "// Data flows left to right (input tensor -> op -> output tensor); backward() walks it right to left.",
        "// " + "; ".join(f"{STYLES[k][2]}: {_dot_colour_name(k)}" for k in STYLES if k != "cut"),
        "digraph minidl {",
        "  rankdir=LR;",
        f"  label={_dot_quote(graph.title)}; labelloc=t; fontname=Helvetica;",
        '  node [fontname=Helvetica, fontsize=10, penwidth=1.2];',
        '  edge [color="#555555", arrowsize=0.7, fontname=Helvetica, fontsize=8, fontcolor="#777777"];',
    ]
    n_inputs = {}
    for e in graph.edges:
        n_inputs[e.dst] = n_inputs.get(e.dst, 0) + 1
    for n in graph.nodes:
        fill, border, _ = STYLES[n.kind]
        if n.kind == "op":
            shape, style = "ellipse", "filled"
        elif n.kind in ("constant", "cut"):
            shape, style = "box", "rounded,filled,dashed"
        else:
            shape, style = "box", "rounded,filled"
        width = ", penwidth=2.2" if n.kind == "output" else ""
        lines.append(f'  {n.id} [label={_dot_quote(n.label)}, shape={shape}, style="{style}", '
                     f'fillcolor="{fill}", color="{border}"{width}];')
    for e in graph.edges:
        # argument names only where the order matters to a reader: ops with several inputs
        label = f" [label={_dot_quote(e.arg)}]" if e.arg and n_inputs[e.dst] > 1 else ""
        lines.append(f"  {e.src} -> {e.dst}{label};")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    if path is not None:
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
    return text


def _dot_colour_name(kind):
    return {"parameter": "orange box", "leaf": "green box", "constant": "grey dashed box",
            "intermediate": "blue box", "output": "red box", "op": "grey ellipse"}[kind]


# --- layered layout ------------------------------------------------------------------------------------------
def _layers(graph):
    """Layer (column) of each node: the longest path from a source, then each source moved right next to
    its first consumer, so a weight sits beside the op that uses it rather than far left with the data."""
    preds = {n.id: [] for n in graph.nodes}
    succs = {n.id: [] for n in graph.nodes}
    for e in graph.edges:
        preds[e.dst].append(e.src)
        succs[e.src].append(e.dst)
    layer = {}
    for n in graph.nodes:  # data-flow order: predecessors first
        layer[n.id] = 1 + max((layer[p] for p in preds[n.id]), default=-1)
    for n in graph.nodes:
        if not preds[n.id] and succs[n.id]:
            layer[n.id] = min(layer[s] for s in succs[n.id]) - 1
    return layer


def _pav(targets, weights):
    """Pool-adjacent-violators: the nondecreasing sequence nearest (weighted least squares) to ``targets``."""
    blocks = []  # [mean, weight, count]
    for z, w in zip(targets, weights):
        blocks.append([z, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    out = []
    for m, _, c in blocks:
        out.extend([m] * c)
    return out


def _crossings(order_a, order_b, edges):
    """Number of crossing edges between two adjacent columns.

    Edges (u, v) and (u', v') cross when u is above u' but v below v'. Sorted by the position of u (then v),
    that is an inversion in the sequence of positions of v, counted with a sorted list in O(E log E).
    """
    pa = {v: i for i, v in enumerate(order_a)}
    pb = {v: i for i, v in enumerate(order_b)}
    pairs = sorted((pa[u], pb[v]) for u, v in edges if u in pa and v in pb)
    seen, count = [], 0
    for _, b in pairs:
        count += len(seen) - bisect.bisect_right(seen, b)  # earlier edges ending strictly below this one
        bisect.insort(seen, b)
    return count


def _layout(graph, sizes, row_gap=0.16, dummy_gap=0.06):
    """Positions (inches) of every node's centre, and each edge's waypoints.

    ``sizes``: {node id: (width, height)} in inches. Returns (pos, routes, columns): ``pos[id] = (x, y)``
    with y growing downwards, ``routes[k]`` the list of (x_left, x_right, y) waypoints of edge k, and the
    list of (x_left, x_right) of every column.
    """
    layer = _layers(graph)
    n_layers = max(layer.values()) + 1

    # Long edges become chains of dummy nodes, one per column crossed, so that the ordering and placement
    # below treat them like short ones (and keep them off the real nodes).
    up, down = {v: [] for v in layer}, {v: [] for v in layer}  # neighbours in the previous / next column
    slot = {}  # (u, v) -> argument position, to keep an op's inputs in argument order
    chains = []
    for k, e in enumerate(graph.edges):
        chain = [e.src] + [("d", k, c) for c in range(layer[e.src] + 1, layer[e.dst])] + [e.dst]
        for c, d in enumerate(chain[1:-1], start=layer[e.src] + 1):
            layer[d] = c
            up[d], down[d] = [], []
        for a, b in zip(chain, chain[1:]):
            down[a].append(b)
            up[b].append(a)
        slot.setdefault((chain[-2], e.dst), len(slot))
        chains.append(chain)
    columns = [[] for _ in range(n_layers)]
    for v in sorted(layer, key=lambda v: layer[v]):  # real nodes in data-flow order, then dummies
        columns[layer[v]].append(v)

    # Barycenter ordering: sort each column by the mean position of its neighbours in the column just
    # swept, alternately left to right and right to left; keep the ordering with the fewest crossings.
    def arrange(cols, forward):
        cols = [list(c) for c in cols]
        index = range(1, n_layers) if forward else range(n_layers - 2, -1, -1)
        for i in index:
            ref = {v: j for j, v in enumerate(cols[i - 1 if forward else i + 1])}

            def key(item):
                j, v = item
                nbrs = [ref[u] for u in (up[v] if forward else down[v]) if u in ref]
                bary = sum(nbrs) / len(nbrs) if nbrs else j * len(ref) / max(len(cols[i]), 1)
                arg = min((slot.get((v, u), 0) for u in down[v]), default=0) if not forward else 0
                return (bary, arg, j)
            cols[i] = [v for _, v in sorted(enumerate(cols[i]), key=key)]
        return cols

    def total_crossings(cols):
        return sum(_crossings(cols[i], cols[i + 1], [(u, v) for u in cols[i] for v in down[u]])
                   for i in range(n_layers - 1))

    best, best_count = columns, total_crossings(columns)
    for sweep in range(8):
        columns = arrange(columns, forward=sweep % 2 == 0)
        count = total_crossings(columns)
        if count < best_count:
            best, best_count = columns, count
        if best_count == 0:
            break
    columns = best

    # Vertical placement: every node wants to sit at the mean height of its neighbours (straight edges),
    # subject to keeping its column's order and gaps; each column is one isotonic least-squares fit.
    height = {v: sizes[v][1] if v in sizes else 0.0 for v in layer}
    y = {}
    for col in columns:
        top = 0.0
        for v in col:
            y[v] = top + height[v] / 2
            top += height[v] + row_gap

    def gaps(col):  # offset of each node from the column's first one, when packed as tightly as allowed
        offsets, acc = [0.0], 0.0
        for a, b in zip(col, col[1:]):
            gap = dummy_gap if isinstance(a, tuple) or isinstance(b, tuple) else row_gap
            acc += (height[a] + height[b]) / 2 + gap
            offsets.append(acc)
        return offsets

    packed = [gaps(col) for col in columns]
    weights = [[2.0 if isinstance(v, tuple) else 1.0 for v in col] for col in columns]  # long edges stay straight

    def place(i, nbrs):
        col, offsets = columns[i], packed[i]
        targets = []
        for v, off in zip(col, offsets):
            ns = nbrs[v]
            want = sum(y[u] for u in ns) / len(ns) if ns else y[v]
            targets.append(want - off)
        for v, z, off in zip(col, _pav(targets, weights[i]), offsets):
            y[v] = z + off

    both = {v: up[v] + down[v] for v in layer}
    for _ in range(10):
        for i in range(1, n_layers):
            place(i, up)
        for i in range(n_layers - 2, -1, -1):
            place(i, down)
    for i in range(n_layers):
        place(i, both)
    top = min(y[v] - height[v] / 2 for v in y)
    y = {v: value - top for v, value in y.items()}

    # Horizontal placement: each column as wide as its widest node.
    col_gap = 0.6  # room for the argument names written on the edges
    spans, left = [], 0.0
    for col in columns:
        width = max((sizes[v][0] for v in col if v in sizes), default=0.3)
        spans.append((left, left + width))
        left += width + col_gap
    pos = {v: ((spans[layer[v]][0] + spans[layer[v]][1]) / 2, y[v]) for v in layer}
    routes = []
    for chain in chains:
        routes.append([(spans[layer[d]][0], spans[layer[d]][1], y[d]) for d in chain[1:-1]])
    return pos, routes, spans


# --- matplotlib ----------------------------------------------------------------------------------------------
FONT_SIZE = 8  # points; the figure grows with the graph instead of the text shrinking
ARG_FONT_SIZE = 6.5  # argument names on the edges into ops with several inputs
MAX_PIXELS = 40e6  # of a PNG; beyond it the resolution is lowered


def _text_width(text, weight="normal", size=FONT_SIZE):
    """Width in inches of one line of text, measured from the font's glyphs (no drawing needed)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    width, _, _ = text_to_path.get_text_width_height_descent(text, FontProperties(size=size, weight=weight),
                                                             ismath=False)
    return width / 72


def _node_size(node):
    lines = node.label.split("\n")
    line_h = FONT_SIZE * 1.3 / 72
    width = max(_text_width(line, "bold" if i == 0 and _bold_first(node) else "normal")
                for i, line in enumerate(lines))
    if node.kind == "op":
        return width + 0.3, line_h + 0.16  # an ellipse needs room around its text
    return width + 0.16, len(lines) * line_h + 0.1


def _bold_first(node):
    """The first line is bold when it is a name (or an op): the thing a reader looks for."""
    return node.kind == "op" or node.name is not None


def _graph_figure_class():
    """``GraphFigure``: a matplotlib ``Figure`` that Jupyter displays inline as a PNG (defined on first use,
    so importing viz does not import matplotlib)."""
    global _GraphFigure
    if _GraphFigure is None:
        import io

        from matplotlib.figure import Figure

        class GraphFigure(Figure):
            """The figure of ``draw_graph``: a ``matplotlib.figure.Figure`` plus ``_repr_png_``, so that a
            notebook cell ending in ``draw_graph(loss)`` shows the picture."""

            def _repr_png_(self):
                buffer = io.BytesIO()
                self.savefig(buffer, format="png", dpi=self.dpi, facecolor="white")
                return buffer.getvalue()

        _GraphFigure = GraphFigure
    return _GraphFigure


_GraphFigure = None


def draw_graph(tensor, path=None, *, params=None, max_nodes=150, title=None, dpi=150, legend=True):
    """Draw the graph that produced ``tensor`` with matplotlib; save it to ``path`` if given (PNG, SVG, PDF...,
    from the suffix; written atomically) and return the ``matplotlib.figure.Figure`` (in Jupyter, a cell that
    ends with it shows the picture).

    ``tensor``: a Tensor (usually the loss) or a ``Graph`` from ``build_graph``. ``params``: a Module or a
    ``{name: tensor}`` mapping, to show parameters under their dotted names (or call ``name_parameters``
    once). ``max_nodes``: draw at most this many nodes, those nearest the output (None: all). ``title``:
    replaces the automatic one.

    Order matters: ``backward()`` frees the graph. ``loss.backward(retain_graph=True)`` then
    ``draw_graph(loss, "graph.png")`` draws it with gradient norms; after a plain ``backward()`` this raises
    ``RuntimeError``.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Ellipse, FancyArrowPatch, FancyBboxPatch, Patch
    from matplotlib.path import Path as MplPath

    graph = build_graph(tensor, params=params, max_nodes=max_nodes)
    sizes = {n.id: _node_size(n) for n in graph.nodes}
    pos, routes, spans = _layout(graph, sizes)

    margin, title_h = 0.3, 0.65
    kinds = [k for k in STYLES if any(n.kind == k for n in graph.nodes)]
    graph_w = spans[-1][1]
    graph_h = max(pos[n.id][1] + sizes[n.id][1] / 2 for n in graph.nodes)
    width = max(graph_w + 2 * margin, 7.0)
    legend_cols = max(1, min(len(kinds), int(width // 3.2)))
    legend_h = (0.1 + 0.2 * -(-len(kinds) // legend_cols)) if legend else 0.0
    height = graph_h + 2 * margin + title_h + legend_h
    # Agg refuses images over 2^16 pixels a side, and a 100-megapixel PNG takes seconds to draw and most
    # viewers refuse it: giant graphs get a lower resolution (SVG has no such limit; prefer it for them).
    dpi = min(dpi, 60000 / max(width, height), (MAX_PIXELS / (width * height)) ** 0.5)

    fig = _graph_figure_class()(figsize=(width, height), dpi=dpi)  # a Figure that Jupyter shows inline
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)  # y grows downwards, like the column order
    ax.axis("off")
    x0 = (width - graph_w) / 2  # centre the graph when the legend makes the figure wider than it
    y0 = margin + title_h

    def at(x, y):
        return x + x0, y + y0

    # Edges first, so the nodes are drawn over their ends.
    n_inputs, args = {}, {}
    for e in graph.edges:
        n_inputs[e.dst] = n_inputs.get(e.dst, 0) + 1
        args.setdefault((e.src, e.dst), []).append(e.arg)
    drawn = set()
    for e, route in zip(graph.edges, routes):
        if (e.src, e.dst) in drawn:  # x * x: one line, labelled "a, b"
            continue
        drawn.add((e.src, e.dst))
        (sx, sy), (tx, ty) = pos[e.src], pos[e.dst]
        points = [(sx + sizes[e.src][0] / 2, sy)]
        for left, right, y in route:  # through each column crossed, horizontally
            points += [(left, y), (right, y)]
        points.append((tx - sizes[e.dst][0] / 2, ty))
        verts, codes = [at(*points[0])], [MplPath.MOVETO]
        for i, ((ax_, ay), (bx, by)) in enumerate(zip(points, points[1:])):
            if i % 2 == 1:  # inside a column: straight
                verts.append(at(bx, by))
                codes.append(MplPath.LINETO)
            else:  # between columns: an S-curve leaving and arriving horizontally
                mid = (ax_ + bx) / 2
                verts += [at(mid, ay), at(mid, by), at(bx, by)]
                codes += [MplPath.CURVE4] * 3
        ax.add_artist(FancyArrowPatch(path=MplPath(verts, codes), arrowstyle="-|>", mutation_scale=9,
                                     linewidth=0.8, color="#666666", zorder=1))
        if e.arg is not None and n_inputs[e.dst] > 1:
            # Which argument this tensor is (a @ b: which is a?), written where the last curve sets off, on its
            # level start: there the op's several inputs are still a node apart, not bunched at the op.
            p0x, p0y = verts[-4]
            ax.text(p0x + 0.05, p0y, ", ".join(args[e.src, e.dst]), ha="left", va="center", fontsize=ARG_FONT_SIZE,
                    style="italic", color="#666666", zorder=1.5, parse_math=False,
                    bbox=dict(facecolor="white", edgecolor="none", pad=0.4, alpha=0.9))  # sits on the line

    for n in graph.nodes:
        fill, border, _ = STYLES[n.kind]
        (x, y), (w, h) = at(*pos[n.id]), sizes[n.id]
        if n.kind == "op":
            ax.add_artist(Ellipse((x, y), w, h, facecolor=fill, edgecolor=border, linewidth=1.0, zorder=2))
        else:
            dashed = n.kind in ("constant", "cut")
            ax.add_artist(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.06",
                                        facecolor=fill, edgecolor=border, zorder=2,
                                        linewidth=2.0 if n.kind == "output" else 1.0,
                                        linestyle=(0, (3, 2)) if dashed else "solid"))
        lines = n.label.split("\n")
        line_h = FONT_SIZE * 1.3 / 72
        for i, line in enumerate(lines):
            ly = y + (i - (len(lines) - 1) / 2) * line_h
            ax.text(x, ly, line, ha="center", va="center", fontsize=FONT_SIZE, zorder=3, parse_math=False,
                    fontweight="bold" if i == 0 and _bold_first(n) else "normal",
                    color="#222222" if i == 0 else "#444444")

    fig.text(margin / width, 1 - margin / height, title or graph.title, ha="left", va="top", fontsize=11,
             fontweight="bold", parse_math=False)
    fig.text(margin / width, 1 - (margin + 0.3) / height,
             "data flows left to right (input → op → output); backward() computes the gradients right to left",
             ha="left", va="top", fontsize=8.5, color="#555555", parse_math=False)
    if legend:
        handles = []
        for k in kinds:
            fill, border, text = STYLES[k]
            if k == "op":
                handles.append(Line2D([], [], marker="o", markersize=10, linestyle="none", markerfacecolor=fill,
                                      markeredgecolor=border, label=text))
            else:
                handles.append(Patch(facecolor=fill, edgecolor=border, label=text,
                                     linestyle="--" if k in ("constant", "cut") else "-",
                                     linewidth=2.0 if k == "output" else 1.0))
        fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(margin / width, 0.1 / height),
                   ncol=legend_cols, frameon=False, fontsize=8, handlelength=1.6, columnspacing=1.5)

    if path is not None:
        path = Path(path)
        save_figure(fig, path, dpi=dpi, bbox_inches=None, facecolor="white")
    return fig


# --- tracing backward ----------------------------------------------------------------------------------------
class TraceStep(NamedTuple):
    """One step of ``backward()``, as ``trace_backward`` recorded it.

    ``tensor``: the tensor's name (its dotted parameter name or its own ``.name``; "–" when it has none). ``op``: the ``Function`` whose backward ran at this step, or ``"AccumulateGrad"`` for a leaf
    (its gradient is added to ``.grad``, PyTorch's name). ``formula``: that backward's math, the ``dL/d``
    lines of the op's docstring. ``inputs``: the shapes of the op's inputs (for a leaf, its own shape);
    ``shape``: the shape of the tensor, whose gradient g = dL/d(tensor) arrives here; ``grad_norm``: ‖g‖₂,
    None when no gradient reached it.
    """

    index: int
    tensor: str
    op: str
    formula: str
    inputs: tuple
    shape: tuple
    grad_norm: Optional[float]


class BackwardTrace(list):
    """The list of ``TraceStep``s, in the order backward visited them; prints as a table (``str``), and
    Jupyter shows it as an HTML table."""

    COLUMNS = ("#", "tensor", "op (its backward ran)", "shapes in → out", "‖dL/d tensor‖", "backward formula")

    def _cells(self, step):
        shapes_in = ", ".join(_shape_text(s) for s in step.inputs)
        norm = "no gradient" if step.grad_norm is None else f"{step.grad_norm:.4g}"
        return (str(step.index), step.tensor, step.op, f"{shapes_in} → {_shape_text(step.shape)}", norm, step.formula)

    def __str__(self):
        rows = [self.COLUMNS] + [self._cells(s) for s in self]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.COLUMNS) - 1)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]
        return "\n".join(line.rstrip() for line in lines)

    def __repr__(self):
        return str(self)

    def _repr_html_(self):
        from html import escape

        head = "".join(f"<th style='text-align:left'>{escape(c)}</th>" for c in self.COLUMNS)
        body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{escape(c)}</td>" for c in self._cells(s))
                       + "</tr>" for s in self)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def backward_formula(fn):
    """The math of ``fn``'s backward, from its class docstring: the text of each line that gives a gradient
    (``dL/d...``), joined by "; "; the docstring's first line when none does; "" without a docstring."""
    doc = (inspect.getdoc(type(fn)) or "").replace("``", "")
    found = []
    for line in doc.splitlines():
        # a gradient's definition: "dL/dx = ..." or "dL/dW += ...", after a space (not "-dL/da", one used on
        # the right-hand side; not "dL/dx to add into", prose)
        for part in re.split(r"(?:^|\s)(?=dL/d)", line)[1:]:
            if re.match(r"dL/d[^\s=\[]*(\[[^\]]*\])?\s*\+?=", part):
                found.append(" ".join(part.split()).rstrip(",;"))
    if found:
        return "; ".join(found)
    return doc.splitlines()[0].strip() if doc else ""


def trace_backward(loss, grad=None, *, params=None, retain_graph=False):
    """Run ``loss.backward(grad)`` and return what it did, step by step, as a ``BackwardTrace``.

    One ``TraceStep`` per tensor of the graph, in the order backward visits them (the reverse of
    ``autograd.graph_order``: each tensor after every tensor computed from it): the op whose backward ran
    there with the formula from its docstring, the shapes in and out, and the norm of the gradient dL/dt
    that arrived. A leaf's step is ``AccumulateGrad``: its gradient is added to its ``.grad``.

    It replaces ``loss.backward()``: the leaves get the same ``.grad`` (an optimizer step can follow), and
    the graph is freed unless ``retain_graph=True`` (keep it to ``draw_graph`` it afterwards). Intermediate
    tensors keep no ``.grad`` beyond those that asked for it with ``retain_grad()``. ``params``: a Module
    or a ``{name: tensor}`` mapping naming the parameters (as in ``draw_graph``).
    """
    if not isinstance(loss, Tensor):
        raise TypeError(f"trace_backward: expected a Tensor, got {type(loss).__name__}")
    if not loss.requires_grad:
        loss.backward(grad)  # the engine's own error: nothing requires grad
    try:
        visits = list(reversed(graph_order(loss)))  # the engine's order (autograd.Tensor.backward)
    except GraphFreedError:
        raise _freed_error("trace_backward") from None
    names = _param_names(params)
    leaves_before, asked = {}, set()
    steps = []
    for t in visits:
        name = names.get(id(t)) or t.name or "–"
        fn = t._ctx
        if fn is None:
            leaves_before[id(t)] = t.grad  # backward replaces .grad (t.grad + g), never changes it in place
            formula = f"{'x' if name == '–' else name}.grad += g"
            steps.append((t, name, "AccumulateGrad", formula, (tuple(t.shape),)))
        else:
            if getattr(t, "_retain_grad", False):
                asked.add(id(t))
            t.retain_grad()  # to read the gradient that arrives here; undone below
            inputs = tuple(tuple(x.shape) for x in fn.inputs if x is not None)
            steps.append((t, name, op_name(fn), backward_formula(fn), inputs))
    before = {id(t): t.grad for t, *_ in steps if t._ctx is not None and id(t) in asked}
    try:
        loss.backward(grad, retain_graph=retain_graph)
    finally:
        arrived = {}
        for t, *_ in steps:
            old = leaves_before.get(id(t), before.get(id(t)))
            g = None if t.grad is None or t.grad is old else np.asarray(t.grad, dtype=np.float64)
            if g is not None and old is not None:
                g = g - old  # .grad accumulates: this call's share is what was added
            arrived[id(t)] = g
            if t._ctx is not None and id(t) not in asked:
                t.grad = None
                t._retain_grad = False
    trace = BackwardTrace()
    for i, (t, name, op, formula, inputs) in enumerate(steps):
        g = arrived[id(t)]
        norm = None if g is None else float(np.linalg.norm(g))
        trace.append(TraceStep(i, name, op, formula, inputs, tuple(t.shape), norm))
    return trace
