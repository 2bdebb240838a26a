"""Conformance kit for rounding-scheme and quantizer plugins (property-based, hypothesis).

A third-party plugin checks itself in one line, in its own test module::

    from tinysnn_core.testing import rounding_conformance
    TestMyRounding = rounding_conformance("my-rounding")

which defines a pytest class whose tests check the contract of ``docs/fixed-point.md`` on values
drawn by hypothesis. Options describe what kind of scheme it is (``deterministic``,
``unbiased``, ``max_error_steps``). ``quantizer_conformance(name)`` does the same for a quantizer.
"""

from __future__ import annotations

import math

import numpy as np

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - the kit needs the test extra
    raise ImportError("tinysnn_core.testing needs hypothesis: pip install 'tinysnn[test]'") from exc

from .fixedpoint import QFormat, from_codes, quantize, to_codes

#: formats drawn by the kit: any sign, 1..32 bits
formats = st.builds(
    lambda signed, bits, frac: QFormat(
        max(0, bits - (1 if signed else 0) - frac), min(frac, bits - (1 if signed else 0)), signed),
    st.booleans(), st.integers(2, 32), st.integers(0, 31))
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False, width=64)


def _values(fmt: QFormat, x: float) -> np.ndarray:
    return np.array([x, x / 3.0, -x, x * 1e-3, 0.0])


def rounding_conformance(name: str, *, deterministic: bool = True, unbiased: bool = False,
                         max_error_steps: float = 1.0, examples: int = 150):
    """A pytest test class checking the rounding scheme ``name`` (registered or a callable)."""

    def q(values, fmt, seed=0):
        return quantize(values, fmt, name, np.random.default_rng(seed))

    class RoundingConformance:
        @settings(max_examples=examples, deadline=None)
        @given(formats, finite)
        def test_on_the_grid_and_in_range(self, fmt, x):
            out = q(_values(fmt, x), fmt)
            codes = out / fmt.step
            assert np.all(codes == np.round(codes)), "values off the grid"
            assert np.all(out >= fmt.min) and np.all(out <= fmt.max), "values out of range"

        @settings(max_examples=examples, deadline=None)
        @given(formats, finite)
        def test_saturates_outside_the_range(self, fmt, x):
            big = abs(x) + fmt.max + 10.0
            out = q(np.array([big, -big]), fmt)
            assert out[0] == fmt.max
            assert out[1] == fmt.min

        @settings(max_examples=examples, deadline=None)
        @given(formats, finite)
        def test_idempotent_on_grid_values(self, fmt, x):
            once = q(_values(fmt, x), fmt)
            assert np.array_equal(q(once, fmt, seed=1), once)

        @settings(max_examples=examples, deadline=None)
        @given(formats, finite, finite)
        def test_error_bound_inside_the_range(self, fmt, x, y):
            v = np.clip(np.array([x, y]), fmt.min, fmt.max)
            err = np.abs(q(v, fmt) - v)
            assert np.all(err <= max_error_steps * fmt.step * (1 + 1e-12))

        if deterministic:
            @settings(max_examples=examples, deadline=None)
            @given(formats, finite, finite)
            def test_monotone(self, fmt, x, y):
                lo, hi = min(x, y), max(x, y)
                a, b = q(np.array([lo]), fmt), q(np.array([hi]), fmt)
                assert a[0] <= b[0]

            @settings(max_examples=examples, deadline=None)
            @given(formats, finite)
            def test_deterministic(self, fmt, x):
                assert np.array_equal(q(_values(fmt, x), fmt, 1), q(_values(fmt, x), fmt, 2))

        if unbiased:
            @settings(max_examples=25, deadline=None)
            @given(st.integers(4, 12), st.floats(0.0, 1.0, exclude_max=True))
            def test_unbiased_within_binomial_tolerance(self, frac, pos):
                fmt = QFormat(4, frac, False)
                x = (3 + pos) * fmt.step            # between two grid points
                n = 4000
                out = q(np.full(n, x), fmt, seed=frac)
                p = pos
                sd = math.sqrt(max(p * (1 - p), 1e-12) / n) * fmt.step
                assert abs(out.mean() - x) <= 5 * sd + 1e-12

            @settings(max_examples=20, deadline=None)
            @given(st.integers(0, 2**31 - 1))
            def test_reproducible_from_a_seed(self, seed):
                fmt = QFormat(2, 6, True)
                v = np.linspace(-3, 3, 101)
                assert np.array_equal(q(v, fmt, seed), q(v, fmt, seed))

        def test_nan_and_infinity_are_errors(self):
            import pytest

            for bad in (np.nan, np.inf, -np.inf):
                with pytest.raises(ValueError, match="non-finite"):
                    q(np.array([0.5, bad]), QFormat(2, 4))

        @settings(max_examples=examples, deadline=None)
        @given(formats, finite)
        def test_codes_round_trip(self, fmt, x):
            codes = to_codes(_values(fmt, x), fmt, name, np.random.default_rng(0))
            assert codes.dtype == np.int64
            assert np.all(codes >= fmt.code_min) and np.all(codes <= fmt.code_max)
            back = from_codes(codes, fmt)
            assert np.array_equal(to_codes(back, fmt, name, np.random.default_rng(0)), codes)

    RoundingConformance.__name__ = f"RoundingConformance[{name}]"
    return RoundingConformance


def quantizer_conformance(name: str, *, examples: int = 15):
    """A pytest test class checking the quantizer plugin ``name`` on a small network."""
    from .config import Config, QuantSettings
    from .explore import make_groups
    from .quant import QuantPlan
    from .registry import get_registry

    def make(bits, rounding):
        groups = make_groups(("weights", "potential", "theta", "inhibition", "decay"), bits,
                             rounding, {"inhibition": 32.0})
        cfg = Config.from_dict({"n_neurons": 8, "train": {"time_steps": 20}})
        cfg.quant = QuantSettings(name, groups)
        return cfg, QuantPlan.from_settings(cfg.quant)

    class QuantizerConformance:
        @settings(max_examples=examples, deadline=None)
        @given(st.integers(2, 16), st.sampled_from(["truncation", "nearest", "stochastic"]))
        def test_parameters_on_their_grids(self, bits, rounding):
            from .network import Network

            cfg, plan = make(bits, rounding)
            net = Network.build(cfg)
            net.theta[:] = np.linspace(0, 30, net.n_neurons)
            quantizer = get_registry().get("quantizer", name)()
            quantizer.prepare(net, plan)
            for group, arr in (("weights", net.w), ("theta", net.theta)):
                fmt = plan.groups[group].fmt
                codes = arr / fmt.step
                assert np.all(codes == np.round(codes)), f"{group} off the grid"
                assert arr.min() >= fmt.min and arr.max() <= fmt.max, f"{group} out of range"
            # preparing twice changes nothing (a saved model can be re-attached)
            w = net.w.copy()
            quantizer.prepare(net, plan)
            assert np.array_equal(w, net.w)
            assert isinstance(quantizer.in_training, bool)

    QuantizerConformance.__name__ = f"QuantizerConformance[{name}]"
    return QuantizerConformance
