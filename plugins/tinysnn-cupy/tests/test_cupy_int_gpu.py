"""The integer kernel on a real GPU, bit-exact with ``tinysnn_core.intsim.infer`` (skipped, with
the reason, without CuPy or a CUDA device)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tinysnn_core import intsim
from tinysnn_cupy import CupyBackend

from test_cupy_int_emulated import INT_CASES

pytestmark = pytest.mark.gpu


def _check(be, model, images, seed, ids):
    want = intsim.infer(model, images, seed, ids)
    got = be.run_integer(model, images, seed, ids)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])
    assert want[1].sum() > 0


@pytest.mark.parametrize("case", sorted(INT_CASES))
def test_gpu_integer_matches_intsim_small(gpu_backend, int_network, digits, case):
    topology, wb, pb, rounding, extra = INT_CASES[case]
    model = intsim.from_network(int_network(topology, 40, 50, 1, wb, pb, rounding, **extra))
    _check(gpu_backend, model, digits[0][30:38], 11, np.arange(500, 508))


@pytest.mark.parametrize("topology,rounding", [("tinysnn", "truncation"),
                                               ("diehl-cook", "nearest")])
def test_gpu_integer_matches_intsim_n400(gpu_backend, int_network, digits, topology, rounding):
    model = intsim.from_network(int_network(topology, 400, 350, 3, 8, 16, rounding))
    _check(gpu_backend, model, digits[0][:3], 21, np.arange(3))


@pytest.mark.parametrize("npt", [1, 2, 3, 8, 16])
def test_gpu_integer_geometries(int_network, digits, npt):
    from tinysnn_cupy.backend import cupy_status
    ok, why = cupy_status()
    if not ok:
        pytest.skip(f"GPU tests need CuPy and a CUDA device: {why}")
    topology, wb, pb, rounding, extra = INT_CASES["busy-w8-p12-rn"]
    model = intsim.from_network(int_network(topology, 100, 60, 4, wb, pb, rounding, **extra))
    _check(CupyBackend(int_neurons_per_thread=npt), model, digits[0][:6], 5, np.arange(6))


def test_gpu_run_integer_many(gpu_backend, int_network, digits):
    models = [intsim.from_network(int_network("diehl-cook", 100, 80, 2, wb, 16, r))
              for wb in (2, 4, 8, 12) for r in ("truncation", "nearest")]
    images, ids = digits[0][:20], np.arange(1000, 1020)
    preds, counts = gpu_backend.run_integer_many(models, images, 3, ids)
    assert preds.shape == (8, 20) and counts.shape == (8, 20, 100)
    for k in (0, 3, 7):
        want = intsim.infer(models[k], images[:4], 3, ids[:4])
        np.testing.assert_array_equal(counts[k, :4], want[1])
        np.testing.assert_array_equal(preds[k, :4], want[0])


@pytest.mark.parametrize("topology,margin", [("tinysnn", 2), ("diehl-cook", 1), ("tinysnn", 0)])
def test_gpu_integer_early_exit_and_ops_n400(gpu_backend, int_network, digits, topology, margin):
    base = intsim.from_network(int_network(topology, 400, 350, 3, 8, 16, "nearest"))
    model = dataclasses.replace(base, exit_margin=margin)
    images, ids = digits[0][:4], np.arange(4)
    want = intsim.infer(model, images, 21, ids, with_ops=True)
    got = gpu_backend.run_integer(model, images, 21, ids, with_ops=True)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])
    for name in intsim.INFER_OPS:
        np.testing.assert_array_equal(got[2][name], want[2][name], err_msg=name)
    # mixed margins, T and retries in one launch
    models = [dataclasses.replace(base, exit_margin=m, time_steps=T)
              for m, T in ((0, 350), (1, 200), (3, 100))]
    preds, counts, ops = gpu_backend.run_integer_many(models, images, 21, ids, with_ops=True)
    for k, m in enumerate(models):
        want = intsim.infer(m, images, 21, ids, with_ops=True)
        np.testing.assert_array_equal(counts[k], want[1])
        np.testing.assert_array_equal(preds[k], want[0])
        for name in intsim.INFER_OPS:
            np.testing.assert_array_equal(ops[name][k], want[2][name], err_msg=name)
