"""Energy meters. Without the instruments, the instrument side is a thread on a pseudo-terminal
that answers the documented commands and replays a byte stream synthesised from the
instrument's documented data format (PPK2: 4-byte little-endian samples, ADC bits 0-13, range
bits 14-16, logic inputs bits 24-31, calibration metadata ending in END; LPM01A: 'ack <cmd>'
replies, ascii_dec samples 'MMMM-EE' in amperes, 'event N ...' lines at the timestamps). The
meters' answers are checked against the energy of that stream; a stream without a window gives
no result."""

from __future__ import annotations

import os
import threading
import tty

import pytest

from tinysnn_serial.boards import BOARDS
from tinysnn_serial.meters import (LPM01AMeter, MeterError, ModelMeter, PPK2Meter,
                                   falling_edges, integrate_window, parse_lpm01a_stream,
                                   timestamp_window)


def test_model_meter_uses_the_datasheet_figures():
    meter = ModelMeter()
    meter.open(BOARDS["nucleo-l476rg"].profile)  # 100 uA/MHz, 3.3 V
    e = meter.end({"cycles": 8_000_000})
    assert e["energy_j"] == pytest.approx(8e6 * 100e-6 * 3.3 / 1e6)
    meter.open(BOARDS["qemu-mps2-an385"].profile)
    assert "no datasheet power figures" in meter.available()
    with pytest.raises(MeterError):
        meter.end({"cycles": 1})


class FakeInstrument:
    """A pty whose far side runs ``handler(request_bytes) -> reply_bytes`` in a thread."""

    def __init__(self, handler, line_mode: bool):
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        self.handler, self.line_mode = handler, line_mode
        self.requests: list[bytes] = []
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import select

        buf = b""
        while not self._stop:
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            buf += data
            while buf:
                if self.line_mode:
                    if b"\n" not in buf:
                        break
                    req, buf = buf.split(b"\n", 1)
                else:
                    req, buf = buf[:1], buf[1:]
                    if req[0] in (0x0D, 0x11, 0x0C, 0x08):  # commands with argument bytes
                        need = {0x0D: 2, 0x11: 1, 0x0C: 1, 0x08: 1}[req[0]]
                        req, buf = req + buf[:need], buf[need:]
                self.requests.append(req)
                reply = self.handler(req)
                if reply:
                    os.write(self.master, reply)

    def close(self):
        self._stop = True
        self.thread.join(1)
        os.close(self.master)
        os.close(self._slave)


# ---- PPK2 ------------------------------------------------------------------------------------

R = {0: 1031.64, 1: 101.65, 2: 10.15, 3: 0.94, 4: 0.043}
METADATA = ("Calibrated: 0\n" + "".join(f"R{i}: {R[i]}\n" for i in range(5))
            + "".join(f"GS{i}: 0\nGI{i}: 1\nO{i}: 0\nS{i}: 0\nI{i}: 0\nUG{i}: 1\n"
                      for i in range(5)) + "HW: 9173\nmode: 2\nIA: 56\nEND\n").encode()


def ppk2_sample(amps: float, logic: int, rng: int = 2) -> tuple[bytes, float]:
    """One PPK2 sample and the current the host will decode from it."""
    raw = round(amps * R[rng] * 163840 / (4 * 1.8))
    word = raw | (rng << 14) | (logic << 24)
    return word.to_bytes(4, "little"), raw * 4 * (1.8 / 163840) / R[rng]


def ppk2_stream(window: int, idle: int, pulses: int = 2, amps_in=8e-3, amps_out=1e-3,
                logic_bit=0, pulse_samples=2):
    """Idle (pin high), a timestamp pulse (low for ``pulse_samples``), the window, the end
    pulse, idle; returns the stream and the decoded current summed from the first falling edge
    to the second (the start pulse's samples included, as on the board)."""
    def span(n, amps, low):
        return [(amps, 0 if low else 1 << logic_bit)] * n
    plan = span(idle, amps_out, False)
    if pulses >= 1:
        plan += span(pulse_samples, amps_in, True)
    plan += span(window, amps_in, False)
    if pulses >= 2:
        plan += span(pulse_samples, amps_out, True)
    plan += span(idle, amps_out, False)
    data, energy_a = b"", 0.0
    for k, (amps, logic) in enumerate(plan):
        raw, decoded = ppk2_sample(amps, logic)
        data += raw
        if idle <= k < idle + pulse_samples + window and pulses >= 2:
            energy_a += decoded
    return data, energy_a


def test_ppk2_meter_through_ppk2_api_replay():
    pytest.importorskip("ppk2_api", reason="ppk2-api not installed (pip install "
                        "'tinysnn-serial[ppk2]')")
    stream, amps_sum = ppk2_stream(window=500, idle=300)

    def handler(req):
        if req[0] == 0x19:   # GET_META_DATA
            return METADATA
        if req[0] == 0x06:   # AVERAGE_START: the recorded stream
            return stream
        return b""

    dev = FakeInstrument(handler, line_mode=False)
    try:
        meter = PPK2Meter(port=dev.path, voltage_mv=3000, channel=0)
        meter.open(BOARDS["nucleo-l476rg"].profile)
        meter.begin()
        e = meter.end({"cycles": 1}, n=2)
        meter.close()
    finally:
        dev.close()
    assert e["energy_j"] == pytest.approx(amps_sum * 3.0 * 1e-5 / 2, rel=1e-9)
    assert "502 samples" in e["source"]  # the window and the start pulse
    assert any(r[:1] == b"\x0d" for r in dev.requests)  # REGULATOR_SET: the supply voltage


@pytest.mark.parametrize("pulses,why", [(0, "never pulsed"), (1, "one timestamp pulse")])
def test_ppk2_without_the_window_gives_no_result(pulses, why):
    pytest.importorskip("ppk2_api")
    stream, _ = ppk2_stream(window=100, idle=200, pulses=pulses)
    dev = FakeInstrument(lambda req: METADATA if req[0] == 0x19 else
                         (stream if req[0] == 0x06 else b""), line_mode=False)
    try:
        meter = PPK2Meter(port=dev.path)
        meter.open(BOARDS["nucleo-l476rg"].profile)
        meter.begin()
        with pytest.raises(MeterError, match=why):
            meter.end({"cycles": 1})
        meter.close()
    finally:
        dev.close()


# ---- LPM01A ----------------------------------------------------------------------------------

def lpm01a_handler(acquisition: list[str]):
    def handler(req: bytes):
        cmd = req.decode().strip()
        if cmd == "stop":
            return b"PowerShield > ack stop\r\nAcquisition completed\r\n"
        reply = f"PowerShield > ack {cmd}\r\n".encode()
        if cmd == "start":
            reply += "".join(line + "\r\n" for line in acquisition).encode()
        return reply
    return handler


def test_lpm01a_meter_replay_with_d7_events():
    acquisition = (["TimeStamp: 0000s 000ms, buff 000%"] + ["1000-06"] * 20
                   + ["event 1 ris"] + ["8000-06"] * 50 + ["event 2 ris"] + ["1000-06"] * 20)
    dev = FakeInstrument(lpm01a_handler(acquisition), line_mode=True)
    try:
        meter = LPM01AMeter(port=dev.path, voltage_mv=3300, freq="5k", baudrate=115200)
        meter.open(BOARDS["nucleo-l476rg"].profile)
        meter.begin()
        e = meter.end({"cycles": 1}, n=1)
        meter.close()
    finally:
        dev.close()
    assert e["energy_j"] == pytest.approx(50 * 8e-3 * 3.3 / 5000)
    sent = [r.decode().strip() for r in dev.requests]
    assert sent[0] == "htc" and "format ascii_dec" in sent and "eventsrc d7 fal" in sent


def test_lpm01a_stream_parsing():
    cur, marks = parse_lpm01a_stream(["6409-07", "event 3 ris", "1234-05", "event 4 fal",
                                      "0001+00"])
    assert cur == pytest.approx([640.9e-6, 12.34e-3, 1.0]) and marks == [1, 2]
    cur, marks = parse_lpm01a_stream(["TimeStamp: 0000s 000ms, buff 000%", "0500-06", "0500-06"])
    assert marks == [] and len(cur) == 2
    assert parse_lpm01a_stream(["TimeStamp: 0000s 000ms, buff 000%"]) == ([], [])


def test_window_is_between_the_first_two_falling_edges():
    levels = [1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 1]
    assert falling_edges(levels) == [2, 7, 9]
    assert timestamp_window(falling_edges(levels)) == (2, 7)
    assert integrate_window([1.0] * 11, 2, 7, 0.5, 2.0, 5) == (pytest.approx(1.0), 5)
    with pytest.raises(MeterError, match="one timestamp"):
        timestamp_window(falling_edges([1, 0, 0, 0]))
    with pytest.raises(MeterError, match="never pulsed"):
        timestamp_window(falling_edges([0, 0, 1, 1]))  # low from the start is no edge
