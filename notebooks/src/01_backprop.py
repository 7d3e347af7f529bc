# %% [markdown]
# # Backpropagation, one node at a time
#
# A tiny network, 4 inputs → 3 hidden units → ReLU → 2 classes, looks at a batch of 5 examples. We draw
# the graph that `loss.backward()` walks, follow backward through it step by step, compute every gradient
# again by hand with NumPy, and check both against finite differences. Everything runs in float64, so the
# three agree to about ten digits.
#
# The same steps work for any model you build: `minidl.viz.trace_backward(loss)` lists what backward did,
# and `minidl.viz.draw_graph(loss)` draws it.

# %%
import numpy as np

import minidl
from minidl import Tensor, nn, viz
from minidl import functional as F

np.set_printoptions(precision=4, suppress=True)
minidl.manual_seed(0)
rng = np.random.default_rng(0)

model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
for p in model.parameters():
    p.data = p.data.astype(np.float64)  # float64: finite differences need the precision
viz.name_parameters(model)  # "0.weight", "2.bias", ...: the names appear in the pictures and tables

x = Tensor(rng.standard_normal((5, 4)), name="x")
labels = np.array([0, 1, 1, 0, 1])
model

# %% [markdown]
# ## The forward pass, and its graph
#
# Each op records itself in its output, so the loss knows the whole graph that produced it.
# `retain_graph=True` keeps the graph after backward so that we can draw it with each gradient's size;
# `trace_backward` runs `loss.backward()` and records each of its steps.

# %%
z1 = model[0](x)
z1.name = "z1"
h = model[1](z1)
h.name = "h"
logits = model[2](h)
logits.name = "logits"
loss = F.cross_entropy(logits, labels)
loss.name = "loss"
print(f"loss = {loss.item():.6f}")

viz.retain_grads(loss)  # every tensor keeps its gradient, so the picture shows them all
trace = viz.trace_backward(loss, retain_graph=True)
viz.draw_graph(loss)

# %% [markdown]
# Data flows left to right; backward goes right to left. Here is what it did, in its own order: each
# tensor, the op whose backward ran there (with the formula from that op's docstring), the shapes in and
# out, and the size of the gradient dL/dt that arrived. A leaf's step is `AccumulateGrad`: its gradient is
# added to `.grad`, where the optimizer finds it.

# %%
trace

# %% [markdown]
# ## Every gradient by hand
#
# With g = dL/d(output) arriving from the right, each op's backward is one line of NumPy:
#
# | op | forward | backward |
# | --- | --- | --- |
# | cross-entropy | L = −(1/N) Σₙ log softmax(zₙ)[tₙ] | dL/dz = (softmax(z) − onehot(t)) / N |
# | linear | y = x Wᵀ + b | dL/dx = g W, dL/dW = gᵀ x, dL/db = Σₙ g |
# | ReLU | h = max(z, 0) | dL/dz = g ⊙ [z > 0] |

# %%
W1, b1 = model[0].weight.data, model[0].bias.data
W2, b2 = model[2].weight.data, model[2].bias.data
N = len(labels)

# forward again, in NumPy
z1_ = x.data @ W1.T + b1
h_ = np.maximum(z1_, 0)
logits_ = h_ @ W2.T + b2
p = np.exp(logits_ - logits_.max(axis=1, keepdims=True))
p /= p.sum(axis=1, keepdims=True)

# backward, right to left
d_logits = (p - np.eye(2)[labels]) / N
d_W2, d_b2 = d_logits.T @ h_, d_logits.sum(axis=0)
d_h = d_logits @ W2
d_z1 = d_h * (z1_ > 0)
d_W1, d_b1 = d_z1.T @ x.data, d_z1.sum(axis=0)

by_hand = {"logits": d_logits, "h": d_h, "z1": d_z1, "2.weight": d_W2, "2.bias": d_b2,
           "0.weight": d_W1, "0.bias": d_b1}
library = {"0.weight": model[0].weight.grad, "0.bias": model[0].bias.grad,
           "2.weight": model[2].weight.grad, "2.bias": model[2].bias.grad}
for name, grad in library.items():
    print(f"{name:9} max |by hand − library| = {np.abs(by_hand[name] - grad).max():.1e}")

# %% [markdown]
# The trace recorded the size of every gradient, the intermediate ones too; they match the hand-computed
# ones:

# %%
for step in trace:
    if step.tensor in by_hand:
        print(f"{step.tensor:9} ‖dL/dt‖ by hand {np.linalg.norm(by_hand[step.tensor]):.10f}   "
              f"traced {step.grad_norm:.10f}")

# %% [markdown]
# ## Finite differences: no calculus at all
#
# Nudge one number by ±ε, run the forward again, and see how much the loss moves:
# dL/dw ≈ (L(w + ε) − L(w − ε)) / 2ε. If it agrees with backward, backward is right.

# %%
def loss_value():
    with minidl.no_grad():
        return F.cross_entropy(model(x), labels).item()


eps = 1e-6
for name, param in model.named_parameters():
    numeric = np.zeros_like(param.data)
    for i in np.ndindex(param.shape):
        keep = param.data[i]
        param.data[i] = keep + eps
        up = loss_value()
        param.data[i] = keep - eps
        down = loss_value()
        param.data[i] = keep
        numeric[i] = (up - down) / (2 * eps)
    print(f"{name:9} max |backward − finite difference| = {np.abs(param.grad - numeric).max():.1e}")

# %% [markdown]
# `minidl.gradcheck(fn, *inputs)` does the same for any function of tensors, and raises if any entry
# disagrees:

# %%
W = Tensor(W1.copy(), requires_grad=True)
minidl.gradcheck(lambda x, W: F.relu(x @ W.T).sum(), x.data, W)

# %% [markdown]
# ## Your own model
#
# `trace_backward` works on anything built from minidl's ops. A tensor used twice gets two contributions,
# added up: here `h` feeds both the product and the sum, and backward reaches `h` only after both.

# %%
class Residual(nn.Module):
    def __init__(self):
        self.fc = nn.Linear(3, 3)

    def forward(self, h):
        return self.fc(h) * h + h


block = Residual()
h2 = Tensor(rng.standard_normal((2, 3)), requires_grad=True, name="h")
out = block(h2).sum()
viz.trace_backward(out, params=block)
