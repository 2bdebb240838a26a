"""The EEMBC / MLPerf Tiny dialect of the board protocol, host side (docs/protocol.md, "The
EEMBC / MLPerf Tiny dialect"): a plain frame ``BODY%`` gets the answer that ecosystem's runners
parse. This module is the host's reference for what the firmware computes there: the seed and
sample id of an image loaded alone, and the class scores of the ``m-results-[...]`` line.
"""

from __future__ import annotations

from collections.abc import Sequence

#: An image loaded alone (784 bytes, as the MLPerf Tiny runner sends it) runs with this seed and
#: sample id (firmware/protocol.h): seed 2 is the test stream of run seed 0,
#: ``tinysnn_core.train.stream_seed(0, "test")`` (docs/fixed-point.md, section 5).
IMAGE_ONLY_SEED = 2
IMAGE_ONLY_SAMPLE_ID = 0


def score_decimals(n_neurons: int) -> int:
    """Decimals of a class score: the smallest D with 10^D >= N^2. Two different votes
    S_a/n_a and S_b/n_b (n <= N) differ by at least 1/N^2, so their truncations differ too."""
    d, p = 0, 1
    while p < n_neurons * n_neurons:
        p *= 10
        d += 1
    return d


def class_scores(counts: Sequence[int], assignments: Sequence[int], n_classes: int) -> list[str]:
    """The scores of the ``m-results-[...]`` line, as the firmware prints them: per class the
    mean spike count of its neurons S_c / n_c (the engine's all-activity vote,
    docs/fixed-point.md section 7), 0 for a class without neurons, truncated to
    ``score_decimals(len(counts))`` decimals."""
    if len(counts) != len(assignments):
        raise ValueError(f"{len(counts)} spike counts for {len(assignments)} assignments")
    decimals = score_decimals(len(counts))
    sums, sizes = [0] * n_classes, [0] * n_classes
    for count, cls in zip(counts, assignments):
        if 0 <= int(cls) < n_classes:
            sums[int(cls)] += int(count)
            sizes[int(cls)] += 1
    out = []
    for s, n in zip(sums, sizes):
        whole, rest = (divmod(s, n) if n else (0, 0))
        frac = (rest * 10 ** decimals) // n if n else 0
        out.append(f"{whole}.{frac:0{decimals}d}" if decimals else f"{whole}.")
    return out


def vote(counts: Sequence[int], assignments: Sequence[int], n_classes: int) -> int:
    """The engine's prediction from the same vote, by exact fractions: argmax S_c / n_c, ties to
    the lowest class, a class without neurons scoring 0."""
    sums, sizes = [0] * n_classes, [0] * n_classes
    for count, cls in zip(counts, assignments):
        if 0 <= int(cls) < n_classes:
            sums[int(cls)] += int(count)
            sizes[int(cls)] += 1
    best, best_s, best_n = 0, 0, 1
    for c in range(n_classes):
        s, n = (sums[c], sizes[c]) if sizes[c] else (0, 1)
        if s * best_n > best_s * n:
            best, best_s, best_n = c, s, n
    return best
