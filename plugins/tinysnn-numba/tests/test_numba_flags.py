"""The excitatory step's spike flags: read back from the refractory counts where
``kernels._flags_by_ref`` says a count of ``refrac`` means "spiked in this step", and stored in
the loop where it cannot (a step below half an ulp of the period leaves a count at ``refrac``)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from tinysnn_numba import kernels as k  # noqa: E402
from tinysnn_numba.kernels import WORK_INT  # noqa: E402

N = 16
SPIKING = [3, 7, 12]


def state(refrac, ref0):
    """Neurons at rest 0 with no leak (decay 1) and threshold 1: those in SPIKING start at 1
    and cross, the others at 0 and do not; every count starts at ``ref0``."""
    v = np.zeros(N)
    v[SPIKING] = 1.0
    return v, np.full(N, float(ref0)), np.ones(N), np.zeros(N)


@pytest.mark.parametrize("refrac, dt, ref0", [
    (5.0, 0.5, 0.0),            # the counts tell: flags read back from them
    (0.0, 1.0, 0.0),            # no refractory period: a count of 0 is also the start
    (65535.0, 1e-12, 65535.0),  # refrac - dt == refrac: every count stays at refrac
])
@pytest.mark.parametrize("phase", ["infer", "train"])
def test_the_flags_are_the_crossings(refrac, dt, ref0, phase):
    v, ref, th, cur = state(refrac, ref0)
    s = np.full(N, 7, WORK_INT)
    cross = np.zeros(N, WORK_INT)
    sp = np.zeros(N, WORK_INT)
    if phase == "infer":
        nc = k._exc_step_infer(v, ref, th, cur, s, cross, sp, 0, 0.0, False, 0.0, -5.0, 1.0,
                               refrac, dt, 0)
    else:
        theta = np.zeros(N)
        nc = k._exc_step_train(v, ref, theta, cur, s, cross, sp, 0, 0.0, False, False, 0.0,
                               -5.0, 1.0, 1.0, refrac, dt, 1.0, 0.0, 0)
    assert nc == len(SPIKING)
    assert cross[:nc].tolist() == SPIKING
    assert np.flatnonzero(s).tolist() == SPIKING and set(s.tolist()) == {0, 1}
    assert (v[SPIKING] == -5.0).all() and (ref[SPIKING] == refrac).all()
    assert k._flags_by_ref(refrac, dt) is (refrac - dt < refrac)    # which path ran
