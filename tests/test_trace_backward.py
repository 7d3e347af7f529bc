"""viz.trace_backward: backward's own order, the real gradient norms, and the formulas of the ops' docstrings."""
import numpy as np
import pytest

import minidl
from minidl import Tensor, nn, viz
from minidl import functional as F
from minidl.autograd import graph_order


def mlp_loss(dtype=np.float64):
    minidl.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    x = Tensor(np.random.default_rng(1).standard_normal((4, 6)).astype(dtype))
    return model, F.cross_entropy(model(x), np.array([0, 2, 1, 2]))


def cnn_loss():
    minidl.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, activation="relu"), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(3 * 4 * 4, 4))
    x = Tensor(np.random.default_rng(1).standard_normal((2, 1, 8, 8)).astype(np.float32))
    return model, F.cross_entropy(model(x), np.array([3, 0]))


def reference_norms(build):
    """dL/dt's norm for every tensor of the graph, from a plain backward with retain_grad everywhere."""
    model, loss = build()
    order = list(reversed(graph_order(loss)))
    for t in order:
        t.retain_grad()
    loss.backward()
    return [float(np.linalg.norm(t.grad)) for t in order], [t._ctx is None for t in order]


@pytest.mark.parametrize("build", [mlp_loss, cnn_loss], ids=["mlp", "cnn"])
def test_order_and_norms_are_those_of_the_engine(build):
    model, loss = build()
    engine_order = [viz.op_name(t._ctx) if t._ctx is not None else "AccumulateGrad"
                    for t in reversed(graph_order(loss))]
    trace = viz.trace_backward(loss, params=model)
    assert [s.op for s in trace] == engine_order
    assert [s.index for s in trace] == list(range(len(trace)))
    norms, leaves = reference_norms(build)
    np.testing.assert_allclose([s.grad_norm for s in trace], norms, rtol=1e-6)
    # the leaves' steps carry the parameters' names and exactly their .grad norms
    named = dict(model.named_parameters())
    for step in trace:
        if step.op == "AccumulateGrad":
            p = named[step.tensor]
            assert step.shape == tuple(p.shape)
            assert step.grad_norm == pytest.approx(float(np.linalg.norm(p.grad.astype(np.float64))), rel=1e-12)
    assert sum(leaves) == len(named)


def test_mlp_steps_read_as_the_chain_rule():
    with minidl.use_kernels("textbook"):  # every layer its own step
        model, loss = mlp_loss()
        trace = viz.trace_backward(loss, params=model)
    assert [(s.op, s.tensor) for s in trace] == [
        ("CrossEntropy", "–"), ("Linear", "–"), ("AccumulateGrad", "2.bias"), ("AccumulateGrad", "2.weight"),
        ("ReLU", "–"), ("Linear", "–"), ("AccumulateGrad", "0.bias"), ("AccumulateGrad", "0.weight")]
    first = trace[0]
    assert first.inputs == ((4, 3), (4,)) and first.shape == () and first.grad_norm == 1.0
    assert trace[1].inputs == ((4, 5), (3, 5), (3,)) and trace[1].shape == (4, 3)
    assert trace[1].formula.startswith("dL/dx = g W; dL/dW = gᵀ x")
    assert trace[4].formula.startswith("dL/dx = g ⊙ [x > 0]")
    assert "softmax(z) - onehot(t)" in first.formula
    assert trace[2].formula == "2.bias.grad += g"
    text = str(trace)
    assert text.splitlines()[0].startswith("#") and "2.weight" in text and len(text.splitlines()) == 9
    assert "<table>" in trace._repr_html_() and "⊙" in trace._repr_html_()
    with minidl.use_kernels("fast"):  # the Sequential's Linear and its ReLU: one step
        model, loss = mlp_loss()
        trace = viz.trace_backward(loss, params=model)
    assert [s.op for s in trace] == ["CrossEntropy", "Linear", "AccumulateGrad", "AccumulateGrad", "LinearReLU",
                                     "AccumulateGrad", "AccumulateGrad"]
    assert trace[4].formula.startswith("dL/dx = (g ⊙ m) W") and trace[4].shape == (4, 5)


def test_cnn_formulas_come_from_the_selected_kernels_docstrings():
    with minidl.use_kernels("textbook"):  # every layer its own step
        model, loss = cnn_loss()
        trace = viz.trace_backward(loss, params=model)
    conv = next(s for s in trace if s.op == "Conv2d")
    assert "dL/dcols = Wᵀ @ g" in conv.formula and conv.inputs == ((2, 1, 8, 8), (3, 1, 3, 3), (3,))
    assert conv.shape == (2, 3, 8, 8)
    pool = next(s for s in trace if s.op == "MaxPool2d")
    assert pool.inputs == ((2, 3, 8, 8),) and pool.shape == (2, 3, 4, 4)
    with minidl.use_kernels("fast"):  # the Sequential's Conv2d (its ReLU fused) and MaxPool2d: one step
        model, loss = cnn_loss()
        trace = viz.trace_backward(loss, params=model)
    assert not any(s.op in ("Conv2d", "MaxPool2d") for s in trace)
    fused = next(s for s in trace if s.op == "ConvReLUMaxPool")
    assert "pool_backward(g_p ⊙ [p > 0])" in fused.formula
    assert fused.inputs == ((2, 1, 8, 8), (3, 1, 3, 3), (3,)) and fused.shape == (2, 3, 4, 4)


def test_it_is_a_backward_the_leaves_get_the_grads_a_plain_backward_gives():
    model, loss = mlp_loss()
    plain_model, plain = mlp_loss()
    plain.backward()
    trace = viz.trace_backward(loss)
    for p, q in zip(model.parameters(), plain_model.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad)
    assert len(trace) == 7  # the loss, two products (the first with its ReLU) and four parameters
    with pytest.raises(RuntimeError, match="freed"):
        viz.trace_backward(loss)  # the graph was freed, as by backward()


def test_intermediates_do_not_keep_gradients_unless_asked():
    minidl.manual_seed(0)
    w = Tensor(np.array([1.0, -2.0, 0.0]), requires_grad=True, name="w")
    h = (w * 3.0).relu()
    h.name = "h"
    kept = h * h
    kept.retain_grad()
    out = kept.sum()
    trace = viz.trace_backward(out, retain_graph=True)
    assert h.grad is None and kept.grad is not None  # only the tensor that asked keeps its gradient
    out.backward(retain_graph=True)  # the trace's request to keep gradients is withdrawn, not just cleared
    assert h.grad is None and kept.grad is not None
    w.grad = None
    out.backward()
    np.testing.assert_array_equal(w.grad, [18.0, 0.0, 0.0])  # d/dw (3w)² = 18 w where 3w > 0; 0 at the kink
    # h is used twice (h * h): backward reaches it once, after Mul, with both contributions summed
    h_step = next(s for s in trace if s.tensor == "h")
    assert h_step.op == "ReLU" and h_step.grad_norm == pytest.approx(np.linalg.norm([6.0, 0.0, 0.0]))


def test_gradients_add_up_across_calls_and_the_trace_shows_this_calls_share():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True, name="w")
    viz.trace_backward((w * w).sum())
    trace = viz.trace_backward((w * 10.0).sum())
    np.testing.assert_array_equal(w.grad, [12.0, 14.0])  # 2w, then + 10
    assert trace[-1].tensor == "w" and trace[-1].grad_norm == pytest.approx(np.hypot(10.0, 10.0))


def test_a_leaf_that_needs_no_grad_is_refused_with_the_engines_message():
    with pytest.raises(RuntimeError, match="does not require grad"):
        viz.trace_backward(Tensor(np.ones(2)).sum())
