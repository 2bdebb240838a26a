"""Helpers shared by the numba backend's equivalence tests: run the NumPy reference and the numba
backend from the same network, and check that they agree bit for bit."""

from __future__ import annotations

import copy

import numpy as np

from tinysnn_core.builtin.backend_numpy import NumpyBackend
from tinysnn_core.ops import OpCounts


def mnist_digits(n_train: int, n_test: int):
    """The first mnist-5k training and test images (seed 0); the test is skipped when the data
    set is not installed."""
    import pytest

    from tinysnn_core.builtin.datasets import load_mnist_5k
    from tinysnn_core.errors import DatasetMissing

    try:
        data = load_mnist_5k(0)
    except DatasetMissing as exc:
        pytest.skip(f"mnist-5k not installed: {exc}")
    return data.train_images[:n_train], data.test_images[:n_test]


def kernel_inputs(net, images, seed: int, *, learn: bool):
    """What the kernels take besides the state, as ``NumbaBackend.run`` packs it for sample ids
    0..B-1: (fp, ip, qp, images as int64, sample keys, encoder rate units)."""
    from tinysnn_core import counter_rng
    from tinysnn_numba import backend as bk

    fp, ip = bk.pack_params(net)
    qp = bk.pack_quant(net, learn)
    images = np.ascontiguousarray(images, dtype=np.int64)
    skeys = np.array([counter_rng.sample_key(seed, s) for s in range(len(images))],
                     dtype=np.int64)
    enc = net.encoder
    rate_units = np.array([enc.rate_unit(r) for r in range(enc.params.max_retries + 1)],
                          dtype=np.int64)
    return fp, ip, qp, images, skeys, rate_units


def run_both(net, images, ids, *, learn, seed=7):
    """Run both backends from copies of ``net``; return (numpy result, numba result), each
    (network, counts, operation counters)."""
    from tinysnn_numba import NumbaBackend

    out = []
    for backend in (NumpyBackend(), NumbaBackend()):
        copy_ = copy.deepcopy(net)
        ops = OpCounts()
        counts = backend.run(copy_, images, ids, learn=learn, seed=seed, ops=ops)
        out.append((copy_, counts, ops))
    return out


def assert_identical(ref, got):
    """Same spike counts, the same float64 weights and thresholds byte for byte (so -0.0 and 0.0
    differ too), the same operation counters."""
    (net_a, counts_a, ops_a), (net_b, counts_b, ops_b) = ref, got
    assert counts_b.dtype == np.int64 and counts_b.shape == counts_a.shape
    np.testing.assert_array_equal(counts_b, counts_a)
    assert net_b.w.tobytes() == net_a.w.tobytes(), np.abs(net_b.w - net_a.w).max()
    assert net_b.theta.tobytes() == net_a.theta.tobytes()
    assert ops_b.as_dict() == ops_a.as_dict()
