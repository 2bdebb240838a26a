"""Bad input to a backend's run (every installed backend shares one core check), a rounding
scheme whose output is not one finite integer per input, and the rounding kit's monotonicity
property catching a scheme that is not monotone inside a grid cell."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinysnn_core
from tinysnn_core import registry as registry_mod
from tinysnn_core.config import Config
from tinysnn_core.data import check_batch
from tinysnn_core.errors import InputError, PluginError
from tinysnn_core.fixedpoint import quantize
from tinysnn_core.network import Network
from tinysnn_core.ops import OpCounts
from tinysnn_core.registry import Registry, get_registry
from tinysnn_core.testing import rounding_conformance

# cupy refuses bad input before it looks for CuPy or a GPU, so it is checked here too
BACKENDS = [name for name in ("numpy", "numba", "cupy") if name in get_registry().names("backend")]
IMAGES = np.full((2, 784), 40, dtype=np.uint8)


@pytest.fixture(scope="module")
def net():
    return Network.build(Config.from_dict({"n_neurons": 10, "train": {"time_steps": 20}}))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("images, ids, words", [
    (np.where(np.arange(784) == 5, np.nan, 40.0)[None].repeat(2, 0), [0, 1],
     "images contain NaN or infinite values"),
    (np.full((2, 784), np.inf), [0, 1], "images contain NaN or infinite values"),
    (IMAGES[:, :783], [0, 1], "must have shape [n, 784] or [n, 28, 28] (784 pixels each), "
                              "got [2, 783]"),
    (IMAGES[:, :, None].repeat(2, 2), [0, 1], "got [2, 784, 2]"),
    (np.full((2, 784), 12.5), [0, 1], "must be integer pixel intensities 0..255 (got fractions"),
    (np.full((2, 784), 256), [0, 1], "must be pixel intensities in [0, 255], got values in "
                                     "[256, 256]"),
    (np.full((2, 784), -1), [0, 1], "got values in [-1, -1]"),
    (np.full((2, 784), "7"), [0, 1], "must be numbers (pixel intensities 0..255), got dtype <U1"),
    (IMAGES > 0, [0, 1], "got dtype bool"),
    (IMAGES, [0], "2 images but sample ids of shape [1]: give one id per image"),
    (IMAGES, [0, 1, 2], "2 images but sample ids of shape [3]"),
    (IMAGES, [[0, 1]], "sample ids of shape [1, 2]"),
    (IMAGES, [0.0, 1.5], "sample ids must be integers, got dtype float64"),
])
def test_bad_batches_are_refused_before_any_work(net, backend, images, ids, words):
    w0 = net.w.copy()
    with pytest.raises(InputError) as info:
        get_registry().get("backend", backend)().run(net, images, ids, learn=True, seed=0,
                                                     ops=OpCounts())
    assert words in str(info.value) and "\n" not in str(info.value)
    assert np.array_equal(net.w, w0)          # nothing was learned from a refused batch


def test_good_batches_in_every_accepted_shape(net):
    flat, ids = check_batch(IMAGES.reshape(2, 28, 28).astype(np.float64), np.array([3, 4]))
    assert flat.dtype == np.uint8 and flat.shape == (2, 784) and ids.dtype == np.int64
    assert np.array_equal(flat, IMAGES) and list(ids) == [3, 4]
    one, ids = check_batch(IMAGES[0], None)
    assert one.shape == (1, 784) and list(ids) == [0]
    empty, ids = check_batch([], [])
    assert empty.shape == (0, 784) and ids.shape == (0,)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 3), st.integers(0, 3),
       st.sampled_from([np.uint8, np.int64, np.float64, np.float32]),
       st.floats(allow_nan=True, allow_infinity=True))
def test_check_batch_returns_clean_data_or_refuses(n_images, n_ids, dtype, fill):
    with np.errstate(invalid="ignore", over="ignore"):
        images = np.full((n_images, 784), fill).astype(dtype)
    try:
        out, ids = check_batch(images, np.arange(n_ids))
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert out.dtype == np.uint8 and out.shape == (n_images, 784) and len(ids) == n_images
    assert np.array_equal(out.astype(np.float64), images.astype(np.float64))


# -- rounding outputs -------------------------------------------------------------------------
def half_up_fraction(scaled, rng=None):
    return np.asarray(scaled) + 0.25


def nan_out(scaled, rng=None):
    return np.full(np.shape(scaled), np.nan)


def one_value(scaled, rng=None):
    return np.floor(np.asarray(scaled))[:1]


@pytest.mark.parametrize("scheme, words", [
    (half_up_fraction, "returned non-integer values (e.g. 0.25)"),
    (nan_out, "returned non-finite values (e.g. nan)"),
    (one_value, "returned an array of shape [1] for an input of shape [3]"),
])
def test_a_rounding_scheme_must_return_finite_integers(scheme, words):
    with pytest.raises(PluginError) as info:
        quantize(np.array([0.0, 1.0, 2.5]), "uQ4.2", scheme)
    message = str(info.value)
    assert words in message and scheme.__qualname__ in message and "\n" not in message


class BadRoundingPlugin:
    @tinysnn_core.hookimpl
    def register_rounding_schemes(self, register):
        register("fraction-test", half_up_fraction, summary="returns fractions (a test)")


def test_a_registered_scheme_is_named_in_the_flow(monkeypatch):
    """In a simulated fixed-point run, a registered scheme's fractions stop the run with its
    registered name (they were truncated to codes silently before)."""
    reg = Registry()
    reg.add_plugin(BadRoundingPlugin(), distribution="tests", version="1")
    monkeypatch.setattr(registry_mod, "_REGISTRY", reg)
    from tinysnn_core.quant import prepare_quantized, quantizer_for

    cfg = Config.from_dict({"n_neurons": 10, "train": {"time_steps": 20}, "quant": {
        "scheme": "ptq", "groups": {"weights": {"format": "uQ0.6", "rounding": "fraction-test"}}}})
    quantizer, plan = quantizer_for(cfg)
    with pytest.raises(PluginError, match="rounding scheme 'fraction-test' returned non-integer"):
        prepare_quantized(quantizer, Network.build(cfg), plan)


# -- the kit's monotonicity property -------------------------------------------------------------
def up_in_the_lower_half(scaled, rng=None):
    """On the grid, within one step, idempotent, saturating -- but inside a cell a value in the
    lower half rounds up and one in the upper half down: not monotone."""
    scaled = np.asarray(scaled, dtype=np.float64)
    frac = scaled - np.floor(scaled)
    return np.floor(scaled) + ((frac > 0) & (frac < 0.5))


def test_the_kit_catches_a_scheme_that_is_not_monotone_inside_a_cell():
    kit = rounding_conformance(up_in_the_lower_half, examples=100)()
    kit.test_on_the_grid_and_in_range()           # every other property holds
    kit.test_idempotent_on_grid_values()
    kit.test_error_bound_inside_the_range()
    with pytest.raises(AssertionError, match="rounds to"):
        kit.test_monotone()


def test_the_integer_simulator_checks_its_batch_too(net):
    from tinysnn_core import intsim
    from tinysnn_core.quant import prepare_quantized, quantizer_for

    cfg = net.config.with_overrides(["quant.scheme=ptq", "quant.groups.weights.format=uQ0.4",
                                     "quant.groups.potential.format=sQ7.8"])
    qnet = Network(cfg, net.w.copy(), net.theta.copy(), net.topology,
                   np.arange(10) % 10, np.eye(10))
    quantizer, plan = quantizer_for(cfg)
    model = intsim.from_network(prepare_quantized(quantizer, qnet, plan))
    with pytest.raises(InputError, match="images contain NaN"):
        intsim.infer(model, np.full((1, 784), np.nan), 0)
    with pytest.raises(InputError, match="2 images but sample ids of shape"):
        intsim.infer(model, IMAGES, 0, [0])
    preds, counts = intsim.infer(model, IMAGES.reshape(2, 28, 28), 0)
    assert preds.shape == (2,) and counts.shape == (2, 10)
