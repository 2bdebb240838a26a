"""Energy meters (``register_energy_meters``): turn one measured inference window into joules.

Interface of a meter object (``cls(**options)``):

- ``open(profile)``: connect to the instrument (``profile``: the board's ``BoardProfile``);
- ``begin()``: just before the device is told to run ``n`` inferences (the window opens);
- ``end(info, n) -> dict``: just after the device answered; ``info`` is the device's timing line
  (``cycles``, ``total``, ...). Returns ``{"energy_j": joules per inference, "source": text}``
  or raises ``MeterError`` (a meter never invents a number: no window, no result);
- ``close()``.

Meters:

- ``model``: the board profile's datasheet figures (run current per MHz x supply voltage) x the
  measured cycles: ``E = cycles x I_per_MHz x V / 1e6`` (docs/boards.md has the sources). For a
  board without figures (QEMU) there is no result.
- ``ppk2``: a Nordic Power Profiler Kit II through the PyPI package ``ppk2-api`` (optional:
  ``pip install 'tinysnn-serial[ppk2]'``), in source-meter mode; the board's timestamp pin is
  wired to one of the PPK2's logic inputs (``channel``, default D0).
- ``lpm01a``: an ST X-NUCLEO-LPM01A (PowerShield) over its serial text commands (``htc``,
  ``volt``, ``freq``, ``acqtime``, ``output current``, ``format ascii_dec``, ``eventsrc``,
  ``start``/``stop``); samples are ASCII ``MMMM-EE`` (M x 10^-EE amperes); the timestamp pin
  is wired to its D7 input, configured to report falling edges (``eventsrc d7 fal``, as the
  MLPerf Tiny runner does) as ``event N ...`` lines; without event lines the window is the
  whole acquisition from ``start`` to ``stop``.

The window (the EEMBC energy-mode convention): the firmware pulses its timestamp pin low (open
drain, released high when idle) for 20 us at the start and at the end of the timed inferences;
the window is from the first falling edge to the next, the start pulse's 20 us included
(docs/protocol.md, "Timing and the timestamp pin").
"""

from __future__ import annotations

import re
import time

from tinysnn_core.errors import TinySNNError


class MeterError(TinySNNError):
    """The meter could not measure this window (no instrument, no window, no data)."""


class ModelMeter:
    """Datasheet model: cycles x current per MHz x supply voltage."""

    description = "datasheet model: cycles x run current per MHz x VDD (board profile)"

    def __init__(self, **options):
        self.profile = None

    def open(self, profile) -> None:
        self.profile = profile

    def available(self) -> str | None:
        p = self.profile
        if p is None or p.run_ua_per_mhz is None or p.supply_v is None:
            name = p.name if p is not None else "this board"
            return (f"{name} has no datasheet power figures (run current per MHz, VDD): the "
                    "model meter gives no energy for it")
        return None

    def begin(self) -> None:
        pass

    def end(self, info: dict, n: int = 1) -> dict:
        why = self.available()
        if why:
            raise MeterError(why)
        p = self.profile
        cycles = info["cycles"]
        energy = cycles * p.run_ua_per_mhz * 1e-6 * p.supply_v / 1e6
        return {"energy_j": energy, "source": f"model: {cycles} cycles x {p.run_ua_per_mhz} uA/MHz"
                f" x {p.supply_v} V ({p.power_source.split(';')[0]})"}

    def close(self) -> None:
        pass


def falling_edges(levels) -> list[int]:
    """The sample indices where the timestamp pin's level goes from high to low."""
    return [k for k in range(1, len(levels)) if levels[k - 1] and not levels[k]]


def timestamp_window(marks: list[int]) -> tuple[int, int]:
    """(first, stop) sample indices of the window between the first two timestamps."""
    if not marks:
        raise MeterError("the timestamp pin never pulsed during the capture: check the wiring "
                         "of the board's timestamp pin to the meter's input (docs/boards.md)")
    if len(marks) < 2:
        raise MeterError("one timestamp pulse in the capture, not two: the capture ended "
                         "before the window's end pulse")
    return marks[0], marks[1]


def integrate_window(currents_a, start: int, stop: int, dt_s: float, volts: float,
                     n: int) -> tuple[float, int]:
    """Energy per inference from current samples (A): samples start..stop-1, times V and dt,
    divided by n. Returns (J, samples)."""
    window = currents_a[start:stop]
    return sum(window) * volts * dt_s / max(n, 1), len(window)


class PPK2Meter:
    """Nordic PPK2 through ``ppk2-api`` (source meter; window = two timestamp pulses)."""

    description = "Nordic PPK2 via ppk2-api; window = timestamp pulses on a logic input"
    SAMPLE_S = 1e-5  # the PPK2 streams 100 k samples per second

    def __init__(self, port: str | None = None, voltage_mv: int = 3300, channel: int = 0,
                 settle_s: float = 0.05, api=None, **options):
        self.port = port
        self.voltage_mv = int(voltage_mv)
        self.channel = int(channel)
        self.settle_s = settle_s
        self._api_cls = api
        self.ppk = None

    def open(self, profile) -> None:
        api = self._api_cls
        if api is None:
            try:
                from ppk2_api.ppk2_api import PPK2_API as api
            except ImportError:
                raise MeterError("the ppk2 meter needs the PyPI package ppk2-api "
                                 "(pip install 'tinysnn-serial[ppk2]')") from None
        if not self.port:
            devices = api.list_devices() if hasattr(api, "list_devices") else []
            if not devices:
                raise MeterError("no PPK2 found: pass --meter-port /dev/ttyACM1")
            self.port = devices[0]
        self.ppk = api(self.port, timeout=1)
        if not self.ppk.get_modifiers():
            raise MeterError(f"{self.port} did not send PPK2 calibration metadata")
        self.ppk.use_source_meter()
        self.ppk.set_source_voltage(self.voltage_mv)
        self.ppk.toggle_DUT_power("ON")

    def _drain(self) -> bytes:
        data, quiet_since = b"", time.monotonic()
        while time.monotonic() - quiet_since < self.settle_s:
            chunk = self.ppk.get_data()
            if chunk:
                data += chunk
                quiet_since = time.monotonic()
            else:
                time.sleep(0.005)
        return data

    def begin(self) -> None:
        self.ppk.start_measuring()

    def end(self, info: dict, n: int = 1) -> dict:
        self.ppk.stop_measuring()
        data = self._drain()
        if len(data) < 4:
            raise MeterError("the PPK2 sent no samples")
        samples_ua, raw_bits = self.ppk.get_samples(data)
        levels = [(b >> self.channel) & 1 for b in raw_bits]
        start, stop = timestamp_window(falling_edges(levels))
        energy, count = integrate_window([s * 1e-6 for s in samples_ua], start, stop,
                                         self.SAMPLE_S, self.voltage_mv / 1000.0, n)
        return {"energy_j": energy, "source": f"ppk2 {self.port}: {count} samples at 100 kHz "
                f"between the timestamps on D{self.channel}, {self.voltage_mv} mV"}

    def close(self) -> None:
        if self.ppk is not None:
            try:
                self.ppk.toggle_DUT_power("OFF")
            finally:
                self.ppk.ser.close()
                self.ppk = None


SAMPLE_RE = re.compile(r"(\d{4})([+-])(\d{2})")
EVENT_RE = re.compile(r"event\s+\d+\s+(ris|fal)")


def parse_lpm01a_stream(lines) -> tuple[list[float], list[int]]:
    """Current samples (A) of an LPM01A ascii_dec acquisition and, per ``event N ...`` line (a
    timestamp: a falling edge on D7), the index of the first sample after it."""
    currents, marks = [], []
    for line in lines:
        line = line.strip()
        if EVENT_RE.search(line):
            marks.append(len(currents))
            continue
        if line.startswith(("TimeStamp", "ack", "error", "PowerShield", "Acquisition")):
            continue
        for mm in SAMPLE_RE.finditer(line):
            mant, sign, exp = int(mm.group(1)), mm.group(2), int(mm.group(3))
            currents.append(mant * 10.0 ** (exp if sign == "+" else -exp))
    return currents, marks


class LPM01AMeter:
    """ST X-NUCLEO-LPM01A (PowerShield) over its serial text commands."""

    description = "ST LPM01A PowerShield over serial commands; window = D7 timestamps or start/stop"
    PROMPT = "PowerShield > "

    def __init__(self, port: str | None = None, voltage_mv: int = 3300, freq: str = "5k",
                 baudrate: int = 3686400, timeout: float = 2.0, **options):
        if not port:
            raise MeterError("the lpm01a meter needs --meter-port (the PowerShield's serial port)")
        self.port = port
        self.voltage_mv = int(voltage_mv)
        self.freq = freq
        self.baudrate = baudrate
        self.timeout = timeout
        self.ser = None
        self.dt_s = 1.0 / _freq_hz(freq)

    def _command(self, cmd: str) -> list[str]:
        self.ser.write((cmd + "\n").encode("ascii"))
        out, deadline = [], time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            line = self.ser.readline().decode("ascii", "replace")
            line = line.replace(self.PROMPT, "").strip()  # replies may follow the prompt
            if not line:
                continue
            out.append(line)
            if line.startswith("ack") and cmd.split()[0] in line:
                return out
            if line.startswith("error"):
                raise MeterError(f"LPM01A refused {cmd!r}: {line}")
        raise MeterError(f"LPM01A did not acknowledge {cmd!r} within {self.timeout} s")

    def open(self, profile) -> None:
        import serial

        self.ser = serial.serial_for_url(self.port, baudrate=self.baudrate, timeout=0.2)
        for cmd in ("htc", f"volt {self.voltage_mv}m", f"freq {self.freq}", "acqtime 0",
                    "output current", "format ascii_dec", "trigsrc sw", "eventsrc d7 fal",
                    "pwr on"):
            self._command(cmd)

    def begin(self) -> None:
        self._command("start")

    def end(self, info: dict, n: int = 1) -> dict:
        self.ser.write(b"stop\n")
        lines, deadline = [], time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            line = self.ser.readline().decode("ascii", "replace").replace(self.PROMPT, "")
            if not line:
                continue
            if "Acquisition completed" in line:
                break
            lines.append(line)
        else:
            raise MeterError("LPM01A did not end the acquisition ('Acquisition completed')")
        currents, marks = parse_lpm01a_stream(lines)
        if not currents:
            raise MeterError("the LPM01A sent no samples")
        # no D7 events at all: the whole acquisition is the window (documented)
        start, stop = timestamp_window(marks) if marks else (0, len(currents))
        energy, count = integrate_window(currents, start, stop, self.dt_s,
                                         self.voltage_mv / 1000.0, n)
        where = "between the D7 timestamps" if marks else "(no D7 events: the whole acquisition)"
        return {"energy_j": energy, "source": f"lpm01a {self.port}: {count} samples at "
                f"{self.freq}Hz {where}, {self.voltage_mv} mV"}

    def close(self) -> None:
        if self.ser is not None:
            try:
                self.ser.write(b"hrc\n")
            finally:
                self.ser.close()
                self.ser = None


def _freq_hz(text: str) -> float:
    text = str(text).strip().lower()
    return float(text[:-1]) * 1000.0 if text.endswith("k") else float(text)


METERS = {
    "model": (ModelMeter, ModelMeter.description),
    "ppk2": (PPK2Meter, PPK2Meter.description),
    "lpm01a": (LPM01AMeter, LPM01AMeter.description),
}
