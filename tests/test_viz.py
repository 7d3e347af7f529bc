"""minidl.viz: the graph as data, its DOT text, the matplotlib picture, and the errors a learner can meet."""
import re
import shutil
import subprocess

import numpy as np
import pytest

import minidl
from minidl import Tensor, nn, viz
from minidl import functional as F

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def expression():
    """((a @ w + b).relu() * c).sum(), every tensor named: a, c constants; w a leaf needing grad; b a Parameter."""
    rng = np.random.default_rng(0)
    a = Tensor(rng.standard_normal((4, 3)), name="a")
    w = Tensor(rng.standard_normal((3, 5)), requires_grad=True, name="w")
    b = nn.Parameter(rng.standard_normal(5), name="b")
    c = Tensor(rng.standard_normal((4, 5)), name="c")
    mm = a @ w
    pre = mm + b
    act = pre.relu()
    prod = act * c
    out = prod.sum()
    for t, name in [(mm, "mm"), (pre, "pre"), (act, "act"), (prod, "prod"), (out, "out")]:
        t.name = name
    return out, dict(a=a, w=w, b=b, c=c, mm=mm, pre=pre, act=act, prod=prod, out=out)


def readable(graph):
    """Nodes and edges spelled with tensor names and op class names (all unique in ``expression``)."""
    text = {n.id: n.op if n.kind == "op" else n.name for n in graph.nodes}
    return {n.id: n for n in graph.nodes}, [(text[e.src], text[e.dst], e.arg) for e in graph.edges], text


def test_graph_of_a_known_expression_has_exactly_the_expected_nodes_and_edges():
    out, _ = expression()
    graph = viz.build_graph(out)
    nodes, edges, text = readable(graph)

    assert len(graph.nodes) == 14 and len(graph.edges) == 13
    assert [n.op for n in graph.nodes if n.kind == "op"] == ["MatMul", "Add", "ReLU", "Mul", "Sum"]
    kinds = {n.name: n.kind for n in graph.nodes if n.kind != "op"}
    assert kinds == {"a": "constant", "w": "leaf", "b": "parameter", "c": "constant", "mm": "intermediate",
                     "pre": "intermediate", "act": "intermediate", "prod": "intermediate", "out": "output"}
    assert sorted(edges, key=str) == sorted([
        ("a", "MatMul", "a"), ("w", "MatMul", "b"), ("MatMul", "mm", None),
        ("mm", "Add", "a"), ("b", "Add", "b"), ("Add", "pre", None),
        ("pre", "ReLU", "x"), ("ReLU", "act", None),
        ("act", "Mul", "a"), ("c", "Mul", "b"), ("Mul", "prod", None),
        ("prod", "Sum", "x"), ("Sum", "out", None),
    ], key=str)
    # data-flow order: every edge goes from an earlier node to a later one; the output comes last
    index = {n.id: i for i, n in enumerate(graph.nodes)}
    assert all(index[e.src] < index[e.dst] for e in graph.edges)
    assert graph.nodes[-1].id == graph.output and text[graph.output] == "out"
    # labels: name, shape and dtype; no gradient yet
    w_node = next(n for n in graph.nodes if n.name == "w")
    assert w_node.label == "w\n(3, 5) float64" and w_node.shape == (3, 5) and w_node.dtype == "float64"
    assert next(n for n in graph.nodes if n.name == "out").label == "out\nscalar float64"
    assert all(n.grad_norm is None for n in graph.nodes)
    assert graph.inputs_of(next(i for i, n in nodes.items() if n.op == "MatMul")) == [
        next(i for i, n in nodes.items() if n.name == k) for k in ("a", "w")]


def test_tensor_used_twice_is_one_node_with_two_edges_and_numbers_show_their_value():
    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    y = (x * x) * 2
    graph = viz.build_graph(y)
    nodes, edges, _ = readable(graph)
    assert sum(1 for n in graph.nodes if n.name == "x") == 1
    assert [(s, d) for s, d, _ in edges].count(("x", "Mul")) == 2
    two = next(n for n in graph.nodes if n.kind == "constant")
    assert two.label.splitlines()[0] == "2" and two.shape == ()
    assert graph.tensor(graph.output) is y


def test_ops_are_named_for_what_they_compute_in_either_kernel_set():
    for kernels in ("fast", "textbook"):
        with minidl.use_kernels(kernels):
            layer = nn.Conv2d(1, 2, 3, padding=1)
            out = nn.ReLU()(layer(Tensor(np.ones((1, 1, 4, 4), dtype=np.float32)))).sum()
        ops = [n.op for n in viz.build_graph(out).nodes if n.kind == "op"]
        assert ops == ["Conv2d", "ReLU", "Sum"], kernels
    assert viz.op_name(type("Function", (), {})()) == "Function"  # nothing stripped from a bare name


def test_missing_bias_is_skipped():
    layer = nn.Linear(3, 2, bias=False)
    out = layer(Tensor(np.ones((1, 3), dtype=np.float32))).sum()
    graph = viz.build_graph(out, params=layer)
    linear = next(n for n in graph.nodes if n.op == "Linear")
    assert [e.arg for e in graph.edges if e.dst == linear.id] == ["x", "weight"]


def mlp_loss(sizes=(6, 5, 3), seed=0):
    model = nn.Sequential(*[m for i, o in zip(sizes, sizes[1:]) for m in (nn.Linear(i, o), nn.ReLU())][:-1])
    x = Tensor(np.random.default_rng(seed).standard_normal((4, sizes[0])).astype(np.float32), name="x")
    loss = F.cross_entropy(model(x), np.arange(4) % sizes[-1])
    loss.name = "loss"
    return model, loss


def test_parameters_show_their_dotted_names_via_params_or_name_parameters():
    model, loss = mlp_loss()
    names = [n.name for n in viz.build_graph(loss).nodes if n.kind == "parameter"]
    assert names == [None] * 4  # Parameters are recognised, but have no names yet
    graph = viz.build_graph(loss, params=model)  # for this picture only
    assert [n.name for n in graph.nodes if n.kind == "parameter"] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert model[0].weight.name is None
    assert viz.build_graph(loss, params=dict(model.named_parameters())).nodes == graph.nodes

    assert viz.name_parameters(model) is model  # for good: sets .name
    assert model[0].weight.name == "0.weight" and "name='2.bias'" in repr(model[2].bias)
    assert [n.name for n in viz.build_graph(loss).nodes if n.kind == "parameter"] == ["0.weight", "0.bias",
                                                                                    "2.weight", "2.bias"]
    model[0].weight.name = "mine"
    viz.name_parameters(model, overwrite=False)
    assert model[0].weight.name == "mine"


def test_dot_text_lists_every_node_and_edge(tmp_path):
    out, _ = expression()
    graph = viz.build_graph(out)
    dot = viz.to_dot(out, tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text(encoding="utf-8") == dot
    assert "digraph" in dot and "rankdir=LR" in dot and dot.rstrip().endswith("}")
    for n in graph.nodes:
        line = next(line for line in dot.splitlines() if line.strip().startswith(n.id + " ["))
        assert "label=" + '"' + n.label.replace("\n", "\\n") + '"' in line
        assert ("shape=ellipse" in line) == (n.kind == "op")
    arrows = re.findall(r"^\s*(\w+) -> (\w+)", dot, flags=re.M)
    assert arrows == [(e.src, e.dst) for e in graph.edges]
    assert 't1 -> op0 [label="b"]' in dot  # w is MatMul's second argument
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_dot_text_is_accepted_by_graphviz():
    out, _ = expression()
    result = subprocess.run(["dot", "-Tsvg"], input=viz.to_dot(out), capture_output=True, text=True)
    assert result.returncode == 0 and "<svg" in result.stdout


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_picture_is_written(tmp_path, suffix):
    out, _ = expression()
    out.backward(retain_graph=True)
    path = tmp_path / f"graph{suffix}"
    fig = viz.draw_graph(out, path)
    data = path.read_bytes()
    assert len(data) > 10_000
    if suffix == ".png":
        assert data.startswith(PNG_MAGIC)
    else:
        assert b"<svg" in data[:2000]
    assert fig.get_figwidth() >= 7  # wide enough for the legend
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # written atomically: no temporary file left


def test_drawing_does_not_change_matplotlib_global_state(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    out, _ = expression()
    viz.draw_graph(out, tmp_path / "g.png")
    assert matplotlib.get_backend() == backend


def test_gradient_norms_appear_after_backward_with_retain_graph():
    out, t = expression()
    viz.retain_grads(out)
    out.backward(retain_graph=True)
    graph = viz.build_graph(out)
    for n in graph.nodes:
        if n.kind in ("op", "constant"):
            assert n.grad_norm is None and "grad" not in n.label
        else:
            expected = np.linalg.norm(t[n.name].grad)
            assert n.grad_norm == pytest.approx(expected)
            assert n.label.splitlines()[-1] == f"‖grad‖ = {expected:.3g}"
    assert viz.build_graph(out).node(graph.output).grad_norm == 1.0


def test_without_retain_grads_only_leaves_show_gradients():
    out, _ = expression()
    out.backward(retain_graph=True)
    with_grad = {n.name for n in viz.build_graph(out).nodes if n.grad_norm is not None}
    assert with_grad == {"w", "b"}


def test_freed_graph_gives_a_clear_error(tmp_path):
    out, _ = expression()
    out.backward()
    for call in (lambda: viz.build_graph(out), lambda: viz.to_dot(out), lambda: viz.retain_grads(out),
                 lambda: viz.draw_graph(out, tmp_path / "g.png")):
        with pytest.raises(RuntimeError, match=r"freed by backward\(\).*retain_graph=True"):
            call()
    assert not list(tmp_path.iterdir())


def test_snapshot_taken_before_backward_can_be_drawn_afterwards(tmp_path):
    out, _ = expression()
    graph = viz.build_graph(out)
    out.backward()
    viz.draw_graph(graph, tmp_path / "g.png")
    assert len(re.findall(r"^\s*\w+ -> \w+", viz.to_dot(graph), re.M)) == len(graph.edges)


def test_leaf_and_non_tensor_are_refused():
    with pytest.raises(ValueError, match="leaf"):
        viz.build_graph(Tensor([1.0], requires_grad=True))
    with pytest.raises(TypeError, match="Tensor"):
        viz.draw_graph(np.ones(3))


def test_layout_goes_left_to_right_without_overlaps():
    _, loss = mlp_loss((6, 5, 4, 3))
    graph = viz.build_graph(loss)
    sizes = {n.id: viz._node_size(n) for n in graph.nodes}
    pos, _, _ = viz._layout(graph, sizes)
    for e in graph.edges:
        assert pos[e.src][0] < pos[e.dst][0]
    boxes = [(pos[i][0], pos[i][1], *sizes[i]) for i in sizes]
    for k, (x1, y1, w1, h1) in enumerate(boxes):
        for x2, y2, w2, h2 in boxes[k + 1:]:
            assert abs(x1 - x2) >= (w1 + w2) / 2 or abs(y1 - y2) >= (h1 + h2) / 2


def test_argument_names_on_the_edges_sit_apart_and_off_the_nodes():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.patches import Ellipse, FancyBboxPatch

    model, loss = mlp_loss((6, 5, 3))
    fig = viz.draw_graph(loss, params=model)
    renderer = FigureCanvasAgg(fig).get_renderer()
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_fontsize() == viz.ARG_FONT_SIZE]
    assert sorted(t.get_text() for t in labels) == ["bias", "bias", "labels", "logits", "weight", "weight", "x", "x"]
    boxes = [t.get_window_extent(renderer) for t in labels]
    nodes = [a.get_window_extent(renderer) for a in ax.patches if isinstance(a, (Ellipse, FancyBboxPatch))]
    assert len(nodes) == len(viz.build_graph(loss).nodes)
    for k, box in enumerate(boxes):
        assert not any(box.overlaps(node) for node in nodes), labels[k].get_text()
        for other in boxes[k + 1:]:  # a full label's height apart at least: never bunched at the op
            assert abs(box.y0 - other.y0) >= 2 * box.height or abs(box.x0 - other.x0) > 2 * box.width


def big_loss(layers=20):
    """An MLP training step's loss with L2 weight decay: about 370 nodes."""
    model = viz.name_parameters(nn.Sequential(*[m for _ in range(layers) for m in (nn.Linear(8, 8), nn.Tanh())],
                                              nn.Linear(8, 3)))
    x = Tensor(np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32), name="x")
    loss = F.cross_entropy(model(x), [0, 1, 2, 0]) + 1e-4 * sum((p * p).sum() for p in model.parameters())
    loss.name = "loss"
    return loss


def test_a_few_hundred_nodes_are_summarised(tmp_path):
    loss = big_loss()
    full = viz.build_graph(loss, max_nodes=None)
    assert len(full.nodes) > 300 and full.hidden == 0
    cut = viz.build_graph(loss, max_nodes=150)
    drawn = [n for n in cut.nodes if n.kind != "cut"]
    assert len(drawn) <= 150 and cut.hidden == len(full.nodes) - len(drawn)
    assert cut.nodes[0].kind == "cut" and f"{cut.hidden} earlier" in cut.nodes[0].label
    assert cut.node(cut.output).name == "loss"
    ids = {n.id for n in cut.nodes}
    assert all(e.src in ids and e.dst in ids for e in cut.edges)
    # every op drawn has all its inputs drawn
    for n in cut.nodes:
        if n.kind == "op":
            assert len(cut.inputs_of(n.id)) >= 1
    viz.draw_graph(loss, tmp_path / "big.png")  # default max_nodes=150
    assert (tmp_path / "big.png").read_bytes().startswith(PNG_MAGIC)


def test_a_few_hundred_nodes_can_be_drawn_in_full(tmp_path):
    loss = big_loss()
    fig = viz.draw_graph(loss, tmp_path / "big.svg", max_nodes=None)
    assert "not drawn" not in fig.texts[0].get_text()
    assert (tmp_path / "big.svg").stat().st_size > 100_000


def test_draw_graph_shows_itself_inline_in_jupyter_and_still_writes_the_file(tmp_path):
    import io

    from PIL import Image

    out, _ = expression()
    fig = viz.draw_graph(out, tmp_path / "g.png")
    inline = fig._repr_png_()  # what Jupyter calls to show a cell's result
    assert inline.startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(inline)) as shown, Image.open(tmp_path / "g.png") as written:
        assert shown.size == written.size  # the same picture, at the same resolution
