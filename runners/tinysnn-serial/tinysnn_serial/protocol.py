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

import json
import random
import re
import struct
import time
from dataclasses import dataclass, field

from tinysnn_core.errors import TinySNNError

from .crc import crc32

IMAGE_BYTES = 784
SAMPLE_BYTES = IMAGE_BYTES + 8
MAX_BODY = 256 - 14  # the device's command buffer minus the sequence suffix

ACK_RE = re.compile(rb"^m-ack-([0-9a-f]{4})-(\d{1,6})-([0-9a-f]{8})\r\n$")
DB_LEN_RE = re.compile(r"^m-db-len-(\d+)-of-(\d+)$")
DB_CRC_RE = re.compile(r"^m-db-crc-([0-9a-f]{8})$")
NAME_RE = re.compile(r"^m-name-dut-\[tinysnn-([^]]+)\]$")


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


class _ResultLines:
    """Collects the CRC-valid lines of ``results`` replies across attempts; complete when the
    header and counts for all ``n`` neurons are in (the device's stored results do not change
    between attempts: ``results`` is read-only)."""

    def __init__(self):
        self.head: str | None = None
        self.counts: dict[int, str] = {}

    def add(self, lines: list[str]) -> list[str] | None:
        for line in lines:
            if not line.startswith(("m-results-", "m-counts-")):
                continue
            try:
                text = strip_crc(line)
            except IntegrityError:
                continue
            if line.startswith("m-results-"):
                self.head = line
            else:
                off = text[len("m-counts-"):].partition("=")[0]
                if off.isdigit():
                    self.counts[int(off)] = line
        if self.head is None:
            return None
        n = parse_kv(strip_crc(self.head)[len("m-results-"):]).get("n", "")
        have = sum(len(strip_crc(v).partition("=")[2].split(".")) for v in self.counts.values()
                   if strip_crc(v).partition("=")[2])
        if not n.isdigit() or have < int(n):
            return None
        return [self.head] + [self.counts[k] for k in sorted(self.counts)]


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
    samples: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


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


class DeviceUnderTest:
    """Drives a board over a transport: sequenced, CRC-checked commands with retries.

    ``timeout``: seconds to wait for the answer to an ordinary command; ``infer_timeout``:
    for ``infer``; ``quiet``: how long the line must stay silent to count as drained;
    ``settle``: once reply lines arrive, the silence that means the rest was lost;
    ``retries``: attempts per command after the first; ``chunk``: data bytes per ``db``
    command; ``transcript``: a text file that receives one JSON line per frame sent and line
    received, as it happens.
    """

    def __init__(self, transport, *, timeout: float = 2.0, infer_timeout: float = 120.0,
                 quiet: float = 0.02, settle: float = 0.25, retries: int = 50, reloads: int = 20, chunk: int = 64,
                 transcript=None, seq_start: int | None = None):
        if not 1 <= chunk <= (MAX_BODY - 3) // 2:
            raise ValueError(f"chunk must be 1..{(MAX_BODY - 3) // 2} bytes")
        self.t = transport
        self.timeout = timeout
        self.infer_timeout = infer_timeout
        self.quiet = quiet
        self.settle = settle
        self.retries = retries
        self.reloads = reloads
        self.chunk = chunk
        self.transcript = transcript
        self.stats = LinkStats()
        self._seq = random.randrange(0x10000) if seq_start is None else seq_start & 0xFFFF
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

    def _readline(self, timeout: float) -> bytes:
        raw = self.t.readline(timeout)
        if raw:
            self._log("<", raw)
        return raw

    def resync(self) -> None:
        """End any partial command on the device with a lone '%', then drain the line."""
        self._send(b"%")
        limit = time.monotonic() + max(10 * self.quiet, 1.0)
        while time.monotonic() < limit:
            data = self.t.read(self.quiet)
            if not data:
                break
            self._log("<", data)

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def _await_ack(self, seq: int, timeout: float) -> list[str] | None:
        deadline = time.monotonic() + timeout
        received: list[bytes] = []
        self._received = received   # what a failed attempt got, for salvage()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stats.timeouts += 1
                return None
            # Once a reply has started, its lines follow each other at once: a silence of
            # `settle` seconds means the rest of it (its ack or m-ready) was lost.
            wait = min(remaining, self.settle) if received else remaining
            raw = self._readline(wait)
            if not raw.endswith(b"\n"):
                if received and wait < remaining:
                    self.stats.timeouts += 1
                    return None
                continue  # a partial line at the deadline: loop to the timeout branch
            m = ACK_RE.match(raw)
            if m:
                aseq, n, crc = int(m.group(1), 16), int(m.group(2)), int(m.group(3), 16)
                if aseq != seq:
                    self.stats.stale_acks += 1
                    received.clear()
                    continue
                tail = received[len(received) - n:] if n <= len(received) else None
                if tail is None or crc32(b"".join(tail)) != crc:
                    self.stats.bad_acks += 1
                    return None
                self._readline(max(self.quiet, 0.05))  # the m-ready that follows
                return [line.decode("ascii", "replace").rstrip("\r\n") for line in tail]
            line = raw.rstrip(b"\r\n")
            if line == b"m-ready":  # the device finished something that was not our command
                self.stats.unacked_ready += 1
                return None
            if line.startswith(b"e-frame-"):
                self.stats.frame_errors += 1
            received.append(raw)

    def command(self, body: str, timeout: float | None = None, salvage=None) -> list[str]:
        """Send one sequenced command; return its reply lines (without ack and m-ready).

        ``salvage`` (for commands whose every reply line carries its own CRC and that change
        nothing on the device, such as ``results``): called with the lines of each failed
        attempt; when it returns a list of lines, those are the answer. On a damaged link a long
        reply rarely arrives whole, but its self-checking lines arrive over a few attempts.

        Raises DeviceError when the device reports an error for it, LinkError when no valid
        answer came after all retries."""
        seq = self._next_seq()
        data = frame(body, seq)
        self.stats.commands += 1
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
                self.resync()
            self.stats.attempts += 1
            self._send(data)
            self._received = []
            lines = self._await_ack(seq, self.timeout if timeout is None else timeout)
            if lines is None and salvage is not None:
                got = [raw.decode("ascii", "replace").rstrip("\r\n") for raw in self._received]
                lines = salvage(got)
                if lines is not None:
                    self.stats.salvaged += 1
            if lines is not None:
                errors = [line for line in lines if line.startswith("e-")]
                if errors:
                    raise DeviceError(body, errors, lines)
                return lines
        raise LinkError(f"no valid answer to {body[:40]!r} after {self.retries + 1} attempts "
                        f"over {self.t.describe()}")

    # -- session --------------------------------------------------------------------------
    def connect(self) -> str:
        """Greet the board with a plain ``name%`` (which also resets its retransmission
        memory); returns the board name from ``m-name-dut-[tinysnn-<board>]``."""
        for _ in range(self.retries + 1):
            self.resync()
            self._send(b"name%")
            deadline = time.monotonic() + self.timeout
            name = None
            while time.monotonic() < deadline:
                raw = self._readline(deadline - time.monotonic())
                line = raw.decode("ascii", "replace").rstrip("\r\n")
                if NAME_RE.match(line) and raw.endswith(b"\r\n"):
                    name = NAME_RE.match(line).group(1)
                elif line == "m-ready" and name is not None:
                    self.board_name = name
                    return name
                elif line == "m-ready":
                    break
            self.stats.retries += 1
        raise LinkError(f"no answer to name% over {self.t.describe()}")

    def name(self) -> str:
        lines = self.command("name")
        for line in lines:
            if NAME_RE.match(line):
                return NAME_RE.match(line).group(1)
        raise ProtocolError(f"no m-name line in {lines}")

    def profile(self) -> dict[str, str]:
        """The profile lines as a dict, e.g. {'engine': ..., 'neurons': '10', ...}."""
        out: dict[str, str] = {}
        for line in self.command("profile"):
            line = strip_crc(line)  # each profile line carries its CRC
            m = re.match(r"^m-(profile|model|engine|board|neurons|classes|clock-hz|cycles|"
                         r"db-max|cmd-max|proto)-(.*)$", line)
            if m:
                out[m.group(1)] = m.group(2).strip("[]")
        return out

    @staticmethod
    def _db_state(lines: list[str]) -> tuple[int, int, int]:
        length = expect = crc = None
        for line in lines:
            m = DB_LEN_RE.match(line)
            if m:
                length, expect = int(m.group(1)), int(m.group(2))
            m = DB_CRC_RE.match(line)
            if m:
                crc = int(m.group(1), 16)
        if length is None or crc is None:
            raise ProtocolError(f"no db state in {lines}")
        return length, expect, crc

    def load(self, payload: bytes) -> int:
        """Load ``payload`` into the device buffer; verified by the running CRC after every
        chunk. Returns the CRC-32 of the buffer."""
        want_crc = crc32(payload)
        for attempt in range(self.reloads + 1):
            if attempt:
                self.stats.reloads += 1
            try:
                if self._db_state(self.command(f"db load {len(payload)}")) != (0, len(payload), 0):
                    continue
                ok = True
                for off in range(0, len(payload), self.chunk):
                    end = min(off + self.chunk, len(payload))
                    state = self._db_state(self.command("db " + payload[off:end].hex()))
                    want = (end, len(payload), crc32(payload[:end]))
                    if state != want:
                        self.reload_reasons.append(f"db state {state} != expected {want}")
                        ok = False
                        break
                if ok:
                    return want_crc
            except DeviceError as exc:
                self.reload_reasons.append(str(exc))
                continue  # e.g. the board was reset mid-load: start the load again
        raise IntegrityError(f"could not load {len(payload)} bytes intact after "
                             f"{self.reloads + 1} attempts")

    def infer(self, n: int = 1, warmup: int = 0, timeout: float | None = None) -> dict:
        """Run ``warmup`` + ``n`` inferences on the loaded sample; the device's timing line."""
        lines = self.command(f"infer {n} {warmup}",
                             timeout=self.infer_timeout if timeout is None else timeout)
        for line in lines:
            if line.startswith("m-infer-"):
                kv = parse_kv(strip_crc(line)[len("m-infer-"):])
                return {k: int(v) for k, v in kv.items()}
        raise ProtocolError(f"no m-infer line in {lines}")

    def results(self) -> Result:
        """The last inference's results, every line CRC-checked (gathered over several
        attempts when the link damages the long reply)."""
        lines = self.command("results", salvage=_ResultLines().add)
        head = None
        counts: dict[int, list[int]] = {}
        for line in lines:
            if line.startswith("m-results-"):
                head = {k: int(v) for k, v in parse_kv(strip_crc(line)[len("m-results-"):]).items()}
            elif line.startswith("m-counts-"):
                off, _, values = strip_crc(line)[len("m-counts-"):].partition("=")
                counts[int(off)] = [int(v) for v in values.split(".")] if values else []
        if head is None:
            raise ProtocolError(f"no m-results line in {lines}")
        flat: list[int] = []
        for off in sorted(counts):
            if off != len(flat):
                raise IntegrityError(f"spike counts: missing values before offset {off}")
            flat += counts[off]
        if len(flat) != head["n"] or sum(flat) != head["sum"]:
            raise IntegrityError(f"spike counts: {len(flat)} values summing to {sum(flat)}, "
                                 f"device said n={head['n']} sum={head['sum']}")
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
