"""The integer CUDA kernel (cuda/snn_int_kernels.cu) on CPU, under the CUDA emulation (tests/emu),
through the real host code: bit-exact with ``tinysnn_core.intsim.infer`` (counts and predictions;
with early exit and other inference settings also every per-sample operation count)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinysnn_core import intsim
from tinysnn_cupy import CupyBackend
from tinysnn_cupy import backend as cb

#: (topology, wbits, pbits, rounding, extra config): both topologies, truncation / nearest leak,
#: busy one-spike layers, an adaptive one-spike inhibitory layer, coarse (saturating) potentials,
#: 8-bit (packed uint8), 16-bit (int16 / uint16) and 28-bit (int32 codes, int64 accumulation) weights,
#: retries at a low rate
INT_CASES = {
    "tinysnn-w4-p8-tr": ("tinysnn", 4, 8, "truncation", {}),
    "dc-w4-p8-rn": ("diehl-cook", 4, 8, "nearest", {}),
    "busy-w8-p12-rn": ("tinysnn", 8, 12, "nearest",
                       {"exc_neuron": {"name": "adaptive-lif", "thresh": -62.0},
                        "topology": {"name": "tinysnn", "w_inh": -1.0}}),
    "dc-soft-w6-p16-tr": ("diehl-cook", 6, 16, "truncation",
                          {"exc_neuron": {"name": "adaptive-lif", "thresh": -62.0,
                                          "one_spike": False},
                           "inh_neuron": {"name": "adaptive-lif", "one_spike": True,
                                          "thresh": -58.0},
                           "topology": {"name": "diehl-cook", "inh": 2.0}}),
    "w16-p32-rn": ("tinysnn", 16, 32, "nearest", {"exc_neuron": {"name": "lif", "thresh": -62.0}}),
    "w28-p32-tr-int64": ("diehl-cook", 28, 32, "truncation", {}),
    "retries-w5-p10": ("diehl-cook", 5, 10, "nearest",
                       {"encoder": {"max_rate_hz": 6.0, "retry_rate_hz": 6.0,
                                    "retry_min_spikes": 8, "max_retries": 3}}),
}


def _check(backend, model, images, seed, ids):
    want = intsim.infer(model, images, seed, ids)
    got = backend.run_integer(model, images, seed, ids)
    assert got[0].dtype == np.int64 and got[1].dtype == np.int64
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])
    return want


@pytest.mark.parametrize("case", sorted(INT_CASES))
def test_emulated_integer_kernel_matches_intsim(emu_int_executor, int_network, digits, case):
    topology, wb, pb, rounding, extra = INT_CASES[case]
    net = int_network(topology, 40, 50, 1, wb, pb, rounding, **extra)
    model = intsim.from_network(net)
    npt = 2 if case.startswith(("busy", "w16")) else None     # 20 threads (one warp) / default
    be = CupyBackend(executor=emu_int_executor, int_neurons_per_thread=npt)
    want = _check(be, model, digits[0][30:34], 11, np.arange(500, 504))
    assert want[1].sum() > 0
    packed = cb.pack_integer_models([model], be.int_geometry(40, 784)[3])
    kinds = {"w4": ("si_u8",), "w8": ("si_u8",), "w6": ("si_u8",), "w5": ("si_u8",),
             "w16": ("short", "si_u16"), "w28": ("int",)}     # w16: codes below 2**15 or not
    assert packed["wtype"] in next(v for k, v in kinds.items() if k in case)
    assert packed["atype"] == ("si_i64" if "int64" in case else "int")


def test_emulated_integer_one_spike_winner_is_busy(emu_int_executor, int_network, digits):
    """The busy case really exercises the winner draw: several crossings per step happen."""
    topology, wb, pb, rounding, extra = INT_CASES["busy-w8-p12-rn"]
    net = int_network(topology, 40, 50, 1, wb, pb, rounding, **extra)
    model = intsim.from_network(net)
    model.exc.one_spike = False
    free = intsim.infer(model, digits[0][30:32], 11, [500, 501])[1]
    model.exc.one_spike = True
    one = _check(CupyBackend(executor=emu_int_executor), model, digits[0][30:32], 11, [500, 501])
    assert free.sum() > one[1].sum() > 0


def test_emulated_run_integer_many(emu_int_executor, int_network, digits):
    """K models of one shape with different formats, T and roundings in one launch."""
    models = [intsim.from_network(int_network("tinysnn", 40, T, 2, wb, pb, r))
              for T, wb, pb, r in ((40, 3, 8, "truncation"), (50, 6, 10, "nearest"),
                                   (30, 10, 16, "nearest"))]
    be = CupyBackend(executor=emu_int_executor)
    images, ids = digits[0][40:43], np.array([7, 8, 9])
    preds, counts = be.run_integer_many(models, images, 3, ids)
    assert preds.shape == (3, 3) and counts.shape == (3, 3, 40)
    for k, m in enumerate(models):
        want = intsim.infer(m, images, 3, ids)
        np.testing.assert_array_equal(counts[k], want[1])
        np.testing.assert_array_equal(preds[k], want[0])
    empty = be.run_integer(models[0], images[:0], 3, [])
    assert empty[0].shape == (0,) and empty[1].shape == (0, 40)


def test_integer_packing_and_refusals(int_network):
    net = int_network("diehl-cook", 40, 30, 0, 4, 8, "nearest")
    model = intsim.from_network(net)
    src = cb.INT_KERNEL_SOURCE.read_text()
    for k, name in enumerate(cb.INT_MP_NAMES):
        assert f"#define IM_{name.upper()} {k}\n" in src, name
    assert f"#define N_IM {len(cb.INT_MP_NAMES)}\n" in src
    assert cb.INT_OP_NAMES == intsim.INFER_OPS
    for k, name in enumerate(cb.INT_OP_NAMES):
        assert f"#define IO_{name.upper()} {k}\n" in src, name
    assert f"#define N_IO {len(cb.INT_OP_NAMES)}\n" in src
    assert {"early_exit", "ops"} <= set(CupyBackend.integer_features)
    assert f"#define SI_MAX_CLASSES {cb.INT_MAX_CLASSES}\n" in src
    assert cb.int_launch_config(400, 784) == (4, 128, 7, 400)
    assert cb.int_launch_config(40, 784, 3) == (3, 32, 25, 42)
    assert cb.int_shared_bytes(784, 7) < 48 * 1024
    packed = cb.pack_integer_models([model], 42)
    assert packed["W"].shape == (1, 784, 42) and packed["W"].dtype == np.uint8
    assert (packed["W"][0, :, 40:] == 0).all() and (packed["ASSIGN"][0, 40:] == -1).all()
    m3 = dataclasses.replace(model, n_classes=3, exit_margin=7)     # classes 3..9: beyond
    p3 = cb.pack_integer_models([m3], 42)
    a = np.asarray(model.assignments)
    np.testing.assert_array_equal(p3["ASSIGN"][0, :40], np.where(a < 0, -1, np.minimum(a, 3)))
    assert p3["MP"][0, cb.INT_MP_NAMES.index("exit_margin")] == 7
    model.n_classes = 100
    with pytest.raises(cb.UnsupportedNetwork, match="classes"):
        CupyBackend(executor=object()).run_integer(model, np.zeros((1, 784), np.uint8), 0)
    with pytest.raises(Exception, match="sample ids"):
        CupyBackend(executor=object()).run_integer(model, np.zeros((2, 784), np.uint8), 0, [1])


@pytest.mark.parametrize("defines", [("-DNPT=4", "-DMAXCH=7", "-DWT=si_u8", "-DAT=int"),
                                     ("-DNPT=3", "-DMAXCH=9", "-DWT=si_i64", "-DAT=si_i64")])
def test_int_source_compiles_with_nvcc(tmp_path, defines):
    import shutil
    import subprocess

    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH: the CUDA source compile check needs the CUDA toolkit")
    out = tmp_path / "snn_int.ptx"
    src = tmp_path / "snn_int_kernels.cu"   # the text NVRTC gets, alone in a directory
    src.write_text(cb.cuda_source(cb.INT_KERNEL_SOURCE))
    res = subprocess.run([nvcc, "--ptx", "-std=c++14", *defines, "-o", str(out), str(src)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-4000:]
    assert ".entry snn_int_infer" in out.read_text()


# -- early exit and the per-sample operation counts ------------------------------------------------
def _assert_same_ops(got_ops, want_ops, k=None):
    assert tuple(got_ops) == intsim.INFER_OPS
    for name in intsim.INFER_OPS:
        got = got_ops[name] if k is None else got_ops[name][k]
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want_ops[name], err_msg=name)


def test_emulated_early_exit_and_ops_match_intsim(emu_int_executor, int_network, digits):
    """One run_integer_many launch of models that differ in early exit (off, 1, 3), T, rate
    tables, retries, the retry threshold and topology, one of them set up through [inference]:
    predictions, counts and every operation count equal intsim's, model by model."""
    busy = INT_CASES["busy-w8-p12-rn"]
    dc = int_network("diehl-cook", 40, 50, 1, 4, 8, "nearest")
    bases = [intsim.from_network(int_network(busy[0], 40, 50, 1, *busy[1:4], **busy[4])),
             intsim.from_network(dc)]
    low = (bases[1].rate_units // 3).astype(np.uint64)
    models = [dataclasses.replace(bases[0], exit_margin=1),
              dataclasses.replace(bases[0], exit_margin=3, time_steps=64,
                                  exc=dataclasses.replace(bases[0].exc, one_spike=False)),
              dataclasses.replace(bases[1], exit_margin=0, time_steps=30, rate_units=low[:3],
                                  retry_min_spikes=4),
              dataclasses.replace(bases[1], exit_margin=1, time_steps=30, rate_units=low[:3],
                                  retry_min_spikes=4)]
    dc.config = dc.config.with_overrides(["inference.exit_margin=2", "inference.time_steps=45",
                                          "inference.rate_hz=127.5", "inference.max_retries=0"])
    models.append(intsim.from_network(dc))
    assert (models[-1].exit_margin, models[-1].time_steps, len(models[-1].rate_units)) == (2, 45, 1)
    be = CupyBackend(executor=emu_int_executor)
    images, ids = digits[0][50:53], np.array([3, 40, 41])
    preds, counts, ops = be.run_integer_many(models, images, 17, ids, with_ops=True)
    exits = 0
    for k, m in enumerate(models):
        want = intsim.infer(m, images, 17, ids, with_ops=True)
        np.testing.assert_array_equal(counts[k], want[1])
        np.testing.assert_array_equal(preds[k], want[0])
        _assert_same_ops(ops, want[2], k)
        exits += int(want[2]["exit_early"].sum()) * (1 if m.exit_margin else 0)
        assert want[2]["exit_early"].sum() == 0 or m.exit_margin > 0
    assert exits >= 3
    one = be.run_integer(models[0], images[:1], 17, ids[:1], with_ops=True)
    _assert_same_ops(one[2], {n: v[0, :1] for n, v in ops.items()})
    empty = be.run_integer(models[0], images[:0], 17, [], with_ops=True)
    assert all(v.shape == (0,) for v in empty[2].values())


@pytest.fixture
def exit_bases(int_network):
    # the conftest's factory through its fixture: several test folders have a conftest module
    _int_network = int_network
    busy = INT_CASES["busy-w8-p12-rn"]
    return {"tinysnn": intsim.from_network(_int_network(busy[0], 40, 50, 1, *busy[1:4],
                                                        **busy[4])),
            "diehl-cook": intsim.from_network(_int_network("diehl-cook", 40, 50, 1, 5, 10,
                                                           "truncation"))}


@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(topology=st.sampled_from(["tinysnn", "diehl-cook"]), margin=st.sampled_from([0, 1, 3]),
       T=st.integers(1, 40), n_rates=st.integers(1, 3), min_spikes=st.integers(0, 6),
       remap=st.lists(st.integers(-1, 9), min_size=10, max_size=10),
       n_classes=st.sampled_from([10, 2]), seed=st.integers(0, 2**32 - 1))
def test_emulated_early_exit_random_settings(emu_int_executor, exit_bases, digits, topology,
                                             margin, T, n_rates, min_spikes, remap, n_classes,
                                             seed):
    """Drawn inference settings and corners of the exit rule (classes without neurons,
    unassigned neurons, neurons assigned beyond n_classes, a zero retry threshold)."""
    base = exit_bases[topology]
    units = (base.rate_units[0] // 2 * (1 + np.arange(n_rates))).astype(np.uint64)
    m = dataclasses.replace(base, exit_margin=margin, time_steps=T, rate_units=units,
                            retry_min_spikes=min_spikes, n_classes=n_classes,
                            assignments=np.array(remap + [-1])[base.assignments])
    images, ids = digits[0][seed % 100:seed % 100 + 2], np.array([seed % 7, 8])
    want = intsim.infer(m, images, seed, ids, with_ops=True)
    got = CupyBackend(executor=emu_int_executor).run_integer(m, images, seed, ids, with_ops=True)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])
    _assert_same_ops(got[2], want[2])
