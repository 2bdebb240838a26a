"""Host side of the tinySNN board protocol (normative text: docs/protocol.md).

The wire format follows the EEMBC / MLPerf Tiny device-under-test conventions: commands end
with ``%``; the device answers with lines starting ``m-`` (messages) or ``e-`` (errors) and
ends every answer with ``m-ready``. On top of that, for integrity:

- a *sequenced frame* ``BODY@SSSS:CCCCCCCC%`` carries a 16-bit sequence number and the CRC-32
  of ``BODY@SSSS``; the device checks it (``e-frame-crc`` otherwise) and closes its reply with
  ``m-ack-SSSS-N-CCCCCCCC``: the number of reply lines and the CRC-32 of their exact bytes;
- a retransmitted frame (same sequence number as the last executed one) is not executed
  twice: the device answers from its current state;
- data-buffer replies carry the running CRC-32 of the loaded bytes, result lines their own
  CRC-32, so a wrong byte anywhere is caught;
- the host retries on timeout, on a bad acknowledgement, and on an ``m-ready`` that closes
  something other than its command, after resynchronising (a lone ``%``, then reading until
  the line is quiet).
"""

from __future__ import annotations

import difflib
import json
import math
import random
import re
import struct
import time
from dataclasses import dataclass, field, fields

from tinysnn_core.errors import TinySNNError

from .crc import crc32

IMAGE_BYTES = 784
SAMPLE_BYTES = IMAGE_BYTES + 8
MAX_BODY = 256 - 14  # the device's command buffer minus the sequence suffix

# an ack of one of the last STALE_WINDOW commands is a late answer; any other foreign ack is
# a damaged one of ours (the host numbers its commands one after another)
STALE_WINDOW = 16
ACK_RE = re.compile(rb"^m-ack-([0-9a-f]{4})-(\d{1,6})-([0-9a-f]{8})\r\n$")


class ProtocolError(TinySNNError):
    """The device answered, but not what the protocol allows."""


class DeviceError(ProtocolError):
    """The device executed the command and reported an error (an ``e-`` line)."""

    def __init__(self, command: str, errors: list[str], lines: list[str]):
        super().__init__(f"device rejected {command!r}: {', '.join(errors)}")
        self.command = command
        self.errors = errors
        self.lines = lines


class IntegrityError(ProtocolError):
    """A CRC or a length did not match: the data was damaged on the way."""


class LinkError(TinySNNError):
    """No valid answer after all retries: the link or the board is down."""


# ---- encoding -----------------------------------------------------------------------------

def encode_sample(image, seed: int, sample_id: int) -> bytes:
    """The 792-byte payload of one sample: 784 image bytes, seed and sample id (u32 LE)."""
    image = bytes(bytearray(image))
    if len(image) != IMAGE_BYTES:
        raise ValueError(f"an image has {IMAGE_BYTES} bytes, got {len(image)}")
    return image + struct.pack("<II", seed & 0xFFFFFFFF, sample_id & 0xFFFFFFFF)


def decode_sample(payload: bytes) -> tuple[bytes, int, int]:
    if len(payload) != SAMPLE_BYTES:
        raise ValueError(f"a sample payload has {SAMPLE_BYTES} bytes, got {len(payload)}")
    seed, sid = struct.unpack("<II", payload[IMAGE_BYTES:])
    return payload[:IMAGE_BYTES], seed, sid


# TERMINATOR_NOTE: the host ends every frame it sends with a second '%'. The device ignores
# the empty frame that follows an intact one; when the line drops or damages the first '%',
# the second still ends the frame, so the device answers at once (an error for a damaged
# frame) instead of waiting, silent, for the next frame to complete it: a lost terminator
# costs one quick retry instead of a timeout, and the next frame is not swallowed with it.


def frame(body: str, seq: int) -> bytes:
    """A sequenced command frame: ``BODY@SSSS:CCCCCCCC%``."""
    if "%" in body or "@" in body:
        raise ValueError("a command body cannot contain '%' or '@'")
    if len(body) > MAX_BODY:
        raise ValueError(f"command body longer than {MAX_BODY} characters")
    text = f"{body}@{seq & 0xFFFF:04x}".encode("ascii")
    return text + f":{crc32(text):08x}%".encode("ascii")


class FrameError(ProtocolError):
    """A frame the device would reject (the reason is the device's e-frame-* word)."""


def parse_frame(data: bytes) -> tuple[str, int | None]:
    """Inverse of ``frame`` (and of plain ``BODY%``), as the device parses it.

    Returns (body, seq) with seq None for a plain frame; raises FrameError."""
    if not data.endswith(b"%") or b"%" in data[:-1]:
        raise FrameError("not one frame")
    raw = data[:-1].strip(b" \t\r\n")
    at = raw.rfind(b"@")
    if at < 0:
        return raw.decode("latin-1"), None
    suffix = raw[at:]
    if len(suffix) != 14 or suffix[5:6] != b":":
        raise FrameError("malformed")
    try:
        seq = int(suffix[1:5], 16)
        crc = int(suffix[6:14], 16)
    except ValueError:
        raise FrameError("malformed") from None
    if not all(c in b"0123456789abcdefABCDEF" for c in suffix[1:5] + suffix[6:14]):
        raise FrameError("malformed")
    if crc32(raw[: at + 5]) != crc:
        raise FrameError("crc")
    return raw[:at].decode("latin-1"), seq


# The lines the device sends without a CRC of their own (firmware/protocol.c's emit calls; a
# test keeps the two lists equal).
BARE_LINES = frozenset(
    "e-db-bad-hex e-db-incomplete e-db-map-args e-db-mode e-db-not-loading e-db-overflow "
    "e-db-size e-db-unsequenced e-frame-copies e-frame-crc e-frame-malformed e-frame-overflow "
    "e-infer-args e-no-results e-unknown-command m-infer-done m-load-done m-ready "
    "m-warmup-done".split())


def line_intact(raw: bytes) -> bool:
    """Whether a received line is one the device can have sent: CRC-valid, an ack, or one of
    its bare lines (the evidence of damage on the way back)."""
    if not raw.endswith(b"\r\n"):
        return False
    if ACK_RE.match(raw):
        return True
    try:
        text = raw[:-2].decode("ascii")
    except UnicodeDecodeError:
        return False
    if text in BARE_LINES:
        return True
    try:
        strip_crc(text)
        return True
    except IntegrityError:
        return False


def _stray_answer(lines: list[bytes]) -> bool:
    """Whether the lines before an unacknowledged ``m-ready`` are a stray answer: each one
    ``e-unknown-command`` or a damaged copy of it (closer to it than to any frame error), or a
    damaged ``m-ready`` (an intact one closes the stray answer).
    A posted frame split by a damaged byte (its '!' is one bit from '%') leaves a fragment
    that the device answers that way; only a sequenced frame, ours, gets a frame error. Our
    own frame reads as an unknown command only when its '@' is lost (one byte of about 27)."""
    def stray(raw: bytes) -> bool:
        line = raw.rstrip(b"\r\n")
        if line == b"e-unknown-command":
            return True
        if line_intact(raw) or len(line) > 24:
            return False
        if len(line) <= 9 and difflib.SequenceMatcher(None, line, b"m-ready").ratio() >= 0.7:
            return True                 # its m-ready, damaged
        like = difflib.SequenceMatcher(None, line, b"e-unknown-command").ratio()
        return like >= 0.75 and all(
            like > difflib.SequenceMatcher(None, line, e).ratio() for e in _FRAME_ERRORS)
    return all(stray(x) for x in lines)


_FRAME_ERRORS = (b"e-frame-crc", b"e-frame-malformed", b"e-frame-overflow", b"e-frame-copies")


def with_crc(text: str) -> str:
    """A line with its own CRC: ``TEXT,crc=XXXXXXXX``."""
    return f"{text},crc={crc32(text.encode('ascii')):08x}"


def strip_crc(line: str) -> str:
    """Check and remove the ``,crc=XXXXXXXX`` of a line."""
    text, sep, tail = line.rpartition(",crc=")
    if not sep or tail != f"{crc32(text.encode('ascii', 'replace')):08x}":
        raise IntegrityError(f"line CRC mismatch: {line!r}")
    return text


def parse_kv(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise ProtocolError(f"expected key=value, got {part!r} in {text!r}")
        out[key] = value
    return out


def ack_line(seq: int, reply: list[bytes]) -> bytes:
    """The acknowledgement the device sends after the raw reply lines ``reply``."""
    return f"m-ack-{seq & 0xFFFF:04x}-{len(reply)}-{crc32(b''.join(reply)):08x}\r\n".encode()


def protocol_test_engine(image, seed: int, sample_id: int) -> tuple[list[int], int]:
    """What firmware/testengine/engine.c (the PROTOCOL TEST ENGINE, not a model) computes."""
    image = bytes(bytearray(image))
    counts = [(sum(image[k::10]) + ((seed >> k) & 0xFF) + sample_id % 7) & 0xFFFF
              for k in range(10)]
    pred = ((sum(image) + seed + sample_id) & 0xFFFFFFFF) % 10
    return counts, pred


# ---- the host ----------------------------------------------------------------------------


class _SelfCheckingLines:
    """Collects the CRC-valid lines of a read-only command's replies across attempts (the
    device's answer does not change between attempts), keyed by ``key(text)``; ``done(lines)``
    says when the collection is a whole answer."""

    def __init__(self, key, done):
        self.key = key
        self.done = done
        self.lines: dict = {}

    def add(self, lines: list[str]) -> list[str] | None:
        for line in lines:
            try:
                text = strip_crc(line)
            except IntegrityError:
                continue
            k = self.key(text)
            if k is not None:
                self.lines[k] = line
        whole = [self.lines[k] for k in sorted(self.lines, key=str)]
        return whole if self.done(self.lines) else None


SPIKES_RE = re.compile(r"^m-spikes-(\d+:\d+(?:\.\d+:\d+)*)$")


def _spikes(text: str) -> list[tuple[int, int]]:
    """The (neuron, count) pairs of an ``m-spikes-i:c.i:c...`` line (its CRC removed)."""
    m = SPIKES_RE.match(text)
    if not m:
        raise ProtocolError(f"not an m-spikes line: {text!r}")
    return [(int(i), int(c)) for i, c in (pair.split(":") for pair in m.group(1).split("."))]


def _results_key(text: str):
    if text.startswith("m-results-"):
        return "head"
    if SPIKES_RE.match(text):
        return _spikes(text)[0][0]      # a line is known by its first neuron
    return None


def _results_done(lines: dict) -> bool:
    """Complete once the header is in and the spike lines held add up to its ``sum``: counts are
    never negative and the device lists only the neurons that spiked, so the rest are zeros."""
    if "head" not in lines:
        return False
    head = parse_kv(strip_crc(lines["head"])[len("m-results-"):])
    total = sum(c for k, line in lines.items() if k != "head" for _, c in _spikes(strip_crc(line)))
    return head.get("sum", "").isdigit() and total == int(head["sum"])


PROFILE_KEYS = ("profile", "model", "engine", "board", "neurons", "classes", "clock-hz", "cycles",
                "db-max", "cmd-max", "proto")
PROFILE_RE = re.compile(r"^m-(" + "|".join(PROFILE_KEYS) + r")-(.*)$")
NAME_RE = re.compile(r"^m-name-(?:dut-\[tinysnn-([^]]+)\]|tinysnn-(.+))$")


def _profile_key(text: str):
    m = PROFILE_RE.match(text)
    return m.group(1) if m else None


def _map_key(text: str):
    if text.startswith("m-db-fill-"):
        return "fill"
    if text.startswith("m-db-map-"):
        first = text[len("m-db-map-"):].partition("-")[0]
        return int(first) if first.isdigit() else None
    return None


DB_FILL_RE = re.compile(r"^m-db-fill-(\d+)-of-(\d+)-([0-9a-f]{8})-([0-9a-f]{8})$")
DB_MAP_RE = re.compile(r"^m-db-map-(\d+)-([0-9a-f]{8})$")


@dataclass
class LinkStats:
    """What the link cost: every retry is counted, with its reason."""

    commands: int = 0
    attempts: int = 0
    retries: int = 0
    timeouts: int = 0
    bad_acks: int = 0
    unacked_ready: int = 0
    frame_errors: int = 0
    stale_acks: int = 0
    reloads: int = 0
    salvaged: int = 0     # answers assembled from the self-checking lines of failed attempts
    posted: int = 0       # db put frames sent (never answered)
    posted_lost: int = 0  # ... of which the device's map showed the chunk still missing
    strays: int = 0       # short error answers to fragments of damaged posted frames, skipped
    samples: int = 0

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def take_delta(self) -> dict:
        """The counts since the last call (for records written as they happen)."""
        now = self.as_dict()
        last = getattr(self, "_last", {})
        object.__setattr__(self, "_last", now)
        return {k: v - last.get(k, 0) for k, v in now.items() if v - last.get(k, 0)}


class LinkModel:
    """What the link is like, learned while it runs, and the settings that follow from it.

    - Round-trip time: Jacobson/Karels smoothing of the first-attempt answers (Karn's rule:
      retried commands give no sample) of short commands, and the time per byte the device takes
      to swallow a long stream (posted frames in front of a command), at least the time a byte
      takes at a UART's baud rate; the timeout is ``srtt + 4 rttvar`` plus twice the bytes'
      time, clamped to ``[min_timeout, max_timeout]``, times the backoff.
    - Damage: the byte error rate ``p`` estimated from how many posted ``db put`` frames of
      known length arrive (a frame of L bytes arrives with probability (1-p)^L), smoothed.
    - Chunk size: the ``db put`` payload that maximises the data delivered per byte sent at
      that ``p``; the copies per round that cost least time per chunk delivered (the stream at
      the device's pace against one more ``db map`` exchange).
    - Retry budget: per kind of command, enough attempts that, at the success rate observed for
      that kind, giving up on a live link has odds below ``1e-6``.
    """

    PUT_OVERHEAD = len("db put 1023 ") + len("!cccccccc%")

    def __init__(self, *, timeout: float, byte_time: float = 0.0, min_timeout: float = 0.05,
                 max_timeout: float = 30.0, max_chunk: int = 96):
        self.initial_timeout = timeout
        self.byte_time = byte_time
        self.min_timeout = min(min_timeout, timeout)
        self.max_timeout = max(max_timeout, timeout)
        self.max_chunk = max_chunk
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.backoff = 1.0        # doubled by a silent attempt, halved by an answer
        # until measured, a stream is assumed to go at a 115200-baud UART's pace (an emulated
        # board's UART model is not much faster)
        self.per_byte = max(byte_time, 1e-4)
        self.p = 0.0
        # the reply direction: the intact among the lines received (decayed sums, a prior of
        # two intact 50-byte lines)
        self.rx_lines, self.rx_ok, self.rx_bytes = 2.0, 2.0, 100.0
        self.success: dict[str, tuple[float, float]] = {}   # kind -> (successes, attempts)
        self.infer_s: float | None = None                   # wall seconds per inference

    # -- timing ---------------------------------------------------------------------------
    def timed_out(self) -> None:
        """An attempt met pure silence: the estimate may be too short (the device still busy
        with a stream, and Karn's rule means a too-short estimate is never corrected by a
        sample), so the next waits are twice as long, as TCP does. Damage shows as a broken
        reply instead, and does not lengthen the waits."""
        self.backoff = min(self.backoff * 2, 8.0)

    def answered(self) -> None:
        """A valid answer came within the (backed-off) wait: the waits were long enough. On a
        damaged link first attempts rarely succeed, so waiting for Karn's clean sample to undo
        the backoff would leave every wait long."""
        self.backoff = max(1.0, self.backoff / 2)

    def rtt_sample(self, seconds: float, nbytes: int = 0) -> None:
        self.backoff = 1.0
        if nbytes > 256 and self.srtt is not None:     # a stream: learn the time per byte
            per = max(seconds - self.srtt, 0.0) / nbytes
            self.per_byte = max(self.byte_time, 0.7 * self.per_byte + 0.3 * per, per / 2)
            return
        if self.srtt is None:
            self.srtt, self.rttvar = seconds, seconds / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - seconds)
            self.srtt = 0.875 * self.srtt + 0.125 * seconds

    def timeout(self, nbytes: int = 0) -> float:
        if self.srtt is None:
            base = self.initial_timeout
        else:
            base = self.srtt + 4 * self.rttvar
        stream = 2 * nbytes * self.per_byte
        return min((max(base, self.min_timeout) + stream) * self.backoff,
                   self.max_timeout + stream)

    def settle(self) -> float:
        """Silence inside a reply that means the rest of it was lost."""
        return min(max(2 * (self.srtt or self.initial_timeout / 4), 0.02), 0.25)

    def nudge(self) -> float:
        """Silence after a frame that makes the host send a lone '%' (in case the frame's
        terminators were lost): a few round trips."""
        return max(3 * (self.srtt or self.initial_timeout / 4), 0.01)

    def quiet(self) -> float:
        """Silence that, at a line boundary, means the line is drained."""
        return min(max((self.srtt or 0.0) / 2, 0.003), 0.03)

    def infer_timeout(self, runs: int, predicted_s: float | None) -> float:
        """For ``infer``: the inferences' own time (measured on this link once known, else the
        board's predicted latency with a wide margin) on top of the command timeout."""
        if self.infer_s is not None:
            work = 4 * self.infer_s * runs + 0.05
        elif predicted_s is not None:
            work = 20 * predicted_s * runs + 1.0
        else:
            work = 120.0
        return self.timeout() + work

    def infer_sample(self, seconds: float, runs: int) -> None:
        per = max(seconds - (self.srtt or 0.0), 0.0) / max(runs, 1)
        self.infer_s = per if self.infer_s is None else max(0.8 * self.infer_s + 0.2 * per, per)

    # -- damage ---------------------------------------------------------------------------
    def put_round(self, frames_per_chunk: int, chunks: int, arrived: int, frame_bytes: int) -> None:
        """One round of posted puts: ``chunks`` chunks sent ``frames_per_chunk`` times each,
        ``arrived`` of them complete afterwards."""
        if chunks <= 0:
            return
        lost_all = 1 - min(arrived, chunks) / chunks
        lost_all = min(max(lost_all, 0.5 / chunks), 1 - 0.5 / chunks)   # no 0/1 extremes
        frame_ok = 1 - lost_all ** (1 / frames_per_chunk)
        p = 1 - frame_ok ** (1 / frame_bytes)
        weight = min(0.5, chunks / 200)      # a big round says more than a small one
        self.p = (1 - weight) * self.p + weight * p

    def line_seen(self, nbytes: int, ok: bool) -> None:
        """A reply line of ``nbytes`` arrived, intact or not (``line_intact``)."""
        decay = 0.99
        self.rx_lines = decay * self.rx_lines + 1
        self.rx_ok = decay * self.rx_ok + ok
        self.rx_bytes = decay * self.rx_bytes + nbytes

    @property
    def p_rx(self) -> float:
        """Byte damage on the way back: a line of L bytes arrives intact with (1-p)^L."""
        intact = min(max(self.rx_ok / self.rx_lines, 1e-3), 1.0)
        return 1 - intact ** (self.rx_lines / self.rx_bytes)

    def frame_ok(self, nbytes: int) -> float:
        return (1 - self.p) ** nbytes

    def reply_copies(self, lines: int, line_bytes: int) -> int:
        """How many copies of a read-only reply of ``lines`` self-checking lines of about
        ``line_bytes`` bytes to ask for (``BODY*R``): the number (1..64) that costs least time
        per whole answer, an attempt costing a round trip plus the copies' bytes, and succeeding
        when at least one copy of every line arrives intact."""
        p = max(self.p, self.p_rx)
        if p < 1e-3:
            return 1
        intact = (1 - p) ** line_bytes
        rtt = self.srtt if self.srtt is not None else self.initial_timeout
        # a device sends far faster than it swallows (an emulated UART: ~6 us per byte out)
        per_byte = max(self.byte_time, 2e-5)

        def cost(r):
            whole = (1 - (1 - intact) ** r) ** lines
            return (rtt + r * lines * line_bytes * per_byte) / max(whole, 1e-9)
        return min(range(1, 65), key=cost)

    def chunk(self) -> int:
        """The put payload (bytes) that delivers most data per byte on the wire."""
        def goodput(k):
            length = 2 * k + self.PUT_OVERHEAD
            return k * self.frame_ok(length) / length
        return max(range(1, self.max_chunk + 1), key=goodput)

    def copies(self, chunk: int, chunks: int) -> int:
        """How many times to post each of ``chunks`` chunks in a round: the number (1..6) that
        costs least time per chunk delivered, a round costing the stream's time at the device's
        pace plus a ``db map`` exchange (its round trip over the odds an attempt succeeds)."""
        length = 2 * chunk + self.PUT_OVERHEAD
        lost = 1 - self.frame_ok(length)
        s, n = self.success.get("db map", (1.0, 2.0))
        exchange = self.timeout() / max(s / n, 0.02)

        def cost(c):
            return (c * chunks * length * self.per_byte + exchange) / (1 - lost ** c)
        return min(range(1, 7), key=cost)

    def attempt(self, kind: str, ok: bool) -> None:
        s, n = self.success.get(kind, (1.0, 2.0))    # a prior of one success in two attempts
        self.success[kind] = (s + ok, n + 1)

    def budget(self, kind: str) -> int:
        s, n = self.success.get(kind, (1.0, 2.0))
        rate = min(max(s / n, 0.003), 0.999)
        return int(min(max(math.ceil(math.log(1e-6) / math.log(1 - rate)), 20), 5000))

    def describe(self) -> str:
        rtt = f"{1000 * self.srtt:.1f} ms" if self.srtt is not None else "unknown"
        return (f"round trip {rtt}, estimated byte damage {100 * self.p:.2f}% "
                f"(replies {100 * self.p_rx:.2f}%), "
                f"chunk {self.chunk()} bytes")


@dataclass
class Result:
    """One sample's answer from the device."""

    sample_id: int
    seed: int
    prediction: int
    cycles: int
    counts: list[int]
    infer: dict = field(default_factory=dict)
    energy: dict | None = None


def _byte_time(transport) -> float:
    """Seconds per byte on a real UART (10 bits per byte); 0 for sockets, pipes and ptys."""
    url = getattr(transport, "url", "")
    baud = getattr(transport, "baudrate", None)
    if baud and url and "://" not in url:
        return 10.0 / baud
    return 0.0


class DeviceUnderTest:
    """Drives a board over a transport: sequenced, CRC-checked commands with retries, on a
    link whose timing and damage it learns as it goes (``LinkModel``): nothing to tune.

    ``timeout``: seconds to wait for an answer until the round trip has been measured (and the
    longest it may grow to, at least 30 s); ``infer_timeout``: fixed seconds for ``infer``
    (default: from ``predicted_infer_s``, the board's predicted latency per inference, then
    from the measured ones); ``retries``: a fixed number of attempts after the first (default:
    the adaptive budget); ``chunk``: the largest ``db put`` payload; ``dead_after``: seconds
    without a single byte from the board after which it counts as gone; ``transcript``: a
    text file that receives one JSON line per frame sent and line received, as it happens.
    ``quiet`` and ``settle`` fix the drain and in-reply silences (default: from the round trip).
    """

    def __init__(self, transport, *, timeout: float = 2.0, infer_timeout: float | None = None,
                 predicted_infer_s: float | None = None, quiet: float | None = None,
                 settle: float | None = None, retries: int | None = None, reloads: int = 20,
                 chunk: int = 96, dead_after: float = 15.0, transcript=None,
                 seq_start: int | None = None):
        if not 1 <= chunk <= (MAX_BODY - LinkModel.PUT_OVERHEAD) // 2:
            raise ValueError(f"chunk must be 1..{(MAX_BODY - LinkModel.PUT_OVERHEAD) // 2} bytes")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.t = transport
        self.link = LinkModel(timeout=timeout, byte_time=_byte_time(transport), max_chunk=chunk)
        self.fixed_infer_timeout = infer_timeout
        self.predicted_infer_s = predicted_infer_s
        self.fixed_quiet = quiet
        self.fixed_settle = settle
        self.retries = retries
        self.reloads = reloads
        self.dead_after = dead_after
        self.transcript = transcript
        self.stats = LinkStats()
        self._seq = random.randrange(0x10000) if seq_start is None else seq_start & 0xFFFF
        self._last_byte = time.monotonic()
        self._posted_bytes = 0        # posted bytes sent since the last command
        self._silent = 0              # attempts in a row that got no byte back
        self._received: list[bytes] = []
        self._reply_at: float | None = None
        self.first_answer: tuple[float | None, list[bytes]] = (None, [])  # of the last command
        self.board_name: str | None = None
        self.reload_reasons: list[str] = []

    # -- low level ------------------------------------------------------------------------
    def _log(self, direction: str, data: bytes) -> None:
        if self.transcript is not None:
            self.transcript.write(json.dumps({"t": round(time.time(), 6), "dir": direction,
                                              "data": data.decode("latin-1")}) + "\n")
            self.transcript.flush()

    def _send(self, data: bytes) -> None:
        self._log(">", data)
        self.t.write(data)

    def _got(self, raw: bytes) -> bytes:
        if raw:
            self._last_byte = time.monotonic()
            self._silent = 0
            self._log("<", raw)
        return raw

    def _readline(self, timeout: float) -> bytes:
        return self._got(self.t.readline(timeout))

    def _quiet(self) -> float:
        return self.fixed_quiet if self.fixed_quiet is not None else self.link.quiet()

    def _settle(self) -> float:
        return self.fixed_settle if self.fixed_settle is not None else self.link.settle()

    def resync(self) -> None:
        """End any partial command on the device with a lone '%', then drain the line up to a
        line boundary followed by silence (a reply cut in the middle is read to its end)."""
        self._send(b"%")
        self.drain()

    def drain(self) -> None:
        quiet = self._quiet()
        limit = time.monotonic() + max(20 * quiet, 10 * self.link.timeout(), 1.0)
        at_boundary = True
        while time.monotonic() < limit:
            data = self._got(self.t.read(quiet if at_boundary else self._settle()))
            if not data:
                break
            at_boundary = data.endswith(b"\n")

    def _alive(self) -> None:
        """Gone: several attempts in a row without a single byte back, for ``dead_after`` s."""
        if self._silent >= 4 and time.monotonic() - self._last_byte > self.dead_after:
            raise LinkError(f"the board sent nothing for {self.dead_after:g} s over "
                            f"{self.t.describe()}: it is off, reset or not connected")

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def _await_ack(self, seq: int, timeout: float, nudge: float | None = None) -> list[str] | None:
        """The reply lines of frame ``seq``, or None when this attempt failed. Lines of older
        answers (a stale ack and its m-ready) are skipped; so is a short error answer without a
        frame error (``_stray_answer``); a frame error, or lines of ours, closed by ``m-ready``
        without our ack mean this attempt failed.

        ``nudge``: when nothing at all (or only a stray answer) has come back after that many
        seconds, send a lone '%': if both of the frame's '%' were lost, this completes the frame
        on the device (which then answers); if the device is busy (a long inference, a stream
        still being swallowed), it reads an empty frame later and ignores it. So lost
        terminators cost a round trip, not the whole timeout."""
        start = time.monotonic()
        deadline = start + timeout
        nudge_after = nudge
        got_any = False
        received: list[bytes] = []
        self._received = received   # what a failed attempt got, for salvage
        self._reply_at = None       # when the first line of the answer came
        after_stale = False
        stray = False
        while True:
            if stray:       # a stray answer was skipped: wait for ours as if nothing had come
                self.stats.strays += 1
                received.clear()
                self._reply_at = None
                got_any, start, nudge, stray = False, time.monotonic(), nudge_after, False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stats.timeouts += 1
                return None
            # Once a reply has started, its lines follow each other at once: a silence of
            # `settle` seconds means the rest of it (its ack or m-ready) was lost.
            settle = self._settle()
            wait = min(remaining, settle) if received else remaining
            if nudge is not None and not got_any:
                wait = min(wait, max(start + nudge - time.monotonic(), 0.0))
            raw = self._readline(wait)
            if raw:
                got_any = True
            elif nudge is not None and not got_any and time.monotonic() >= start + nudge:
                self._send(b"%")
                nudge = None
                continue
            if not raw.endswith(b"\n"):
                if received and wait < remaining:
                    if _stray_answer(received):     # a stray answer whose m-ready was damaged
                        stray = True
                        continue
                    self.stats.timeouts += 1
                    return None
                continue  # a partial line at the deadline: loop to the timeout branch
            self.link.line_seen(len(raw), line_intact(raw))
            if self._reply_at is None:
                self._reply_at = time.monotonic()
            m = ACK_RE.match(raw)
            if m:
                aseq, n, crc = int(m.group(1), 16), int(m.group(2)), int(m.group(3), 16)
                if aseq != seq and not 0 < (seq - aseq) & 0xFFFF <= STALE_WINDOW:
                    # not an earlier command's: our own ack with a damaged digit (the ack
                    # carries the reply's CRC, not its own)
                    self.stats.bad_acks += 1
                    return None
                if aseq != seq:
                    self.stats.stale_acks += 1
                    received.clear()
                    after_stale = True
                    continue
                tail = received[len(received) - n:] if n <= len(received) else None
                if tail is None or crc32(b"".join(tail)) != crc:
                    self.stats.bad_acks += 1
                    return None
                self._readline(max(self._quiet(), 0.02))  # the m-ready that follows
                return [line.decode("ascii", "replace").rstrip("\r\n") for line in tail]
            line = raw.rstrip(b"\r\n")
            if line == b"m-ready":
                if after_stale:         # the end of an older answer
                    after_stale = False
                    continue
                if not received:        # the end of something older whose lines were lost
                    continue
                if _stray_answer(received):
                    # a fragment of a posted frame cut by a damaged byte (a '!' one bit from
                    # '%') was answered as an unknown command: our answer is still to come
                    stray = True
                    continue
                self.stats.unacked_ready += 1
                return None             # a reply without our valid ack: damaged, or not ours
            after_stale = False
            if line.startswith(b"e-frame-"):
                self.stats.frame_errors += 1
            received.append(raw)

    def command(self, body: str, timeout: float | None = None, salvage=None,
                copies: int = 1) -> list[str]:
        """Send one sequenced command; return its reply lines (without ack and m-ready).

        ``salvage`` (for commands whose every reply line carries its own CRC and that change
        nothing on the device, such as ``results``): called with the lines of each failed
        attempt; when it returns a list of lines, those are the answer. On a damaged link a long
        reply rarely arrives whole, but its self-checking lines arrive over a few attempts.
        ``copies``: ask for the reply that many times (``BODY*R``, for read-only commands and
        ``infer``); the answer holds each line once.

        Raises DeviceError when the device reports an error for it, LinkError when no valid
        answer came within the retry budget or the board went silent."""
        seq = self._next_seq()
        data = frame(body if copies == 1 else f"{body}*{copies}", seq)
        kind = " ".join(body.split()[:2]) if body.startswith("db") else body.split()[0]
        self.stats.commands += 1
        attempt = 0
        while True:
            budget = self.retries + 1 if self.retries is not None else self.link.budget(kind)
            if attempt >= budget:
                raise LinkError(
                    f"no valid answer to {body[:40]!r} after {attempt} attempts over "
                    f"{self.t.describe()} ({self.link.describe()}): the link damages more than "
                    "this session can get through")
            if attempt:
                self.stats.retries += 1
                self.resync()
            self._alive()
            self.stats.attempts += 1
            in_flight = len(data) + (self._posted_bytes if attempt == 0 else 0)
            rto = self.link.timeout(in_flight)
            wait = rto if timeout is None else max(timeout, rto)
            sent = time.monotonic()
            self._send(data + b"%")     # a second '%': see TERMINATOR_NOTE
            self._received = []
            self._silent += 1
            lines = self._await_ack(seq, wait, nudge=min(rto, self.link.nudge()))
            if attempt == 0:    # only the first attempt executes: its answer's delay is the work's
                self.first_answer = (None if self._reply_at is None else self._reply_at - sent,
                                     list(self._received))
            if lines is None and self._silent and timeout is None:
                self.link.timed_out()
            elif lines is not None:
                self.link.answered()
            if lines is not None and timeout is None and (attempt == 0 or self.link.srtt is None):
                # Karn's rule keeps retried commands out, except to get a first estimate at
                # all: on a damaged link a first attempt may never succeed
                self.link.rtt_sample(time.monotonic() - sent, in_flight)
            self._posted_bytes = 0
            if lines is not None and copies > 1:
                lines = list(dict.fromkeys(lines))      # each line once
            if lines is None and salvage is not None:
                got = [raw.decode("ascii", "replace").rstrip("\r\n") for raw in self._received]
                lines = salvage(got)
                if lines is not None:
                    self.stats.salvaged += 1
            self.link.attempt(kind, lines is not None)
            attempt += 1
            if lines is not None:
                errors = [line for line in lines if line.startswith("e-")]
                if errors:
                    raise DeviceError(body, errors, lines)
                return lines

    def post(self, body: str) -> None:
        """Send a posted frame ``BODY!CCCCCCCC%``: executed by the device when intact, never
        answered (``db put`` only)."""
        if any(c in body for c in "%@!"):
            raise ValueError("a posted body cannot contain '%', '@' or '!'")
        self.stats.posted += 1
        data = f"{body}!{crc32(body.encode('ascii')):08x}%%".encode("ascii")  # TERMINATOR_NOTE
        self._posted_bytes += len(data)
        self._send(data)

    # -- session --------------------------------------------------------------------------
    def connect(self) -> str:
        """Greet the board with a plain ``name%`` (which resets its retransmission memory),
        then ask its name in a sequenced, CRC-checked command: a damaged greeting is never
        believed. Returns the board name."""
        attempts = 0
        while True:
            self._alive()
            self._silent += 1           # until a byte comes back (a board that never answers)
            self.resync()
            self._send(b"name%")
            sent = time.monotonic()
            deadline = sent + self.link.timeout()
            named = False
            while time.monotonic() < deadline:
                raw = self._readline(deadline - time.monotonic())
                if raw.startswith(b"m-name-"):
                    named = True        # the device executed a plain name: memory reset
                elif raw.rstrip(b"\r\n") == b"m-ready" and named:
                    if self.link.srtt is None:
                        self.link.rtt_sample(time.monotonic() - sent)
                    self.board_name = self.name()
                    return self.board_name
                # any other m-ready (the boot banner's, an older answer's) is not ours: wait on
            attempts += 1
            self.stats.retries += 1
            self.link.attempt("greeting", False)
            budget = self.retries + 1 if self.retries is not None else self.link.budget("greeting")
            if attempts >= budget:
                raise LinkError(f"no answer to name% after {attempts} attempts over "
                                f"{self.t.describe()}")

    def name(self) -> str:
        for line in self.command("name"):
            m = NAME_RE.match(line)
            if m:
                return m.group(1) or m.group(2)
        raise ProtocolError("no m-name line in the answer to name")

    def profile(self) -> dict[str, str]:
        """The profile lines as a dict, e.g. {'engine': ..., 'neurons': '10', ...}; rebuilt from
        the self-checking lines of several answers on a damaged link."""
        required = ("profile", "model", "engine", "board", "neurons", "classes", "proto")
        collect = _SelfCheckingLines(_profile_key, lambda got: all(k in got for k in required))
        out: dict[str, str] = {}
        copies = self.link.reply_copies(len(PROFILE_KEYS), 32)
        for line in self.command("profile", salvage=collect.add, copies=copies):
            text = line.rpartition(",crc=")[0] if ",crc=" in line else line
            m = PROFILE_RE.match(text)
            if m:
                out[m.group(1)] = m.group(2).strip("[]")
        return out

    @staticmethod
    def _incomplete_groups(fill_text: str) -> list[int]:
        """The first chunk of each group of 32 that the fill line says still misses bytes."""
        mask = int(DB_FILL_RE.match(fill_text).group(4), 16)
        return [32 * g for g in range(32) if mask >> g & 1]

    def db_map(self, chunk: int, size: int) -> tuple[int, int, list[bool]]:
        """(bytes filled, CRC-32 of the buffer, per ``chunk``-byte chunk: complete?)."""
        def done(got):
            if "fill" not in got or not DB_FILL_RE.match(strip_crc(got["fill"])):
                return False
            return all(g in got for g in self._incomplete_groups(strip_crc(got["fill"])))

        groups = -(-size // chunk) // 32 + 1      # the fill line and at most this many maps
        lines = self.command(f"db map {chunk}", salvage=_SelfCheckingLines(_map_key, done).add,
                             copies=self.link.reply_copies(1 + groups // 2, 45))
        fill_text = next((strip_crc(x) for x in lines if x.startswith("m-db-fill-")), None)
        if fill_text is None or not DB_FILL_RE.match(fill_text):
            raise ProtocolError(f"no m-db-fill line in {lines}")
        m = DB_FILL_RE.match(fill_text)
        fill, crc = int(m.group(1)), int(m.group(3), 16)
        if int(m.group(2)) != size:     # the posted db load was lost: the old load is there
            return 0, 0, [False] * -(-size // chunk)
        listed = {}
        for line in lines:
            mm = DB_MAP_RE.match(strip_crc(line)) if line.startswith("m-db-map-") else None
            if mm:
                listed[int(mm.group(1))] = int(mm.group(2), 16)
        missing = [g for g in self._incomplete_groups(fill_text) if g not in listed]
        if missing:
            raise ProtocolError(f"db map: no line for the groups at chunks {missing} in {lines}")
        # a group the fill line does not name is complete
        bits = {g: listed.get(g, 0xFFFFFFFF) for g in range(0, -(-size // chunk), 32)}
        n_chunks = -(-size // chunk)
        return fill, crc, [bool(bits[i - i % 32] >> (i % 32) & 1) for i in range(n_chunks)]

    @staticmethod
    def _put_bodies(payload: bytes, chunk: int, todo: list[int]) -> list[str]:
        """The ``db put`` bodies for chunks ``todo``: each chunk with data in hex, each run of
        consecutive all-zero chunks as one ``zLEN`` (most of an image is black)."""
        bodies, run = [], None          # run: [first offset, length] of zero chunks
        for i in todo:
            part = payload[i * chunk:(i + 1) * chunk]
            if not any(part):
                if run is not None and run[0] + run[1] == i * chunk:
                    run[1] += len(part)
                    continue
                if run is not None:
                    bodies.append(f"db put {run[0]} z{run[1]}")
                run = [i * chunk, len(part)]
                continue
            bodies.append(f"db put {i * chunk} {part.hex()}")
        if run is not None:
            bodies.append(f"db put {run[0]} z{run[1]}")
        return bodies

    def load(self, payload: bytes) -> int:
        """Load ``payload`` into the device buffer with posted ``db put`` frames (idempotent
        writes at an offset, streamed without waiting), then ask which chunks arrived and send
        the missing ones again, at a chunk size and number of copies that follow the damage
        observed. Verified by the buffer's CRC-32, which is returned."""
        want_crc = crc32(payload)
        size = len(payload)
        for attempt in range(self.reloads + 1):
            if attempt:
                self.stats.reloads += 1
            try:
                arrived = bytearray(size)   # 1 where the last db map showed a chunk complete
                chunk = self.link.chunk()
                first = True
                while True:
                    spans = [slice(i * chunk, (i + 1) * chunk) for i in range(-(-size // chunk))]
                    todo = [i for i, sp in enumerate(spans) if not all(arrived[sp])]
                    data = [i for i in todo if any(payload[spans[i]])]
                    copies = self.link.copies(chunk, len(data))
                    if first:   # the load starts the stream: posted too, once more than a put
                        for _ in range(copies + 1):
                            self.post(f"db load {size}")
                        first = False
                    for body in self._put_bodies(payload, chunk, todo):
                        for _ in range(copies):
                            self.post(body)
                    self._got(self.t.read(0))   # whatever the line brought meanwhile
                    fill, crc, complete = self.db_map(chunk, size)
                    self.stats.posted_lost += sum(not complete[i] for i in todo) * copies
                    # the damage estimate from the hex chunks (the zero runs are much shorter)
                    self.link.put_round(copies, len(data), sum(complete[i] for i in data),
                                        2 * chunk + LinkModel.PUT_OVERHEAD)
                    if fill == 0 and not any(complete):
                        first = True            # the load was lost: post it again
                    if fill == size:
                        if crc != want_crc:
                            self.reload_reasons.append(f"buffer CRC {crc:08x} != {want_crc:08x}")
                            break
                        return want_crc
                    arrived = bytearray(size)
                    for sp, ok in zip(spans, complete):
                        if ok:
                            arrived[sp] = b"\1" * len(arrived[sp])
                    chunk = self.link.chunk()   # the next round's size may differ
            except DeviceError as exc:
                self.reload_reasons.append(str(exc))
                continue  # e.g. the board was reset mid-load: start the load again
        raise IntegrityError(f"could not load {len(payload)} bytes intact after "
                             f"{self.reloads + 1} attempts")

    def infer(self, n: int = 1, warmup: int = 0, timeout: float | None = None) -> dict:
        """Run ``warmup`` + ``n`` inferences on the loaded sample; the device's timing line.
        The wait follows the board's predicted latency, then the measured one."""
        if timeout is None:
            timeout = (self.fixed_infer_timeout if self.fixed_infer_timeout is not None
                       else self.link.infer_timeout(n + warmup, self.predicted_infer_s))
        collect = _SelfCheckingLines(lambda text: "infer" if text.startswith("m-infer-") else None,
                                     lambda got: "infer" in got)
        lines = self.command(f"infer {n} {warmup}", timeout=timeout, salvage=collect.add,
                             copies=self.link.reply_copies(1, 45))
        # the first attempt runs the inferences: when its answer came, damaged or not, tells
        # their time (retries are answered from the stored line at once)
        delay, first = self.first_answer
        if delay is not None and any(b"cycles" in raw for raw in first):
            self.link.infer_sample(delay, n + warmup)
        for line in lines:
            if line.startswith("m-infer-"):
                info = {k: int(v) for k, v in parse_kv(strip_crc(line)[len("m-infer-"):]).items()}
                if "min" not in info:   # one inference: the device leaves out min, max, total
                    info.update(min=info["cycles"], max=info["cycles"], total=info["cycles"])
                return info
        raise ProtocolError(f"no m-infer line in {lines}")

    def results(self) -> Result:
        """The last inference's results, every line CRC-checked (gathered over several
        attempts when the link damages the reply)."""
        lines = self.command("results", salvage=_SelfCheckingLines(_results_key, _results_done).add,
                             copies=self.link.reply_copies(2, 60))
        head = None
        pairs: list[tuple[int, int]] = []
        for line in lines:
            if line.startswith("m-results-"):
                head = {k: int(v) for k, v in parse_kv(strip_crc(line)[len("m-results-"):]).items()}
            elif line.startswith("m-spikes-"):
                pairs += _spikes(strip_crc(line))
        if head is None:
            raise ProtocolError(f"no m-results line in {lines}")
        flat = [0] * head["n"]
        for i, c in pairs:
            if i >= head["n"]:
                raise IntegrityError(f"a spike count for neuron {i} of {head['n']}")
            flat[i] = c
        if sum(flat) != head["sum"]:
            raise IntegrityError(f"spike counts sum to {sum(flat)}, the device said "
                                 f"sum={head['sum']}")
        return Result(head["sid"], head["seed"], head["pred"], head["cycles"], flat)

    def run_sample(self, image, seed: int, sample_id: int, *, n: int = 1,
                   warmup: int = 0, meter=None) -> Result:
        """Load one sample, infer, fetch and check its results. ``meter`` (an energy meter,
        tinysnn_serial.meters) is told when the inference window opens and closes; its answer
        goes to ``Result.energy``."""
        payload = encode_sample(image, seed, sample_id)
        for attempt in range(self.reloads + 1):
            if attempt:
                self.stats.reloads += 1
            self.load(payload)
            energy = None
            try:
                if meter is not None:
                    meter.begin()
                info = self.infer(n, warmup)
                if meter is not None:
                    energy = meter.end(info, n)
            except DeviceError:
                continue  # e.g. e-db-incomplete after a board reset
            res = self.results()
            if res.sample_id == sample_id & 0xFFFFFFFF and res.seed == seed & 0xFFFFFFFF:
                res.infer = info
                res.energy = energy
                self.stats.samples += 1
                return res
        raise IntegrityError(f"sample {sample_id}: no consistent result after "
                             f"{self.reloads + 1} attempts")
