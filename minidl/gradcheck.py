"""Numerical gradient checking: the test that every backward in minidl must pass.

For a scalar function L(x), the central difference
    (L(x + ε eᵢ) - L(x - ε eᵢ)) / 2ε = dL/dxᵢ + O(ε²)
approximates each partial derivative. A non-scalar output y is reduced to L = Σ r ⊙ y with a fixed random
r, so a single backward (with grad r) checks the whole Jacobian-vector product, and every element of y
influences L. Everything runs in float64: in float32 the rounding error of L(x ± ε) (~1e-7 · |L|) divided
by 2ε would swamp the comparison.
"""
import numpy as np

from .autograd import Tensor, no_grad


class GradcheckError(AssertionError):
    """The analytic gradient of some input disagrees with the finite-difference one."""


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check ``fn``'s backward against central finite differences; return True or raise ``GradcheckError``.

    ``inputs`` are Tensors or arrays. Floating-point inputs are copied to float64; those that are Tensors
    with ``requires_grad=False`` (or integer arrays, e.g. labels) are held constant. ``fn(*inputs)`` must
    return a Tensor. The error names the input, the worst index and both values.
    """
    xs = []
    for x in inputs:
        data = x.data if isinstance(x, Tensor) else np.asarray(x)
        is_float = data.dtype.kind == "f"
        wants_grad = is_float and (x.requires_grad if isinstance(x, Tensor) else True)
        xs.append(Tensor(data.astype(np.float64) if is_float else data, requires_grad=wants_grad))
    checked = [i for i, x in enumerate(xs) if x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no floating-point input requires grad, nothing to check")

    out = fn(*xs)
    r = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(r)

    def loss():
        with no_grad():
            return float(np.sum(fn(*xs).data * r))

    for i in checked:
        x = xs[i]
        analytic = np.zeros_like(x.data) if x.grad is None else x.grad
        numeric = numerical_gradient(loss, x.data, eps)
        bad = np.abs(analytic - numeric) > atol + rtol * np.abs(numeric)
        if bad.any():
            err = np.abs(analytic - numeric)
            worst = np.unravel_index(np.argmax(np.where(bad, err, -1)), x.shape)
            raise GradcheckError(
                f"gradcheck failed for input {i} (shape {x.shape}): {int(bad.sum())} of {x.numel()} entries disagree; "
                f"worst at index {tuple(int(j) for j in worst)}: analytic {analytic[worst]:.8g}, "
                f"numeric {numeric[worst]:.8g}, difference {err[worst]:.3g} (atol {atol}, rtol {rtol})"
            )
    return True


def numerical_gradient(loss, array, eps=1e-6):
    """dL/d(array) by central differences: each entry of ``array`` is nudged by ±eps in place, ``loss()``
    (which must read ``array``) evaluated, and the entry restored. ``array`` must be contiguous."""
    grad = np.zeros_like(array)
    flat, grad_flat = array.reshape(-1), grad.reshape(-1)  # views: writing to flat perturbs array
    for k in range(flat.size):
        orig = flat[k]
        flat[k] = orig + eps
        plus = loss()
        flat[k] = orig - eps
        minus = loss()
        flat[k] = orig
        grad_flat[k] = (plus - minus) / (2 * eps)
    return grad
