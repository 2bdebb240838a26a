"""C code generation: an integer model (``tinysnn_core.intsim.IntegerModel``) becomes
``model_data.c``/``model_data.h`` plus ``engine_config.h``, next to a copy of the portable engine
(``firmware/engine/engine.c``), in one directory that ``make ENGINE_DIR=...`` builds.

Layout of the constants (docs/fixed-point.md section 4):

- weights: row-major by input pixel (the engine adds the rows of the pixels that spike), each row
  packed into 32-bit words made of two 16-bit halves of ``16 // bits`` codes (so a 3-bit model
  stores 10 codes per word, a 4-bit one 8, an 8-bit one 4); the engine adds two weights at once
  into 16-bit lanes (``weight_layout``); a row ends on a word boundary, padding codes are 0;
- per-neuron thresholds ``TH[j]`` in the smallest signed C type holding the potential format;
- scalars (leak, reset, refractory period, inhibition, rates, retry rule) as macros;
- the label assignments and the number of neurons per class.

The generator also decides the integer widths the engine computes with: 32-bit arithmetic where
the bounds of docs/fixed-point.md allow it (computed here from the actual constants), 64-bit
otherwise, so the board computes exactly what ``intsim`` computes with Python integers.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinysnn_core.errors import TinySNNError

from .boards import firmware_dir

ENGINE_NAME = "tinysnn-int-v1"
#: the engine of a model whose neuron model is a plugin's (firmware/engine_generic/, with the
#: plugin's C step compiled in as neuron_step.h; docs/plugins.md, "Neuron models")
GENERIC_ENGINE_NAME = "tinysnn-int-generic-v1"
IMAGE_BYTES = 784
#: the engine's fixed limits (checked by ``check_supported``)
MAX_WEIGHT_BITS = 16
MAX_TIME_STEPS = 65535


class ExportError(TinySNNError):
    """The integer model cannot be expressed by the C engine."""


@dataclass
class CExport:
    """What ``generate`` produced: file texts and the sizes that the fit check needs."""

    files: dict[str, str]
    const_bytes: int          # model constants in flash
    state_bytes: int          # engine state in RAM (static arrays)
    weight_bytes: int
    info: dict = field(default_factory=dict)
    engine: str = ENGINE_NAME  # which engine's sources the files go with

    def write(self, out_dir) -> Path:
        """Write the files and copy the engine sources; returns the engine directory."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        source = engine_source_dir() if self.engine == ENGINE_NAME else generic_engine_dir()
        for src in sorted(source.glob("*.[ch]")):
            shutil.copyfile(src, out / src.name)
        for name, text in self.files.items():
            path = out / name
            if not path.exists() or path.read_text() != text:  # keep mtimes: make stays quiet
                path.write_text(text)
        return out


def engine_source_dir() -> Path:
    return firmware_dir() / "engine"


def generic_engine_dir() -> Path:
    return firmware_dir() / "engine_generic"


def _is_plugin_layer(L) -> bool:
    from tinysnn_core.intsim import NeuronCodes

    return isinstance(L, NeuronCodes)


def engine_name(m) -> str:
    """The engine that runs integer model ``m``: the generic one when its neuron model is a
    plugin's (it reports this name in its profile)."""
    return GENERIC_ENGINE_NAME if _is_plugin_layer(m.exc) else ENGINE_NAME


def _c_int(v: int, width: int = 32) -> str:
    """A C integer constant expression of exactly the value ``v`` (signed)."""
    v = int(v)
    if width <= 32:
        if v == -(1 << 31):
            return "(-2147483647 - 1)"
        return str(v)
    if v == -(1 << 63):
        return "(-INT64_C(9223372036854775807) - 1)"
    return f"INT64_C({v})"


def _ctype_signed(lo: int, hi: int) -> str:
    for bits in (8, 16, 32):
        if -(1 << (bits - 1)) <= lo and hi < (1 << (bits - 1)):
            return f"int{bits}_t"
    return "int64_t"


def _ctype_unsigned(hi: int) -> str:
    for bits in (8, 16, 32):
        if hi < (1 << bits):
            return f"uint{bits}_t"
    return "uint64_t"


def weight_layout(bits: int, n: int) -> tuple[int, int]:
    """(codes per 16-bit half word, 32-bit words per input row) for ``bits``-bit weights.

    Each 32-bit word holds two 16-bit halves of ``16 // bits`` codes each: the engine can then
    add ``(word >> (bits * i)) & (mask | mask << 16)`` into one 32-bit accumulator holding two
    16-bit lanes (SIMD within a register), two weights per add."""
    half = 16 // bits
    return half, -(-n // (2 * half))


def pack_weights(w_codes: np.ndarray, bits: int) -> tuple[np.ndarray, int, int]:
    """Pack ``[n_inputs, N]`` unsigned codes row by row into uint32 words: neuron
    ``j = 2*half*w + half*h + i`` of a row sits in word ``w``, half ``h``, bits
    ``16*h + bits*i``. Returns (words [n_inputs * words_per_row], half, words_per_row)."""
    half, wpr = weight_layout(bits, w_codes.shape[1])
    n_in, n = w_codes.shape
    codes = np.zeros((n_in, wpr * 2 * half), dtype=np.uint64)
    codes[:, :n] = w_codes
    codes = codes.reshape(n_in, wpr, 2, half)
    shifts = (16 * np.arange(2, dtype=np.uint64)[:, None]
              + np.uint64(bits) * np.arange(half, dtype=np.uint64)[None, :])[None, None]
    words = np.bitwise_or.reduce((codes << shifts).reshape(n_in, wpr, 2 * half), axis=2)
    return words.astype(np.uint32).reshape(-1), half, wpr


def unpack_weights(words: np.ndarray, bits: int, n_inputs: int, n: int) -> np.ndarray:
    """Inverse of ``pack_weights`` (for tests)."""
    half, wpr = weight_layout(bits, n)
    w = np.asarray(words, dtype=np.uint64).reshape(n_inputs, wpr, 1, 1)
    shifts = (16 * np.arange(2, dtype=np.uint64)[:, None]
              + np.uint64(bits) * np.arange(half, dtype=np.uint64)[None, :])[None, None]
    codes = (w >> shifts) & np.uint64((1 << bits) - 1)
    return codes.reshape(n_inputs, wpr * 2 * half)[:, :n].astype(np.int64)


def check_supported(m) -> None:
    """Refuse, with the reason, what the engine does not implement."""
    why = []
    if m.n_inputs != IMAGE_BYTES:
        why.append(f"{m.n_inputs} inputs (the firmware takes 28x28 = {IMAGE_BYTES} pixels)")
    if m.w_format.signed:
        why.append(f"signed weight format {m.w_format}")
    if m.w_format.bits > MAX_WEIGHT_BITS:
        why.append(f"{m.w_format.bits}-bit weights (the engine packs at most "
                   f"{MAX_WEIGHT_BITS} bits; quantize the weights group)")
    if not 1 <= m.time_steps <= MAX_TIME_STEPS:
        why.append(f"T = {m.time_steps} steps (1..{MAX_TIME_STEPS}: spike counts are uint16)")
    if m.n_neurons > 65535:
        why.append(f"{m.n_neurons} neurons")
    if m.n_classes > 255:
        why.append(f"{m.n_classes} classes")
    layers = [("exc", m.exc)] + ([("inh", m.inh)] if m.inh is not None else [])
    if any(_is_plugin_layer(L) for _, L in layers):
        why += _plugin_problems(m)
        layers = []
    for name, L in layers:
        if L.u_max - L.u_min >= (1 << 32):
            why.append(f"{name} potential wider than 32 bits")
        if not 0 <= L.decay_frac <= 32 or not 0 <= L.decay < (1 << 32):
            why.append(f"{name} leak factor {L.decay} / 2^{L.decay_frac}")
        if not 0 <= L.refrac <= 65535:
            why.append(f"{name} refractory period {L.refrac}")
    if np.any(np.asarray(m.rate_units, dtype=np.uint64) * np.uint64(255) >= np.uint64(1 << 32)):
        why.append("encoder rate units whose product with 255 does not fit 32 bits")
    if not 0 <= int(getattr(m, "exit_margin", 0)) <= 65535:
        why.append(f"early-exit margin {m.exit_margin} (0..65535)")
    if len(m.rate_units) > 255:
        why.append(f"{len(m.rate_units)} presentations")
    if why:
        raise ExportError("the C engine cannot run this integer model: " + "; ".join(why))


def _plugin_problems(m) -> list[str]:
    """What the generic engine cannot run (a plugin neuron model's integer model)."""
    why = []
    if m.inh is not None:
        why.append("an inhibitory layer with a plugin neuron model (the generic engine has "
                   "direct lateral inhibition only: topology 'tinysnn')")
    L = m.exc
    if not _is_plugin_layer(L):
        why.append("a plugin neuron model in the inhibitory layer only")
        return why
    if L.u_min < -(1 << 31) or L.u_max >= (1 << 31):
        why.append("exc potential wider than 32 bits")
    if not 0 <= L.refrac < (1 << 31):
        why.append(f"exc refractory period {L.refrac}")
    if c_step_source(L.model) is None:
        why.append(f"neuron model {L.model!r} ships no C step (its class has no c_step; "
                   "docs/plugins.md, 'Neuron models')")
    return why


def c_step_source(model: str) -> str | None:
    """The C step that neuron model ``model`` ships (its class's ``c_step``: a path of a C
    file, or its text), or None."""
    from tinysnn_core.intsim import neuron_class

    step = getattr(neuron_class(model), "c_step", None)
    if step is None:
        return None
    if isinstance(step, Path) or (isinstance(step, str) and "\n" not in step
                                  and step.endswith((".h", ".c"))):
        path = Path(step)
        if not path.is_file():
            raise ExportError(f"neuron model {model!r}: its C step {path} does not exist")
        return path.read_text()
    return str(step)


def model_name(text: str) -> str:
    """An ASCII name safe for the protocol (no spaces, no '%', no '@')."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")
    return (name or "model")[:48]


def model_digest(m) -> str:
    """A short hash of everything the engine computes with (for caching and result files)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(m.w_codes, dtype=np.int64).tobytes())
    for L in (m.exc, m.inh):
        if L is None:
            h.update(b"none")
            continue
        h.update(np.ascontiguousarray(L.thresh, dtype=np.int64).tobytes())
        if _is_plugin_layer(L):  # a plugin's model: its constants and its C step's source
            h.update(repr((L.model, L.v_frac, L.u_min, L.u_max, L.reset, L.refrac, L.one_spike,
                           sorted(L.constants.items()), c_step_source(L.model))).encode())
            continue
        h.update(repr((L.v_frac, L.u_min, L.u_max, L.decay, L.decay_frac, L.decay_round, L.reset,
                       L.refrac, L.one_spike)).encode())
    h.update(repr((m.time_steps, m.lateral, m.exc_to_inh, [int(r) for r in m.rate_units],
                   m.retry_min_spikes, str(m.w_format), m.n_classes,
                   int(getattr(m, "exit_margin", 0)))).encode())
    h.update(np.ascontiguousarray(m.assignments, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def _sat_bits(lo: int, hi: int) -> int:
    """b when [lo, hi] is the range of b-bit two's complement (1..32), else 0."""
    b = int(hi).bit_length() + 1
    return b if 1 <= b <= 32 and lo == -(1 << (b - 1)) and hi == (1 << (b - 1)) - 1 else 0


def _layer_macros(prefix: str, L, bound_extra: int) -> tuple[list[str], dict]:
    """Macros of one population; returns (lines, info) with the widths the engine needs."""
    bias = (1 << (L.decay_frac - 1)) if (L.decay_round and L.decay_frac > 0) else 0
    umag = max(abs(L.u_min), abs(L.u_max))
    # u + cur before the clamp (the leak never grows |u| by more than 1 step)
    pre_clamp = umag + 1 + bound_extra
    leak_prod = umag * L.decay + bias
    th = np.asarray(L.thresh, dtype=np.int64)
    uniform = bool(th.size and (th == th[0]).all())
    lines = [
        f"#define {prefix}_U_MIN {_c_int(L.u_min)}",
        f"#define {prefix}_U_MAX {_c_int(L.u_max)}",
        f"#define {prefix}_D {int(L.decay)}u",
        f"#define {prefix}_FD {int(L.decay_frac)}",
        f"#define {prefix}_ROUND_BIAS {bias}u  /* {'round half up' if bias else 'floor'} */",
        f"#define {prefix}_RESET {_c_int(L.reset)}",
        f"#define {prefix}_REFRAC {int(L.refrac)}u",
        f"#define {prefix}_ONE_SPIKE {1 if L.one_spike else 0}",
        f"#define {prefix}_LEAK64 {1 if leak_prod >= (1 << 31) or L.decay_frac >= 31 else 0}",
        f"#define {prefix}_V64 {1 if pre_clamp >= (1 << 31) else 0}",
        f"#define {prefix}_TH_UNIFORM {1 if uniform else 0}",
        # the clamp as a signed saturation to this many bits (0: the range is not of that form)
        f"#define {prefix}_U_BITS {_sat_bits(L.u_min, L.u_max)}",
    ]
    if uniform:
        lines.append(f"#define {prefix}_TH_VALUE {_c_int(int(th[0]))}")
    return lines, {"uniform_th": uniform, "v64": pre_clamp >= (1 << 31),
                   "u_type": _ctype_signed(L.u_min, L.u_max),
                   "th_type": _ctype_signed(int(th.min(initial=0)), int(th.max(initial=0))),
                   "ref_type": _ctype_unsigned(int(L.refrac))}


def _array(ctype: str, name: str, values, per_line: int = 12, fmt=str) -> str:
    vals = [fmt(int(v)) for v in values]
    rows = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    body = ",\n    ".join(rows)
    return f"const {ctype} {name}[{len(vals)}] = {{\n    {body}\n}};\n"


def _checked_weights(m) -> np.ndarray:
    """The weight codes as int64, refused unless they are [inputs, neurons] in their format."""
    bits = int(m.w_format.bits)
    w_codes = np.asarray(m.w_codes, dtype=np.int64)
    if w_codes.shape != (int(m.n_inputs), int(m.n_neurons)) or w_codes.min(initial=0) < 0 or \
            w_codes.max(initial=0) >= (1 << bits):
        raise ExportError("weight codes outside their unsigned format")
    return w_codes


def generate(m, name: str = "model") -> CExport:
    """The C sources of integer model ``m`` (for the generic engine when its neuron model is a
    plugin's)."""
    check_supported(m)
    name = model_name(name)
    if _is_plugin_layer(m.exc):
        return _generate_generic(m, name)
    n, n_in, T = int(m.n_neurons), int(m.n_inputs), int(m.time_steps)
    bits = int(m.w_format.bits)
    w_codes = _checked_weights(m)
    words, half, wpr = pack_weights(w_codes, bits)
    flush = 65535 // max((1 << bits) - 1, 1)  # rows a 16-bit lane can take without overflow
    fw, fv = m.w_format.frac_bits, m.exc.v_frac
    shift = fv - fw
    acc_max = int(w_codes.sum(axis=0).max(initial=0))
    cur_max = (acc_max << shift) if shift >= 0 else (acc_max >> -shift)
    lat = int(m.lateral)
    exc_lines, exc_info = _layer_macros("TSNN_EXC", m.exc, cur_max + abs(lat) * n)
    has_inh = m.inh is not None
    inh_lines, inh_info = [], {}
    if has_inh:
        inh_lines, inh_info = _layer_macros("TSNN_INH", m.inh, abs(int(m.exc_to_inh)))
    assign = np.asarray(m.assignments, dtype=np.int64)
    sizes = [int((assign == c).sum()) for c in range(m.n_classes)]
    digest = model_digest(m)
    rates = [int(r) for r in m.rate_units]

    h = [f"/* Generated by tinysnn-serial (tinysnn_serial.codegen) from model {name!s}, digest "
         f"{digest}.\n * Do not edit: regenerate. Arithmetic: docs/fixed-point.md. */",
         "#ifndef TSNN_MODEL_DATA_H", "#define TSNN_MODEL_DATA_H", "", "#include <stdint.h>", "",
         f"#define TSNN_MODEL_DIGEST \"{digest}\"",
         f"#define TSNN_N {n}u",
         f"#define TSNN_N_INPUTS {n_in}u",
         f"#define TSNN_T {T}u",
         f"#define TSNN_CLASSES {int(m.n_classes)}u",
         f"#define TSNN_N_RATES {len(rates)}u",
         f"#define TSNN_MIN_SPIKES {int(m.retry_min_spikes)}u",
         f"#define TSNN_EXIT_MARGIN {int(getattr(m, 'exit_margin', 0))}u  /* early exit lead "
         "in spikes (0: off) */",
         f"/* weights {m.w_format}: two 16-bit halves of {half} codes of {bits} bits per "
         f"32-bit word, {wpr} words per input row */",
         f"#define TSNN_W_BITS {bits}u",
         f"#define TSNN_W_HALF {half}u",
         f"#define TSNN_W_WORDS {wpr}u",
         f"#define TSNN_W_LANE_MASK 0x{((1 << bits) - 1) * 0x10001:08x}u",
         f"#define TSNN_W_FLUSH {flush}u  /* rows per 16-bit lane before it could overflow */",
         f"/* align(acc, fw={fw}, fv={fv}) */",
         f"#define TSNN_ALIGN_LSHIFT {max(shift, 0)}",
         f"#define TSNN_ALIGN_RSHIFT {max(-shift, 0)}",
         ] + ([
         "/* align() drops every bit a weight field holds (the potential has far fewer fraction",
         " * bits than the weights): the engine's fold then never reads a field, and the compiler",
         " * must not call the unused field variable an error. */",
         '#pragma GCC diagnostic ignored "-Wunused-variable"',
         ] if max(-shift, 0) >= (8 if bits in (1, 2, 4) else 16) else []) + [
         f"#define TSNN_LAT {_c_int(lat)}  /* lateral inhibition per source spike */",
         f"#define TSNN_HAS_INH {1 if has_inh else 0}",
         f"#define TSNN_EI {_c_int(int(m.exc_to_inh))}  /* exc -> inh weight */",
         ""] + exc_lines + [""] + inh_lines + [
         "",
         f"typedef {exc_info['u_type']} tsnn_exc_u_t;",
         f"typedef {exc_info['th_type']} tsnn_exc_th_t;",
         f"typedef {exc_info['ref_type']} tsnn_exc_ref_t;"]
    if has_inh:
        h += [f"typedef {inh_info['u_type']} tsnn_inh_u_t;",
              f"typedef {inh_info['th_type']} tsnn_inh_th_t;",
              f"typedef {inh_info['ref_type']} tsnn_inh_ref_t;"]
    h += ["",
          f"extern const uint32_t tsnn_w[{len(words)}];",
          f"extern const uint32_t tsnn_rate[{len(rates)}];",
          f"extern const int8_t tsnn_assign[{n}];",
          f"extern const uint16_t tsnn_class_size[{int(m.n_classes)}];",
          f"extern const {_ctype_unsigned(int(np.max(m.theta_codes, initial=0)))} "
          f"tsnn_theta_codes[{n}];  /* not used by the engine (memory accounting) */"]
    if not exc_info["uniform_th"]:
        h.append(f"extern const tsnn_exc_th_t tsnn_exc_th[{n}];")
    if has_inh and not inh_info["uniform_th"]:
        h.append(f"extern const tsnn_inh_th_t tsnn_inh_th[{n}];")
    h += ["", "#endif", ""]

    theta_t = _ctype_unsigned(int(np.max(m.theta_codes, initial=0)))
    c = [f"/* Generated by tinysnn-serial from model {name}, digest {digest}. Do not edit. */",
         '#include "model_data.h"', "",
         _array("uint32_t", "tsnn_w", words, 8, lambda v: f"0x{v:08x}u"),
         _array("uint32_t", "tsnn_rate", rates, 4, lambda v: f"{v}u"),
         _array("int8_t", "tsnn_assign", assign, 20),
         _array("uint16_t", "tsnn_class_size", sizes, 10, lambda v: f"{v}u"),
         _array(theta_t, "tsnn_theta_codes", np.asarray(m.theta_codes, dtype=np.int64), 12,
                lambda v: f"{v}u")]
    if not exc_info["uniform_th"]:
        c.append(_array("tsnn_exc_th_t", "tsnn_exc_th", np.asarray(m.exc.thresh), 12, _c_int))
    if has_inh and not inh_info["uniform_th"]:
        c.append(_array("tsnn_inh_th_t", "tsnn_inh_th", np.asarray(m.inh.thresh), 12, _c_int))

    cfg = ["/* Generated by tinysnn-serial: the engine interface constants (firmware/engine.h). */",
           "#ifndef TSNN_ENGINE_CONFIG_H", "#define TSNN_ENGINE_CONFIG_H",
           f"#define TSNN_N_NEURONS {n}u", f"#define TSNN_N_CLASSES {int(m.n_classes)}u",
           f"#define TSNN_MODEL_NAME \"{name}\"", f"#define TSNN_ENGINE_NAME \"{ENGINE_NAME}\"",
           "#endif", ""]

    def size_of(ctype):
        return int(re.search(r"(\d+)", ctype).group(1)) // 8

    const_bytes = (4 * len(words) + 4 * len(rates) + n + 2 * m.n_classes
                   + (0 if exc_info["uniform_th"] else n * size_of(exc_info["th_type"]))
                   + (0 if not has_inh or inh_info["uniform_th"] else
                      n * size_of(inh_info["th_type"])))
    acc_len = wpr * 2 * half  # neurons rounded up to whole weight words
    v = 8 if exc_info["v64"] else 4  # the engine's potential width
    state = (acc_len * (1 if bits in (1, 2, 4) else 2) + 4 * acc_len  # field sums, 32-bit sums
             # potential and threshold, saved potential, refractory count, flags, three lists
             + acc_len * (3 * v + size_of(exc_info["ref_type"]) + 1 + 3 * 2)
             + n * (2 + 2)                                   # source and spike lists
             + 12 * IMAGE_BYTES + 8 + 4 * m.n_classes)       # pixel tables, class sums
    if has_inh:
        state += n * (size_of(inh_info["u_type"]) + size_of(inh_info["ref_type"]) + 1 + 2)
    info = {"name": name, "digest": digest, "weight_bits": bits, "codes_per_word": 2 * half,
            "words_per_row": wpr, "neurons": n, "time_steps": T, "topology":
            "diehl-cook" if has_inh else "tinysnn", "weights_format": str(m.w_format),
            "formats": dict(m.formats)}
    return CExport({"model_data.h": "\n".join(h), "model_data.c": "\n".join(c),
                    "engine_config.h": "\n".join(cfg)},
                   const_bytes=const_bytes, state_bytes=state, weight_bytes=4 * len(words),
                   info=info)


def _generate_generic(m, name: str) -> CExport:
    """The generic engine's files: the packed weights and the contract's constants as for the
    fast engine, every threshold as an array, the plugin's constants as TSNN_NEURON_NAME, and
    its C step as neuron_step.h."""
    L = m.exc
    n, n_in, T = int(m.n_neurons), int(m.n_inputs), int(m.time_steps)
    bits = int(m.w_format.bits)
    w_codes = _checked_weights(m)
    words, half, wpr = pack_weights(w_codes, bits)
    shift = L.v_frac - m.w_format.frac_bits
    th = np.asarray(np.broadcast_to(L.thresh, (n,)), dtype=np.int64)
    th_type = _ctype_signed(min(int(th.min(initial=0)), 0), max(int(th.max(initial=0)), 0))
    assign = np.asarray(m.assignments, dtype=np.int64)
    sizes = [int((assign == c).sum()) for c in range(m.n_classes)]
    digest = model_digest(m)
    rates = [int(r) for r in m.rate_units]
    h = [f"/* Generated by tinysnn-serial (tinysnn_serial.codegen) from model {name}, digest "
         f"{digest}, for the generic engine and neuron model {L.model}.\n * Do not edit: "
         "regenerate. Arithmetic: docs/fixed-point.md. */",
         "#ifndef TSNN_MODEL_DATA_H", "#define TSNN_MODEL_DATA_H", "", "#include <stdint.h>", "",
         f"#define TSNN_MODEL_DIGEST \"{digest}\"",
         f"#define TSNN_N {n}u", f"#define TSNN_N_INPUTS {n_in}u", f"#define TSNN_T {T}u",
         f"#define TSNN_CLASSES {int(m.n_classes)}u", f"#define TSNN_N_RATES {len(rates)}u",
         f"#define TSNN_MIN_SPIKES {int(m.retry_min_spikes)}u",
         f"#define TSNN_EXIT_MARGIN {int(m.exit_margin)}u",
         f"#define TSNN_W_BITS {bits}u", f"#define TSNN_W_HALF {half}u",
         f"#define TSNN_W_WORDS {wpr}u",
         f"#define TSNN_ALIGN_LSHIFT {max(shift, 0)}",
         f"#define TSNN_ALIGN_RSHIFT {max(-shift, 0)}",
         f"#define TSNN_LAT {_c_int(int(m.lateral))}",
         f"#define TSNN_ONE_SPIKE {1 if L.one_spike else 0}",
         "/* the neuron model's constants (its C step reads these) */",
         f"#define TSNN_NEURON_U_MIN ({_c_int(L.u_min)})",
         f"#define TSNN_NEURON_U_MAX ({_c_int(L.u_max)})",
         f"#define TSNN_NEURON_RESET ({_c_int(L.reset)})",
         f"#define TSNN_NEURON_REFRAC ({int(L.refrac)})"]
    h += [f"#define TSNN_NEURON_{k} ({_c_int(v)})" for k, v in sorted(L.constants.items())]
    h += ["#define TSNN_TH(j) (tsnn_th[j])", "",
          f"extern const uint32_t tsnn_w[{len(words)}];",
          f"extern const uint32_t tsnn_rate[{len(rates)}];",
          f"extern const int8_t tsnn_assign[{n}];",
          f"extern const uint16_t tsnn_class_size[{int(m.n_classes)}];",
          f"extern const {th_type} tsnn_th[{n}];", "", "#endif", ""]
    c = [f"/* Generated by tinysnn-serial from model {name}, digest {digest}. Do not edit. */",
         '#include "model_data.h"', "",
         _array("uint32_t", "tsnn_w", words, 8, lambda v: f"0x{v:08x}u"),
         _array("uint32_t", "tsnn_rate", rates, 4, lambda v: f"{v}u"),
         _array("int8_t", "tsnn_assign", assign, 20),
         _array("uint16_t", "tsnn_class_size", sizes, 10, lambda v: f"{v}u"),
         _array(th_type, "tsnn_th", th, 12, _c_int)]
    cfg = ["/* Generated by tinysnn-serial: the engine interface constants (firmware/engine.h). */",
           "#ifndef TSNN_ENGINE_CONFIG_H", "#define TSNN_ENGINE_CONFIG_H",
           f"#define TSNN_N_NEURONS {n}u", f"#define TSNN_N_CLASSES {int(m.n_classes)}u",
           f"#define TSNN_MODEL_NAME \"{name}\"",
           f"#define TSNN_ENGINE_NAME \"{GENERIC_ENGINE_NAME}\"", "#endif", ""]
    th_bytes = int(re.search(r"(\d+)", th_type).group(1)) // 8
    const_bytes = 4 * len(words) + 4 * len(rates) + n + 2 * m.n_classes + th_bytes * n
    # u (64-bit), ref, acc (32-bit), source and crossing flags, counts; the pixel lists
    state_bytes = n * (8 + 4 + 4 + 1 + 1 + 2) + 2 * 2 * IMAGE_BYTES
    info = {"name": name, "digest": digest, "weight_bits": bits, "codes_per_word": 2 * half,
            "words_per_row": wpr, "neurons": n, "time_steps": T, "topology": "tinysnn",
            "weights_format": str(m.w_format), "formats": dict(m.formats),
            "engine": GENERIC_ENGINE_NAME, "neuron_model": L.model}
    return CExport({"model_data.h": "\n".join(h), "model_data.c": "\n".join(c),
                    "engine_config.h": "\n".join(cfg),
                    "neuron_step.h": c_step_source(L.model)},
                   const_bytes=const_bytes, state_bytes=state_bytes, weight_bytes=4 * len(words),
                   info=info, engine=GENERIC_ENGINE_NAME)


def export_network(net, out_dir, name: str = "model") -> tuple[Path, CExport]:
    """Network -> integer model -> C sources in ``out_dir``."""
    from tinysnn_core.intsim import from_network

    exp = generate(from_network(net), name)
    return exp.write(out_dir), exp


class CExporter:
    """The ``c`` exporter plugin: ``export(net, out_dir, name=...)`` writes an engine directory
    (engine.c, engine_config.h, model_data.c/.h) for ``make ENGINE_DIR=...``."""

    description = "C99 integer engine + packed model constants for the tinysnn firmware"
    suffix = ""     # it writes a directory

    def export(self, net, out_dir, name: str = "model") -> Path:
        return export_network(net, out_dir, name)[0]

    def generate(self, integer_model, name: str = "model") -> CExport:
        return generate(integer_model, name)
