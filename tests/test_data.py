"""Tests for minidl.data.DataLoader."""
import numpy as np
import pytest

from minidl.data import DataLoader


def epoch_indices(loader):
    """Concatenate the first array's batches; the data is arange(N) so values are sample indices."""
    return np.concatenate([batch[0] for batch in loader])


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("n, bs", [(10, 3), (12, 4), (1, 5)])
def test_each_index_once_per_epoch(n, bs, shuffle):
    x = np.arange(n)
    y = np.arange(n) * 10
    loader = DataLoader(x, y, batch_size=bs, shuffle=shuffle, seed=1)
    batches = list(loader)
    assert len(batches) == len(loader) == -(-n // bs)
    assert all(len(xb) == bs for xb, _ in batches[:-1])
    for xb, yb in batches:  # rows stay paired across arrays
        np.testing.assert_array_equal(yb, xb * 10)
    seen = epoch_indices(loader)
    np.testing.assert_array_equal(np.sort(seen), x)
    if not shuffle:
        np.testing.assert_array_equal(seen, x)


def test_drop_last():
    loader = DataLoader(np.arange(10), batch_size=3, drop_last=True, shuffle=True, seed=0)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert all(b[0].shape == (3,) for b in batches)
    assert len(set(np.concatenate([b[0] for b in batches]))) == 9


def test_batch_shapes_and_tuple():
    x = np.zeros((7, 28, 28), np.uint8)
    (xb,), *_ = DataLoader(x, batch_size=4)
    assert xb.shape == (4, 28, 28) and xb.dtype == np.uint8


def test_reproducible_with_seed_and_new_order_each_epoch():
    x = np.arange(100)
    a = DataLoader(x, batch_size=7, shuffle=True, seed=42)
    b = DataLoader(x, batch_size=7, shuffle=True, seed=42)
    a1, a2 = epoch_indices(a), epoch_indices(a)
    b1, b2 = epoch_indices(b), epoch_indices(b)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2)  # new permutation on the next epoch
    assert not np.array_equal(a1, x)  # actually shuffled
    c1 = epoch_indices(DataLoader(x, batch_size=7, shuffle=True, seed=43))
    assert not np.array_equal(a1, c1)


def test_generator_argument():
    x = np.arange(50)
    a = epoch_indices(DataLoader(x, shuffle=True, generator=np.random.default_rng(3)))
    b = epoch_indices(DataLoader(x, shuffle=True, generator=np.random.default_rng(3)))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="seed or generator"):
        DataLoader(x, seed=1, generator=np.random.default_rng(1))


def test_mismatched_lengths_error_names_shapes():
    with pytest.raises(ValueError, match=r"same first dimension.*\(10, 2\), \(9,\)"):
        DataLoader(np.zeros((10, 2)), np.zeros(9))


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_batch_size(bad):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(np.arange(4), batch_size=bad)


def test_needs_arrays():
    with pytest.raises(ValueError):
        DataLoader()
    with pytest.raises(ValueError, match="first"):
        DataLoader(np.float64(3.0))
