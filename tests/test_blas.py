"""blas.gemm: NumPy's own GEMM called directly, on windows of larger arrays and adding into its output."""
import numpy as np
import pytest

from minidl.fast import blas

rng = np.random.default_rng(0)
pytestmark = pytest.mark.skipif(not blas.gemm_available(np.float64), reason="no BLAS gemm to call directly here")


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-13)])
def test_gemm_on_windows_and_accumulating(dtype, tol):
    a = rng.standard_normal((7, 30)).astype(dtype)
    big = rng.standard_normal((25, 40)).astype(dtype)
    b = big[3:21, 5:37]  # (18, 32): rows 40 elements apart, a view
    out_big = rng.standard_normal((9, 50)).astype(dtype)
    out = out_big[1:8, 10:42]  # (7, 32) window of a larger array
    before, outside = out.copy(), out_big.copy()
    blas.gemm(a[:, 4:22], b, out, accumulate=True)
    expected = before + a[:, 4:22] @ b
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)
    outside[1:8, 10:42] = out
    np.testing.assert_array_equal(out_big, outside)  # nothing written beside the window
    blas.gemm(a[:, 4:22], b, out)  # β = 0: overwrites
    np.testing.assert_allclose(out, a[:, 4:22] @ b, rtol=tol, atol=tol)


def test_gemm_empty_inner_dimension():
    out = np.ones((3, 4))
    blas.gemm(np.empty((3, 0)), np.empty((0, 4)), out, accumulate=True)
    np.testing.assert_array_equal(out, 1)
    blas.gemm(np.empty((3, 0)), np.empty((0, 4)), out)
    np.testing.assert_array_equal(out, 0)


def test_gemm_refuses_what_blas_cannot_read():
    a, b, out = np.ones((3, 4)), np.ones((4, 5)), np.zeros((3, 5))
    with pytest.raises(ValueError, match=r"b \(4, 3\) with strides"):
        blas.gemm(a, b[:, ::2], out[:, :3])  # elements of a row not contiguous
    with pytest.raises(ValueError, match=r"a \(3, 4\) float64 @ b \(5, 5\)"):
        blas.gemm(a, np.ones((5, 5)), out)  # inner sizes differ
    with pytest.raises(ValueError, match="float32"):
        blas.gemm(a, b, out.astype(np.float32))  # mixed types
    with pytest.raises(ValueError, match="out"):
        blas.gemm(a, b, out.T.copy().T)  # a column-major output
