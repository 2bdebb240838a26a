import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinysnn_core import QFormat, from_codes, quantize, to_codes


@pytest.mark.parametrize("text, fmt", [
    ("Q1.6", QFormat(1, 6, False)), ("uQ0.8", QFormat(0, 8, False)),
    ("sQ7.8", QFormat(7, 8, True)), (" q3.0 ", QFormat(3, 0, False)),
])
def test_parse(text, fmt):
    assert QFormat.parse(text) == fmt


def test_properties():
    f = QFormat.parse("sQ7.8")
    assert f.bits == 16 and f.step == 2 ** -8
    assert f.min == -128 and f.max == 128 - 2 ** -8
    u = QFormat.parse("uQ0.4")
    assert u.bits == 4 and u.min == 0 and u.max == 15 / 16
    assert str(u) == "uQ0.4"


@pytest.mark.parametrize("bad", ["Q1", "Q.5", "x1.2", "Q-1.3", ""])
def test_unparseable_formats(bad):
    with pytest.raises(ValueError, match="cannot parse"):
        QFormat.parse(bad)


@pytest.mark.parametrize("args", [(0, 0, False), (20, 13, False), (16, 16, True), (-1, 3, False)])
def test_bad_widths(args):
    with pytest.raises(ValueError):
        QFormat(*args)


def test_worked_examples():
    f = QFormat(4, 4)
    x = np.array([0.05, 0.03, 0.5 + 1 / 32, 1 / 32, 100.0, -1.0])
    assert list(quantize(x, f, "truncation")) == [0.0, 0.0, 0.5, 0.0, f.max, 0.0]
    assert list(quantize(x, f, "nearest")) == [0.0625, 0.0, 0.5625, 0.0625, f.max, 0.0]
    s = QFormat(3, 4, True)
    assert list(quantize(np.array([-0.03, -0.04]), s, "truncation")) == [-0.0625, -0.0625]
    assert list(quantize(np.array([-1 / 32]), s, "nearest")) == [0.0]  # ties go up


def test_unknown_rounding_lists_known():
    with pytest.raises(ValueError, match="known: .*nearest"):
        quantize([0.1], "uQ0.8", "bankers")


def test_stochastic_needs_a_generator():
    with pytest.raises(ValueError, match="random generator"):
        quantize([0.1], "uQ0.8", "stochastic")


@given(st.lists(st.integers(-128, 127), min_size=1, max_size=50))
def test_codes_round_trip_property(codes):
    f = QFormat(3, 4, True)
    arr = np.array(codes)
    assert np.array_equal(to_codes(from_codes(arr, f), f), arr)


def test_from_codes_refuses_out_of_range():
    with pytest.raises(ValueError, match="outside"):
        from_codes(np.array([300]), QFormat(0, 8))
