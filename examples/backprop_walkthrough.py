"""Backpropagation, one node at a time: start here.

A tiny network (784 → 16 → ReLU → 10) looks at a handful of Fashion-MNIST images. After the forward pass,
``loss.backward()`` fills in dL/dt for every tensor t of the graph; this program then walks the graph from
the loss back to the inputs, in the order backward visits it, and for every tensor prints its gradient's
shape and first values, and checks a few entries against finite differences: nudge that one number by ±ε,
run the rest of the network again, and see how much the loss moves,

    dL/dt[i] ≈ (L(t[i] + ε) − L(t[i] − ε)) / 2ε.

If the two agree, backward is right. Everything runs in float64, where the agreement is to ~10 digits.

    python examples/backprop_walkthrough.py               # 8 Fashion-MNIST test images
    python examples/backprop_walkthrough.py --synthetic   # random images instead (no data needed)

Writes into --out (default runs/backprop_walkthrough/): graph.png, the computation graph with each
gradient's norm, and graph.dot, the same graph for Graphviz (``dot -Tsvg graph.dot -o graph.svg``).
"""
import argparse
import sys
from pathlib import Path

import numpy as np

import minidl
from minidl import Tensor, nn, no_grad, viz
from minidl import functional as F

BATCH = 8  # images
EPS = 1e-6  # finite-difference step: small enough for the O(ε²) error, large enough for float64 rounding
CHECKS_PER_TENSOR = 3
ATOL, RTOL = 1e-7, 1e-5

# What each op's backward computes, with the walkthrough's own names: (argument, formula) pairs. g is the
# gradient arriving from the right, dL/d(output). The general forms are in the ops' docstrings
# (minidl/functional.py).
EXPLAIN = {
    "CrossEntropy": [("logits", "dL/dlogits = (softmax(logits) − onehot(labels)) / N     (N = batch size)")],
    "Linear": [("x", "dL/d{x} = g · {weight}           (g = dL/d{out})"),
               ("weight", "dL/d{weight} = gᵀ · {x}          (summed over the batch)"),
               ("bias", "dL/d{bias} = g summed over the batch")],
    "ReLU": [("x", "dL/d{x} = g ⊙ [{x} > 0]          (the gradient passes where the unit was active, else 0)")],
}


class TwoLayerNet(nn.Module):
    def __init__(self, inputs=784, hidden=16, classes=10):
        self.fc1 = nn.Linear(inputs, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x, labels, nudge=None):
        """The forward pass, naming every intermediate tensor (the names appear in the printout and picture).

        ``nudge = (name, index, delta)`` adds ``delta`` to one entry of the intermediate tensor called
        ``name`` as soon as it is computed, so that everything after it sees the nudged value: that is how
        the finite differences below probe dL/dz1, dL/dh and dL/dlogits.
        """
        def step(tensor, name):
            if nudge is not None and nudge[0] == name:
                data = tensor.data.copy()
                data[nudge[1]] += nudge[2]
                tensor = Tensor(data)  # only ever used under no_grad(): the graph is not needed
            tensor.name = name
            return tensor

        z1 = step(self.fc1(x), "z1")
        h = step(F.relu(z1), "h")
        logits = step(self.fc2(h), "logits")
        return step(F.cross_entropy(logits, labels), "loss")


def load_batch(n, seed, synthetic):
    """(images as (n, 784) float64 in [0, 1], labels, a sentence saying where they came from)."""
    rng = np.random.default_rng(seed)
    if not synthetic:
        try:
            from minidl.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist

            images, labels = load_fashion_mnist("test", download=False)
            pick = rng.choice(len(images), size=n, replace=False)
            names = ", ".join(FASHION_MNIST_CLASSES[k] for k in labels[pick])
            x = images[pick].reshape(n, -1).astype(np.float64) / 255
            return x, labels[pick].astype(np.int64), f"{n} Fashion-MNIST test images ({names})"
        except (ImportError, OSError, ValueError, RuntimeError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(f"note: Fashion-MNIST is not available ({reason}).\n"
                  "      Using a synthetic batch instead: the walkthrough works the same. (To get the data, see\n"
                  "      the README, or run examples/fashion_mlp.py once, which downloads it.)\n")
    x = rng.random((n, 784))
    labels = rng.integers(0, 10, size=n)
    return x, labels, f"a synthetic batch of {n} random 28×28 images (seed {seed}) with random labels"


def numeric_gradient(model, x, labels, name, tensor, index):
    """Central difference (L(t[i] + ε) − L(t[i] − ε)) / 2ε for one entry of the tensor called ``name``."""
    def loss_with(delta):
        with no_grad():
            if isinstance(tensor, nn.Parameter):  # a weight: nudge it in place, run, put it back
                original = tensor.data[index]
                tensor.data[index] = original + delta
                try:
                    return model(x, labels).item()
                finally:
                    tensor.data[index] = original
            return model(x, labels, nudge=(name, index, delta)).item()  # an intermediate: nudge it in flight

    return (loss_with(EPS) - loss_with(-EPS)) / (2 * EPS)


def display(node):
    """A node's name; F.cross_entropy wraps the labels in a new, unnamed tensor, so those get a name here."""
    return node.name or ("labels" if node.dtype.startswith("int") else node.id)


def fmt(array, count=4):
    """The first ``count`` values of an array, flattened."""
    flat = array.reshape(-1)
    more = ", …" if flat.size > count else ""
    return "[" + ", ".join("0" if v == 0 else f"{v:+.4g}" for v in flat[:count]) + more + "]"


def report_tensor(model, x, labels, node, tensor, results):
    """Print one tensor's gradient and check its largest entries by finite differences."""
    grad = tensor.grad
    print(f"    dL/d{node.name:<12} shape {str(grad.shape):<10} ‖grad‖ = {node.grad_norm:.4g}")
    print(f"        first values {fmt(grad)}")
    if node.kind == "output":
        print("        (the starting point: dL/dloss = 1)")
        return
    # The largest entries: where a wrong backward would show most (many entries of dL/dfc1.weight are exactly
    # 0, for pixels that are 0 in every image).
    flat = np.argsort(-np.abs(grad), axis=None, kind="stable")[:CHECKS_PER_TENSOR]
    for k in flat:
        index = np.unravel_index(k, grad.shape)
        analytic = grad[index]
        numeric = numeric_gradient(model, x, labels, node.name, tensor, index)
        diff = abs(analytic - numeric)
        ok = diff <= ATOL + RTOL * abs(numeric)
        results.append(ok)
        where = "[" + ", ".join(str(int(i)) for i in index) + "]"
        print(f"        check {where:<9} backward {analytic:+.8f}   finite difference {numeric:+.8f}   "
              f"{'ok' if ok else 'MISMATCH'} (differ by {diff:.1e})")


def walkthrough(model, x, labels):
    """Forward, backward, then the graph from the loss back to the inputs. Returns the loss and check results."""
    loss = model(Tensor(x, name="x"), Tensor(labels, name="labels"))
    viz.retain_grads(loss)  # keep dL/dt on intermediate tensors too (normally only weights keep theirs)
    loss.backward(retain_graph=True)  # keep the graph: we walk it below and draw it afterwards

    graph = viz.build_graph(loss)

    print(f"Forward pass: loss = {loss.item():.6f}   "
          f"(guessing all 10 classes equally likely would give ln 10 = {np.log(10):.4f})\n")
    print("Backward pass, op by op from the loss back to the inputs (the order backward() visits them).")
    print("Each op receives g = dL/d(its output) and hands each input its gradient (the chain rule).")
    print(f"Each 'check' nudges one entry by ±{EPS:g}, runs the network again from there, and compares\n"
          "(L(+ε) − L(−ε)) / 2ε with the value backward computed.\n")
    results = []
    out_node = graph.node(graph.output)
    report_tensor(model, x, labels, out_node, graph.tensor(out_node.id), results)
    ops = [n for n in graph.nodes if n.kind == "op"]
    for step, op in enumerate(reversed(ops), start=1):
        inputs = [graph.node(i) for i in graph.inputs_of(op.id)]
        by_arg = {e.arg: graph.node(e.src) for e in graph.edges if e.dst == op.id}  # "weight" -> fc2.weight
        out = graph.node(graph.outputs_of(op.id)[0])
        print(f"\nstep {step}: {op.op}.backward    ({out.name} = {op.op}({', '.join(display(n) for n in inputs)}))")
        names = {arg: display(node) for arg, node in by_arg.items()}
        for arg, line in EXPLAIN.get(op.op, []):
            if by_arg[arg].grad_norm is not None:
                print("    " + line.format(out=out.name, **names))
            else:  # backward skips it: Function.needs_input_grad says nobody asked for it
                print(f"    (dL/d{names[arg]} is not computed: {names[arg]} does not require grad)")
        for node in inputs:
            if node.grad_norm is None:
                what = "the images" if node.name == "x" else "the class labels"
                print(f"    {display(node)}: no gradient ({what}: a constant, not something we learn)")
            else:
                report_tensor(model, x, labels, node, graph.tensor(node.id), results)
    return loss, graph, results


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/backprop_walkthrough"), help="folder for graph.png/.dot")
    p.add_argument("--seed", type=int, default=0, help="seeds the weights and the choice of images")
    p.add_argument("--synthetic", action="store_true", help="use random images instead of Fashion-MNIST")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):  # a console that cannot show ‖, ⊙ or ᵀ gets escapes, not a crash
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        print("minidl backprop walkthrough\n===========================\n")
        x, labels, source = load_batch(BATCH, args.seed, args.synthetic)
        minidl.manual_seed(args.seed)
        model = viz.name_parameters(TwoLayerNet())  # parameters get their names: fc1.weight, fc1.bias, ...
        for p in model.parameters():
            p.data = p.data.astype(np.float64)  # float64: finite differences need the precision
        print(f"Data:  {source}")
        print("Model: x (8, 784) → fc1 = Linear(784→16) → z1 → ReLU → h → fc2 = Linear(16→10) → logits,\n"
              "       then loss = cross-entropy of the logits against the labels\n")

        loss, graph, results = walkthrough(model, x, labels)

        passed = sum(results)
        print(f"\nFinite-difference check: {passed} of {len(results)} gradient entries agree with backward "
              f"(tolerance {ATOL:g} + {RTOL:g}·|value|).")
        png, dot = args.out / "graph.png", args.out / "graph.dot"
        viz.draw_graph(loss, png)  # written atomically (minidl.fileio.atomic_path)
        viz.to_dot(loss, dot)
        print(f"\nWrote {png}, the graph above as a picture: data flows left to right, from the images\n"
              "and the weights (orange boxes) through the ops (grey ellipses) to the loss (red box); each box\n"
              "shows a tensor's name, shape and ‖grad‖, the size of its gradient.\n"
              f"Wrote {dot}, the same graph for Graphviz: dot -Tsvg {dot} -o graph.svg")
        if passed != len(results):
            print(f"error: {len(results) - passed} finite-difference checks failed", file=sys.stderr)
            return 1
        print("\nNext: read minidl/autograd.py (backward) and minidl/functional.py (each op's backward).")
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a learner's first run: one clear line, not a traceback
        print(f"error: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
