"""Statistics of accuracies: over training seeds, and paired on the same test samples.

With 1,000 test samples the standard error of one accuracy is about 1.1 points, so a single
seed cannot say whether a quantized model is within 1 point of its float model. Two tools:

- ``mean_ci``: the mean of per-seed accuracies and its two-sided Student-t confidence interval
  (the spread of training and of the seed's test split, K - 1 degrees of freedom).
- ``paired_difference``: candidate vs reference on the *same* test samples, each seed paired with
  its own reference (the float model of that seed). The mean over seeds of the per-seed accuracy
  difference, a stratified paired bootstrap of it (each seed's test samples resampled with
  replacement), and the exact McNemar test of the discordant samples pooled over seeds.

Per-sample correctness travels in results rows as a hex bitmap per seed (``pack_correct``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import InputError

#: the confidence every figure and decision uses unless told otherwise
CONFIDENCE = 0.95
#: bootstrap resamples (multinomial draws per seed: cheap, and 20,000 put the 5 % quantile's
#: Monte Carlo error well under 0.1 points at 1,000 samples)
RESAMPLES = 20_000
#: the most test samples one bitmap may declare (checked before anything is allocated)
MAX_SAMPLES = 100_000_000


def _check_confidence(confidence: float) -> float:
    c = float(confidence)
    if not 0.5 <= c < 1.0:
        raise InputError(f"confidence must be in 0.5..1 (e.g. 0.95), got {confidence!r}")
    return c


def mean_ci(values, confidence: float = CONFIDENCE) -> tuple[float, tuple[float, float] | None]:
    """The mean of ``values`` and its two-sided Student-t ``confidence`` interval; the interval
    is None for a single value (no spread to measure)."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise InputError(f"mean_ci needs a non-empty list of finite numbers, got {values!r}")
    mean = float(x.mean())
    if x.size < 2:
        return mean, None
    half = float(stats.t.ppf(0.5 + _check_confidence(confidence) / 2, x.size - 1)
                 * x.std(ddof=1) / math.sqrt(x.size))
    return mean, (mean - half, mean + half)


def accuracy_summary(accuracies, confidence: float = CONFIDENCE) -> dict:
    """The row fields of an accuracy over seeds: ``accuracy`` (mean), ``accuracy_ci`` ([low,
    high], clipped to 0..1; only for two seeds or more) and ``accuracy_seeds``."""
    mean, ci = mean_ci(accuracies, confidence)
    out = {"accuracy": mean, "accuracy_seeds": [float(a) for a in accuracies]}
    if ci is not None:
        out["accuracy_ci"] = [max(0.0, ci[0]), min(1.0, ci[1])]
    return out


def pack_correct(correct) -> str:
    """Per-sample correctness (booleans, sample order) as hex: bit 7 of the first byte is
    sample 0; the last byte's unused bits are 0."""
    return np.packbits(np.asarray(correct, dtype=bool)).tobytes().hex()


def unpack_correct(text, n, what: str = "bitmap") -> np.ndarray:
    """The booleans of ``pack_correct``'s ``text`` for ``n`` samples; a length, character or
    padding that does not fit is an ``InputError`` naming ``what``."""
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_SAMPLES:
        raise InputError(f"{what}: the number of test samples is {n!r}, not an integer in "
                         f"1..{MAX_SAMPLES}")
    if not isinstance(text, str):
        raise InputError(f"{what} is a {type(text).__name__}, not a hex string")
    size = (n + 7) // 8
    if len(text) != 2 * size:          # before any decoding: a short or long one is damaged
        raise InputError(f"{what} has {len(text)} hex digits; {n} samples need {2 * size}")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise InputError(f"{what} is not hex") from None
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))
    if bits[n:].any():
        raise InputError(f"{what} has bits set past its {n} samples (damaged)")
    return bits[:n].astype(bool)


@dataclass
class McNemar:
    """The exact McNemar test of two classifiers on the same samples: ``only_a`` samples only
    the first got right, ``only_b`` only the second; ``p`` two-sided (equal accuracy)."""
    only_a: int
    only_b: int
    p: float


def mcnemar_exact(pairs) -> McNemar:
    """Exact (binomial) McNemar test over ``pairs`` of boolean vectors ``(a, b)``, one pair per
    seed, each on that seed's test samples; the discordant counts are pooled over the pairs
    (under equal accuracy each discordant sample is either way with probability 1/2, whatever
    its seed)."""
    from scipy import stats

    only_a = only_b = 0
    for a, b in pairs:
        a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
        if a.shape != b.shape or a.ndim != 1:
            raise InputError(f"paired vectors of {a.shape} and {b.shape} samples do not match")
        only_a += int(np.sum(a & ~b))
        only_b += int(np.sum(~a & b))
    n = only_a + only_b
    p = 1.0 if n == 0 else float(stats.binomtest(only_a, n, 0.5).pvalue)
    return McNemar(only_a, only_b, min(1.0, p))


@dataclass
class PairedDifference:
    """Candidate minus reference accuracy, mean over seeds, with a one-sided lower and upper
    bound and a two-sided interval at ``confidence`` (stratified paired bootstrap)."""
    mean: float
    lower: float            # one-sided: P(difference >= lower) = confidence
    upper: float            # one-sided: P(difference <= upper) = confidence
    interval: tuple[float, float]
    confidence: float
    seeds: int
    samples: int            # test samples over all seeds
    resamples: int
    mcnemar: McNemar


def _stratified_bootstrap(cells, resamples: int, rng_seed: int) -> np.ndarray:
    """Bootstrap distribution of the mean over strata of a per-sample score in {+1, -1, 0}:
    ``cells`` holds per stratum (n_plus, n_minus, n). Resampling a stratum's n samples with
    replacement draws its three counts from a multinomial, so no sample vector is built."""
    rng = np.random.default_rng(rng_seed)
    total = np.zeros(resamples)
    for plus, minus, n in cells:
        probs = [plus / n, minus / n, (n - plus - minus) / n]
        draws = rng.multinomial(n, probs, size=resamples)
        total += (draws[:, 0] - draws[:, 1]) / n
    return total / len(cells)


def paired_difference(pairs, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                      rng_seed: int = 0) -> PairedDifference:
    """``pairs``: ``(candidate, reference)`` boolean vectors per seed, on that seed's test
    samples. Deterministic for a given ``rng_seed``."""
    confidence = _check_confidence(confidence)
    pairs = [(np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)) for a, b in pairs]
    if not pairs:
        raise InputError("a paired test needs at least one seed")
    cells = []
    for a, b in pairs:
        if a.shape != b.shape or a.ndim != 1 or a.size == 0:
            raise InputError(f"paired vectors of {a.shape} and {b.shape} samples do not match")
        cells.append((int(np.sum(a & ~b)), int(np.sum(~a & b)), a.size))
    mean = float(np.mean([(p - m) / n for p, m, n in cells]))
    dist = _stratified_bootstrap(cells, resamples, rng_seed)
    alpha = 1.0 - confidence
    lower, upper = (float(v) for v in np.quantile(dist, [alpha, 1 - alpha]))
    lo2, hi2 = (float(v) for v in np.quantile(dist, [alpha / 2, 1 - alpha / 2]))
    # quantiles of a bootstrap around the observed mean can sit a rounding step off it
    return PairedDifference(mean, min(lower, mean), max(upper, mean), (min(lo2, mean),
                            max(hi2, mean)), confidence, len(cells), sum(c[2] for c in cells),
                            resamples, mcnemar_exact(pairs))


def accuracy_bounds(vectors, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                    rng_seed: int = 0) -> tuple[float, float, float]:
    """Mean over seeds of the accuracy of per-seed correctness ``vectors`` and its one-sided
    lower and upper bounds at ``confidence`` (stratified bootstrap over the test samples)."""
    confidence = _check_confidence(confidence)
    cells = []
    for v in vectors:
        v = np.asarray(v, dtype=bool)
        if v.ndim != 1 or v.size == 0:
            raise InputError(f"a correctness vector of shape {v.shape}")
        cells.append((int(v.sum()), 0, v.size))
    if not cells:
        raise InputError("an accuracy bound needs at least one seed")
    mean = float(np.mean([p / n for p, _, n in cells]))
    dist = _stratified_bootstrap(cells, resamples, rng_seed)
    lower, upper = (float(v) for v in np.quantile(dist, [1 - confidence, confidence]))
    return mean, min(lower, mean), max(upper, mean)
