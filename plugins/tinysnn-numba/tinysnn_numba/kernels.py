"""numba kernels of the compiled CPU backend (float64, simulated fixed point, integer mode).

Everything a presentation does runs here, compiled (``@njit(cache=True)``): the counter-based
input spikes (only the non-zero pixels are drawn), event-driven input accumulation, lateral
inhibition (direct or through the inhibitory layer), the neuron updates, the traces, the three
built-in learning rules, the end-of-sample update, the retry rule and the column normalisation.

Float mode replicates the NumPy reference (``tinysnn_core.builtin.backend_numpy``) operation by
operation, in float64 and in the same order, so the results are bit-identical:

- input current: ``w[pre].sum(axis=0)`` is a row-by-row sum (NumPy reduces the outer axis of a
  C-ordered array sequentially), so it is accumulated row by row in the order of the spiking pixel
  indices, starting from the first row;
- normalisation: ``np.abs(w[:, cols]).sum(axis=0)`` runs on an F-ordered copy, so NumPy sums each
  column with its *pairwise* summation (blocks of 8 accumulators, ``PW_BLOCKSIZE`` 128);
  ``_pairwise_cols`` reproduces it (tree from ``pairwise_program``), float64 accumulators;
- every elementwise expression keeps the reference's evaluation order (``v -= rest; v *= decay;
  v += rest``; ``w - (nu_pre * x_post) * (w - wmin)``, ...); numba does not contract to FMA or
  reassociate without ``fastmath``, which is never used here.

Quantization (docs/backends.md, "Quantization"):

- simulated fixed point: ``qp`` (``Q_*`` groups x ``QF_*`` fields, all zero in plain float mode)
  switches on the rounding of the potential, theta, traces and weights exactly where the
  reference's ``QuantRuntime.q`` rounds them (``_q``: the reference's float64 operations in its
  order; truncation and nearest bit-exact, stochastic from the counter-based hash keyed by the
  presentation step and a salt per rounding site, ``_site_key`` / ``_sr_uniform``);
- integer mode: ``infer_int_batch_tiled`` runs ``tinysnn_core.intsim`` on the weight codes
  (``_present_int_tiled``, ``_layer_step_int``, ``_classify_int``), bit-exact with
  ``intsim.infer``; it shares the batched input-spike helpers with float inference.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload


def borrowing(fn=None, *, inline=False):
    """``njit`` for the per-step functions: compiled without numba's reference counting, for
    functions that only read and write arrays their caller owns (they allocate nothing and return
    no array; numba refuses to compile an allocation without it, so the rule is checked).

    Why: numba's reference-count pruning leaves an atomic incref/decref pair per array argument
    in a function whose loops sit inside branches (``_exc_step_train``'s four loops: 14 locked
    instructions per time step). Run once per step, those cost about 6% of a training sample
    (docs/benchmarks.md, "Reference counts"). ``@borrowing(inline=True)`` also inlines the
    function at numba's level, for a small helper whose call LLVM would keep."""
    opts = {"cache": True, "boundscheck": False, "_nrt": False}
    if inline:
        opts["inline"] = "always"
    return njit(**opts) if fn is None else njit(**opts)(fn)


# -- counter-based generator (tinysnn_core.counter_rng), uint64 arithmetic masked to 32 bits ------
M32 = np.uint64(0xFFFFFFFF)
STEP_MUL = np.uint64(0x85EBCA77)
INDEX_MUL = np.uint64(0xC2B2AE3D)
MIX1 = np.uint64(0x85EBCA6B)
MIX2 = np.uint64(0xC2B2AE35)
SH16 = np.uint64(16)
SH13 = np.uint64(13)
WINNER_INDEX = 0xFFFF
WINNER_MUL = np.uint64((WINNER_INDEX * 0xC2B2AE3D) & 0xFFFFFFFF)

# -- operation counters: index -> tinysnn_core.ops.OpCounts field --------------------------------
OP_FIELDS = ("samples", "presentations", "time_steps", "input_spikes", "exc_spikes",
             "inh_spikes", "neuron_updates_exc", "neuron_updates_inh", "synaptic_events",
             "lateral_events", "trace_updates", "stdp_updates", "stdp_accumulates", "norm_ops")
(OP_SAMPLES, OP_PRESENTATIONS, OP_TIME_STEPS, OP_INPUT_SPIKES, OP_EXC_SPIKES, OP_INH_SPIKES,
 OP_NEURON_EXC, OP_NEURON_INH, OP_SYNAPTIC, OP_LATERAL, OP_TRACE, OP_STDP, OP_ACCUM,
 OP_NORM) = range(len(OP_FIELDS))
N_OPS = len(OP_FIELDS)

# -- packed float parameters ---------------------------------------------------------------------
(FP_E_REST, FP_E_RESET, FP_E_THRESH, FP_E_DECAY, FP_E_REFRAC, FP_E_THETA_DECAY, FP_E_THETA_PLUS,
 FP_I_REST, FP_I_RESET, FP_I_THRESH, FP_I_DECAY, FP_I_REFRAC, FP_I_THETA_DECAY, FP_I_THETA_PLUS,
 FP_DT, FP_W_LAT, FP_W_EXC_INH, FP_WMIN, FP_WMAX, FP_TRACE_DECAY, FP_NU_PRE, FP_NU_POST,
 FP_X_TAR, FP_MU, FP_TARGET, FP_K_MIN, FP_K_MAX, FP_WEIGHT_DECAY, FP_NORM) = range(29)
N_FP = 29

# -- packed integer parameters -------------------------------------------------------------------
(IP_T, IP_E_ADAPTIVE, IP_E_ONE_SPIKE, IP_I_ADAPTIVE, IP_I_ONE_SPIKE, IP_HAS_INH, IP_RULE,
 IP_NEEDS_POST, IP_MIN_POST, IP_ADAPT_POT, IP_NORMALIZE, IP_MAX_RETRIES,
 IP_RETRY_MIN) = range(13)
N_IP = 13

RULE_POSTPRE = 0
RULE_WEIGHT_DEPENDENT = 1
RULE_TINYSNN = 2

# -- float work rows (wf[ROW, :N]) and int work rows (wi[ROW, :N]); the input current row is
# apart (``current_row``: its dtype is the currents' precision) ---------------------------------
# the int work rows' type (wi, and the inference kernels' ib): spike flags, neuron indices and
# one sample's spike counts, all far below 2**31. int32 rather than int64 halves the spike
# flags' traffic in the neuron loops, where they are one load and one store per neuron.
WORK_INT = np.int32
(WF_V_E, WF_REF_E, WF_V_I, WF_REF_I, WF_THETA_I, WF_CUR_INH, WF_X_POST, WF_SUMS) = range(8)
N_WF = 8
(WI_SRC_PREV, WI_E_PREV, WI_S_E, WI_S_I, WI_CROSS, WI_CROSS_I, WI_CNT, WI_DIRTY, WI_COLS,
 WI_COUNTS) = range(10)
N_WI = 10
# per-presentation input work (wp[ROW, :n_in]): non-zero pixels, their thresholds and index
# hashes, the spiking pixels of the step, pixel -> compact position (-1: zero pixel), and
# the per-step spike flags of the non-zero pixels
WP_NZ, WP_THR, WP_IDXMUL, WP_PRE, WP_POS, WP_FIRED = range(6)
N_WP = 6

# -- simulated fixed point (float mode with net.quant): qp[GROUP, FIELD], float64 ----------------
# the groups the reference rounds *during* the simulation (the others, inhibition and decay, are
# rounded once by the quantizer before it and read as they are)
Q_WEIGHTS, Q_POTENTIAL, Q_THETA, Q_TRACES = range(4)
N_QG = 4
# QF_ON: 1.0 when the group is quantized; QF_MODE: QM_*; QF_SCALE: 2**frac; QF_STEP: 2**-frac;
# QF_CMIN / QF_CMAX: the format's code range (exact in float64: at most 32 bits)
QF_ON, QF_MODE, QF_SCALE, QF_STEP, QF_CMIN, QF_CMAX = range(6)
N_QF = 6
QM_TRUNCATION, QM_NEAREST, QM_STOCHASTIC = 0, 1, 2
# stochastic rounding: one counter-based word per rounded element, keyed by the step key of the
# presentation step (seed, sample, retry, step) xor a salt per rounding site, then the element
# index, exactly as the input draws are keyed (docs/backends.md)
SALT_POT_E = np.uint64(0x3C6EF372)
SALT_POT_I = np.uint64(0xA54FF53A)
SALT_THETA = np.uint64(0x510E527F)
SALT_TR_PRE = np.uint64(0x9B05688C)
SALT_TR_POST = np.uint64(0x1F83D9AB)
SALT_W_ROWS = np.uint64(0x5BE0CD19)
SALT_W_COLS = np.uint64(0x6A09E667)
SALT_W_END = np.uint64(0xBB67AE85)
SALT_W_NORM = np.uint64(0xCBBB9D5D)
TWO_M32 = 2.0 ** -32


@njit(cache=True)
def _fmix32(x):
    """MurmurHash3 fmix32 on a uint64 holding a 32-bit word."""
    x ^= x >> SH16
    x = (x * MIX1) & M32
    x ^= x >> SH13
    x = (x * MIX2) & M32
    x ^= x >> SH16
    return x


@njit(cache=True)
def _step_key(skey, step):
    """``step_key(sample_key, step)`` of counter_rng (skey: uint64 < 2**32)."""
    return _fmix32(((np.uint64(step) * STEP_MUL) & M32) ^ skey)


@njit(cache=True)
def _winner_word(sk):
    """The step's one-spike random word (int64): the hash of the winner index under the step
    key ``sk``, which picks the single winner among a step's spiking neurons."""
    return np.int64(_fmix32((sk + WINNER_MUL) & M32))


@njit(cache=True)
def _setup_inputs(image, rate_unit, wp):
    """Non-zero pixels of ``image``, their spike thresholds and index hashes; returns their count."""
    n_in = image.shape[0]
    n_nz = 0
    for i in range(n_in):
        wp[WP_POS, i] = -1
        if image[i] != 0:
            wp[WP_NZ, n_nz] = i
            wp[WP_THR, n_nz] = image[i] * rate_unit
            wp[WP_IDXMUL, n_nz] = np.int64((np.uint64(i) * INDEX_MUL) & M32)
            wp[WP_POS, i] = n_nz
            n_nz += 1
    return n_nz


@njit(cache=True)
def _draw_inputs(sk, n_nz, wp):
    """The pixels that spike at the step with key ``sk`` (ascending) into wp[WP_PRE]; count."""
    idxmul = wp[WP_IDXMUL]
    thr = wp[WP_THR]
    fired = wp[WP_FIRED]
    for k in range(n_nz):      # branch-free hashing: vectorised
        d = _fmix32((sk + np.uint64(idxmul[k])) & M32)
        fired[k] = np.int64(d < np.uint64(thr[k]))
    n_pre = 0
    for k in range(n_nz):
        if fired[k]:
            wp[WP_PRE, n_pre] = wp[WP_NZ, k]
            n_pre += 1
    return n_pre


@njit(cache=True)
def _site_key(sk, salt):
    """Key of one stochastic-rounding site (a group's rounding at one step)."""
    return _fmix32(sk ^ salt)


@njit(cache=True)
def _sr_uniform(site, index):
    """A uniform number in [0, 1) (32 random bits) for element ``index`` of a rounding site."""
    d = _fmix32((site + ((np.uint64(index) * INDEX_MUL) & M32)) & M32)
    return np.float64(d) * TWO_M32


@njit(cache=True)
def _q(x, off, qp, g, site, index):
    """``QuantRuntime.q(group, x, off)`` for one float: ``(x - off) * 2**frac`` rounded
    (truncation: floor; nearest: floor(s + 1/2); stochastic: floor(s + u)), the code clipped to
    the format's range, then ``code * step + off`` -- the reference's float64 operations in its
    order (the code goes through int64, as ``round_codes`` returns int64 codes)."""
    s = (x - off) * qp[g, QF_SCALE]
    mode = qp[g, QF_MODE]
    if mode == QM_NEAREST:
        c = np.floor(s + 0.5)
    elif mode == QM_TRUNCATION:
        c = np.floor(s)
    else:
        c = np.floor(s + _sr_uniform(site, index))
    lo = qp[g, QF_CMIN]
    hi = qp[g, QF_CMAX]
    if not c > lo:
        c = lo
    if not c < hi:
        c = hi
    return np.float64(np.int64(c)) * qp[g, QF_STEP] + off


@borrowing
def _q_vec(a, n, off, qp, g, site):
    """``a[:n] = q(group, a[:n], off)``."""
    for j in range(n):
        a[j] = _q(a[j], off, qp, g, site, j)


@njit(cache=True)
def _pairwise_sum_1d(a, n):
    """NumPy's pairwise sum of a[:n] (explicit stack: numba cannot cache recursion)."""
    f_start = np.empty(64, dtype=np.int64)
    f_len = np.empty(64, dtype=np.int64)
    f_split = np.zeros(64, dtype=np.int64)
    vals = np.empty(64)
    f_start[0] = 0
    f_len[0] = n
    top = 1
    nv = 0
    while top:
        s = f_start[top - 1]
        m = f_len[top - 1]
        if m <= 128:
            if m < 8:
                res = 0.0
                for i in range(s, s + m):
                    res += a[i]
            else:
                r = a[s:s + 8].copy()
                i = 8
                stop = m - (m % 8)
                while i < stop:
                    for u in range(8):
                        r[u] += a[s + i + u]
                    i += 8
                res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
                while i < m:
                    res += a[s + i]
                    i += 1
            vals[nv] = res
            nv += 1
            top -= 1
        elif f_split[top - 1] == 0:
            f_split[top - 1] = 1
            m2 = m // 2
            m2 -= m2 % 8
            f_start[top], f_len[top], f_split[top] = s + m2, m - m2, 0      # right, done second
            f_start[top + 1], f_len[top + 1], f_split[top + 1] = s, m2, 0   # left, done first
            top += 2
        else:
            vals[nv - 2] = vals[nv - 2] + vals[nv - 1]
            nv -= 1
            top -= 1
    return vals[0]


@borrowing
def _sum_rows(w, rows, start, end, out):
    """out[j] = the sum of w[rows[q], j] for q in start..end-1, from 0, one row after the other
    in that order (NumPy's ``w[rows].sum(axis=0)`` for N >= 2; four rows per pass over ``out``).
    Integer codes accumulate exactly in ``out``'s type (the caller checked the range). The
    first pass starts from a zero of ``out``'s type instead of a cleared row: the same additions
    (0 + w keeps its rounding and turns -0.0 into 0.0), one pass over ``out`` fewer."""
    N = w.shape[1]
    if N == 0:
        return
    out[0] = 0
    z = out[0]
    q = start
    n = end - start
    r0 = rows[q] if n >= 1 else 0
    r1 = rows[q + 1] if n >= 2 else 0
    r2 = rows[q + 2] if n >= 3 else 0
    r3 = rows[q + 3] if n >= 4 else 0
    if n >= 4:
        for j in range(N):
            out[j] = (((z + w[r0, j]) + w[r1, j]) + w[r2, j]) + w[r3, j]
        q += 4
    elif n == 3:
        for j in range(N):
            out[j] = ((z + w[r0, j]) + w[r1, j]) + w[r2, j]
        q += 3
    elif n == 2:
        for j in range(N):
            out[j] = (z + w[r0, j]) + w[r1, j]
        q += 2
    elif n == 1:
        for j in range(N):
            out[j] = z + w[r0, j]
        q += 1
    else:
        for j in range(N):
            out[j] = z
    while q + 4 <= end:
        r0 = rows[q]
        r1 = rows[q + 1]
        r2 = rows[q + 2]
        r3 = rows[q + 3]
        for j in range(N):
            c = out[j] + w[r0, j]
            c = c + w[r1, j]
            c = c + w[r2, j]
            out[j] = c + w[r3, j]
        q += 4
    if end - q == 3:    # the last rows in one pass too (same order)
        r0 = rows[q]
        r1 = rows[q + 1]
        r2 = rows[q + 2]
        for j in range(N):
            out[j] = ((out[j] + w[r0, j]) + w[r1, j]) + w[r2, j]
    elif end - q == 2:
        r0 = rows[q]
        r1 = rows[q + 1]
        for j in range(N):
            out[j] = (out[j] + w[r0, j]) + w[r1, j]
    elif end - q == 1:
        r0 = rows[q]
        for j in range(N):
            out[j] += w[r0, j]


@njit(cache=True)
def _input_current(w, pre, n_pre, current):
    """Event-driven input current: ``w[pre].sum(axis=0)``, the rows of the spiking pixels added
    one after the other in index order (NumPy's order), four rows per pass over ``current``."""
    N = w.shape[1]
    if N == 1:
        # a [P, 1] block is contiguous along the reduced axis: NumPy sums it pairwise
        vals = np.empty(n_pre)
        for q in range(n_pre):
            vals[q] = w[pre[q], 0]
        current[0] = _pairwise_sum_1d(vals, n_pre)
        return
    _sum_rows(w, pre, 0, n_pre, current)


@njit(cache=True)
def _clip(x, lo, hi):
    """np.clip(x, lo, hi) for one float: minimum(maximum(x, lo), hi) with NumPy's selects."""
    if not x > lo:
        x = lo
    if not x < hi:
        x = hi
    return x


def pairwise_program(n: int) -> np.ndarray:
    """NumPy's pairwise-summation tree over ``n`` items as a postfix program, int64 [K, 2]:
    a row ``(start, length)`` is a leaf block (``length`` <= 128), ``(-1, -1)`` adds the two
    values on top of the stack. (numba cannot cache recursive functions, so the recursion of
    ``pairwise_sum_DOUBLE`` is unrolled here, once per input size.)"""
    prog = []

    def walk(start, m):
        if m <= 128:
            prog.append((start, m))
            return
        m2 = m // 2
        m2 -= m2 % 8
        walk(start, m2)
        walk(start + m2, m - m2)
        prog.append((-1, -1))

    walk(0, n)
    return np.array(prog, dtype=np.int64).reshape(-1, 2)


@borrowing
def _combine8(acc8, out, n):
    """out[c] = a pairwise leaf's eight accumulators acc8[:, c] added in NumPy's order."""
    for c in range(n):
        out[c] = (((acc8[0, c] + acc8[1, c]) + (acc8[2, c] + acc8[3, c]))
                  + ((acc8[4, c] + acc8[5, c]) + (acc8[6, c] + acc8[7, c])))


@borrowing
def _merge_top(stack, top, n):
    """An inner node of the pairwise tree: the two topmost partial sums (rows of ``stack``)
    become their sum; returns the new top."""
    for c in range(n):
        stack[top - 2, c] = stack[top - 2, c] + stack[top - 1, c]
    return top - 1


@njit(cache=True)
def _pairwise_leaf_rows(w, start, n, acc8, out):
    """One leaf of NumPy's pairwise sum (rows start..start+n-1, n <= 128) for every column at
    once, row by row: out[j] = that leaf of |w[:, j]|."""
    N = w.shape[1]
    if n < 8:
        for j in range(N):
            out[j] = 0.0
        for i in range(start, start + n):
            for j in range(N):
                out[j] += abs(w[i, j])
        return
    for m in range(8):
        for j in range(N):
            acc8[m, j] = abs(w[start + m, j])
    i = 8
    stop = n - (n % 8)
    while i < stop:
        for m in range(8):
            b = start + i + m
            for j in range(N):
                acc8[m, j] += abs(w[b, j])
        i += 8
    _combine8(acc8, out, N)
    while i < n:
        for j in range(N):
            out[j] += abs(w[start + i, j])
        i += 1


@njit(cache=True)
def _pairwise_abs_all(w, prog, out):
    """NumPy's pairwise sum of |w[:, j]| for every column at once, in row-major memory order
    (``_pairwise_cols`` without the column list, so that the row loops vectorise)."""
    N = w.shape[1]
    stack = np.empty((prog.shape[0], N))
    acc8 = np.empty((8, N))
    top = 0
    for r in range(prog.shape[0]):
        start = prog[r, 0]
        if start >= 0:
            _pairwise_leaf_rows(w, start, prog[r, 1], acc8, stack[top])
            top += 1
        else:
            top = _merge_top(stack, top, N)
    for j in range(N):
        out[j] = stack[0, j]


@njit(cache=True)
def _lif(v, ref, cur, th, rest, reset, decay, refrac, dt):
    """One neuron's LIF step in the reference's order (``tinysnn_core.builtin.neurons``): leak
    towards rest, add the current unless refractory, threshold, reset. Returns (v, refractory
    count, spiked). Written with selects, so that the loops calling it vectorise."""
    x = ((v - rest) * decay) + rest
    x = x + (cur if ref <= 0.0 else 0.0)
    c = x >= th
    return (reset if c else x), (refrac if c else ref - dt), c


@borrowing
def _neuron_step_float(v, ref, theta, current, s, cross, adaptive, one_spike, learn,
                       rest, reset, thresh, decay, refrac, dt, theta_decay, theta_plus, rand):
    """One step of LIF / AdaptiveLIF (tinysnn_core.builtin.neurons), in the reference's order.

    Writes the emitted spikes into ``s`` (0/1) and their indices, ascending, into ``cross``;
    returns how many were emitted. The update is written with selects (no branches) so that
    LLVM vectorises it; the (rare) spikes are gathered in a second pass."""
    n = v.shape[0]
    nc = 0
    adapt = adaptive and learn
    if adapt:
        for j in range(n):
            theta[j] = theta[j] * theta_decay
    if adaptive:
        for j in range(n):
            v[j], ref[j], c = _lif(v[j], ref[j], current[j], thresh + theta[j], rest, reset,
                                   decay, refrac, dt)
            s[j] = np.int64(c)
            nc += np.int64(c)
    else:
        for j in range(n):
            v[j], ref[j], c = _lif(v[j], ref[j], current[j], thresh, rest, reset, decay, refrac,
                                   dt)
            s[j] = np.int64(c)
            nc += np.int64(c)
    if nc == 0:
        return 0
    q = 0
    for j in range(n):
        if s[j]:
            cross[q] = j
            q += 1
            if adapt:
                theta[j] = theta[j] + theta_plus
    if one_spike and nc > 1:
        win = cross[rand % nc]
        for q in range(nc):
            s[cross[q]] = 0
        s[win] = 1
        cross[0] = win
        nc = 1
    return nc


@njit(cache=True)
def _record_step(rec, t, cross, n_post, v_e, theta_e, x_post, own_trace, trace_decay):
    """The monitor (``tinysnn_core.monitors``) at the end of step ``t``: the emitted spikes into
    ``raster`` [T, N], the chosen neurons' v, theta and trace into ``vals`` [3, T, K]; without
    the rule's trace (``own_trace`` False) the monitor's own ``mtr`` [K], as the NumPy
    backend's monitor keeps it."""
    raster, vals, idx, mtr = rec
    for q in range(n_post):
        raster[t, cross[q]] = 1
    for k in range(idx.shape[0]):
        j = idx[k]
        vals[0, t, k] = v_e[j]
        vals[1, t, k] = theta_e[j]
        if own_trace:
            vals[2, t, k] = x_post[j]
        else:
            x = mtr[k] * trace_decay
            if raster[t, j]:
                x = 1.0
            mtr[k] = x
            vals[2, t, k] = x


@njit(cache=True)
def _steps_float(w, theta_e, learn, retry, skey, n_nz, fp, ip, qp, ops, wf, wi, wp, x_pre, acc,
                 current, rec):
    """The time loop of one presentation, up to (not including) the rule's end_sample.

    ``rec``: None (numba prunes the recording branch at compile time: the code is that of a
    loop without it), or the monitor's arrays ``(raster, vals, idx, mtr)`` (``_record_step``).

    ``qp``: simulated fixed point (``Q_*`` / ``QF_*``); with no group on, plain float64. The
    groups are rounded where the reference rounds them: the potentials after each layer's step,
    theta after the excitatory step and the traces after their update (both while learning), the
    weights after every clamped STDP write.

    ``current`` [N]: the input current row (``current_row``: float64, or float32 when the
    currents are summed in float32).

    Leaves the excitatory spike counts in wi[WI_COUNTS] (and, for tinysnn-stdp, the trace sums
    in ``acc`` and their counts in wi[WI_CNT]); returns the presentation's excitatory spikes."""
    n_in, N = w.shape
    T = ip[IP_T]
    has_inh = ip[IP_HAS_INH] != 0
    e_adaptive = ip[IP_E_ADAPTIVE] != 0
    e_one = ip[IP_E_ONE_SPIKE] != 0
    i_adaptive = ip[IP_I_ADAPTIVE] != 0
    i_one = ip[IP_I_ONE_SPIKE] != 0
    rule = ip[IP_RULE]
    needs_post = ip[IP_NEEDS_POST] != 0
    dt = fp[FP_DT]
    w_lat = fp[FP_W_LAT]
    w_exc_inh = fp[FP_W_EXC_INH]
    wmin = fp[FP_WMIN]
    wmax = fp[FP_WMAX]
    trace_decay = fp[FP_TRACE_DECAY]
    nu_pre = fp[FP_NU_PRE]
    nu_post = fp[FP_NU_POST]
    q_pot = qp[Q_POTENTIAL, QF_ON] != 0.0
    q_theta = learn and e_adaptive and qp[Q_THETA, QF_ON] != 0.0
    q_tr = learn and qp[Q_TRACES, QF_ON] != 0.0
    q_w = learn and qp[Q_WEIGHTS, QF_ON] != 0.0
    site = np.uint64(0)

    v_e = wf[WF_V_E]
    ref_e = wf[WF_REF_E]
    v_i = wf[WF_V_I]
    ref_i = wf[WF_REF_I]
    theta_i = wf[WF_THETA_I]
    cur_inh = wf[WF_CUR_INH]
    x_post = wf[WF_X_POST]
    dep = wf[WF_SUMS]           # nu_pre * x_post of the step (the sums row is free until the end)
    src_prev = wi[WI_SRC_PREV]
    e_prev = wi[WI_E_PREV]
    s_e = wi[WI_S_E]
    s_i = wi[WI_S_I]
    cross = wi[WI_CROSS]
    cross_i = wi[WI_CROSS_I]
    cnt = wi[WI_CNT]
    dirty = wi[WI_DIRTY]
    counts = wi[WI_COUNTS]
    pre = wp[WP_PRE]
    nz = wp[WP_NZ]

    # fresh state of the presentation (init_state); theta_e persists (it is net.theta)
    for j in range(N):
        v_e[j] = fp[FP_E_REST]
        ref_e[j] = 0.0
        v_i[j] = fp[FP_I_REST]
        ref_i[j] = 0.0
        theta_i[j] = 0.0
        x_post[j] = 0.0
        src_prev[j] = 0
        e_prev[j] = 0
        cur_inh[j] = 0.0
        cnt[j] = 0
        dirty[j] = 0
        counts[j] = 0
    for i in range(n_in):
        x_pre[i] = 0.0

    n_src = 0
    n_e_prev = 0
    inh_zero = True
    n_input = 0
    n_exc = 0
    n_inh = 0
    syn = 0
    lat = 0
    trace = 0
    stdp = 0
    accum = 0
    for t in range(T):
        sk = _step_key(skey, retry * T + t)
        n_pre = _draw_inputs(sk, n_nz, wp)
        rand = _winner_word(sk)
        n_input += n_pre

        _input_current(w, pre, n_pre, current)
        syn += n_pre * N
        if n_src:
            for j in range(N):
                current[j] += w_lat * np.float64(n_src - src_prev[j])
            lat += n_src * (N - 1)
        if has_inh:
            if n_e_prev:
                for j in range(N):
                    cur_inh[j] = w_exc_inh * np.float64(e_prev[j])
                inh_zero = False
            elif not inh_zero:
                for j in range(N):
                    cur_inh[j] = 0.0
                inh_zero = True
            lat += n_e_prev

        n_post = _neuron_step_float(
            v_e, ref_e, theta_e, current, s_e, cross, e_adaptive, e_one, learn,
            fp[FP_E_REST], fp[FP_E_RESET], fp[FP_E_THRESH], fp[FP_E_DECAY], fp[FP_E_REFRAC], dt,
            fp[FP_E_THETA_DECAY], fp[FP_E_THETA_PLUS], rand)
        if q_pot:
            _q_vec(v_e, N, fp[FP_E_REST], qp, Q_POTENTIAL, _site_key(sk, SALT_POT_E))
        if q_theta:
            _q_vec(theta_e, N, 0.0, qp, Q_THETA, _site_key(sk, SALT_THETA))
        if has_inh:
            n_si = _neuron_step_float(
                v_i, ref_i, theta_i, cur_inh, s_i, cross_i, i_adaptive, i_one, learn,
                fp[FP_I_REST], fp[FP_I_RESET], fp[FP_I_THRESH], fp[FP_I_DECAY],
                fp[FP_I_REFRAC], dt, fp[FP_I_THETA_DECAY], fp[FP_I_THETA_PLUS], 0)
            if q_pot:
                _q_vec(v_i, N, fp[FP_I_REST], qp, Q_POTENTIAL, _site_key(sk, SALT_POT_I))
            n_inh += n_si
            src_prev, s_i = s_i, src_prev       # this step's spikes become the previous ones
            e_prev, s_e = s_e, e_prev
            n_src = n_si
            n_e_prev = n_post
        else:
            src_prev, s_e = s_e, src_prev
            n_src = n_post
        for q in range(n_post):
            counts[cross[q]] += 1
        n_exc += n_post

        if learn:
            for k in range(n_nz):
                x_pre[nz[k]] *= trace_decay
            for q in range(n_pre):
                x_pre[pre[q]] = 1.0
            trace += n_in
            if needs_post:
                for j in range(N):
                    x_post[j] *= trace_decay
                for q in range(n_post):
                    x_post[cross[q]] = 1.0
                trace += N
            if q_tr:
                # the zero pixels' traces stay exactly 0, which every rounding keeps at 0
                site = _site_key(sk, SALT_TR_PRE)
                for k in range(n_nz):
                    i = nz[k]
                    x_pre[i] = _q(x_pre[i], 0.0, qp, Q_TRACES, site, i)
                if needs_post:
                    _q_vec(x_post, N, 0.0, qp, Q_TRACES, _site_key(sk, SALT_TR_POST))
            if rule == RULE_TINYSNN:
                accum += n_post * n_in
                for q in range(n_post):
                    j = cross[q]
                    if cnt[j] == 0:
                        for k in range(n_nz):
                            acc[j, k] = x_pre[nz[k]]
                    else:
                        for k in range(n_nz):
                            acc[j, k] += x_pre[nz[k]]
                    cnt[j] += 1
            else:
                if n_pre and nu_pre != 0.0:
                    for j in range(N):
                        dep[j] = nu_pre * x_post[j]
                    for q in range(n_pre):
                        row = pre[q]
                        if rule == RULE_POSTPRE:
                            for j in range(N):
                                w[row, j] = _clip(w[row, j] - dep[j], wmin, wmax)
                        else:
                            for j in range(N):
                                wv = w[row, j]
                                w[row, j] = _clip(wv - dep[j] * (wv - wmin), wmin, wmax)
                        if q_w:     # store_rows: clamp, then the weights' grid
                            site = _site_key(sk, SALT_W_ROWS)
                            for j in range(N):
                                w[row, j] = _q(w[row, j], 0.0, qp, Q_WEIGHTS, site, row * N + j)
                    for j in range(N):
                        dirty[j] = 1
                    stdp += n_pre * N
                if n_post and nu_post != 0.0:
                    if q_w:
                        site = _site_key(sk, SALT_W_COLS)
                    for i in range(n_in):
                        dp = nu_post * x_pre[i]
                        for q in range(n_post):
                            j = cross[q]
                            wv = w[i, j]
                            if rule == RULE_POSTPRE:
                                x = _clip(wv + dp, wmin, wmax)
                            else:
                                x = _clip(wv + dp * (wmax - wv), wmin, wmax)
                            if q_w:     # store_cols: clamp, then the weights' grid
                                x = _q(x, 0.0, qp, Q_WEIGHTS, site, i * N + j)
                            w[i, j] = x
                    for q in range(n_post):
                        dirty[cross[q]] = 1
                    stdp += n_post * n_in
        if rec is not None:
            _record_step(rec, t, cross, n_post, v_e, theta_e, x_post, learn and needs_post,
                         trace_decay)

    ops[OP_PRESENTATIONS] += 1
    ops[OP_TIME_STEPS] += T
    ops[OP_NEURON_EXC] += T * N
    if has_inh:
        ops[OP_NEURON_INH] += T * N
        ops[OP_INH_SPIKES] += n_inh
    ops[OP_INPUT_SPIKES] += n_input
    ops[OP_EXC_SPIKES] += n_exc
    ops[OP_SYNAPTIC] += syn
    ops[OP_LATERAL] += lat
    ops[OP_TRACE] += trace
    ops[OP_STDP] += stdp
    ops[OP_ACCUM] += accum
    return n_exc


@njit(cache=True)
def _tinysnn_cols(ip, wi):
    """Columns that pass tinysnn-stdp's spurious-update filter, ascending, into wi[WI_COLS]."""
    N = wi.shape[1]
    cnt = wi[WI_CNT]
    cols = wi[WI_COLS]
    n_cols = 0
    for j in range(N):
        if cnt[j] > 0 and cnt[j] >= ip[IP_MIN_POST]:
            cols[n_cols] = j
            n_cols += 1
    return n_cols


# what ``_pairwise_cols`` does to a weight before it sums it
COL_READ, COL_SCALE, COL_TINYSNN = 0, 1, 2


@borrowing
def _col_weight(w, i, j, c, mode, scale, wmin, wmax, tacc, pos, cnt, tp):
    """One weight of ``_pairwise_cols``, w[i, j] of its c-th column: first (``mode``) read, or
    made ``w * scale[c]`` (the reference's normalisation product), or given tinysnn-stdp's
    end-of-sample update (``_end_float``'s, without mu and quantization: ``tp`` = k, nu_post,
    x_tar, weight decay, 1 - weight decay; ``tacc``, ``pos``, ``cnt`` its trace sums, pixel
    places and spike counts), stored. Returns the stored weight's magnitude (float64), whether
    the value is outside [wmin, wmax], and (scaling) whether the stored weight differs from the
    old one."""
    x = w[i, j]
    changed = False
    if mode == COL_SCALE:
        old = x
        x = x * scale[c]
        w[i, j] = x
        changed = w[i, j] != old
    elif mode == COL_TINYSNN:
        p = pos[i]
        a = tacc[j, p] if p >= 0 else 0.0
        x = x + tp[1] * (tp[0] * a - np.float64(cnt[j]) * tp[2])
        if tp[3] != 0.0:
            x *= tp[4]
        x = _clip(x, wmin, wmax)
        w[i, j] = x
    return abs(np.float64(w[i, j])), not ((x >= wmin) & (x <= wmax)), changed


@borrowing(inline=True)     # as a call, its tuple return costs diehl-cook 11%
def _col_weights8(w, i, j, c, mode, scale, wmin, wmax, tacc, pos, cnt, tp, acc8):
    """Rows i .. i+7 of ``_pairwise_cols``'s c-th column (``_col_weight`` each): the eight
    accumulators ``acc8`` (a tuple, so that they stay in registers) each plus its row's
    magnitude, and whether any value was out of range / any product changed a weight."""
    b0, o0, g0 = _col_weight(w, i, j, c, mode, scale, wmin, wmax, tacc, pos, cnt, tp)
    b1, o1, g1 = _col_weight(w, i + 1, j, c, mode, scale, wmin, wmax, tacc, pos, cnt, tp)
    b2, o2, g2 = _col_weight(w, i + 2, j, c, mode, scale, wmin, wmax, tacc, pos, cnt, tp)
    b3, o3, g3 = _col_weight(w, i + 3, j, c, mode, scale, wmin, wmax, tacc, pos, cnt, tp)
    b4, o4, g4 = _col_weight(w, i + 4, j, c, mode, scale, wmin, wmax, tacc, pos, cnt, tp)
    b5, o5, g5 = _col_weight(w, i + 5, j, c, mode, scale, wmin, wmax, tacc, pos, cnt, tp)
    b6, o6, g6 = _col_weight(w, i + 6, j, c, mode, scale, wmin, wmax, tacc, pos, cnt, tp)
    b7, o7, g7 = _col_weight(w, i + 7, j, c, mode, scale, wmin, wmax, tacc, pos, cnt, tp)
    return ((acc8[0] + b0, acc8[1] + b1, acc8[2] + b2, acc8[3] + b3,
             acc8[4] + b4, acc8[5] + b5, acc8[6] + b6, acc8[7] + b7),
            o0 | o1 | o2 | o3 | o4 | o5 | o6 | o7, g0 | g1 | g2 | g3 | g4 | g5 | g6 | g7)


@njit(cache=True, boundscheck=False)
def _pairwise_cols(w, cols, n, mode, scale, wmin, wmax, prog, out, oorc, chg, tacc, pos, cnt,
                   tp):
    """out[c] = NumPy's pairwise sum of |w[:, cols[c]]| (the tree of ``pairwise_program``,
    accumulated in float64), each weight first changed as ``mode`` says (``_col_weight``);
    oorc[c]: whether a value is outside [wmin, wmax]; chg[c]: whether a product changed a
    weight."""
    _pairwise_cols_in(w, cols, n, mode, scale, wmin, wmax, prog, out, oorc, chg, tacc, pos, cnt,
                      tp, np.empty(prog.shape[0]))


@borrowing
def _pairwise_cols_in(w, cols, n, mode, scale, wmin, wmax, prog, out, oorc, chg, tacc, pos, cnt,
                      tp, stack):
    """``_pairwise_cols`` column by column, as NumPy sums a column: a leaf of m >= 8 rows in
    eight accumulators (row k into the (k % 8)-th; NumPy starts them at the first eight
    magnitudes, which is 0.0 + each) combined pairwise, then its last m % 8 rows added one by
    one; a leaf of fewer rows summed from 0.0; the leaves' sums merged on ``stack``
    [len(prog)] as the program says. The accumulators stay in registers, where a row-major
    pass over every column would load and store them for each weight."""
    for c in range(n):
        j = cols[c]
        oor = False
        chg_c = False
        top = 0
        for r in range(prog.shape[0]):
            start = prog[r, 0]
            if start < 0:       # an inner node: the two topmost sums become their sum
                stack[top - 2] = stack[top - 2] + stack[top - 1]
                top -= 1
                continue
            m = prog[r, 1]
            stop = m - (m % 8) if m >= 8 else 0     # rows in the eight accumulators
            res = 0.0
            if stop:
                acc8 = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)     # 0.0 + |w| == |w|
                for i in range(start, start + stop, 8):
                    acc8, o, g = _col_weights8(w, i, j, c, mode, scale, wmin, wmax, tacc, pos,
                                               cnt, tp, acc8)
                    oor |= o
                    chg_c |= g
                res = (((acc8[0] + acc8[1]) + (acc8[2] + acc8[3]))
                       + ((acc8[4] + acc8[5]) + (acc8[6] + acc8[7])))
            for i in range(start + stop, start + m):
                a, o, g = _col_weight(w, i, j, c, mode, scale, wmin, wmax, tacc, pos, cnt, tp)
                res = res + a
                oor |= o
                chg_c |= g
            stack[top] = res
            top += 1
        out[c] = stack[0]
        oorc[c] = np.int64(oor)
        chg[c] = np.int64(chg_c)


@njit(cache=True)
def _cols_sums(w, cols, n, mode, scale, wmin, wmax, prog, out, oorc, chg):
    """``_pairwise_cols`` without tinysnn-stdp's arguments."""
    no_i = np.zeros(0, dtype=np.int64)
    _pairwise_cols(w, cols, n, mode, scale, wmin, wmax, prog, out, oorc, chg, np.zeros((0, 0)),
                   no_i, no_i, np.zeros(0))


# _normalize_known's state of a column: its sum unknown / known / known, and its last
# normalisation left every weight as it was
COL_UNKNOWN, COL_KNOWN, COL_STABLE = 0, 1, 2


@njit(cache=True, boundscheck=False)
def _normalize_known(w, dirty, norm, wmin, wmax, prog, oor, known, nsum, cols, tmp):
    """The reference's normalisation of the dirty columns (``w[:, j] *= norm / sum|w[:, j]|``,
    a zero sum counting as 1) without the work that changes nothing. ``known[j]``
    (``COL_*``; the caller sets COL_UNKNOWN when it writes the column): whether ``nsum[j]`` is
    the pairwise sum of column j's present weights, and whether its last normalisation left
    every weight as it was. A dirty column without a known sum is summed (one pass; ``oor``
    from its weights). A stable column is skipped: the same weights give the same sum, scale
    and products again. Otherwise a scale of exactly 1.0 changes nothing (x * 1.0 == x: about
    93% of diehl-cook's columns per sample); any other scale is applied, and the next sum
    taken in the same pass, so that an unwritten column costs one pass per sample, not two;
    if no product changed a weight (float32 storage rounds a scale near 1 away) the column is
    stable. Returns the number of dirty columns (the reference normalises them all)."""
    N = w.shape[1]
    oorc = np.zeros(N, dtype=np.int64)
    chg = np.zeros(N, dtype=np.int64)
    scale = np.empty(N)
    n_dirty = 0
    n = 0
    for j in range(N):
        if dirty[j]:
            n_dirty += 1
            if known[j] == COL_UNKNOWN:
                cols[n] = j
                n += 1
    if n:
        _cols_sums(w, cols, n, COL_READ, scale, wmin, wmax, prog, tmp, oorc, chg)
        for c in range(n):
            j = cols[c]
            nsum[j] = tmp[c]
            known[j] = COL_KNOWN
            oor[j] = oorc[c]
    n = 0
    for j in range(N):
        if dirty[j] and known[j] != COL_STABLE:
            s = nsum[j]
            if s == 0.0:
                s = 1.0
            sc = norm / s
            if sc == 1.0:
                known[j] = COL_STABLE
            else:               # NaN too
                cols[n] = j
                scale[n] = sc
                n += 1
    if n:
        _cols_sums(w, cols, n, COL_SCALE, scale, wmin, wmax, prog, tmp, oorc, chg)
        for c in range(n):
            j = cols[c]
            nsum[j] = tmp[c]
            oor[j] = oorc[c]
            # a positive scale keeps every sign (of zeros too), so "no weight compares
            # different" is "no weight changed"
            stable = chg[c] == 0 and scale[c] > 0.0
            known[j] = COL_STABLE if stable else COL_KNOWN
    return n_dirty


@njit(cache=True)
def _end_float(w, n_exc, n_nz, fp, ip, qp, skey, retry, ops, wf, wi, wp, acc, powtab, prog,
               oor, known, nsum):
    """The rule's end_sample and the normalisation of the dirty columns (learning only).

    With the weights group quantized (``qp``), the rule's clamped writes and the normalised
    columns are put on the weights' grid, as ``LearningContext.store_cols`` and the reference's
    normalisation do (stochastic rounding keyed by the presentation's last step key).

    ``powtab`` [n_in, n_cols]: tinysnn-stdp's weight-dependence factors when mu != 0 (computed
    by NumPy, see backend.py); unused otherwise. ``prog``: ``pairwise_program(n_in)``.
    ``oor`` int64 [N] (or [0]: not kept): set to whether a normalised column now has a weight
    outside [wmin, wmax] (or NaN); the fused learning path (``_present_train``) writes every
    weight of such a column, where it otherwise skips the writes that change nothing.
    ``known`` int64 [N], ``nsum`` [N] (kept with ``oor`` by the fused path; else [0]): the
    normalisation through ``_normalize_known``, which skips the work that changes nothing."""
    n_in, N = w.shape
    wmin = fp[FP_WMIN]
    wmax = fp[FP_WMAX]
    dirty = wi[WI_DIRTY]
    cols = wi[WI_COLS]
    q_w = qp[Q_WEIGHTS, QF_ON] != 0.0
    sk_end = _step_key(skey, (retry + 1) * ip[IP_T] - 1)
    if ip[IP_RULE] == RULE_TINYSNN:
        n_cols = _tinysnn_cols(ip, wi)
        if n_cols:
            if ip[IP_ADAPT_POT] != 0:
                k = _clip(fp[FP_TARGET] / np.float64(max(1, n_exc)), fp[FP_K_MIN], fp[FP_K_MAX])
            else:
                k = 1.0
            nu_post = fp[FP_NU_POST]
            x_tar = fp[FP_X_TAR]
            use_mu = fp[FP_MU] != 0.0
            wdecay = fp[FP_WEIGHT_DECAY]
            keep = 1.0 - wdecay
            cnt = wi[WI_CNT]
            pos = wp[WP_POS]
            fuse = (ip[IP_NORMALIZE] != 0 and not use_mu and not q_w and oor.shape[0] == 0)
            for j in range(N):
                fuse = fuse and dirty[j] == 0
            if fuse:
                # the update and the normalisation's sums of these columns in one pass, then
                # the normalisation's products: the reference's operations, one pass fewer
                sums = wf[WF_SUMS]
                oorc = np.zeros(n_cols, dtype=np.int64)
                tp = np.array([k, nu_post, x_tar, wdecay, keep])
                _pairwise_cols(w, cols, n_cols, COL_TINYSNN, sums, wmin, wmax, prog, sums, oorc,
                               oorc, acc, pos, cnt, tp)
                norm = fp[FP_NORM]
                for c in range(n_cols):
                    s = sums[c]
                    if s == 0.0:
                        s = 1.0
                    sums[c] = norm / s
                for i in range(n_in):
                    for c in range(n_cols):
                        w[i, cols[c]] *= sums[c]
                ops[OP_STDP] += n_cols * n_in
                ops[OP_NORM] += 2 * n_in * n_cols
                return
            site = _site_key(sk_end, SALT_W_END)
            for i in range(n_in):
                p = pos[i]
                for c in range(n_cols):
                    j = cols[c]
                    a = acc[j, p] if p >= 0 else 0.0
                    dw = nu_post * (k * a - np.float64(cnt[j]) * x_tar)
                    if use_mu:
                        dw *= powtab[i, c]
                    x = w[i, j] + dw
                    if wdecay != 0.0:
                        x *= keep
                    x = _clip(x, wmin, wmax)
                    if q_w:
                        x = _q(x, 0.0, qp, Q_WEIGHTS, site, i * N + j)
                    w[i, j] = x
            for c in range(n_cols):
                dirty[cols[c]] = 1
            ops[OP_STDP] += n_cols * n_in
    if ip[IP_NORMALIZE] != 0 and known.shape[0] == N and not q_w:
        n_dirty = _normalize_known(w, dirty, fp[FP_NORM], wmin, wmax, prog, oor, known, nsum,
                                   cols, wf[WF_SUMS])
        ops[OP_NORM] += 2 * n_in * n_dirty
    elif ip[IP_NORMALIZE] != 0:
        norm = fp[FP_NORM]
        sums = wf[WF_SUMS]
        n_cols = 0
        for j in range(N):
            if dirty[j]:
                cols[n_cols] = j
                n_cols += 1
        if n_cols == N:
            # every column (postpre after any input spike): row-major, vectorised
            _pairwise_abs_all(w, prog, sums)
            for j in range(N):
                s = sums[j]
                if s == 0.0:
                    s = 1.0
                sums[j] = norm / s
            if oor.shape[0] == N:
                for j in range(N):
                    oor[j] = 0
                for i in range(n_in):
                    for j in range(N):
                        x = w[i, j] * sums[j]
                        w[i, j] = x
                        oor[j] |= np.int64(not ((x >= wmin) & (x <= wmax)))
            else:
                for i in range(n_in):
                    for j in range(N):
                        w[i, j] *= sums[j]
            if q_w:
                site = _site_key(sk_end, SALT_W_NORM)
                for i in range(n_in):
                    for j in range(N):
                        w[i, j] = _q(w[i, j], 0.0, qp, Q_WEIGHTS, site, i * N + j)
        elif n_cols:
            # the columns' sums in one row-major pass, in float64 in both precisions
            _cols_sums(w, cols, n_cols, COL_READ, sums, wmin, wmax, prog, sums,
                       np.zeros(n_cols, dtype=np.int64), np.zeros(n_cols, dtype=np.int64))
            for c in range(n_cols):
                s = sums[c]
                if s == 0.0:
                    s = 1.0
                sums[c] = norm / s
            for i in range(n_in):
                for c in range(n_cols):
                    w[i, cols[c]] *= sums[c]
            if oor.shape[0] == N:
                for c in range(n_cols):
                    oor[cols[c]] = 0
                for i in range(n_in):
                    for c in range(n_cols):
                        x = w[i, cols[c]]
                        oor[cols[c]] |= np.int64(not ((x >= wmin) & (x <= wmax)))
            if q_w:
                site = _site_key(sk_end, SALT_W_NORM)
                for i in range(n_in):
                    for c in range(n_cols):
                        j = cols[c]
                        w[i, j] = _q(w[i, j], 0.0, qp, Q_WEIGHTS, site, i * N + j)
        ops[OP_NORM] += 2 * n_in * n_cols


@njit(cache=True)
def workspace(n_in, N, acc_cols):
    """Work arrays of one presentation: float rows, int rows, input rows, x_pre, acc."""
    return (np.zeros((N_WF, N)), np.zeros((N_WI, N), dtype=WORK_INT),
            np.zeros((N_WP, n_in), dtype=np.int64), np.zeros(n_in),
            np.zeros((N if acc_cols else 0, acc_cols)))


def _in_current_dtype(cur, x):
    """``x`` (float64) rounded to ``cur``'s dtype and back: the identity for a float64 current
    row, the nearest float32 for a float32 one (the value a write into the row would keep)."""
    raise NotImplementedError("compiled only (numba overload)")


@overload(_in_current_dtype)
def _in_current_dtype_impl(cur, x):
    if cur.dtype == types.float32:
        return lambda cur, x: np.float64(np.float32(x))
    return lambda cur, x: x


@njit(cache=True)
def current_row(N, cur_proto):
    """The input current row of one presentation, in ``cur_proto``'s dtype: float64 (the
    reference's sums) or float32 (the rows summed in float32, ``precision = "float32-currents"``).
    Every kernel that sums input rows takes such a prototype (shape [0]) and sums in its dtype."""
    return np.zeros(N, dtype=cur_proto.dtype)


@njit(cache=True)
def _run_sample(w, theta, image, skey, rate_units, learn, fp, ip, qp, ops, wf, wi, wp, x_pre,
                acc, cur, prog, counts_out):
    """All presentations of one sample (retry rule); the last presentation's counts."""
    no_pow = np.zeros((0, 0))
    n_pres = ip[IP_MAX_RETRIES] + 1
    for retry in range(n_pres):
        n_nz = _setup_inputs(image, rate_units[retry], wp)
        n_exc = _steps_float(w, theta, learn, retry, skey, n_nz, fp, ip, qp, ops, wf, wi, wp,
                             x_pre, acc, cur, None)
        if learn:
            _end_float(w, n_exc, n_nz, fp, ip, qp, skey, retry, ops, wf, wi, wp, acc, no_pow,
                       prog, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                       np.zeros(0))
        if n_exc >= ip[IP_RETRY_MIN]:
            break
    ops[OP_SAMPLES] += 1
    for j in range(w.shape[1]):
        counts_out[j] = wi[WI_COUNTS, j]


@njit(cache=True)
def train_batch(w, theta, images, skeys, rate_units, fp, ip, qp, prog, ops, counts, cur_proto):
    """Learning: the samples one after the other, updating ``w`` and ``theta`` in place."""
    n_in, N = w.shape
    acc_cols = n_in if ip[IP_RULE] == RULE_TINYSNN else 0
    wf, wi, wp, x_pre, acc = workspace(n_in, N, acc_cols)
    cur = current_row(N, cur_proto)
    for b in range(images.shape[0]):
        _run_sample(w, theta, images[b], np.uint64(skeys[b]), rate_units, True, fp, ip, qp, ops,
                    wf, wi, wp, x_pre, acc, cur, prog, counts[b])


@njit(cache=True)
def record_sample(w, theta, image, skey, rate_units, learn, fp, ip, qp, prog, ops, counts_out,
                  raster, vals, idx, mtr, cur_proto):
    """``_run_sample`` of one sample with the monitor on: presentation ``r``'s spikes into
    ``raster[r]`` [T, N] (int8) and the chosen neurons ``idx``'s v, theta, trace into
    ``vals[r]`` [3, T, K]. Returns the number of presentations. (The fast paths never come
    here: they pass ``rec = None``.)"""
    n_in, N = w.shape
    acc_cols = n_in if (learn and ip[IP_RULE] == RULE_TINYSNN) else 0
    wf, wi, wp, x_pre, acc = workspace(n_in, N, acc_cols)
    cur = current_row(N, cur_proto)
    no_pow = np.zeros((0, 0))
    sk = np.uint64(skey)
    done = 0
    for retry in range(ip[IP_MAX_RETRIES] + 1):
        for k in range(mtr.shape[0]):
            mtr[k] = 0.0
        n_nz = _setup_inputs(image, rate_units[retry], wp)
        n_exc = _steps_float(w, theta, learn, retry, sk, n_nz, fp, ip, qp, ops, wf, wi, wp,
                             x_pre, acc, cur, (raster[retry], vals[retry], idx, mtr))
        if learn:
            _end_float(w, n_exc, n_nz, fp, ip, qp, sk, retry, ops, wf, wi, wp, acc, no_pow, prog,
                       np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))
        done += 1
        if n_exc >= ip[IP_RETRY_MIN]:
            break
    ops[OP_SAMPLES] += 1
    for j in range(N):
        counts_out[j] = wi[WI_COUNTS, j]
    return done


@njit(cache=True, parallel=True)
def infer_batch(w, theta, images, skeys, rate_units, fp, ip, qp, ops_per_sample, counts,
                cur_proto):
    """Inference: weights and thresholds are read-only, so the samples run in parallel."""
    n_in, N = w.shape
    no_prog = np.zeros((0, 2), dtype=np.int64)
    for b in prange(images.shape[0]):
        wf, wi, wp, x_pre, acc = workspace(n_in, N, 0)
        cur = current_row(N, cur_proto)
        _run_sample(w, theta, images[b], np.uint64(skeys[b]), rate_units, False, fp, ip, qp,
                    ops_per_sample[b], wf, wi, wp, x_pre, acc, cur, no_prog, counts[b])


# -- entry points for the presentation-by-presentation path (tinysnn-stdp with mu != 0) ----------
@njit(cache=True)
def present_steps(w, theta, image, skey, rate_unit, retry, fp, ip, qp, ops, wf, wi, wp, x_pre,
                  acc, cur, rec):
    """Inputs and time loop of one learning presentation; returns (excitatory spikes, n_nz).
    ``rec``: None, or the monitor's arrays of this presentation (``_steps_float``)."""
    n_nz = _setup_inputs(image, rate_unit, wp)
    n_exc = _steps_float(w, theta, True, retry, np.uint64(skey), n_nz, fp, ip, qp, ops, wf, wi,
                         wp, x_pre, acc, cur, rec)
    return n_exc, n_nz


@njit(cache=True)
def tinysnn_cols(ip, wi):
    n = _tinysnn_cols(ip, wi)
    return wi[WI_COLS, :n].copy()


@njit(cache=True)
def present_end(w, n_exc, n_nz, fp, ip, qp, skey, retry, ops, wf, wi, wp, acc, powtab, prog):
    _end_float(w, n_exc, n_nz, fp, ip, qp, np.uint64(skey), retry, ops, wf, wi, wp, acc, powtab,
               prog, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))




# -- integer mode: tinysnn_core.intsim (docs/fixed-point.md) on integer codes --------------------
# per-layer integer parameters (lp[LAYER, FIELD], int64); LAYER 0: excitatory, 1: inhibitory
(LP_V_FRAC, LP_U_MIN, LP_U_MAX, LP_DECAY, LP_DECAY_FRAC, LP_BIAS, LP_RESET, LP_REFRAC,
 LP_ONE_SPIKE) = range(9)
N_LP = 9
# model-wide integer parameters (mp[FIELD], int64)
(MP_T, MP_W_FRAC, MP_LATERAL, MP_EXC_TO_INH, MP_HAS_INH, MP_RETRY_MIN, MP_N_CLASSES,
 MP_EXIT_MARGIN) = range(8)
N_MP = 8


@njit(cache=True)
def _lif_int(u, ref, cur, th, decay, bias, fd, umin, umax, reset, refrac):
    """One neuron's integer step (``intsim._layer_step``): leak by ``mul_shift``, add the current
    unless refractory, saturate, threshold, reset. Returns (u, refractory count, spiked)."""
    x = (u * decay + bias) >> fd
    x = x + (cur if ref <= 0 else 0)
    x = umin if x < umin else x
    x = umax if x > umax else x
    c = x >= th
    return (reset if c else x), (refrac if c else ref - 1), c


@borrowing
def _layer_step_int(u, ref, cur, thresh, s, cross, lp, layer, rand):
    """``intsim._layer_step``: leak (``mul_shift``), add the current unless refractory,
    saturate, threshold, reset, one-spike winner. Spikes into ``s`` (0/1), their indices into
    ``cross``; returns how many were emitted."""
    n = u.shape[0]
    decay = lp[layer, LP_DECAY]
    fd = lp[layer, LP_DECAY_FRAC]
    bias = lp[layer, LP_BIAS]
    umin = lp[layer, LP_U_MIN]
    umax = lp[layer, LP_U_MAX]
    reset = lp[layer, LP_RESET]
    refrac = lp[layer, LP_REFRAC]
    nc = 0
    for j in range(n):
        u[j], ref[j], c = _lif_int(u[j], ref[j], cur[j], thresh[j], decay, bias, fd, umin, umax,
                                   reset, refrac)
        s[j] = np.int64(c)
        nc += np.int64(c)
    if nc == 0:
        return 0
    return _gather_spikes(s, nc, cross, lp[layer, LP_ONE_SPIKE] != 0, rand)


@njit(cache=True)
def _classify_int(counts, assignments, sizes, n_classes, sums):
    """``intsim.classify``: all-activity vote by exact cross multiplication (ties: lowest)."""
    for c in range(n_classes):
        sums[c] = 0
    for j in range(counts.shape[0]):
        a = assignments[j]
        if 0 <= a < n_classes:
            sums[a] += counts[j]
    best = 0
    best_sum = 0
    best_n = 1
    for c in range(n_classes):
        n_c = sizes[c]
        s_c = sums[c] if n_c else 0
        n_eff = n_c if n_c else 1
        if s_c * best_n > best_sum * n_eff:
            best = c
            best_sum = s_c
            best_n = n_eff
    return best


# -- batched inference (learn=False and integer mode) --------------------------------------------
# Inference reads the weights only, so the input currents of a presentation depend on its input
# spikes alone: the kernels draw the input spikes of INFER_STEPS steps at once (fmix32 in uint32
# lanes, branch-free, the spiking pixels of every step compacted into one ascending list), add up
# those steps' weight rows (row by row in ascending pixel index from 0, the reference's order;
# integer codes stored as int16 / uint16 and summed in int32 where that is provably exact), then
# run the neurons step by step, the lateral term fused into the excitatory update and the
# thresholds ``thresh + theta`` computed once. The inhibitory layer of diehl-cook is updated
# event-driven: a neuron that has never had input sits exactly at rest (v == rest, refractory
# count <= 0) and stays there, so only the neurons that have received an excitatory spike are
# updated (``_inh_sparse_ok`` / the integer kernel's check say when that is exact). Work buffers
# are allocated once per thread (a prange over the threads, each taking every n_threads-th
# sample). Building the currents column tile by column tile over all steps (to keep a tile of
# the rows in L1) was tried three ways, the last with explicit 128-byte vectors, and was never
# faster in float32 than row by row, which is only 15-30% faster with every row in L1
# (docs/benchmarks.md, "What bounds batched inference here").
U32 = np.uint32
MIX1_32 = np.uint32(0x85EBCA6B)
MIX2_32 = np.uint32(0xC2B2AE35)
INFER_STEPS = 64        # steps whose input spikes and currents are built at once
INFER_STEPS_EXIT = 32   # the same with early exit (the steps drawn past an exit are wasted)
# per-thread integer rows of the inference kernels (ib[tid, ROW, :N])
(IB_SE_A, IB_SE_B, IB_SRC, IB_CROSS, IB_CROSS_I, IB_PLIST, IB_ACT, IB_IN_ACT, IB_COUNTS,
 IB_TMP) = range(10)
N_IB = 10
# per-thread float rows (fb[tid, ROW, :N])
FB_V_E, FB_REF_E, FB_V_I, FB_REF_I, FB_TH_E, FB_CUR_I, FB_THETA_I = range(7)
N_FB = 7


@njit(cache=True, boundscheck=False)
def _setup_inputs_u32(image, rate_unit, nz, thm1, im):
    """The pixels that can spike (non-zero threshold), ascending (``nz``, int32), with
    ``threshold - 1`` as uint32 and their index hashes: ``draw < thr`` (uint64, thr = image *
    rate_unit as the reference computes it) is ``draw <= thr - 1`` for a 32-bit draw, so a
    threshold of 2**32 or more (always spikes) becomes 0xFFFFFFFF and a zero one never spikes
    (left out)."""
    n_in = image.shape[0]
    n_nz = 0
    for i in range(n_in):
        if image[i] != 0:
            thr = np.uint64(np.int64(image[i]) * np.int64(rate_unit))
            if thr == np.uint64(0):
                continue
            nz[n_nz] = i
            thm1[n_nz] = U32(min(thr - np.uint64(1), M32))
            im[n_nz] = U32((np.uint64(i) * INDEX_MUL) & M32)
            n_nz += 1
    return n_nz


@intrinsic
def _cttz32(typingctx, x):
    """The index of the lowest set bit of a non-zero uint32 (LLVM's cttz: one tzcnt)."""
    sig = types.uint32(types.uint32)

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))
    return sig, codegen


def _draw_lanes() -> int:
    """How many pixels at a time the vector draws handle on this host: 16 with AVX-512F
    (``_fire16``, ``vpcompressd``), 8 with AVX2 (``_fire8``, ``vpermd`` by a table of packing
    orders), else 0 (the portable bit masks). Only where numba compiles for this host (no
    ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES``): a named target is a portable cache, so no
    instruction set is guessed for it."""
    from llvmlite import binding as llb
    from numba.core import config

    if config.CPU_NAME or config.CPU_FEATURES:
        return 0
    host = llb.get_host_cpu_features()
    return 16 if host.get("avx512f", False) else 8 if host.get("avx2", False) else 0


DRAW_LANES = _draw_lanes()
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
# _fire8's packing orders: for each 8-bit mask of fired lanes, the lanes' indices in
# ascending order, one per byte (unused bytes 0)
_PACK8 = [sum(lane << (8 * k) for k, lane in enumerate(i for i in range(8) if m >> i & 1))
          for m in range(256)]


def _llvm_fn(builder, name, ret, params):
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, params), name)


def _splat(builder, x, vty):
    """A run-time 32-bit value in all lanes of ``vty``."""
    v = builder.insert_element(ir.Constant(vty, ir.Undefined), x, ir.Constant(_I32, 0))
    mask = ir.Constant(ir.VectorType(_I32, vty.count), None)
    return builder.shuffle_vector(v, ir.Constant(vty, ir.Undefined), mask)


def _lanes(v, vty):
    """A constant in all lanes of ``vty``."""
    return ir.Constant(vty, [ir.Constant(_I32, int(v))] * vty.count)


def _pack8_table(module):
    """_PACK8 as one constant table of the module."""
    name = "tinysnn_pack8"
    if name in module.globals:
        return module.globals[name]
    return cgutils.global_constant(module, name, ir.Constant(ir.ArrayType(_I64, 256), _PACK8))


def _fire_intrinsic(width):
    """The intrinsic that draws ``width`` (16 or 8) pixels at a time, as its docstring says."""
    vty = ir.VectorType(_I32, width)
    mty = ir.VectorType(ir.IntType(1), width)
    suffix = f"v{width}i32"

    def fire(typingctx, s32, im, thm1, nz, k0, lanes, out, n):
        def vec(a, dtype):      # the lanes are read and written as raw 32-bit words
            return (isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C"
                    and a.dtype == dtype)
        if not (vec(im, types.uint32) and vec(thm1, types.uint32) and vec(nz, types.int32)
                and vec(out, types.int32)):
            return None
        sig = types.int64(s32, im, thm1, nz, k0, lanes, out, n)

        def codegen(context, builder, signature, args):
            s32_, im_, thm1_, nz_, k0_, lanes_, out_, n_ = args
            aty = signature.args
            lane = ir.Constant(vty, [ir.Constant(_I32, i) for i in range(width)])
            zero = ir.Constant(vty, None)
            align = ir.Constant(_I32, 4)
            vp = vty.as_pointer()
            mload = _llvm_fn(builder, f"llvm.masked.load.{suffix}.p0", vty, [vp, _I32, mty, vty])
            mstore = _llvm_fn(builder, f"llvm.masked.store.{suffix}.p0", ir.VoidType(),
                              [vty, vp, _I32, mty])
            ctpop = _llvm_fn(builder, "llvm.ctpop.i32", _I32, [_I32])

            def at(i, val, idx):
                data = context.make_array(aty[i])(context, builder, val).data
                return builder.bitcast(builder.gep(data, [idx]), vp)

            live = builder.icmp_unsigned("<", lane, _splat(builder, builder.trunc(lanes_, _I32),
                                                           vty))
            vim = builder.call(mload, [at(1, im_, k0_), align, live, zero])
            vth = builder.call(mload, [at(2, thm1_, k0_), align, live, zero])
            vnz = builder.call(mload, [at(3, nz_, k0_), align, live, zero])
            x = builder.add(_splat(builder, s32_, vty), vim)   # fmix32, as _draw_steps_masks
            x = builder.xor(x, builder.lshr(x, _lanes(16, vty)))
            x = builder.mul(x, _lanes(MIX1, vty))
            x = builder.xor(x, builder.lshr(x, _lanes(13, vty)))
            x = builder.mul(x, _lanes(MIX2, vty))
            x = builder.xor(x, builder.lshr(x, _lanes(16, vty)))
            fired = builder.and_(builder.icmp_unsigned("<=", x, vth), live)
            bits = builder.bitcast(fired, ir.IntType(width))
            if width == 16:     # AVX-512F packs the fired lanes itself
                compress = _llvm_fn(builder, "llvm.x86.avx512.mask.compress.v16i32", vty,
                                    [vty, vty, mty])
                packed = builder.call(compress, [vnz, zero, fired])
            else:               # AVX2: the mask's packing order from the table, then vpermd
                permd = _llvm_fn(builder, "llvm.x86.avx2.permd", vty, [vty, vty])
                order = builder.load(builder.gep(_pack8_table(builder.module),
                                                 [ir.Constant(_I64, 0), builder.zext(bits, _I64)]))
                order = builder.zext(builder.bitcast(order, ir.VectorType(ir.IntType(8), 8)), vty)
                packed = builder.call(permd, [vnz, order])
            cnt = builder.call(ctpop, [builder.zext(bits, _I32)])
            first = builder.icmp_unsigned("<", lane, _splat(builder, cnt, vty))
            dest = at(6, out_, n_)
            if width == 16:
                builder.call(mstore, [packed, dest, align, first])
            else:
                # AMD's vpmaskmovd store is slow (Zen 3: 2.1 against 0.64 ns per pixel and
                # step, about 28 cycles per store): where the array has room, all 8 lanes are
                # stored, and the ones past the fired lanes are left for the next chunk
                nitems = context.make_array(aty[6])(context, builder, out_).nitems
                room = builder.icmp_signed("<=", builder.add(n_, ir.Constant(n_.type, width)),
                                           nitems)
                with builder.if_else(room, likely=True) as (plain, masked):
                    with plain:
                        builder.store(packed, dest).align = 4
                    with masked:
                        builder.call(mstore, [packed, dest, align, first])
            return builder.zext(cnt, _I64)
        return sig, codegen

    store = ("a masked store" if width == 16 else "a plain store of all 8 lanes where ``out`` "
             "has room, so that ``out[n + count:n + 8]`` may change, else a masked one")
    fire.__name__ = fire.__qualname__ = f"_fire{width}"
    fire.__doc__ = f"""The input spikes of ``lanes`` (1..{width}) pixels ``k0 ..`` at the step
    whose 32-bit key is ``s32``: ``fmix32(s32 + im[k]) <= thm1[k]`` (``_draw_steps_masks``'s
    test) in {width} uint32 lanes; the firing pixels' indices ``nz[k]`` (int32) written ascending
    at ``out[n:]``, packed in registers. No lane outside the arrays is read or written (masked
    loads; {store}). Returns how many fired. Needs {"AVX-512F" if width == 16 else "AVX2"}
    (``DRAW_LANES``)."""
    return intrinsic(fire)


_fire16 = _fire_intrinsic(16)
_fire8 = _fire_intrinsic(8)


DRAW_BLOCK = 32         # steps whose spikes one pass of _draw_steps_masks keeps as bit masks
DRAW_SCRATCH = 2 * DRAW_BLOCK   # scratch words after the n_in masks in ``fired``


@borrowing
def _draw_steps_x16(skey, step0, ch, n_nz, nz, thm1, im, fired, lst, off, rnd):
    """``_draw_steps_masks``'s spikes, lists and words, step by step: 16 pixels at a time
    hashed, tested and compacted in vector registers (``_fire16``), so that the work is
    branch-free and in proportion to pixels x steps / 16. ``fired`` is not used."""
    n = 0
    off[0] = 0
    for tt in range(ch):
        sk = _step_key(skey, step0 + tt)
        rnd[tt] = _winner_word(sk)
        s32 = U32(sk)
        for k0 in range(0, n_nz, 16):
            n += _fire16(s32, im, thm1, nz, k0, min(16, n_nz - k0), lst, n)
        off[tt + 1] = n
    return n


@borrowing
def _draw_steps_x8(skey, step0, ch, n_nz, nz, thm1, im, fired, lst, off, rnd):
    """``_draw_steps_x16`` 8 pixels at a time (``_fire8``, AVX2). A copy rather than one
    factory-made function per width: numba's cache missed on such closures in every new process
    (tried), and these kernels are compiled once and cached."""
    n = 0
    off[0] = 0
    for tt in range(ch):
        sk = _step_key(skey, step0 + tt)
        rnd[tt] = _winner_word(sk)
        s32 = U32(sk)
        for k0 in range(0, n_nz, 8):
            n += _fire8(s32, im, thm1, nz, k0, min(8, n_nz - k0), lst, n)
        off[tt + 1] = n
    return n


@borrowing
def _draw_steps_masks(skey, step0, ch, n_nz, nz, thm1, im, fired, lst, off, rnd):
    """Input spikes of ``ch`` consecutive steps (global step index ``step0 + tt``): the spiking
    pixels of step ``tt`` are ``lst[off[tt]:off[tt + 1]]``, ascending; ``rnd[tt]`` the step's
    one-spike random word. Returns the number of input spikes. ``nz``: int32 pixel indices.

    ``fired``: uint32 scratch of n_in + DRAW_SCRATCH words. Blocks of up to 32 steps: the
    hashes of a step (fmix32 in 32-bit lanes, branch-free, vectorised) set that step's bit in
    each pixel's mask and count the step's spikes; the pixels' masks are then walked in
    ascending pixel order, bit by bit (tzcnt), each spike written straight to its step's place
    in ``lst``: work in proportion to the spikes, not to pixels x steps."""
    n_in = fired.shape[0] - DRAW_SCRATCH
    mask = fired[:n_in]
    sk32 = fired[n_in:n_in + DRAW_BLOCK]
    wpos = fired[n_in + DRAW_BLOCK:]
    n = 0
    off[0] = 0
    for b0 in range(0, ch, DRAW_BLOCK):
        nb = min(DRAW_BLOCK, ch - b0)
        for tt in range(nb):
            sk = _step_key(skey, step0 + b0 + tt)
            rnd[b0 + tt] = _winner_word(sk)
            sk32[tt] = U32(sk)
        for k in range(n_nz):
            mask[k] = U32(0)
        for tt in range(nb):
            s32 = sk32[tt]
            bit = U32(1) << U32(tt)
            c = 0
            for k in range(n_nz):
                x = U32(s32 + im[k])
                x = U32(x ^ (x >> U32(16)))
                x = U32(x * MIX1_32)
                x = U32(x ^ (x >> U32(13)))
                x = U32(x * MIX2_32)
                x = U32(x ^ (x >> U32(16)))
                f = x <= thm1[k]
                mask[k] |= bit if f else U32(0)
                c += np.int64(f)
            wpos[tt] = U32(n)        # where step tt's list starts
            n += c
            off[b0 + tt + 1] = n
        for k in range(n_nz):
            m = mask[k]
            i = np.int32(nz[k])
            while m:
                tt = _cttz32(m)
                m &= m - U32(1)
                lst[wpos[tt]] = i
                wpos[tt] += U32(1)
    return n


# the kernels' draws: vector compaction as wide as the target allows, else the portable masks
# (the same spikes; the plugin's tests/test_numba_draws.py checks every path the host can run)
_draw_steps = {16: _draw_steps_x16, 8: _draw_steps_x8}.get(DRAW_LANES, _draw_steps_masks)


@borrowing
def _accumulate(w, lst, off, ch, buf):
    """buf[tt] = the input current of step ``tt``: the rows of its spiking pixels
    ``lst[off[tt]:off[tt + 1]]`` summed in the reference's order (``_sum_rows``)."""
    for tt in range(ch):
        _sum_rows(w, lst, off[tt], off[tt + 1], buf[tt])


@borrowing
def _gather_spikes(s, nc, cross, one_spike, rand):
    """The spiking neurons of ``s`` (``nc`` of them), ascending, into ``cross``; the one-spike
    winner ``cross[rand % nc]`` (the reference's ``idx[rand % idx.size]``). Returns the count."""
    n = s.shape[0]
    q = 0
    for j in range(n):
        if s[j]:
            cross[q] = j
            q += 1
    if one_spike and nc > 1:
        win = cross[rand % nc]
        for q in range(nc):
            s[cross[q]] = 0
        s[win] = 1
        cross[0] = win
        nc = 1
    return nc


@borrowing(inline=True)
def _flags_by_ref(refrac, dt):
    """Whether a step's spike flags can be read back from the refractory counts: a neuron
    spiked in the step exactly when its count is now ``refrac``. Every count starts a
    presentation at 0.0 and is either set to ``refrac`` (a spike) or lowered by ``dt``; with
    ``refrac >= 0`` and ``refrac - dt < refrac`` (so dt > 0, neither NaN) the counts stay <=
    refrac, and a lowered one, <= refrac - dt, is below it. Then the excitatory loops need not
    narrow and store a flag per neuron per step (a fifth of their instructions)."""
    return refrac >= 0.0 and refrac - dt < refrac


@borrowing
def _flags_from_ref(s, ref, refrac, nc):
    """The step's spike flags ``s`` (0/1) from the refractory counts (``_flags_by_ref``), when
    it has spikes (``nc``). After a step without spikes ``s`` is left as it was: a spike vector
    is read only while its step's count is non-zero (the lateral term under ``n_src``, the
    inhibitory input under ``n_e_prev``), so clearing it would be a pass for nothing."""
    if nc:
        for j in range(s.shape[0]):
            s[j] = np.int64(ref[j] == refrac)


@borrowing(inline=True)
def _exc_loops_infer(v, ref, th, cur, s, sp, n_src, w_lat, rest, reset, decay, refrac, dt,
                     store):
    """``_exc_step_infer``'s update loops; the flags are stored where ``store`` (a constant at
    each call site, so that each inlined copy has branch-free loops). Returns the count."""
    n = v.shape[0]
    nc = 0
    if n_src:       # two loops, so that the one without a lateral term has no branch inside
        fsrc = np.float64(n_src)
        for j in range(n):
            cj = _in_current_dtype(cur, cur[j] + w_lat * (fsrc - np.float64(sp[j])))
            v[j], ref[j], c = _lif(v[j], ref[j], cj, th[j], rest, reset, decay, refrac, dt)
            if store:
                s[j] = np.int64(c)
            nc += np.int64(c)
    else:
        for j in range(n):
            v[j], ref[j], c = _lif(v[j], ref[j], cur[j], th[j], rest, reset, decay, refrac, dt)
            if store:
                s[j] = np.int64(c)
            nc += np.int64(c)
    return nc


@borrowing
def _exc_step_infer(v, ref, th, cur, s, cross, sp, n_src, w_lat, one_spike, rest, reset, decay,
                    refrac, dt, rand):
    """The excitatory step of inference (``_neuron_step_float`` with learn=False and the
    thresholds ``thresh + theta`` precomputed), the lateral term
    ``w_lat * float(n_src - sp[j])`` added to the current first, as the reference does (the sum
    kept in the current row's precision, as ``_steps_float``'s in-place addition keeps it).
    The spike flags are read back from the refractory counts where ``_flags_by_ref`` allows."""
    if _flags_by_ref(refrac, dt):
        nc = _exc_loops_infer(v, ref, th, cur, s, sp, n_src, w_lat, rest, reset, decay, refrac,
                              dt, False)
        _flags_from_ref(s, ref, refrac, nc)
    else:
        nc = _exc_loops_infer(v, ref, th, cur, s, sp, n_src, w_lat, rest, reset, decay, refrac,
                              dt, True)
    if nc == 0:
        return 0
    return _gather_spikes(s, nc, cross, one_spike, rand)


@borrowing
def _activate(plist, n_new, in_act, act, n_act):
    """Event-driven inhibitory layer: add the neurons the previous step's excitatory spikes
    ``plist[:n_new]`` reach to the active list ``act[:n_act]`` (once each); returns its length.
    The others sit exactly at rest and are not updated."""
    for q in range(n_new):
        j = plist[q]
        if in_act[j] == 0:
            in_act[j] = 1
            act[n_act] = j
            n_act += 1
    return n_act


@borrowing
def _publish_spikes(tmp, n_si, src, cross_i, n_prev, one_spike):
    """The inhibitory spikes found among the active neurons (``tmp[:n_si]``, in list order)
    become this step's spike vector ``src`` and list ``cross_i``, ascending like a full-layer
    gather, replacing the previous step's ``n_prev``; with the one-spike rule only the winner
    ``cross[0 % nc]`` (the lowest index) is kept. Returns the count."""
    for q in range(n_prev):
        src[cross_i[q]] = 0
    if n_si > 1:
        _sort_small(tmp, n_si)
        if one_spike:
            n_si = 1
    for q in range(n_si):
        cross_i[q] = tmp[q]
        src[tmp[q]] = 1
    return n_si


@borrowing
def _sort_small(a, n):
    for i in range(1, n):
        x = a[i]
        k = i - 1
        while k >= 0 and a[k] > x:
            a[k + 1] = a[k]
            k -= 1
        a[k + 1] = x


@njit(cache=True)
def _inh_sparse_ok(fp, ip, qp):
    """Whether a diehl-cook inhibitory neuron that has had no input stays exactly at rest in
    inference (so that only the neurons that got an excitatory spike need updating): finite
    constants, dt >= 0 (a refractory count <= 0 stays <= 0), rest below the threshold, and a
    quantized potential whose grid holds rest itself (code 0)."""
    rest = fp[FP_I_REST]
    dec = fp[FP_I_DECAY]
    wei = fp[FP_W_EXC_INH]
    dt = fp[FP_DT]
    if not (np.isfinite(rest) and np.isfinite(dec) and np.isfinite(wei) and np.isfinite(dt)):
        return False
    if not dt >= 0.0:
        return False
    if not rest < fp[FP_I_THRESH] + 0.0:
        return False
    if qp[Q_POTENTIAL, QF_ON] != 0.0:
        if not (qp[Q_POTENTIAL, QF_CMIN] <= 0.0 <= qp[Q_POTENTIAL, QF_CMAX]):
            return False
        if not np.isfinite(qp[Q_POTENTIAL, QF_STEP]):
            return False
    return True


@borrowing
def _present_infer(w, skey, retry, n_nz, fp, ip, qp, ops, fb, ib, nz, thm1, im, fired, lst, off,
                   rnd, buf, inh_sparse):
    """One inference presentation (``_steps_float`` with learn=False, same spikes and counters);
    the excitatory counts in ib[IB_COUNTS]; returns their sum. fb[FB_TH_E] holds the excitatory
    thresholds (``thresh + theta``)."""
    n_in, N = w.shape
    T = ip[IP_T]
    CH = buf.shape[0]
    has_inh = ip[IP_HAS_INH] != 0
    e_one = ip[IP_E_ONE_SPIKE] != 0
    i_adaptive = ip[IP_I_ADAPTIVE] != 0
    i_one = ip[IP_I_ONE_SPIKE] != 0
    dt = fp[FP_DT]
    w_lat = fp[FP_W_LAT]
    w_ei = fp[FP_W_EXC_INH]
    e_rest, e_reset, e_decay, e_refrac = (fp[FP_E_REST], fp[FP_E_RESET], fp[FP_E_DECAY],
                                          fp[FP_E_REFRAC])
    i_rest, i_reset, i_decay, i_refrac = (fp[FP_I_REST], fp[FP_I_RESET], fp[FP_I_DECAY],
                                          fp[FP_I_REFRAC])
    i_th = fp[FP_I_THRESH] + 0.0        # thresh + theta (0 in inference)
    q_pot = qp[Q_POTENTIAL, QF_ON] != 0.0
    v_e = fb[FB_V_E]
    ref_e = fb[FB_REF_E]
    v_i = fb[FB_V_I]
    ref_i = fb[FB_REF_I]
    th_e = fb[FB_TH_E]
    cur_i = fb[FB_CUR_I]
    theta_i = fb[FB_THETA_I]    # zeros: the inhibitory theta of inference
    s_e = ib[IB_SE_A]
    e_prev = ib[IB_SE_B]
    src = ib[IB_SRC]            # inhibitory spikes of the previous step (diehl-cook), 0/1
    cross = ib[IB_CROSS]
    cross_i = ib[IB_CROSS_I]
    plist = ib[IB_PLIST]        # the previous step's excitatory spikes
    act = ib[IB_ACT]            # inhibitory neurons off rest (sparse update)
    in_act = ib[IB_IN_ACT]
    counts = ib[IB_COUNTS]
    tmp = ib[IB_TMP]
    for j in range(N):
        v_e[j] = e_rest
        ref_e[j] = 0.0
        v_i[j] = i_rest
        ref_i[j] = 0.0
        cur_i[j] = 0.0
        theta_i[j] = 0.0
        s_e[j] = 0
        e_prev[j] = 0
        src[j] = 0
        in_act[j] = 0
        counts[j] = 0
    n_act = 0
    n_src = 0
    n_e_prev = 0
    n_si_prev = 0
    inh_zero = True
    n_input = 0
    n_exc = 0
    n_inh = 0
    lat = 0
    for t0 in range(0, T, CH):
        ch = min(CH, T - t0)
        n_input += _draw_steps(skey, retry * T + t0, ch, n_nz, nz, thm1, im, fired, lst, off,
                               rnd)
        _accumulate(w, lst, off, ch, buf)
        for tt in range(ch):
            if n_src:
                lat += n_src * (N - 1)
            sp = src if has_inh else e_prev
            n_post = _exc_step_infer(v_e, ref_e, th_e, buf[tt], s_e, cross, sp, n_src, w_lat,
                                     e_one, e_rest, e_reset, e_decay, e_refrac, dt, rnd[tt])
            sk = np.uint64(0)
            if q_pot:       # the step's key, for the rounding sites of both layers
                sk = _step_key(skey, retry * T + t0 + tt)
                _q_vec(v_e, N, e_rest, qp, Q_POTENTIAL, _site_key(sk, SALT_POT_E))
            if has_inh:
                lat += n_e_prev
                if inh_sparse:
                    n_act = _activate(plist, n_e_prev, in_act, act, n_act)
                    n_si = 0
                    for k in range(n_act):
                        j = act[k]
                        e_in = np.float64(e_prev[j] if n_e_prev else 0)    # _flags_from_ref
                        v_i[j], ref_i[j], c = _lif(v_i[j], ref_i[j], w_ei * e_in,
                                                   i_th, i_rest, i_reset, i_decay, i_refrac, dt)
                        if c:
                            tmp[n_si] = j
                            n_si += 1
                    if q_pot:
                        site = _site_key(sk, SALT_POT_I)
                        for k in range(n_act):
                            j = act[k]
                            v_i[j] = _q(v_i[j], i_rest, qp, Q_POTENTIAL, site, j)
                    n_si = _publish_spikes(tmp, n_si, src, cross_i, n_si_prev, i_one)
                    n_si_prev = n_si
                else:
                    if n_e_prev:
                        for j in range(N):
                            cur_i[j] = w_ei * np.float64(e_prev[j])
                        inh_zero = False
                    elif not inh_zero:
                        for j in range(N):
                            cur_i[j] = 0.0
                        inh_zero = True
                    n_si = _neuron_step_float(
                        v_i, ref_i, theta_i, cur_i, src, cross_i, i_adaptive, i_one, False,
                        i_rest, i_reset, fp[FP_I_THRESH], i_decay, i_refrac, dt, 0.0, 0.0, 0)
                    if q_pot:
                        _q_vec(v_i, N, i_rest, qp, Q_POTENTIAL, _site_key(sk, SALT_POT_I))
                n_inh += n_si
                n_src = n_si
                for q in range(n_post):
                    plist[q] = cross[q]
                n_e_prev = n_post
            else:
                n_src = n_post
            s_e, e_prev = e_prev, s_e
            for q in range(n_post):
                counts[cross[q]] += 1
            n_exc += n_post
    ops[OP_PRESENTATIONS] += 1
    ops[OP_TIME_STEPS] += T
    ops[OP_NEURON_EXC] += T * N
    if has_inh:
        ops[OP_NEURON_INH] += T * N
        ops[OP_INH_SPIKES] += n_inh
    ops[OP_INPUT_SPIKES] += n_input
    ops[OP_EXC_SPIKES] += n_exc
    ops[OP_SYNAPTIC] += n_input * N
    ops[OP_LATERAL] += lat
    return n_exc


@njit(cache=True, parallel=True, boundscheck=False)
def infer_batch_tiled(w, theta, images, skeys, rate_units, fp, ip, qp, ops_per_sample, counts,
                      n_threads, cur_proto):
    """Float inference of a batch through ``_present_infer``: the samples in parallel, with
    per-thread work buffers; the same counts and counters as ``infer_batch`` (N >= 2)."""
    n_in, N = w.shape
    B = images.shape[0]
    T = ip[IP_T]
    CH = min(T, INFER_STEPS)
    nth = max(1, min(B, n_threads))     # numba.get_num_threads() of the caller
    fb = np.zeros((nth, N_FB, N))
    ib = np.zeros((nth, N_IB, N), dtype=WORK_INT)
    nzb = np.zeros((nth, n_in), dtype=np.int32)
    thb = np.zeros((nth, n_in), dtype=np.uint32)
    imb = np.zeros((nth, n_in), dtype=np.uint32)
    frb = np.zeros((nth, n_in + DRAW_SCRATCH), dtype=np.uint32)
    lstb = np.zeros((nth, CH * n_in + 1), dtype=np.int32)
    offb = np.zeros((nth, CH + 1), dtype=np.int64)
    rndb = np.zeros((nth, CH), dtype=np.int64)
    bufb = np.zeros((nth, CH, N), dtype=cur_proto.dtype)
    inh_sparse = ip[IP_HAS_INH] != 0 and _inh_sparse_ok(fp, ip, qp)
    e_adaptive = ip[IP_E_ADAPTIVE] != 0
    for tid in range(nth):
        for j in range(N):
            fb[tid, FB_TH_E, j] = (fp[FP_E_THRESH] + theta[j]) if e_adaptive else fp[FP_E_THRESH]
    n_pres = ip[IP_MAX_RETRIES] + 1
    for tid in prange(nth):
        for b in range(tid, B, nth):     # thread tid's samples, with its buffers
            skey = np.uint64(skeys[b])
            ops = ops_per_sample[b]
            for retry in range(n_pres):
                n_nz = _setup_inputs_u32(images[b], rate_units[retry], nzb[tid], thb[tid], imb[tid])
                n_exc = _present_infer(w, skey, retry, n_nz, fp, ip, qp, ops, fb[tid], ib[tid],
                                       nzb[tid], thb[tid], imb[tid], frb[tid], lstb[tid], offb[tid],
                                       rndb[tid], bufb[tid], inh_sparse)
                if n_exc >= ip[IP_RETRY_MIN]:
                    break
            ops[OP_SAMPLES] += 1
            for j in range(N):
                counts[b, j] = ib[tid, IB_COUNTS, j]


# per-sample operation counts of integer inference (ops[b, FIELD]), intsim.INFER_OPS's order
INT_OP_FIELDS = ("presentations", "steps", "draws", "input_spikes", "exc_spikes", "exit_early")
(IO_PRESENTATIONS, IO_STEPS, IO_DRAWS, IO_INPUT_SPIKES, IO_EXC_SPIKES, IO_EXIT_EARLY) = range(6)
N_IO = 6


@njit(cache=True, boundscheck=False)
def _exit_reached(sums, n_eff, n_classes, margin):
    """``intsim.exit_reached`` after its spike-total test: the leader ``a`` of section 7 over the
    class sums ``sums`` (``n_eff``: class sizes, 1 for a class without neurons, whose sum is 0)
    satisfies ``S_a * n_b - S_b * n_a >= margin * n_b`` for every other class ``b``."""
    a = 0
    s_a = 0
    n_a = 1
    for c in range(n_classes):
        if sums[c] * n_a > s_a * n_eff[c]:
            a = c
            s_a = sums[c]
            n_a = n_eff[c]
    for c in range(n_classes):
        if c != a and s_a * n_eff[c] - sums[c] * n_a < margin * n_eff[c]:
            return False
    return True


@borrowing
def _present_int_tiled(wc, skey, rate_unit, retry, n_nz, lp, mp, th_e, th_i, ib, st, nz, thm1,
                       im, fired, lst, off, rnd, buf, inh_sparse, assignments, n_eff, sums):
    """``intsim.present`` with the input currents of up to INFER_STEPS steps built at once
    (``_accumulate`` into ``buf``, int32 or int64: the caller checked the range) and the
    inhibitory layer updated event-driven when ``inh_sparse``. Counts in ib[IB_COUNTS].

    Early exit (``mp[MP_EXIT_MARGIN] > 0``): the class sums of the presentation are kept in
    ``sums`` as the spikes come (one add per emitted spike), and the exit rule is tested only
    after a step with a spike. Returns (excitatory spikes, steps run, input spikes in them)."""
    n_in, N = wc.shape
    T = mp[MP_T]
    CH = buf.shape[0]
    has_inh = mp[MP_HAS_INH] != 0
    shift = lp[0, LP_V_FRAC] - mp[MP_W_FRAC]
    lsh = shift if shift > 0 else 0
    rsh = -shift if shift < 0 else 0
    lateral = mp[MP_LATERAL]
    e2i = mp[MP_EXC_TO_INH]
    decay = lp[0, LP_DECAY]
    fd = lp[0, LP_DECAY_FRAC]
    bias = lp[0, LP_BIAS]
    umin = lp[0, LP_U_MIN]
    umax = lp[0, LP_U_MAX]
    reset = lp[0, LP_RESET]
    refrac = lp[0, LP_REFRAC]
    e_one = lp[0, LP_ONE_SPIKE] != 0
    i_one = lp[1, LP_ONE_SPIKE] != 0
    i_decay = lp[1, LP_DECAY]
    i_fd = lp[1, LP_DECAY_FRAC]
    i_bias = lp[1, LP_BIAS]
    i_umin = lp[1, LP_U_MIN]
    i_umax = lp[1, LP_U_MAX]
    i_reset = lp[1, LP_RESET]
    i_refrac = lp[1, LP_REFRAC]
    margin = mp[MP_EXIT_MARGIN]
    exit_on = margin > 0
    retry_min = mp[MP_RETRY_MIN]
    n_classes = mp[MP_N_CLASSES]
    u = st[0]
    ref = st[1]
    ui = st[2]
    ref_i = st[3]
    cur_i = st[4]
    s_e = ib[IB_SE_A]
    e_prev = ib[IB_SE_B]
    src = ib[IB_SRC]
    cross = ib[IB_CROSS]
    cross_i = ib[IB_CROSS_I]
    plist = ib[IB_PLIST]
    act = ib[IB_ACT]
    in_act = ib[IB_IN_ACT]
    counts = ib[IB_COUNTS]
    tmp = ib[IB_TMP]
    for j in range(N):
        u[j] = 0
        ref[j] = 0
        ui[j] = 0
        ref_i[j] = 0
        cur_i[j] = 0
        s_e[j] = 0
        e_prev[j] = 0
        src[j] = 0
        in_act[j] = 0
        counts[j] = 0
    for c in range(n_classes):
        sums[c] = 0
    n_assigned = 0          # spikes of this presentation: the total intsim.exit_reached tests
    n_act = 0
    n_src = 0
    n_e_prev = 0
    n_si_prev = 0
    n_exc = 0
    n_input = 0
    steps = T
    for t0 in range(0, T, CH):
        ch = min(CH, T - t0)
        n_chunk = _draw_steps(skey, retry * T + t0, ch, n_nz, nz, thm1, im, fired, lst, off, rnd)
        _accumulate(wc, lst, off, ch, buf)
        for tt in range(ch):
            cur = buf[tt]
            sp = src if has_inh else e_prev
            nc = 0
            for j in range(N):      # intsim._layer_step of the excitatory layer, fused
                cj = (np.int64(cur[j]) << lsh) >> rsh
                if n_src:
                    cj += lateral * (n_src - sp[j])
                u[j], ref[j], c = _lif_int(u[j], ref[j], cj, th_e[j], decay, bias, fd, umin, umax,
                                           reset, refrac)
                s_e[j] = np.int64(c)
                nc += np.int64(c)
            n_post = 0
            if nc:
                n_post = _gather_spikes(s_e, nc, cross, e_one, rnd[tt])
            if has_inh:
                if inh_sparse:
                    n_act = _activate(plist, n_e_prev, in_act, act, n_act)
                    n_si = 0
                    for k in range(n_act):
                        j = act[k]
                        ui[j], ref_i[j], c = _lif_int(ui[j], ref_i[j], e2i * e_prev[j], th_i[j],
                                                      i_decay, i_bias, i_fd, i_umin, i_umax,
                                                      i_reset, i_refrac)
                        if c:
                            tmp[n_si] = j
                            n_si += 1
                    n_si = _publish_spikes(tmp, n_si, src, cross_i, n_si_prev, i_one)
                    n_si_prev = n_si
                else:
                    for j in range(N):
                        cur_i[j] = e2i * e_prev[j]
                    n_si = _layer_step_int(ui, ref_i, cur_i, th_i, src, cross_i, lp, 1, 0)
                n_src = n_si
                for q in range(n_post):
                    plist[q] = cross[q]
                n_e_prev = n_post
            else:
                n_src = n_post
            s_e, e_prev = e_prev, s_e
            for q in range(n_post):
                counts[cross[q]] += 1
            n_exc += n_post
            if exit_on and n_post:      # only a step with a spike can end the presentation
                n_assigned += n_post     # every spike counts towards MIN_SPIKES
                for q in range(n_post):
                    a = assignments[cross[q]]
                    if a >= 0 and a < n_classes:
                        sums[a] += 1
                if n_assigned >= retry_min and _exit_reached(sums, n_eff, n_classes, margin):
                    steps = t0 + tt + 1
                    break
        if steps < T:
            n_input += off[steps - t0]
            break
        n_input += n_chunk
    return n_exc, steps, n_input


@njit(cache=True, parallel=True, boundscheck=False)
def infer_int_batch_tiled(wc, acc_proto, images, skeys, rate_units, lp, mp, th_e, th_i,
                          assignments, sizes, counts, preds, ops, n_threads, chunk):
    """Integer inference of a batch (``intsim.infer``) through ``_present_int_tiled``, the
    samples in parallel with per-thread work buffers. ``wc``: the weight codes in a narrower
    type where they fit (int16 / uint16), ``acc_proto``: an array of the accumulation type
    (int32 where no column's sum of |codes| reaches 2**31, else int64; backend.py decides).
    ``ops`` [B, N_IO]: what each sample did (``intsim.INFER_OPS``). ``chunk``: the steps whose
    input spikes and currents are built at once (INFER_STEPS; INFER_STEPS_EXIT with early exit)."""
    n_in, N = wc.shape
    B = images.shape[0]
    T = mp[MP_T]
    CH = max(1, min(T, chunk))
    n_rates = rate_units.shape[0]
    n_classes = mp[MP_N_CLASSES]
    nth = max(1, min(B, n_threads))     # numba.get_num_threads() of the caller
    ib = np.zeros((nth, N_IB, N), dtype=WORK_INT)
    stb = np.zeros((nth, 5, N), dtype=np.int64)
    nzb = np.zeros((nth, n_in), dtype=np.int32)
    thb = np.zeros((nth, n_in), dtype=np.uint32)
    imb = np.zeros((nth, n_in), dtype=np.uint32)
    frb = np.zeros((nth, n_in + DRAW_SCRATCH), dtype=np.uint32)
    lstb = np.zeros((nth, CH * n_in + 1), dtype=np.int32)
    offb = np.zeros((nth, CH + 1), dtype=np.int64)
    rndb = np.zeros((nth, CH), dtype=np.int64)
    bufb = np.zeros((nth, CH, N), dtype=acc_proto.dtype)
    sumsb = np.zeros((nth, max(1, n_classes)), dtype=np.int64)
    n_eff = np.ones(max(1, n_classes), dtype=np.int64)
    for c in range(n_classes):
        if sizes[c] > 0:
            n_eff[c] = sizes[c]
    inh_sparse = False
    i_fd = lp[1, LP_DECAY_FRAC]
    if (mp[MP_HAS_INH] != 0 and lp[1, LP_U_MIN] <= 0 <= lp[1, LP_U_MAX] and 0 <= i_fd < 63
            and 0 <= lp[1, LP_BIAS] < (1 << i_fd)):
        # a neuron at u = 0, not refractory and without input stays at 0 and does not spike
        inh_sparse = True
        for j in range(N):
            if th_i[j] <= 0:
                inh_sparse = False
    for tid in prange(nth):
        for b in range(tid, B, nth):     # thread tid's samples, with its buffers
            skey = np.uint64(skeys[b])
            sums = sumsb[tid]
            o = ops[b]
            n_pix = 0                    # non-zero pixels: the draws of a step
            for i in range(n_in):
                if images[b, i] != 0:
                    n_pix += 1
            for retry in range(n_rates):
                n_nz = _setup_inputs_u32(images[b], rate_units[retry], nzb[tid], thb[tid], imb[tid])
                n_exc, steps, n_input = _present_int_tiled(
                    wc, skey, rate_units[retry], retry, n_nz, lp, mp, th_e, th_i, ib[tid],
                    stb[tid], nzb[tid], thb[tid], imb[tid], frb[tid], lstb[tid], offb[tid],
                    rndb[tid], bufb[tid], inh_sparse, assignments, n_eff, sums)
                o[IO_PRESENTATIONS] += 1
                o[IO_STEPS] += steps
                o[IO_DRAWS] += steps * n_pix
                o[IO_INPUT_SPIKES] += n_input
                o[IO_EXC_SPIKES] += n_exc
                o[IO_EXIT_EARLY] += np.int64(steps < T)     # an exit never retries
                if n_exc >= mp[MP_RETRY_MIN]:
                    break
            for j in range(N):
                counts[b, j] = ib[tid, IB_COUNTS, j]
            preds[b] = _classify_int(counts[b], assignments, sizes, n_classes, sums)


# -- fused learning path (train_batch) -----------------------------------------------------------
# What learning shares with the inference kernels above: the input spikes depend on the sample
# and seed only, so they are drawn TRAIN_STEPS steps at a time (fmix32 in uint32 lanes, one
# compacted list). Each step's current is summed into one row that stays in L1 (summing a
# chunk's currents at once, as inference does, measured slower here: the chunk leaves L1, and
# postpre writes the rows of every input spike, so its steps must read the weights the step
# before left anyway). The excitatory update fuses the threshold decay, the lateral
# term and the leak into one loop; diehl-cook's inhibitory layer is updated event-driven when
# ``_inh_sparse_ok`` says that is exact. Every float operation is the reference's, in its order:
# the counts, weights and thresholds are those of ``_steps_float`` bit for bit (the equivalence
# tests compare it with NumPy, bench_fused.py with ``_steps_float``). The recording monitor, the
# mu != 0 rule and N = 1 keep ``_steps_float``.
TRAIN_STEPS = 32        # steps whose input spikes are drawn at once


@borrowing(inline=True)
def _exc_loops_train(v, ref, theta, cur, s, sp, n_src, w_lat, adaptive, rest, reset, thresh,
                     decay, refrac, dt, theta_decay, store):
    """``_exc_step_train``'s update loops; the flags are stored where ``store`` (a constant at
    each call site, so that each inlined copy has branch-free loops). Returns the count."""
    n = v.shape[0]
    nc = 0
    fsrc = np.float64(n_src)
    if adaptive and n_src:      # four loops, so that none has a branch inside
        for j in range(n):
            th = theta[j] * theta_decay
            theta[j] = th
            cj = _in_current_dtype(cur, cur[j] + w_lat * (fsrc - np.float64(sp[j])))
            v[j], ref[j], c = _lif(v[j], ref[j], cj, thresh + th, rest, reset, decay, refrac, dt)
            if store:
                s[j] = np.int64(c)
            nc += np.int64(c)
    elif adaptive:
        for j in range(n):
            th = theta[j] * theta_decay
            theta[j] = th
            v[j], ref[j], c = _lif(v[j], ref[j], cur[j], thresh + th, rest, reset, decay, refrac,
                                   dt)
            if store:
                s[j] = np.int64(c)
            nc += np.int64(c)
    elif n_src:
        for j in range(n):
            cj = _in_current_dtype(cur, cur[j] + w_lat * (fsrc - np.float64(sp[j])))
            v[j], ref[j], c = _lif(v[j], ref[j], cj, thresh, rest, reset, decay, refrac, dt)
            if store:
                s[j] = np.int64(c)
            nc += np.int64(c)
    else:
        for j in range(n):
            v[j], ref[j], c = _lif(v[j], ref[j], cur[j], thresh, rest, reset, decay, refrac, dt)
            if store:
                s[j] = np.int64(c)
            nc += np.int64(c)
    return nc


@borrowing
def _exc_step_train(v, ref, theta, cur, s, cross, sp, n_src, w_lat, adaptive, one_spike, rest,
                    reset, thresh, decay, refrac, dt, theta_decay, theta_plus, rand):
    """``_neuron_step_float`` of the excitatory layer while learning, the lateral term
    ``w_lat * float(n_src - sp[j])`` added to the current first (as the step before it in the
    reference) and the threshold decay fused in: element by element the same operations.
    The spike flags are read back from the refractory counts where ``_flags_by_ref`` allows."""
    n = v.shape[0]
    if _flags_by_ref(refrac, dt):
        nc = _exc_loops_train(v, ref, theta, cur, s, sp, n_src, w_lat, adaptive, rest, reset,
                              thresh, decay, refrac, dt, theta_decay, False)
        _flags_from_ref(s, ref, refrac, nc)
    else:
        nc = _exc_loops_train(v, ref, theta, cur, s, sp, n_src, w_lat, adaptive, rest, reset,
                              thresh, decay, refrac, dt, theta_decay, True)
    if nc == 0:
        return 0
    q = 0
    for j in range(n):
        if s[j]:
            cross[q] = j
            q += 1
            if adaptive:
                theta[j] = theta[j] + theta_plus
    if one_spike and nc > 1:
        win = cross[rand % nc]
        for q in range(nc):
            s[cross[q]] = 0
        s[win] = 1
        cross[0] = win
        nc = 1
    return nc


@borrowing
def _present_train(w, theta_e, retry, skey, n_nz, n_u, fp, ip, qp, ops, wf, wi, wp, x_pre, acc,
                   current, ib, nzu, thm1, im, fired, lst, off, rnd, inh_sparse, oor, pcols,
                   in_pcols, prows, in_prows):
    """One learning presentation (``_steps_float`` with learn=True and no monitor): the same
    spikes, weights, thresholds, traces, work rows and counters. ``n_nz``: ``_setup_inputs``'s
    non-zero pixels (wp), whose traces decay: ``x_pre[:n_nz]`` holds them in that compact order
    (``wp[WP_POS]`` maps a pixel to its place; a zero pixel's trace stays 0.0, as in the
    reference), so that their decay and tinysnn-stdp's sums run on contiguous memory; ``n_u``,
    ``nzu``/``thm1``/``im``: the
    ``_setup_inputs_u32`` lists of the pixels that can spike. ``inh_sparse``: the event-driven
    inhibitory layer is exact (``_inh_sparse_ok`` and a non-adaptive layer).

    ``oor`` [N] (postpre and weight-dependent without quantized weights; else [0], and every
    write is done as the reference does it): the columns that may hold a weight outside
    [wmin, wmax]. The STDP writes of a step then skip
    what the reference's write leaves unchanged: depression ``clamp(w - nu_pre * x_post[j])``
    of a column whose neuron has not spiked in this presentation (x_post[j] == 0.0 exactly) and
    potentiation ``clamp(w + nu_post * x_pre[i])`` of a row whose pixel has not spiked
    (x_pre[i] == 0.0), in both cases of in-range weights (``clamp`` is then the identity, and
    no weight is -0.0: every clamp returns +0.0 for it). ``pcols``/``prows``: the columns and
    rows still written, in the order they became so (each weight is written by its own
    element's operations, so the order is free). ``current`` [N]: the input current row, in the
    currents' precision (``current_row``). Returns the presentation's excitatory spikes."""
    n_in, N = w.shape
    T = ip[IP_T]
    CH = rnd.shape[0]
    has_inh = ip[IP_HAS_INH] != 0
    e_adaptive = ip[IP_E_ADAPTIVE] != 0
    e_one = ip[IP_E_ONE_SPIKE] != 0
    i_adaptive = ip[IP_I_ADAPTIVE] != 0
    i_one = ip[IP_I_ONE_SPIKE] != 0
    rule = ip[IP_RULE]
    needs_post = ip[IP_NEEDS_POST] != 0
    dt = fp[FP_DT]
    w_lat = fp[FP_W_LAT]
    w_ei = fp[FP_W_EXC_INH]
    wmin = fp[FP_WMIN]
    wmax = fp[FP_WMAX]
    trace_decay = fp[FP_TRACE_DECAY]
    nu_pre = fp[FP_NU_PRE]
    nu_post = fp[FP_NU_POST]
    e_rest, e_reset, e_thresh, e_decay, e_refrac = (fp[FP_E_REST], fp[FP_E_RESET],
                                                    fp[FP_E_THRESH], fp[FP_E_DECAY],
                                                    fp[FP_E_REFRAC])
    i_rest, i_reset, i_decay, i_refrac = (fp[FP_I_REST], fp[FP_I_RESET], fp[FP_I_DECAY],
                                          fp[FP_I_REFRAC])
    q_pot = qp[Q_POTENTIAL, QF_ON] != 0.0
    q_theta = e_adaptive and qp[Q_THETA, QF_ON] != 0.0
    q_tr = qp[Q_TRACES, QF_ON] != 0.0
    q_w = qp[Q_WEIGHTS, QF_ON] != 0.0

    v_e = wf[WF_V_E]
    ref_e = wf[WF_REF_E]
    v_i = wf[WF_V_I]
    ref_i = wf[WF_REF_I]
    theta_i = wf[WF_THETA_I]
    cur_inh = wf[WF_CUR_INH]
    x_post = wf[WF_X_POST]
    dep = wf[WF_SUMS]
    src_prev = wi[WI_SRC_PREV]
    e_prev = wi[WI_E_PREV]
    s_e = wi[WI_S_E]
    s_i = wi[WI_S_I]
    cross = wi[WI_CROSS]
    cross_i = wi[WI_CROSS_I]
    cnt = wi[WI_CNT]
    dirty = wi[WI_DIRTY]
    counts = wi[WI_COUNTS]
    nz = wp[WP_NZ]
    pos = wp[WP_POS]
    plist = ib[IB_PLIST]
    act = ib[IB_ACT]
    in_act = ib[IB_IN_ACT]
    tmp = ib[IB_TMP]

    for j in range(N):
        v_e[j] = e_rest
        ref_e[j] = 0.0
        v_i[j] = i_rest
        ref_i[j] = 0.0
        theta_i[j] = 0.0
        x_post[j] = 0.0
        src_prev[j] = 0
        e_prev[j] = 0
        cur_inh[j] = 0.0
        cnt[j] = 0
        dirty[j] = 0
        counts[j] = 0
        in_act[j] = 0
    for i in range(n_in):
        x_pre[i] = 0.0
    sparse_w = oor.shape[0] == N
    # only the columns in pcols can hold a non-zero x_post (the others never spiked: +0.0,
    # which a finite, non-negative decay keeps at +0.0), so only theirs need decaying
    post_sparse = sparse_w and np.isfinite(trace_decay) and trace_decay >= 0.0
    n_pc = 0
    n_pr = 0
    all_dirty = False
    for j in range(N):
        in_pcols[j] = 0
        if not sparse_w or oor[j]:     # without the flags every column is written
            in_pcols[j] = 1
            pcols[n_pc] = j
            n_pc += 1
    for i in range(n_in):
        in_prows[i] = 0
    n_act = 0
    n_si_prev = 0
    n_src = 0
    n_e_prev = 0
    inh_zero = True
    n_input = 0
    n_exc = 0
    n_inh = 0
    syn = 0
    lat = 0
    trace = 0
    stdp = 0
    accum = 0
    for t0 in range(0, T, CH):
        ch = min(CH, T - t0)
        n_input += _draw_steps(skey, retry * T + t0, ch, n_u, nzu, thm1, im, fired, lst, off,
                               rnd)
        for tt in range(ch):
            t = t0 + tt
            p0 = off[tt]
            n_pre = off[tt + 1] - p0
            _sum_rows(w, lst, p0, p0 + n_pre, current)
            syn += n_pre * N
            if n_src:
                lat += n_src * (N - 1)
            sk = np.uint64(0)
            if q_pot or q_theta or q_tr or q_w:
                sk = _step_key(skey, retry * T + t)
            if has_inh:
                if not inh_sparse:
                    if n_e_prev:
                        for j in range(N):
                            cur_inh[j] = w_ei * np.float64(e_prev[j])
                        inh_zero = False
                    elif not inh_zero:
                        for j in range(N):
                            cur_inh[j] = 0.0
                        inh_zero = True
                lat += n_e_prev
            n_post = _exc_step_train(v_e, ref_e, theta_e, current, s_e, cross, src_prev, n_src,
                                     w_lat, e_adaptive, e_one, e_rest, e_reset, e_thresh,
                                     e_decay, e_refrac, dt, fp[FP_E_THETA_DECAY],
                                     fp[FP_E_THETA_PLUS], rnd[tt])
            if q_pot:
                _q_vec(v_e, N, e_rest, qp, Q_POTENTIAL, _site_key(sk, SALT_POT_E))
            if q_theta:
                _q_vec(theta_e, N, 0.0, qp, Q_THETA, _site_key(sk, SALT_THETA))
            if has_inh:
                if inh_sparse:
                    n_act = _activate(plist, n_e_prev, in_act, act, n_act)
                    n_si = 0
                    for k in range(n_act):
                        j = act[k]
                        e_in = np.float64(e_prev[j] if n_e_prev else 0)    # _flags_from_ref
                        v_i[j], ref_i[j], c = _lif(v_i[j], ref_i[j], w_ei * e_in,
                                                   fp[FP_I_THRESH] + 0.0, i_rest, i_reset,
                                                   i_decay, i_refrac, dt)
                        if c:
                            tmp[n_si] = j
                            n_si += 1
                    if q_pot:
                        site = _site_key(sk, SALT_POT_I)
                        for k in range(n_act):
                            j = act[k]
                            v_i[j] = _q(v_i[j], i_rest, qp, Q_POTENTIAL, site, j)
                    # the previous step's inhibitory spikes in src_prev become this step's
                    # (the exc step above has read them): one vector, updated in place
                    n_si = _publish_spikes(tmp, n_si, src_prev, cross_i, n_si_prev, i_one)
                    n_si_prev = n_si
                    for q in range(n_post):
                        plist[q] = cross[q]
                else:
                    n_si = _neuron_step_float(
                        v_i, ref_i, theta_i, cur_inh, s_i, cross_i, i_adaptive, i_one, True,
                        i_rest, i_reset, fp[FP_I_THRESH], i_decay, i_refrac, dt,
                        fp[FP_I_THETA_DECAY], fp[FP_I_THETA_PLUS], 0)
                    if q_pot:
                        _q_vec(v_i, N, i_rest, qp, Q_POTENTIAL, _site_key(sk, SALT_POT_I))
                    src_prev, s_i = s_i, src_prev   # this step's spikes become the previous
                n_inh += n_si
                e_prev, s_e = s_e, e_prev
                n_src = n_si
                n_e_prev = n_post
            else:
                src_prev, s_e = s_e, src_prev
                n_src = n_post
            for q in range(n_post):
                counts[cross[q]] += 1
            n_exc += n_post

            # learning (the reference's order: traces, then the rule)
            for k in range(n_nz):
                x_pre[k] *= trace_decay
            for q in range(p0, p0 + n_pre):
                x_pre[pos[lst[q]]] = 1.0
            trace += n_in
            if needs_post:
                if post_sparse:
                    for c in range(n_pc):
                        x_post[pcols[c]] *= trace_decay
                else:
                    for j in range(N):
                        x_post[j] *= trace_decay
                for q in range(n_post):
                    x_post[cross[q]] = 1.0
                trace += N
            if sparse_w:    # the rows and columns whose traces left 0.0 in this step
                for q in range(p0, p0 + n_pre):
                    i = lst[q]
                    if in_prows[i] == 0:
                        in_prows[i] = 1
                        prows[n_pr] = i
                        n_pr += 1
                for q in range(n_post):
                    j = cross[q]
                    if in_pcols[j] == 0:
                        in_pcols[j] = 1
                        pcols[n_pc] = j
                        n_pc += 1
            if q_tr:
                site = _site_key(sk, SALT_TR_PRE)
                for k in range(n_nz):
                    x_pre[k] = _q(x_pre[k], 0.0, qp, Q_TRACES, site, nz[k])
                if needs_post:
                    _q_vec(x_post, N, 0.0, qp, Q_TRACES, _site_key(sk, SALT_TR_POST))
            if rule == RULE_TINYSNN:
                accum += n_post * n_in
                for q in range(n_post):
                    j = cross[q]
                    if cnt[j] == 0:
                        for k in range(n_nz):
                            acc[j, k] = x_pre[k]
                    else:
                        for k in range(n_nz):
                            acc[j, k] += x_pre[k]
                    cnt[j] += 1
            elif n_pre or n_post:
                if n_pre and nu_pre != 0.0:     # depression of the spiking pixels' rows
                    for c in range(n_pc):
                        j = pcols[c]
                        dep[j] = nu_pre * x_post[j]
                    if q_w:
                        site = _site_key(sk, SALT_W_ROWS)
                    for q in range(p0, p0 + n_pre):
                        row = lst[q]
                        for c in range(n_pc):
                            j = pcols[c]
                            wv = w[row, j]
                            if rule == RULE_POSTPRE:
                                x = _clip(wv - dep[j], wmin, wmax)
                            else:
                                x = _clip(wv - dep[j] * (wv - wmin), wmin, wmax)
                            if q_w:     # store_rows: clamp, then the weights' grid
                                x = _q(x, 0.0, qp, Q_WEIGHTS, site, row * N + j)
                            w[row, j] = x
                    all_dirty = True
                    stdp += n_pre * N
                if n_post and nu_post != 0.0:   # potentiation of the spiking neurons' columns
                    if q_w:
                        site = _site_key(sk, SALT_W_COLS)
                    for q in range(n_post):
                        j = cross[q]
                        every_row = not sparse_w or oor[j] != 0
                        for r in range(n_in if every_row else n_pr):
                            i = r if every_row else prows[r]
                            p = pos[i]
                            dp = nu_post * (x_pre[p] if p >= 0 else 0.0)
                            wv = w[i, j]
                            if rule == RULE_POSTPRE:
                                x = _clip(wv + dp, wmin, wmax)
                            else:
                                x = _clip(wv + dp * (wmax - wv), wmin, wmax)
                            if q_w:     # store_cols: clamp, then the weights' grid
                                x = _q(x, 0.0, qp, Q_WEIGHTS, site, i * N + j)
                            w[i, j] = x
                        dirty[j] = 1
                    stdp += n_post * n_in

    if all_dirty:   # a depression wrote every column (the reference marks them all)
        for j in range(N):
            dirty[j] = 1
    ops[OP_PRESENTATIONS] += 1
    ops[OP_TIME_STEPS] += T
    ops[OP_NEURON_EXC] += T * N
    if has_inh:
        ops[OP_NEURON_INH] += T * N
        ops[OP_INH_SPIKES] += n_inh
    ops[OP_INPUT_SPIKES] += n_input
    ops[OP_EXC_SPIKES] += n_exc
    ops[OP_SYNAPTIC] += syn
    ops[OP_LATERAL] += lat
    ops[OP_TRACE] += trace
    ops[OP_STDP] += stdp
    ops[OP_ACCUM] += accum
    return n_exc


@njit(cache=True, boundscheck=False)
def train_batch_fused(w, theta, images, skeys, rate_units, fp, ip, qp, prog, ops, counts,
                      cur_proto):
    """``train_batch`` through ``_present_train``: the samples one after the other, the same
    weights, thresholds, counts and counters."""
    n_in, N = w.shape
    acc_cols = n_in if ip[IP_RULE] == RULE_TINYSNN else 0
    wf, wi, wp, x_pre, acc = workspace(n_in, N, acc_cols)
    cur = current_row(N, cur_proto)
    T = ip[IP_T]
    CH = max(1, min(T, TRAIN_STEPS))
    ib = np.zeros((N_IB, N), dtype=WORK_INT)
    nzu = np.zeros(n_in, dtype=np.int32)
    thm1 = np.zeros(n_in, dtype=np.uint32)
    im = np.zeros(n_in, dtype=np.uint32)
    fired = np.zeros(n_in + DRAW_SCRATCH, dtype=np.uint32)
    lst = np.zeros(CH * n_in + 1, dtype=np.int32)
    off = np.zeros(CH + 1, dtype=np.int64)
    rnd = np.zeros(CH, dtype=np.int64)
    inh_sparse = (ip[IP_HAS_INH] != 0 and ip[IP_I_ADAPTIVE] == 0 and _inh_sparse_ok(fp, ip, qp))
    # per-step STDP writes skipped where they change nothing (postpre, weight-dependent with
    # unquantized weights): which columns may hold a weight out of range, kept from here
    sparse_w = ip[IP_RULE] != RULE_TINYSNN and qp[Q_WEIGHTS, QF_ON] == 0.0
    oor = np.zeros(N if sparse_w else 0, dtype=np.int64)
    known = np.zeros(N if sparse_w else 0, dtype=np.int64)     # _normalize_known
    nsum = np.zeros(N if sparse_w else 0)
    if sparse_w:
        wmin = fp[FP_WMIN]
        wmax = fp[FP_WMAX]
        for i in range(n_in):
            for j in range(N):
                x = w[i, j]
                oor[j] |= np.int64(not ((x >= wmin) & (x <= wmax)))
    pcols = np.zeros(N, dtype=np.uint32)    # unsigned: indexing with it needs no wraparound
    in_pcols = np.zeros(N, dtype=np.int64)
    prows = np.zeros(n_in, dtype=np.int64)
    in_prows = np.zeros(n_in, dtype=np.int64)
    no_pow = np.zeros((0, 0))
    n_pres = ip[IP_MAX_RETRIES] + 1
    for b in range(images.shape[0]):
        skey = np.uint64(skeys[b])
        for retry in range(n_pres):
            n_nz = _setup_inputs(images[b], rate_units[retry], wp)
            n_u = _setup_inputs_u32(images[b], rate_units[retry], nzu, thm1, im)
            n_exc = _present_train(w, theta, retry, skey, n_nz, n_u, fp, ip, qp, ops, wf, wi,
                                   wp, x_pre, acc, cur, ib, nzu, thm1, im, fired, lst, off, rnd,
                                   inh_sparse, oor, pcols, in_pcols, prows, in_prows)
            if known.shape[0] == N:     # the columns this presentation may have written
                for j in range(N):
                    if in_pcols[j]:
                        known[j] = COL_UNKNOWN
            _end_float(w, n_exc, n_nz, fp, ip, qp, skey, retry, ops, wf, wi, wp, acc, no_pow,
                       prog, oor, known, nsum)
            if n_exc >= ip[IP_RETRY_MIN]:
                break
        ops[OP_SAMPLES] += 1
        for j in range(N):
            counts[b, j] = wi[WI_COUNTS, j]


# -- grouped inference: several networks on the same input spikes -------------------------------
# Points of an exploration that share their seed and samples (formats, roundings, group sets)
# see the same input spikes, which depend only on (seed, sample, retry, step) and the image. The
# grouped kernels draw and compact them once per chunk of steps and sample, sum the weight rows
# once per distinct weight matrix (``wmap[k]``: network k's matrix in ``wu``; quantizations
# that share a weight format share it), then advance each network's own state over the chunk.
# Each network's steps are the single-network kernels' steps, operation for operation, so its
# counts, predictions and counters are the same as a call of its own. A network that has
# reached ``retry_min`` spikes (or exited early) leaves the sample's later presentations.
# per-network scalar state of a presentation in the grouped kernels (sc[k, FIELD], int64)
(GS_N_ACT, GS_N_SRC, GS_N_E_PREV, GS_N_SI_PREV, GS_INH_ZERO, GS_N_INPUT, GS_N_EXC, GS_N_INH,
 GS_LAT, GS_SWAP, GS_N_ASSIGNED, GS_STEPS, GS_LIVE) = range(13)
N_GS = 13


@njit(cache=True, boundscheck=False)
def _group_start(v_rest, i_rest, fb, ib, sc, T):
    """A network's presentation state at the start (``_present_infer``'s first loop; float rows
    in ``fb`` (its FB_TH_E row kept), integer rows in ``ib``) and ``sc`` zeroed."""
    N = ib.shape[1]
    for j in range(N):
        fb[FB_V_E, j] = v_rest
        fb[FB_REF_E, j] = 0.0
        fb[FB_V_I, j] = i_rest
        fb[FB_REF_I, j] = 0.0
        fb[FB_CUR_I, j] = 0.0
        fb[FB_THETA_I, j] = 0.0
        ib[IB_SE_A, j] = 0
        ib[IB_SE_B, j] = 0
        ib[IB_SRC, j] = 0
        ib[IB_IN_ACT, j] = 0
        ib[IB_COUNTS, j] = 0
    for f in range(N_GS):
        sc[f] = 0
    sc[GS_INH_ZERO] = 1
    sc[GS_STEPS] = T
    sc[GS_LIVE] = 1


@borrowing
def _group_chunk_float(buf, ch, t0, skey, retry, fp, ip, qp, fb, ib, sc, rnd, inh_sparse):
    """Steps ``t0 .. t0 + ch - 1`` of one network's float presentation on the input currents
    ``buf[:ch]``: the step loop of ``_present_infer``, its scalars kept in ``sc``."""
    N = ib.shape[1]
    T = ip[IP_T]
    has_inh = ip[IP_HAS_INH] != 0
    e_one = ip[IP_E_ONE_SPIKE] != 0
    i_adaptive = ip[IP_I_ADAPTIVE] != 0
    i_one = ip[IP_I_ONE_SPIKE] != 0
    dt = fp[FP_DT]
    w_lat = fp[FP_W_LAT]
    w_ei = fp[FP_W_EXC_INH]
    e_rest, e_reset, e_decay, e_refrac = (fp[FP_E_REST], fp[FP_E_RESET], fp[FP_E_DECAY],
                                          fp[FP_E_REFRAC])
    i_rest, i_reset, i_decay, i_refrac = (fp[FP_I_REST], fp[FP_I_RESET], fp[FP_I_DECAY],
                                          fp[FP_I_REFRAC])
    i_th = fp[FP_I_THRESH] + 0.0
    q_pot = qp[Q_POTENTIAL, QF_ON] != 0.0
    v_e = fb[FB_V_E]
    ref_e = fb[FB_REF_E]
    v_i = fb[FB_V_I]
    ref_i = fb[FB_REF_I]
    th_e = fb[FB_TH_E]
    cur_i = fb[FB_CUR_I]
    theta_i = fb[FB_THETA_I]
    swap = sc[GS_SWAP]
    s_e = ib[IB_SE_B] if swap else ib[IB_SE_A]
    e_prev = ib[IB_SE_A] if swap else ib[IB_SE_B]
    src = ib[IB_SRC]
    cross = ib[IB_CROSS]
    cross_i = ib[IB_CROSS_I]
    plist = ib[IB_PLIST]
    act = ib[IB_ACT]
    in_act = ib[IB_IN_ACT]
    counts = ib[IB_COUNTS]
    tmp = ib[IB_TMP]
    n_act = sc[GS_N_ACT]
    n_src = sc[GS_N_SRC]
    n_e_prev = sc[GS_N_E_PREV]
    n_si_prev = sc[GS_N_SI_PREV]
    inh_zero = sc[GS_INH_ZERO] != 0
    n_exc = sc[GS_N_EXC]
    n_inh = sc[GS_N_INH]
    lat = sc[GS_LAT]
    for tt in range(ch):
        if n_src:
            lat += n_src * (N - 1)
        sp = src if has_inh else e_prev
        n_post = _exc_step_infer(v_e, ref_e, th_e, buf[tt], s_e, cross, sp, n_src, w_lat,
                                 e_one, e_rest, e_reset, e_decay, e_refrac, dt, rnd[tt])
        sk = np.uint64(0)
        if q_pot:
            sk = _step_key(skey, retry * T + t0 + tt)
            _q_vec(v_e, N, e_rest, qp, Q_POTENTIAL, _site_key(sk, SALT_POT_E))
        if has_inh:
            lat += n_e_prev
            if inh_sparse:
                n_act = _activate(plist, n_e_prev, in_act, act, n_act)
                n_si = 0
                for k in range(n_act):
                    j = act[k]
                    e_in = np.float64(e_prev[j] if n_e_prev else 0)    # _flags_from_ref
                    v_i[j], ref_i[j], c = _lif(v_i[j], ref_i[j], w_ei * e_in,
                                               i_th, i_rest, i_reset, i_decay, i_refrac, dt)
                    if c:
                        tmp[n_si] = j
                        n_si += 1
                if q_pot:
                    site = _site_key(sk, SALT_POT_I)
                    for k in range(n_act):
                        j = act[k]
                        v_i[j] = _q(v_i[j], i_rest, qp, Q_POTENTIAL, site, j)
                n_si = _publish_spikes(tmp, n_si, src, cross_i, n_si_prev, i_one)
                n_si_prev = n_si
            else:
                if n_e_prev:
                    for j in range(N):
                        cur_i[j] = w_ei * np.float64(e_prev[j])
                    inh_zero = False
                elif not inh_zero:
                    for j in range(N):
                        cur_i[j] = 0.0
                    inh_zero = True
                n_si = _neuron_step_float(
                    v_i, ref_i, theta_i, cur_i, src, cross_i, i_adaptive, i_one, False,
                    i_rest, i_reset, fp[FP_I_THRESH], i_decay, i_refrac, dt, 0.0, 0.0, 0)
                if q_pot:
                    _q_vec(v_i, N, i_rest, qp, Q_POTENTIAL, _site_key(sk, SALT_POT_I))
            n_inh += n_si
            n_src = n_si
            for q in range(n_post):
                plist[q] = cross[q]
            n_e_prev = n_post
        else:
            n_src = n_post
        s_e, e_prev = e_prev, s_e
        swap = 1 - swap
        for q in range(n_post):
            counts[cross[q]] += 1
        n_exc += n_post
    sc[GS_N_ACT] = n_act
    sc[GS_N_SRC] = n_src
    sc[GS_N_E_PREV] = n_e_prev
    sc[GS_N_SI_PREV] = n_si_prev
    sc[GS_INH_ZERO] = np.int64(inh_zero)
    sc[GS_N_EXC] = n_exc
    sc[GS_N_INH] = n_inh
    sc[GS_LAT] = lat
    sc[GS_SWAP] = swap


@njit(cache=True, boundscheck=False)
def _group_end_float(ip, sc, ops, N):
    """The counters ``_present_infer`` adds at the end of a presentation; returns its spikes."""
    T = ip[IP_T]
    ops[OP_PRESENTATIONS] += 1
    ops[OP_TIME_STEPS] += T
    ops[OP_NEURON_EXC] += T * N
    if ip[IP_HAS_INH] != 0:
        ops[OP_NEURON_INH] += T * N
        ops[OP_INH_SPIKES] += sc[GS_N_INH]
    ops[OP_INPUT_SPIKES] += sc[GS_N_INPUT]
    ops[OP_EXC_SPIKES] += sc[GS_N_EXC]
    ops[OP_SYNAPTIC] += sc[GS_N_INPUT] * N
    ops[OP_LATERAL] += sc[GS_LAT]
    return sc[GS_N_EXC]


@njit(cache=True, parallel=True, boundscheck=False)
def infer_batch_group(wu, wmap, theta, images, skeys, rate_units, fp, ip, qp, ops_per_sample,
                      counts, n_threads, cur_proto):
    """Float inference of K networks on one batch (``infer_batch_tiled`` of each, N >= 2), the
    input spikes drawn once: ``wu`` [U, n_in, N] the distinct weight matrices, ``wmap`` [K]
    network -> matrix, ``theta`` [K, N], ``fp`` [K, N_FP], ``ip`` [K, N_IP] (the same T and
    retries for all), ``qp`` [K, N_QG, N_QF]; ``ops_per_sample`` [K, B, N_OPS], ``counts``
    [K, B, N]."""
    U, n_in, N = wu.shape
    K = wmap.shape[0]
    B = images.shape[0]
    T = ip[0, IP_T]
    CH = max(1, min(T, INFER_STEPS))
    nth = max(1, min(B, n_threads))
    fb = np.zeros((nth, K, N_FB, N))
    ib = np.zeros((nth, K, N_IB, N), dtype=WORK_INT)
    sc = np.zeros((nth, K, N_GS), dtype=np.int64)
    need = np.zeros((nth, U), dtype=np.int64)
    nzb = np.zeros((nth, n_in), dtype=np.int32)
    thb = np.zeros((nth, n_in), dtype=np.uint32)
    imb = np.zeros((nth, n_in), dtype=np.uint32)
    frb = np.zeros((nth, n_in + DRAW_SCRATCH), dtype=np.uint32)
    lstb = np.zeros((nth, CH * n_in + 1), dtype=np.int32)
    offb = np.zeros((nth, CH + 1), dtype=np.int64)
    rndb = np.zeros((nth, CH), dtype=np.int64)
    bufb = np.zeros((nth, U, CH, N), dtype=cur_proto.dtype)
    inh_sparse = np.zeros(K, dtype=np.bool_)
    for k in range(K):
        inh_sparse[k] = ip[k, IP_HAS_INH] != 0 and _inh_sparse_ok(fp[k], ip[k], qp[k])
        adaptive = ip[k, IP_E_ADAPTIVE] != 0
        for tid in range(nth):
            for j in range(N):
                fb[tid, k, FB_TH_E, j] = ((fp[k, FP_E_THRESH] + theta[k, j]) if adaptive
                                          else fp[k, FP_E_THRESH])
    n_pres = ip[0, IP_MAX_RETRIES] + 1
    for tid in prange(nth):
        for b in range(tid, B, nth):
            skey = np.uint64(skeys[b])
            for k in range(K):
                sc[tid, k, GS_LIVE] = 1
            for retry in range(n_pres):
                n_live = 0
                for u in range(U):
                    need[tid, u] = 0
                for k in range(K):
                    if sc[tid, k, GS_LIVE]:
                        n_live += 1
                        need[tid, wmap[k]] = 1
                        _group_start(fp[k, FP_E_REST], fp[k, FP_I_REST], fb[tid, k], ib[tid, k],
                                     sc[tid, k], T)
                if n_live == 0:
                    break
                n_nz = _setup_inputs_u32(images[b], rate_units[retry], nzb[tid], thb[tid],
                                         imb[tid])
                for t0 in range(0, T, CH):
                    ch = min(CH, T - t0)
                    n_chunk = _draw_steps(skey, retry * T + t0, ch, n_nz, nzb[tid], thb[tid],
                                          imb[tid], frb[tid], lstb[tid], offb[tid], rndb[tid])
                    for u in range(U):
                        if need[tid, u]:
                            _accumulate(wu[u], lstb[tid], offb[tid], ch, bufb[tid, u])
                    for k in range(K):
                        if sc[tid, k, GS_LIVE]:
                            sc[tid, k, GS_N_INPUT] += n_chunk
                            _group_chunk_float(bufb[tid, wmap[k]], ch, t0, skey, retry, fp[k],
                                               ip[k], qp[k], fb[tid, k], ib[tid, k], sc[tid, k],
                                               rndb[tid], inh_sparse[k])
                for k in range(K):
                    if sc[tid, k, GS_LIVE]:
                        n_exc = _group_end_float(ip[k], sc[tid, k], ops_per_sample[k, b], N)
                        if n_exc >= ip[k, IP_RETRY_MIN]:
                            sc[tid, k, GS_LIVE] = 0
            for k in range(K):
                ops_per_sample[k, b, OP_SAMPLES] += 1
                for j in range(N):
                    counts[k, b, j] = ib[tid, k, IB_COUNTS, j]


@njit(cache=True, boundscheck=False)
def _group_start_int(ib, st, sums, n_classes, sc, T):
    """A network's integer presentation state at the start (``_present_int_tiled``'s first
    loops) and ``sc`` zeroed."""
    N = ib.shape[1]
    for j in range(N):
        st[0, j] = 0
        st[1, j] = 0
        st[2, j] = 0
        st[3, j] = 0
        st[4, j] = 0
        ib[IB_SE_A, j] = 0
        ib[IB_SE_B, j] = 0
        ib[IB_SRC, j] = 0
        ib[IB_IN_ACT, j] = 0
        ib[IB_COUNTS, j] = 0
    for c in range(n_classes):
        sums[c] = 0
    for f in range(N_GS):
        sc[f] = 0
    sc[GS_STEPS] = T
    sc[GS_LIVE] = 1


@borrowing
def _group_chunk_int(buf, ch, t0, n_chunk, off, lp, mp, th_e, th_i, ib, st, sc, rnd,
                     inh_sparse, assignments, n_eff, sums):
    """Steps ``t0 .. t0 + ch - 1`` of one network's integer presentation on the summed codes
    ``buf[:ch]``: the step loop of ``_present_int_tiled``, early exit included, its scalars
    kept in ``sc``. After an exit ``sc[GS_STEPS] < T`` and ``sc[GS_LIVE]`` is 0."""
    N = ib.shape[1]
    T = mp[MP_T]
    has_inh = mp[MP_HAS_INH] != 0
    shift = lp[0, LP_V_FRAC] - mp[MP_W_FRAC]
    lsh = shift if shift > 0 else 0
    rsh = -shift if shift < 0 else 0
    lateral = mp[MP_LATERAL]
    e2i = mp[MP_EXC_TO_INH]
    decay = lp[0, LP_DECAY]
    fd = lp[0, LP_DECAY_FRAC]
    bias = lp[0, LP_BIAS]
    umin = lp[0, LP_U_MIN]
    umax = lp[0, LP_U_MAX]
    reset = lp[0, LP_RESET]
    refrac = lp[0, LP_REFRAC]
    e_one = lp[0, LP_ONE_SPIKE] != 0
    i_one = lp[1, LP_ONE_SPIKE] != 0
    i_decay = lp[1, LP_DECAY]
    i_fd = lp[1, LP_DECAY_FRAC]
    i_bias = lp[1, LP_BIAS]
    i_umin = lp[1, LP_U_MIN]
    i_umax = lp[1, LP_U_MAX]
    i_reset = lp[1, LP_RESET]
    i_refrac = lp[1, LP_REFRAC]
    margin = mp[MP_EXIT_MARGIN]
    exit_on = margin > 0
    retry_min = mp[MP_RETRY_MIN]
    n_classes = mp[MP_N_CLASSES]
    u = st[0]
    ref = st[1]
    ui = st[2]
    ref_i = st[3]
    cur_i = st[4]
    swap = sc[GS_SWAP]
    s_e = ib[IB_SE_B] if swap else ib[IB_SE_A]
    e_prev = ib[IB_SE_A] if swap else ib[IB_SE_B]
    src = ib[IB_SRC]
    cross = ib[IB_CROSS]
    cross_i = ib[IB_CROSS_I]
    plist = ib[IB_PLIST]
    act = ib[IB_ACT]
    in_act = ib[IB_IN_ACT]
    counts = ib[IB_COUNTS]
    tmp = ib[IB_TMP]
    n_assigned = sc[GS_N_ASSIGNED]
    n_act = sc[GS_N_ACT]
    n_src = sc[GS_N_SRC]
    n_e_prev = sc[GS_N_E_PREV]
    n_si_prev = sc[GS_N_SI_PREV]
    n_exc = sc[GS_N_EXC]
    steps = T
    for tt in range(ch):
        cur = buf[tt]
        sp = src if has_inh else e_prev
        nc = 0
        for j in range(N):
            cj = (np.int64(cur[j]) << lsh) >> rsh
            if n_src:
                cj += lateral * (n_src - sp[j])
            u[j], ref[j], c = _lif_int(u[j], ref[j], cj, th_e[j], decay, bias, fd, umin, umax,
                                       reset, refrac)
            s_e[j] = np.int64(c)
            nc += np.int64(c)
        n_post = 0
        if nc:
            n_post = _gather_spikes(s_e, nc, cross, e_one, rnd[tt])
        if has_inh:
            if inh_sparse:
                n_act = _activate(plist, n_e_prev, in_act, act, n_act)
                n_si = 0
                for k in range(n_act):
                    j = act[k]
                    ui[j], ref_i[j], c = _lif_int(ui[j], ref_i[j], e2i * e_prev[j], th_i[j],
                                                  i_decay, i_bias, i_fd, i_umin, i_umax,
                                                  i_reset, i_refrac)
                    if c:
                        tmp[n_si] = j
                        n_si += 1
                n_si = _publish_spikes(tmp, n_si, src, cross_i, n_si_prev, i_one)
                n_si_prev = n_si
            else:
                for j in range(N):
                    cur_i[j] = e2i * e_prev[j]
                n_si = _layer_step_int(ui, ref_i, cur_i, th_i, src, cross_i, lp, 1, 0)
            n_src = n_si
            for q in range(n_post):
                plist[q] = cross[q]
            n_e_prev = n_post
        else:
            n_src = n_post
        s_e, e_prev = e_prev, s_e
        swap = 1 - swap
        for q in range(n_post):
            counts[cross[q]] += 1
        n_exc += n_post
        if exit_on and n_post:
            n_assigned += n_post
            for q in range(n_post):
                a = assignments[cross[q]]
                if a >= 0 and a < n_classes:
                    sums[a] += 1
            if n_assigned >= retry_min and _exit_reached(sums, n_eff, n_classes, margin):
                steps = t0 + tt + 1
                break
    if steps < T:
        sc[GS_N_INPUT] += off[steps - t0]
        sc[GS_STEPS] = steps
        sc[GS_LIVE] = 0
    else:
        sc[GS_N_INPUT] += n_chunk
    sc[GS_N_ASSIGNED] = n_assigned
    sc[GS_N_ACT] = n_act
    sc[GS_N_SRC] = n_src
    sc[GS_N_E_PREV] = n_e_prev
    sc[GS_N_SI_PREV] = n_si_prev
    sc[GS_N_EXC] = n_exc
    sc[GS_SWAP] = swap


@njit(cache=True, parallel=True, boundscheck=False)
def infer_int_batch_group(wu, acc_proto, wmap, images, skeys, rate_units, lp, mp, th_e, th_i,
                          assignments, sizes, counts, preds, ops, n_threads, chunk):
    """Integer inference of K models on one batch (``infer_int_batch_tiled`` of each), the
    input spikes drawn once: ``wu`` [U, n_in, N] the distinct weight-code matrices (one narrow
    type, ``acc_proto`` the accumulation type valid for all), ``wmap`` [K] model -> matrix,
    ``lp`` [K, 2, N_LP], ``mp`` [K, N_MP] (the same T for all), ``th_e`` / ``th_i`` /
    ``assignments`` [K, N], ``sizes`` [K, C]; ``counts`` [K, B, N], ``preds`` [K, B], ``ops``
    [K, B, N_IO]."""
    U, n_in, N = wu.shape
    K = wmap.shape[0]
    B = images.shape[0]
    T = mp[0, MP_T]
    CH = max(1, min(T, chunk))
    n_rates = rate_units.shape[0]
    C = max(1, sizes.shape[1])
    nth = max(1, min(B, n_threads))
    ib = np.zeros((nth, K, N_IB, N), dtype=WORK_INT)
    stb = np.zeros((nth, K, 5, N), dtype=np.int64)
    sc = np.zeros((nth, K, N_GS), dtype=np.int64)
    done = np.zeros((nth, K), dtype=np.int64)      # 1: the sample needs no more presentations
    need = np.zeros((nth, U), dtype=np.int64)
    nzb = np.zeros((nth, n_in), dtype=np.int32)
    thb = np.zeros((nth, n_in), dtype=np.uint32)
    imb = np.zeros((nth, n_in), dtype=np.uint32)
    frb = np.zeros((nth, n_in + DRAW_SCRATCH), dtype=np.uint32)
    lstb = np.zeros((nth, CH * n_in + 1), dtype=np.int32)
    offb = np.zeros((nth, CH + 1), dtype=np.int64)
    rndb = np.zeros((nth, CH), dtype=np.int64)
    bufb = np.zeros((nth, U, CH, N), dtype=acc_proto.dtype)
    sumsb = np.zeros((nth, K, C), dtype=np.int64)
    n_eff = np.ones((K, C), dtype=np.int64)
    inh_sparse = np.zeros(K, dtype=np.bool_)
    for k in range(K):
        for c in range(mp[k, MP_N_CLASSES]):
            if sizes[k, c] > 0:
                n_eff[k, c] = sizes[k, c]
        i_fd = lp[k, 1, LP_DECAY_FRAC]
        if (mp[k, MP_HAS_INH] != 0 and lp[k, 1, LP_U_MIN] <= 0 <= lp[k, 1, LP_U_MAX]
                and 0 <= i_fd < 63 and 0 <= lp[k, 1, LP_BIAS] < (1 << i_fd)):
            inh_sparse[k] = True
            for j in range(N):
                if th_i[k, j] <= 0:
                    inh_sparse[k] = False
    for tid in prange(nth):
        for b in range(tid, B, nth):
            skey = np.uint64(skeys[b])
            n_pix = 0
            for i in range(n_in):
                if images[b, i] != 0:
                    n_pix += 1
            for k in range(K):
                done[tid, k] = 0
            for retry in range(n_rates):
                n_live = 0
                for k in range(K):
                    if not done[tid, k]:
                        n_live += 1
                        _group_start_int(ib[tid, k], stb[tid, k], sumsb[tid, k],
                                         mp[k, MP_N_CLASSES], sc[tid, k], T)
                if n_live == 0:
                    break
                n_nz = _setup_inputs_u32(images[b], rate_units[retry], nzb[tid], thb[tid],
                                         imb[tid])
                for t0 in range(0, T, CH):
                    ch = min(CH, T - t0)
                    n_run = 0
                    for u in range(U):
                        need[tid, u] = 0
                    for k in range(K):
                        if not done[tid, k] and sc[tid, k, GS_LIVE]:
                            n_run += 1
                            need[tid, wmap[k]] = 1
                    if n_run == 0:      # every model still in the sample exited early
                        break
                    n_chunk = _draw_steps(skey, retry * T + t0, ch, n_nz, nzb[tid], thb[tid],
                                          imb[tid], frb[tid], lstb[tid], offb[tid], rndb[tid])
                    for u in range(U):
                        if need[tid, u]:
                            _accumulate(wu[u], lstb[tid], offb[tid], ch, bufb[tid, u])
                    for k in range(K):
                        if not done[tid, k] and sc[tid, k, GS_LIVE]:
                            _group_chunk_int(bufb[tid, wmap[k]], ch, t0, n_chunk, offb[tid],
                                             lp[k], mp[k], th_e[k], th_i[k], ib[tid, k],
                                             stb[tid, k], sc[tid, k], rndb[tid], inh_sparse[k],
                                             assignments[k], n_eff[k], sumsb[tid, k])
                for k in range(K):
                    if done[tid, k]:
                        continue
                    o = ops[k, b]
                    steps = sc[tid, k, GS_STEPS]
                    n_exc = sc[tid, k, GS_N_EXC]
                    o[IO_PRESENTATIONS] += 1
                    o[IO_STEPS] += steps
                    o[IO_DRAWS] += steps * n_pix
                    o[IO_INPUT_SPIKES] += sc[tid, k, GS_N_INPUT]
                    o[IO_EXC_SPIKES] += n_exc
                    o[IO_EXIT_EARLY] += np.int64(steps < T)
                    if n_exc >= mp[k, MP_RETRY_MIN]:
                        done[tid, k] = 1
            for k in range(K):
                for j in range(N):
                    counts[k, b, j] = ib[tid, k, IB_COUNTS, j]
                preds[k, b] = _classify_int(counts[k, b], assignments[k], sizes[k],
                                            mp[k, MP_N_CLASSES], sumsb[tid, k])
