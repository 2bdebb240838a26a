"""Conformance kit for rounding-scheme, quantizer and neuron-model plugins (property-based,
hypothesis).

A third-party plugin checks itself in one line, in its own test module::

    from tinysnn_core.testing import rounding_conformance
    TestMyRounding = rounding_conformance("my-rounding")

which defines a pytest class whose tests check the contract of ``docs/fixed-point.md`` on values
drawn by hypothesis. Options describe what kind of scheme it is (``deterministic``,
``unbiased``, ``max_error_steps``). ``quantizer_conformance(name)`` does the same for a quantizer,
``neuron_conformance(name)`` for a neuron model's integer mode and C step.
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
            @given(formats, st.floats(0.0, 1.0), st.floats(0.0, 1.0, exclude_max=True),
                   st.floats(0.0, 1.0, exclude_max=True))
            def test_monotone(self, fmt, where, u, v):
                # two values inside one grid cell [k, k + 1) steps, where a scheme decides
                # up or down; pairs drawn over the whole range almost never share a cell
                span = fmt.code_max - fmt.code_min
                k = fmt.code_min + min(span - 1, int(where * span))
                lo, hi = (k + min(u, v)) * fmt.step, (k + max(u, v)) * fmt.step
                a, b = q(np.array([lo]), fmt), q(np.array([hi]), fmt)
                assert a[0] <= b[0], f"{lo!r} rounds to {a[0]!r}, above {hi!r}'s {b[0]!r}"

            @settings(max_examples=examples, deadline=None)
            @given(formats, finite, finite)
            def test_monotone_across_cells(self, fmt, x, y):
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


def synthetic_images(n: int, seed: int) -> np.ndarray:
    """``n`` 28x28 uint8 images of a few bright bars each (reproducible; no data set needed)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    for img in images:
        for _ in range(3):
            r, c = rng.integers(4, 24, 2)
            if rng.random() < 0.5:
                img[r - 1:r + 2, max(c - 8, 0):c + 8] = rng.integers(128, 256)
            else:
                img[max(r - 8, 0):r + 8, c - 1:c + 2] = rng.integers(128, 256)
    return images.reshape(n, 784)


def neuron_network(name: str, *, n_neurons: int = 16, time_steps: int = 60, weight_bits: int = 8,
                   potential_bits: int = 16, seed: int = 0):
    """A small ``tinysnn``-topology network of neuron model ``name``, post-training quantized
    (weights at ``weight_bits``, the neuron groups at ``potential_bits``) and given label
    assignments (neuron j -> class j mod 10): what the kit runs in float and integer mode."""
    from .config import Config, QuantSettings
    from .explore import ALL_GROUPS, make_groups
    from .network import Network
    from .quant import model_ranges, prepare_quantized, quantizer_for

    cfg = Config.from_dict({"n_neurons": n_neurons, "seed": seed, "topology": {"name": "tinysnn"},
                            "exc_neuron": {"name": name}, "train": {"time_steps": time_steps}})
    net = Network.build(cfg)
    cfg.quant = QuantSettings("ptq", make_groups(ALL_GROUPS, weight_bits, "nearest",
                                                 model_ranges(net), potential_bits))
    quantizer, plan = quantizer_for(cfg)
    net = prepare_quantized(quantizer, net, plan)
    net.assignments = np.arange(n_neurons, dtype=np.int64) % 10
    return net


def neuron_conformance(name: str, *, max_error_steps: float = 0.0, agreement: float = 0.9,
                       samples: int = 12, firmware: bool = True, examples: int = 100):
    """A pytest test class checking neuron model ``name``'s integer mode (docs/plugins.md,
    "Neuron models"):

    - one step: from the same state on the potential grid, the plugin's ``integer_step`` and its
      float ``step`` give potentials within ``max_error_steps`` grid steps, the same refractory
      counts, and the same spikes (hypothesis draws the states and currents);
    - a network: float-simulated fixed point (the NumPy reference) and integer inference
      (``intsim``) give identical spike counts on at least ``agreement`` of ``samples`` images;
    - with ``firmware``: the host firmware built with the plugin's C step (tinysnn-serial's
      generic engine, the C compiler ``cc``) gives intsim's spike counts and predictions on
      every sample, bit for bit.
    """
    from .fixedpoint import QFormat
    from .registry import get_registry

    def model_class():
        return get_registry().get("neuron_model", name)

    class NeuronConformance:
        def test_has_an_integer_mode(self):
            from .intsim import INTEGER_MEMBERS

            cls = model_class()
            missing = [m for m in INTEGER_MEMBERS if not callable(getattr(cls, m, None))]
            assert not missing, f"neuron model {name!r} lacks {missing}"

        @settings(max_examples=examples, deadline=None)
        @given(st.integers(1, 12), st.integers(4, 12), st.data())
        def test_one_step_agrees_with_the_float_step(self, n, frac, data):
            from .intsim import NeuronCodes

            cls = model_class()
            params = cls.Params()
            layer = cls(params, n, 1.0)
            fmt = QFormat(7, frac, True)
            codes_of = st.integers(fmt.code_min // 2, fmt.code_max // 2)
            u = np.array(data.draw(st.lists(codes_of, min_size=n, max_size=n)), dtype=np.int64)
            cur = np.array(data.draw(st.lists(codes_of, min_size=n, max_size=n)),
                           dtype=np.int64)
            refrac = np.array(data.draw(st.lists(st.integers(-3, int(params.refrac)),
                                                 min_size=n, max_size=n)), dtype=np.int64)
            th = np.array(data.draw(st.lists(st.integers(1, fmt.code_max // 2), min_size=n,
                                             max_size=n)), dtype=np.int64)
            step = fmt.step
            state = layer.init_state()
            state["v"][:] = params.rest + u * step
            state["refrac"][:] = refrac.astype(np.float64)
            if "theta" in state:  # the threshold's offset from params.thresh
                state["theta"][:] = (params.rest + th * step) - params.thresh
            else:
                th = np.full(n, round((params.thresh - params.rest) / step), dtype=np.int64)
            constants = layer.integer_constants(fmt)
            codes = NeuronCodes(name, frac, fmt.code_min, fmt.code_max,
                                round((params.reset - params.rest) / step), th,
                                int(params.refrac), bool(getattr(layer, "one_spike", False)),
                                dict(constants))
            spikes_f = np.asarray(layer.step(state, cur * step, False, 0), dtype=bool)
            u_i, ref_i, crossed = cls.integer_step(codes, u, refrac, cur)
            err = np.abs((state["v"] - params.rest) / step - u_i)
            assert np.all(err <= max_error_steps + 1e-9), f"potentials differ by {err.max()} steps"
            assert np.array_equal(state["refrac"], np.asarray(ref_i, dtype=np.float64))
            crossed = np.asarray(crossed, dtype=bool)
            if getattr(layer, "one_spike", False):  # the float step kept one winner already
                assert np.all(spikes_f <= crossed) and spikes_f.sum() == int(crossed.any())
            else:
                assert np.array_equal(spikes_f, crossed)

        def test_network_float_and_integer_agree(self):
            from . import intsim
            from .builtin.backend_numpy import NumpyBackend
            from .ops import OpCounts

            net = neuron_network(name)
            images = synthetic_images(samples, seed=1)
            ids = np.arange(samples)
            float_counts = NumpyBackend().run(net, images, ids, learn=False, seed=3,
                                              ops=OpCounts())
            _, int_counts = intsim.infer(intsim.from_network(net), images, 3, ids)
            assert int_counts.sum() > 0, "no spikes at all: the comparison would prove little"
            same = float(np.mean(np.all(float_counts == int_counts, axis=1)))
            assert same >= agreement, (f"float and integer spike counts agree on {same:.0%} of "
                                       f"the samples, fewer than {agreement:.0%}")

        if firmware:
            def test_host_firmware_matches_intsim(self, tmp_path):
                from . import intsim

                try:
                    from tinysnn_serial import codegen, protocol
                    from tinysnn_serial.boards import BOARDS
                    from tinysnn_serial.transports import PtyTransport
                except ImportError as exc:
                    raise AssertionError(f"firmware parity needs tinysnn-serial ({exc}); pass "
                                         "firmware=False to leave the board out") from None
                m = intsim.from_network(neuron_network(name))
                images = synthetic_images(samples, seed=2)
                ids = np.arange(samples) * 7 + 3
                preds, counts = intsim.infer(m, images, 5, ids)
                assert counts.sum() > 0, "no spikes at all: the comparison would prove little"
                engine = codegen.generate(m, "conformance").write(tmp_path / "engine")
                elf = BOARDS["host"].build(engine, tmp_path / "build")
                with PtyTransport([str(elf)]) as link:
                    dut = protocol.DeviceUnderTest(link, timeout=5.0)
                    dut.connect()
                    assert dut.profile()["engine"] == codegen.engine_name(m)
                    for b, (image, sid) in enumerate(zip(images, ids)):
                        res = dut.run_sample(image, 5, int(sid))
                        assert res.counts == [int(c) for c in counts[b]], f"sample {sid}: counts"
                        assert res.prediction == int(preds[b]), f"sample {sid}: prediction"

    NeuronConformance.__name__ = f"NeuronConformance[{name}]"
    return NeuronConformance
