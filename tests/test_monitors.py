"""Monitors (tinysnn_core.monitors): what the NumPy backend records, the recording file (round
trip and damage, hypothesis), the training curve, the plots and ``tinysnn eval --record``."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinysnn_core import contracts
from tinysnn_core.builtin.backend_numpy import NumpyBackend
from tinysnn_core.cli import main
from tinysnn_core.config import Config
from tinysnn_core.errors import InputError, RecordingFileError, TinySNNError
from tinysnn_core.monitors import Record, Recording, TrainingCurve, parse_indices, record_run
from tinysnn_core.network import Network
from tinysnn_core.ops import OpCounts

ALL = ("spikes", "v", "theta", "trace")


def small_net(n=12, T=50, **extra) -> Network:
    cfg = {"n_neurons": n, "topology": {"name": "tinysnn"}, "learning": {"name": "tinysnn-stdp"},
           "exc_neuron": {"name": "adaptive-lif", "theta_plus": 0.8}, "train": {"time_steps": T}}
    cfg.update(extra)
    return Network.build(Config.from_dict(cfg))


@pytest.fixture(scope="module")
def digits():
    from tinysnn_core.builtin.datasets import load_mnist_5k

    data = load_mnist_5k(0)
    return data.train_images[:8], data.train_labels[:8]


@pytest.mark.parametrize("learn", [True, False])
def test_recording_changes_nothing_and_adds_up(digits, learn):
    images, _ = digits
    net = small_net()
    runs = []
    for record in (None, Record(samples=[2, 5], neurons=[0, 3, 7], variables=ALL)):
        copy_, ops = copy.deepcopy(net), OpCounts()
        counts = NumpyBackend().run(copy_, images[:6], np.arange(6), learn=learn, seed=5,
                                    ops=ops, record=record)
        runs.append((copy_, counts, ops, record))
    (a, ca, oa, _), (b, cb, ob, record) = runs
    np.testing.assert_array_equal(ca, cb)
    assert a.w.tobytes() == b.w.tobytes() and a.theta.tobytes() == b.theta.tobytes()
    assert oa.as_dict() == ob.as_dict()
    rec = record.recording(n_neurons=12, time_steps=50)
    assert rec.sample_ids.tolist() == [2, 5]
    np.testing.assert_array_equal(rec.counts, cb[[2, 5]])
    assert ca[[2, 5]].sum() > 0, "the test network should spike"
    reset = net.exc.p.reset
    for p in range(len(rec.pres_sample)):
        steps, neurons = rec.spikes(p)
        for k, n in enumerate(rec.neurons.tolist()):
            at = steps[neurons == n]
            # a neuron that spiked sits at its reset potential at the end of that step
            assert np.all(rec.state["v"][p, at, k] == reset)
            # its trace is 1 where it spiked and decays otherwise
            tr = rec.state["trace"][p, :, k]
            assert np.all(tr[at] == 1.0)
            assert np.all(np.diff(tr)[np.setdiff1d(np.arange(49), at - 1)] <= 0)
            theta = rec.state["theta"][p, :, k]
            if not learn:
                assert np.all(theta == b.theta[n])
            else:
                # theta grows by theta_plus (decay ~ 1) at every crossing of the threshold:
                # at each emitted spike, and where the one-spike rule kept another neuron's
                # spike (the crossing neuron was reset all the same)
                jumps = np.flatnonzero(np.diff(theta) > 0.4) + 1
                assert set(at.tolist()) - {0} <= set(jumps.tolist())
                assert np.all(rec.state["v"][p, jumps, k] == reset)
                assert np.allclose(np.diff(theta)[jumps - 1], 0.8, atol=1e-3)


def test_a_backend_without_record_is_refused_in_one_line(digits):
    class Plain:
        name = "plain"

        def available(self):
            return True, ""

        def run(self, net, images, sample_ids, *, learn, seed, ops):
            raise AssertionError("must not run")

    # the contract does not require the optional argument, and still checks the others
    assert contracts.check("backend", Plain) == []

    class Narrow(Plain):
        def run(self, net, images, sample_ids, *, learn):
            return None
    assert contracts.check("backend", Narrow)
    with pytest.raises(TinySNNError, match="cannot record") as exc:
        record_run(small_net(), digits[0][:2], [0, 1], Record(), seed=1, backend=Plain())
    assert "\n" not in str(exc.value)


def test_bad_records_are_refused_before_any_work(digits):
    with pytest.raises(InputError, match="unknown variable"):
        Record(variables=("spikes", "voltage"))
    with pytest.raises(InputError, match="more than once"):
        Record(neurons=[1, 1])
    net = small_net()
    with pytest.raises(InputError, match="layer has 12"):
        NumpyBackend().run(net, digits[0][:1], [0], learn=False, seed=0, ops=OpCounts(),
                           record=Record(neurons=[12]))
    lif = small_net(exc_neuron={"name": "lif"})
    with pytest.raises(InputError, match="no adaptive threshold"):
        NumpyBackend().run(lif, digits[0][:1], [0], learn=False, seed=0, ops=OpCounts(),
                           record=Record(variables=("theta",)))
    assert parse_indices("0:3,7", 10, "sample") == (0, 1, 2, 7)
    assert parse_indices("all", 10, "sample") is None
    for bad in ("3:1", "x", "12", ""):
        with pytest.raises(InputError):
            parse_indices(bad, 10, "sample")


# -- the file -----------------------------------------------------------------------------

@st.composite
def recordings(draw):
    N = draw(st.integers(1, 6))
    T = draw(st.integers(1, 7))
    variables = draw(st.lists(st.sampled_from(ALL), min_size=1, max_size=4, unique=True))
    neurons = draw(st.lists(st.integers(0, N - 1), max_size=N, unique=True))
    rec = Record(neurons=neurons, variables=variables)
    n_samples = draw(st.integers(0, 3))
    floats = st.floats(allow_nan=False, allow_infinity=True, width=64)
    for s in range(n_samples):
        sid = draw(st.integers(0, 2 ** 40))
        for retry in range(draw(st.integers(1, 3))):
            raster = draw(st.lists(st.lists(st.booleans(), min_size=N, max_size=N),
                                   min_size=T, max_size=T))
            raster = np.array(raster, dtype=bool).reshape(T, N)
            steps, fired = np.nonzero(raster)
            values = {v: np.array(draw(st.lists(floats, min_size=T * len(neurons),
                                                max_size=T * len(neurons)))).reshape(
                                                    T, len(neurons))
                      for v in rec.state_variables}
            rec.add_presentation(sid, retry, steps, fired, values)
        counts = raster.sum(axis=0) if "spikes" in variables else draw(
            st.lists(st.integers(0, T), min_size=N, max_size=N))
        rec.add_sample(sid, counts)
    labels = {s: draw(st.integers(-1, 9)) for s, _ in rec.sample_list}
    return rec.recording(n_neurons=N, time_steps=T, labels=labels, seed=draw(st.integers(0, 9)),
                         note=draw(st.text(max_size=8)))


def assert_same(a: Recording, b: Recording):
    assert a.header == b.header
    assert a.arrays().keys() == b.arrays().keys()
    for k, arr in a.arrays().items():
        assert arr.shape == b.arrays()[k].shape and arr.tobytes() == b.arrays()[k].tobytes(), k


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rec=recordings())
def test_recording_file_round_trip(tmp_path, rec):
    path = rec.save(tmp_path / "r.npz")
    assert_same(rec, Recording.load(path))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rec=recordings(), data=st.data())
def test_a_damaged_recording_file_is_one_line_error_or_intact(tmp_path, rec, data):
    path = rec.save(tmp_path / "r.npz")
    raw = bytearray(path.read_bytes())
    how = data.draw(st.sampled_from(["flip", "truncate", "zero"]))
    at = data.draw(st.integers(0, len(raw) - 1))
    if how == "flip":
        raw[at] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "truncate":
        raw = raw[:at]
    else:
        raw[at:at + 64] = bytes(len(raw[at:at + 64]))
    path.write_bytes(bytes(raw))
    try:
        got = Recording.load(path)
    except RecordingFileError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    else:       # the damage hit an unchecked byte (a zip timestamp): the data is whole
        assert_same(rec, got)


def _npy(array) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array)
    return buf.getvalue()


def _header(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return json.loads(np.lib.format.read_array(io.BytesIO(zf.read("header.npy"))).tobytes())


def _with(path, out, **members) -> None:
    """Copy the recording ``path`` to ``out`` with the members named ``NAME_npy`` replaced."""
    with zipfile.ZipFile(path) as zf, zipfile.ZipFile(out, "w") as dst:
        for n in zf.namelist():
            dst.writestr(n, members.get(n.replace(".", "_")) or zf.read(n))


def test_sizes_are_checked_before_allocating(tmp_path):
    rec = Record(variables=ALL)
    rec.add_presentation(0, 0, [1], [0], {v: np.zeros((3, 2)) for v in ("v", "theta", "trace")})
    rec.add_sample(0, [1, 0])
    good = rec.recording(n_neurons=2, time_steps=3).save(tmp_path / "good.npz")
    # a header that declares a huge recording: refused from the header, nothing read
    header = _header(good)
    header["sizes"]["T"] = header["time_steps"] = 2 ** 30
    bad = tmp_path / "huge.npz"
    _with(good, bad, header_npy=_npy(np.frombuffer(json.dumps(header).encode(), np.uint8)))
    with pytest.raises(RecordingFileError, match="more than the limit"):
        Recording.load(bad)
    with pytest.raises(RecordingFileError, match="more than the limit"):
        Recording.load(good, max_bytes=16)
    # a member whose own .npy header disagrees with the file's header
    _with(good, bad, v_npy=_npy(np.zeros((1, 3, 5))))
    with pytest.raises(RecordingFileError, match="member 'v'"):
        Recording.load(bad)
    with pytest.raises(RecordingFileError, match="no such"):
        Recording.load(tmp_path / "absent.npz")
    # header fields of the wrong type (the CRC is right: written so)
    for field, value in (("n_classes", "ten"), ("dt", None), ("neuron", {"thresh": "x"}),
                         ("variables", ["spikes", "volts"]), ("version", 2)):
        header = _header(good)
        header[field] = value
        _with(good, bad, header_npy=_npy(np.frombuffer(json.dumps(header).encode(), np.uint8)))
        with pytest.raises(RecordingFileError):
            Recording.load(bad)


# -- the training curve -------------------------------------------------------------------

def step(done, counts, labels, net):
    return SimpleNamespace(done=done, total=10 ** 6, net=net, counts=np.asarray(counts),
                           labels=np.asarray(labels))


def test_training_curve_assigns_on_one_window_and_scores_the_next():
    net = SimpleNamespace(theta=np.zeros(20))
    curve = TrainingCurve(window=30)
    done = 0
    for batch in (7, 13, 32, 1, 27, 10):
        labels = (np.arange(done, done + batch) * 7) % 10      # every class in each window
        counts = np.zeros((batch, 20), dtype=np.int64)
        counts[np.arange(batch), labels] = 3            # neuron c answers class c ...
        counts[np.arange(batch), 10 + (labels + 1) % 10] = 2   # ... and 10 + c the class c - 1
        done += batch
        net.theta = net.theta + 0.5
        curve(step(done, counts, labels, net))
    assert [p["done"] for p in curve.points] == [30, 60, 90]
    assert curve.points[0]["accuracy"] is None
    assert [p["accuracy"] for p in curve.points[1:]] == [1.0, 1.0]
    assert curve.points[-1]["theta_mean"] == pytest.approx(0.5 * 6)
    assert all(p["active_neurons"] <= 20 for p in curve.points)
    # a network whose answers are shuffled between windows scores what it deserves
    bad = TrainingCurve(window=10)
    labels = np.arange(10)
    bad(step(10, np.eye(10, dtype=np.int64) * 2, labels, net))
    bad(step(20, np.roll(np.eye(10, dtype=np.int64), 1, axis=1) * 2, labels, net))
    assert bad.points[1]["accuracy"] == 0.0


def test_training_curve_through_train_and_its_file(tmp_path, digits):
    from tinysnn_core import train as flow
    from tinysnn_core.data import Dataset

    images, labels = digits
    data = Dataset("digits", np.repeat(images, 3, axis=0), np.repeat(labels, 3), images[:2],
                   labels[:2])
    net = small_net(n=10, T=30)
    curve = TrainingCurve(window=10)
    flow.train(net, data, backend=NumpyBackend(), progress=False, callbacks=[curve])
    assert [p["done"] for p in curve.points] == [10, 20]
    assert curve.points[-1]["theta_mean"] == pytest.approx(float(net.theta.mean()))
    again = TrainingCurve.load(curve.save(tmp_path / "c.json"))
    assert again.points == curve.points and again.window == 10
    (tmp_path / "bad.json").write_text('{"format": "tinysnn-training-curve", "window": 1}')
    with pytest.raises(InputError, match="not a readable training curve"):
        TrainingCurve.load(tmp_path / "bad.json")


# -- plots and the command ----------------------------------------------------------------

def test_plots_write_pngs_and_draw_on_axes(tmp_path, digits):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from tinysnn_core import plots

    net = small_net()
    record = Record(samples=[0, 1], neurons=[0, 1, 2], variables=ALL)
    rec = record_run(net, digits[0][:2], [0, 1], record, seed=3, backend=NumpyBackend(),
                     labels=digits[1][:2])
    assignments = np.arange(12) % 11 - 1
    curve = {"window": 5, "points": [
        {"done": 5 * i, "accuracy": None if i == 1 else 0.1 * i, "theta_mean": 0.2 * i,
         "theta_max": 0.3 * i, "active_neurons": 10 - i, "spikes_per_sample": 4.0}
        for i in range(1, 5)]}
    made = [plots.plot_raster(rec, 0, tmp_path / "r.png", assignments=assignments),
            plots.plot_traces(rec, 1, tmp_path / "t.png"),
            plots.plot_confusion([0, 1, 1, 2], [0, 1, 2, 2], tmp_path / "c.png", n_classes=3),
            plots.plot_assignments(assignments, tmp_path / "a.png"),
            plots.plot_training_curve(curve, tmp_path / "tc.png")]
    for path in made:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 3000
    ax = Figure().subplots()
    assert plots.plot_membrane(rec, 0, ax) is ax and len(ax.lines) >= 2
    np.testing.assert_array_equal(
        plots.confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3),
        [[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    with pytest.raises(InputError, match="outside"):
        plots.plot_confusion([0, 11], [0, 1], tmp_path / "x.png")
    with pytest.raises(InputError, match="not in this recording"):
        plots.plot_raster(rec, 7, tmp_path / "x.png")
    with pytest.raises(InputError, match="was not recorded"):
        plots.plot_membrane(rec, 0, tmp_path / "x.png", neurons=[9])


def test_eval_record_command(tmp_path, capsys):
    from tinysnn_core import train as flow
    from tinysnn_core.modelfile import load_network

    model = tmp_path / "m.tsnn"
    small = ["-n", "16", "--n-train", "30", "--n-test", "20", "--time-steps", "40", "-q",
             "--backend", "numpy"]
    assert main(["run", *small, "--out", str(model), "--curve", str(tmp_path / "c.json"),
                 "--curve-window", "10"]) == 0
    assert len(TrainingCurve.load(tmp_path / "c.json").points) == 3
    capsys.readouterr()
    assert main(["run", *small, "--out", str(tmp_path / "s"), "--seeds", "2",
                 "--curve", str(tmp_path / "s.json")]) == 2
    assert "--seeds" in capsys.readouterr().err and not (tmp_path / "s").exists()
    out = tmp_path / "rec.npz"
    assert main(["eval", str(model), "-q", "--record", str(out), "--record-samples", "3:6,9",
                 "--record-neurons", "active:4"]) == 0
    rec = Recording.load(out)
    assert rec.sample_ids.tolist() == [3, 4, 5, 9] and len(rec.neurons) == 4
    assert rec.header["model"]["name"] == "m.tsnn" and rec.header["phase"] == "test"
    # the recorded counts are the evaluation's: the test stream's seed, the test index as id
    net = load_network(model)
    data = flow.load_dataset(net.config)
    counts = NumpyBackend().run(net, data.test_images[[3, 4, 5, 9]], [3, 4, 5, 9], learn=False,
                                seed=flow.stream_seed(net.config.seed, "test"), ops=OpCounts())
    np.testing.assert_array_equal(rec.counts, counts)
    np.testing.assert_array_equal(rec.labels, data.test_labels[[3, 4, 5, 9]])
    assert (rec.predictions >= 0).all()
    capsys.readouterr()
    for bad, msg in ((["--record-samples", "40"], "outside 0..19"),
                     (["--record-variables", "spikes,volts"], "unknown variable"),
                     (["--record-neurons", "active:99"], "active:K")):
        assert main(["eval", str(model), "-q", "--record", str(tmp_path / "x.npz"), *bad]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1 and "test accuracy" not in err
    assert not (tmp_path / "x.npz").exists()
    # and the plots of it, through tinysnn plot
    for kind, source, extra in (("raster", out, ["--samples", "3:10", "--model", str(model)]),
                                ("curve", tmp_path / "c.json", [])):
        png = tmp_path / f"{kind}.png"
        assert main(["plot", kind, str(source), "-o", str(png), *extra]) == 0, kind
        assert png.read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert main(["plot", "traces", str(out), "-o", str(tmp_path / "x.png"),
                 "--neurons", "999"]) == 2
    err = capsys.readouterr().err
    assert "was not recorded" in err and err.count("\n") == 1
    (tmp_path / "broken.npz").write_bytes(out.read_bytes()[:-100])
    assert main(["plot", "raster", str(tmp_path / "broken.npz"),
                 "-o", str(tmp_path / "x.png")]) == 2
    assert "broken.npz" in capsys.readouterr().err
