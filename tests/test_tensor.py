"""The autograd engine's behaviour: dtypes, accumulation, graph freeing, no_grad, and its error messages."""
import weakref

import numpy as np
import pytest

import minidl
from minidl import Tensor, no_grad
from minidl.autograd import Function


def test_python_numbers_follow_torch_tensor_and_arrays_keep_their_dtype():
    assert Tensor(3.0).dtype == np.float32 and Tensor([0.5, 2]).dtype == np.float32  # a float anywhere: float32
    assert Tensor(3).dtype == np.int64 and Tensor([[1, 2], [3, 4]]).dtype == np.int64
    assert Tensor([True, False]).dtype == np.bool_
    assert Tensor(np.zeros(3, dtype=np.float64)).dtype == np.float64
    assert Tensor(np.arange(3)).dtype == np.arange(3).dtype


def test_float32_stays_float32_through_ops_and_backward():
    x = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    y = ((x * 2.5 + 1) ** 2).mean()
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_gradient_of_a_known_expression():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()  # d/dx Σx² = 2x
    np.testing.assert_allclose(x.grad, [2.0, 4.0, 6.0])
    assert isinstance(x.grad, np.ndarray)


def test_gradients_accumulate_across_backward_calls_until_zero_grad():
    x = Tensor([1.0, -2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [6.0, 6.0])
    x.zero_grad()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 3.0])


def test_a_tensor_used_twice_receives_both_contributions():
    x = Tensor(np.array([2.0]), requires_grad=True)
    y = x * x + x  # dy/dx = 2x + 1 = 5
    y.backward()
    np.testing.assert_allclose(x.grad, [5.0])


def test_shared_gradient_arrays_are_not_aliased_between_leaves():
    a, b = Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()  # Add passes the same array to both inputs
    a.grad += 10
    np.testing.assert_allclose(b.grad, [1.0, 1.0])


def test_two_leaves_handed_one_fresh_array_by_add_get_separate_grads():
    """(a + b) * 2: Mul's backward makes a fresh array that Add hands to both a and b. Kept as a.grad (no
    copy), it must not also become b.grad: an update of one would move the other."""
    a, b = Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0, 4.0], requires_grad=True)
    ((a + b) * 2).sum().backward()
    assert not np.shares_memory(a.grad, b.grad)
    a.grad *= 0  # as an optimizer's in-place step on one gradient would
    np.testing.assert_array_equal(b.grad, [2.0, 2.0])


def test_a_fresh_gradient_array_becomes_grad_without_a_copy():
    """The array an op's backward makes for a leaf becomes its .grad as it is: copying it would cost a new
    parameter-sized array per step. Here the loss's own initial gradient (a 0-d array of ones) is freed
    before W's gradient array is made, so that array may get the freed one's id: that must not count as
    "already held" (an MLP's training step would copy its first layer's gradient every time)."""
    made = []

    class Scale(Function):
        def forward(self, w):
            return w * 2.0

        def backward(self, g):
            made.append(g * 2.0)  # a fresh array, made after the caller's gradient is gone
            return (made[-1],)

    w = Tensor(np.ones((3, 4)), requires_grad=True)
    for _ in range(20):
        w.grad = None
        Scale.apply(w).sum().backward()
        assert np.shares_memory(w.grad, made[-1])
    # whether the allocator reuses an address is up to it; what rules the reuse out is that the pass holds
    # every array whose id it remembers, the caller's gradient first
    caller = np.ones(())
    store, caller_alive = minidl.autograd._GradStore(caller), weakref.ref(caller)
    del caller
    assert caller_alive() is not None and id(caller_alive()) in store.kept


@pytest.mark.parametrize("order", ["sum first", "product first"])
def test_summing_a_second_path_does_not_corrupt_the_array_another_input_received(order):
    """Add hands one array to both inputs; adding b's second path into it in place would change p's too."""
    a, b = Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0, 4.0], requires_grad=True)
    p = a * 2
    out = (p + b) + b * 3 if order == "sum first" else b * 3 + (p + b)
    out.sum().backward()
    np.testing.assert_array_equal(a.grad, [2.0, 2.0])  # through p only
    np.testing.assert_array_equal(b.grad, [4.0, 4.0])  # 1 + 3
    assert not np.shares_memory(a.grad, b.grad)


def test_long_chain_does_not_hit_the_recursion_limit():
    x = Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad, [1.0001**20_000], rtol=1e-9)


def test_second_backward_through_a_freed_graph_raises():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, [4.0, 8.0])


def test_intermediate_gradients_are_kept_only_on_request():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = (x * 3).retain_grad()
    k = h * 1
    (h * k).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * h.data)
    assert k.grad is None


def test_backward_without_requires_grad_explains_why():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Tensor([1.0]) * 2).backward()


def test_backward_of_a_non_scalar_needs_a_gradient():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"single-element.*\(2, 2\)"):
        (x * 2).backward()
    (x * 2).backward(np.ones((2, 2)))
    np.testing.assert_allclose(x.grad, 2 * np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\)"):
        (x * 2).backward(np.ones(3))


def test_no_grad_records_nothing():
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        y = x * 2
    assert not y.requires_grad and y._ctx is None
    assert (x * 2).requires_grad  # and recording resumes afterwards


def test_matmul_shape_mismatch_names_the_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"MatMul.*\(3, 4\).*\(5, 2\)"):
        Tensor(np.ones((3, 4))) @ Tensor(np.ones((5, 2)))


def test_broadcast_mismatch_names_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"Add.*\(3, 4\), \(5,\)"):
        Tensor(np.ones((3, 4))) + Tensor(np.ones(5))


def test_numpy_arrays_on_the_left_give_tensors():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0]) * x
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 4.0])


def test_detach_shares_data_but_leaves_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_allclose(d.numpy(), [2.0, 4.0])


def test_max_splits_the_gradient_between_ties():
    x = Tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad, [0.0, 0.5, 0.5])


def test_array_surface():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    assert x.shape == (2, 3) and x.T.shape == (3, 2) and x.ndim == 2 and len(x) == 2
    assert x.reshape(3, 2).shape == (3, 2) and x[0].shape == (3,)
    assert x.sum().item() == 15.0
    np.testing.assert_allclose((x ** Tensor([2.0, 1.0, 0.0])).data, [[0, 1, 1], [9, 4, 1]])  # a tensor exponent


def test_reductions_of_float64_stay_float64():
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert (-a.sum()).dtype == np.float64 and (a.sum() + a.sum()).dtype == np.float64


def test_the_callers_gradient_array_is_not_kept_as_a_grad():
    x = Tensor(np.ones(3), requires_grad=True)
    g = np.array([1.0, 2.0, 3.0])
    x.backward(g)  # x is its own output: dL/dx = g
    x.grad += 1
    np.testing.assert_allclose(g, [1.0, 2.0, 3.0])
