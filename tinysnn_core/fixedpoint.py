"""Fixed-point semantics, defined once.

A :class:`QFormat` ``Qm.n`` has ``m`` integer bits and ``n`` fraction bits; a signed format adds
one sign bit (two's complement).  The grid step is ``2**-n``; the integer *code* of a value is
``value / step``.  Ranges:

- unsigned ``uQm.n`` (``bits = m + n``): codes ``[0, 2**bits - 1]``;
- signed ``sQm.n`` (``bits = 1 + m + n``): codes ``[-2**(bits-1), 2**(bits-1) - 1]``.

``quantize`` rounds with a rounding-scheme plugin (truncation, nearest, stochastic, or a third
party's) and then saturates to the range.  NaN and infinities are errors, never silent values.
The integer inference arithmetic built on these codes is specified in ``docs/fixed-point.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

MIN_BITS, MAX_BITS = 1, 32
_FORMAT_RE = re.compile(r"^\s*([us]?)q(\d+)\.(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class QFormat:
    """A fixed-point format: ``int_bits`` integer bits, ``frac_bits`` fraction bits, sign."""

    int_bits: int
    frac_bits: int
    signed: bool = False

    def __post_init__(self):
        for label, value in (("int_bits", self.int_bits), ("frac_bits", self.frac_bits)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"QFormat {label} must be a non-negative integer, got {value!r}")
        if not MIN_BITS <= self.bits <= MAX_BITS:
            raise ValueError(
                f"QFormat {self} has a word length of {self.bits} bits; supported word lengths "
                f"are {MIN_BITS} to {MAX_BITS} bits")

    @classmethod
    def parse(cls, text: str | "QFormat") -> "QFormat":
        """Parse ``Q1.6`` / ``uQ0.8`` (unsigned) or ``sQ7.8`` (signed)."""
        if isinstance(text, QFormat):
            return text
        match = _FORMAT_RE.match(str(text))
        if not match:
            raise ValueError(
                f"cannot parse Q-format {text!r}: expected forms like 'Q1.6', 'uQ0.8' or 'sQ7.8'")
        sign, m, n = match.groups()
        return cls(int(m), int(n), signed=sign.lower() == "s")

    @classmethod
    def for_range(cls, lo: float, hi: float, bits: int) -> "QFormat":
        """The format with ``bits`` total bits and the most fraction bits that still covers
        ``[lo, hi]`` (saturating at the top by at most one step)."""
        signed = lo < 0
        magnitude = max(abs(lo), abs(hi), 1e-12)
        int_bits = max(0, int(np.ceil(np.log2(magnitude + 1e-12))))
        frac = bits - int_bits - (1 if signed else 0)
        if frac < 0:
            int_bits += frac
            frac = 0
        return cls(max(int_bits, 0), frac, signed)

    @property
    def bits(self) -> int:
        return self.int_bits + self.frac_bits + (1 if self.signed else 0)

    @property
    def step(self) -> float:
        return 2.0 ** -self.frac_bits

    @property
    def code_min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def code_max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def min(self) -> float:
        return self.code_min * self.step

    @property
    def max(self) -> float:
        return self.code_max * self.step

    def __str__(self) -> str:
        return f"{'s' if self.signed else 'u'}Q{self.int_bits}.{self.frac_bits}"


def check_finite(values, what: str = "values") -> np.ndarray:
    """Return ``values`` as a float64 array, or raise ``ValueError`` naming NaN/inf positions."""
    arr = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        where = np.argwhere(bad)[:3].tolist()
        kind = "NaN" if np.isnan(arr[bad]).any() else "infinity"
        raise ValueError(f"{what} contain {int(bad.sum())} non-finite value(s) ({kind}), "
                         f"first at index {where}; fixed point cannot represent them")
    return arr


def _rounding_fn(rounding):
    if callable(rounding):
        return rounding
    from .registry import get_registry
    from .errors import UnknownPluginError

    try:
        return get_registry().get("rounding", rounding)
    except UnknownPluginError as exc:
        raise ValueError(str(exc)) from None


def round_codes(values, fmt: QFormat | str, rounding="nearest", rng=None) -> np.ndarray:
    """Integer codes (int64) of ``values`` rounded onto ``fmt``'s grid and saturated."""
    fmt = QFormat.parse(fmt)
    arr = check_finite(values)
    fn = _rounding_fn(rounding)
    # a value more than a step outside the range saturates whatever the scheme does; clipped
    # first, a huge finite value (1e308) cannot overflow to infinity when scaled
    arr = np.clip(arr, fmt.min - fmt.step, fmt.max + fmt.step)
    codes = _checked_codes(fn(arr * (2.0 ** fmt.frac_bits), rng), arr.shape, fn)
    return np.clip(codes, fmt.code_min, fmt.code_max).astype(np.int64)


def _checked_codes(codes, shape, fn) -> np.ndarray:
    """A rounding scheme's output, refused unless it is one finite integer per input: the cast
    to int64 would silently truncate a fraction and turn NaN into an arbitrary code."""
    codes = np.asarray(codes)
    problem = None
    if codes.shape != shape:
        problem = f"an array of shape {list(codes.shape)} for an input of shape {list(shape)}"
    elif codes.dtype.kind not in "iuf":
        problem = f"values of dtype {codes.dtype}"
    elif codes.dtype.kind == "f" and codes.size:
        if not np.isfinite(codes).all():
            problem = f"non-finite values (e.g. {codes[~np.isfinite(codes)].flat[0]})"
        elif not np.all(codes == np.floor(codes)):
            problem = f"non-integer values (e.g. {codes[codes != np.floor(codes)].flat[0]})"
    if problem is not None:
        from .errors import PluginError

        raise PluginError(f"rounding scheme {_scheme_name(fn)} returned {problem}; a rounding "
                          "scheme must return one integer-valued, finite number per input")
    return codes


def _scheme_name(fn) -> str:
    """The registered name of rounding function ``fn`` (for an error message)."""
    from .registry import get_registry

    registry = get_registry()
    for name in registry.names("rounding"):
        if registry.get("rounding", name) is fn:
            return repr(name)
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def quantize(values, fmt: QFormat | str, rounding="nearest", rng=None) -> np.ndarray:
    """``values`` put on ``fmt``'s grid with the named rounding scheme, then saturated.

    Returns float64 values that are exact multiples of ``fmt.step`` within ``[fmt.min, fmt.max]``.
    ``rng`` (a ``numpy.random.Generator``) drives stochastic rounding; it is required there.
    """
    fmt = QFormat.parse(fmt)
    return round_codes(values, fmt, rounding, rng).astype(np.float64) * fmt.step


def to_codes(values, fmt: QFormat | str, rounding="nearest", rng=None) -> np.ndarray:
    """Integer codes of ``values`` (rounded and saturated), as int64."""
    return round_codes(values, fmt, rounding, rng)


def from_codes(codes, fmt: QFormat | str) -> np.ndarray:
    """Real values of integer ``codes``; codes outside the format's range are an error."""
    fmt = QFormat.parse(fmt)
    arr = np.asarray(codes)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"codes must be integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < fmt.code_min or arr.max() > fmt.code_max):
        raise ValueError(f"codes outside the range [{fmt.code_min}, {fmt.code_max}] of {fmt}")
    return arr.astype(np.float64) * fmt.step
