"""The host-built firmware (ASan/UBSan when available) over a pty and over pipes."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinysnn_serial import protocol as P
from tinysnn_serial.boards import BOARDS
from tinysnn_serial.transports import PtyTransport, SerialTransport, SubprocessTransport


def _image(rng):
    return bytes(rng.randrange(256) for _ in range(784))


@pytest.mark.parametrize("kind", ["pty", "subprocess"])
def test_samples_round_trip(host_fw, kind):
    cls = PtyTransport if kind == "pty" else SubprocessTransport
    rng = random.Random(5)
    with cls([str(host_fw)]) as t:
        dut = P.DeviceUnderTest(t, timeout=2.0)
        assert dut.connect() == "host"
        prof = dut.profile()
        assert prof["engine"] == "protocol-test-engine" and prof["neurons"] == "10"
        for sid in range(4):
            image = _image(rng)
            res = dut.run_sample(image, 99 + sid, sid, n=2, warmup=1)
            assert (res.counts, res.prediction) == P.protocol_test_engine(image, 99 + sid, sid)
            assert res.sample_id == sid and res.infer["n"] == 2 and res.infer["w"] == 1
        assert dut.stats.retries == 0 and dut.stats.samples == 4


def test_board_start_gives_a_pyserial_url(host_fw):
    with BOARDS["host"].start(host_fw) as running:
        assert running.url.startswith("/dev/")
        with SerialTransport(running.url) as t:
            assert P.DeviceUnderTest(t, timeout=2.0).connect() == "host"


def _raw(t, data, until=b"m-ready\r\n"):
    t.write(data)
    out = b""
    while not out.endswith(until):
        chunk = t.readline(2.0)
        assert chunk, f"no answer, got {out!r}"
        out += chunk
    return out


def test_plain_eembc_flow(host_fw):
    """Plain frames get the EEMBC answers (test_eembc_mode.py checks them line by line)."""
    with SubprocessTransport([str(host_fw)]) as t:
        _raw(t, b"")  # boot banner
        assert b"m-name-dut-[tinysnn-host]" in _raw(t, b"name%")
        assert b"m-profile-[tinysnn]" in _raw(t, b"profile%")
        payload = P.encode_sample(bytes(range(256)) * 3 + bytes(16), 7, 3)
        assert b"m-db-len-0-of-792" in _raw(t, b"db load 792%")
        for off in range(0, 792, 96):
            out = _raw(t, b"db " + payload[off:off + 96].hex().encode() + b"%")
        assert b"m-load-done" in out and f"m-db-crc-{P.crc32(payload):08x}".encode() in out
        counts, pred = P.protocol_test_engine(payload[:784], 7, 3)
        scores = "m-results-[" + ",".join(f"{c}.00" for c in counts) + "]"
        assert scores.encode() in _raw(t, b"infer 1 0%")
        assert _raw(t, b"results%").decode() == scores + "\r\nm-ready\r\n"


def test_sequenced_infer_and_results_keep_the_tinysnn_answers(host_fw):
    with SubprocessTransport([str(host_fw)]) as t:
        _raw(t, b"")  # boot banner
        _raw(t, b"name%")
        payload = P.encode_sample(bytes(range(256)) * 3 + bytes(16), 7, 3)
        _raw(t, P.frame("db load 792", 1))
        for k, off in enumerate(range(0, 792, 96)):
            _raw(t, P.frame("db " + payload[off:off + 96].hex(), 2 + k))
        out = _raw(t, P.frame("infer 1 0", 20)).decode()
        assert "m-infer-n=1,w=0" in out and "m-lap-us" not in out
        out = _raw(t, P.frame("results", 21)).decode()
        counts, pred = P.protocol_test_engine(payload[:784], 7, 3)
        assert f"pred={pred}" in out and "sid=3" in out and "m-results-[" not in out


def test_retransmission_is_not_applied_twice(host_fw):
    with SubprocessTransport([str(host_fw)]) as t:
        _raw(t, b"")  # boot banner
        _raw(t, b"name%")
        _raw(t, P.frame("db load 8", 10))
        first = _raw(t, P.frame("db 00112233", 11))
        again = _raw(t, P.frame("db 00112233", 11))
        assert b"m-db-len-4-of-8" in first and b"m-db-len-4-of-8" in again
        # the next sequence number is a new command
        assert b"m-db-len-8-of-8" in _raw(t, P.frame("db 00112233", 12))


def test_unsequenced_data_cannot_join_a_sequenced_load(host_fw):
    with SubprocessTransport([str(host_fw)]) as t:
        _raw(t, b"")  # boot banner
        _raw(t, b"name%")
        _raw(t, P.frame("db load 8", 1))
        assert b"e-db-unsequenced" in _raw(t, b"db 0011%")


@pytest.mark.parametrize("frame,error", [
    (b"x" * 300 + b"%", b"e-frame-overflow"),
    (b"name@0001:00000000%", b"e-frame-crc"),
    (b"name@01:0%", b"e-frame-malformed"),
    (b"db load 99999999999%", b"e-db-size"),
    (b"infer 0 0%", b"e-infer-args"),
    (b"infer 1 0%", b"e-db-incomplete"),
    (b"\x00\xff\x80%", b"e-unknown-command"),
])
def test_errors(host_fw, frame, error):
    with SubprocessTransport([str(host_fw)]) as t:
        _raw(t, b"")
        assert error in _raw(t, frame)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(max_size=600), seq=st.integers(0, 0xFFFF))
def test_resync_after_garbage(host_fw, garbage, seq):
    """Whatever came before, a lone '%' and then a valid frame get a valid answer."""
    with SubprocessTransport([str(host_fw)]) as t:
        t.write(garbage + b"%")
        dut = P.DeviceUnderTest(t, timeout=2.0, quiet=0.01, seq_start=seq, retries=3)
        assert dut.name() == "host"
        # the garbage's own replies (and the boot banner's m-ready) can cost a re-send
        assert dut.stats.retries <= 3
        assert t.proc.poll() is None  # still alive (a sanitizer report would have killed it)


def _lines(out: bytes) -> list[bytes]:
    return out.split(b"\r\n")[:-1]


def test_reply_copies(host_fw):
    """BODY*R answers R copies under one ack whose count and CRC cover them all; an infer's
    copies after the first are its stored line (one inference, not R)."""
    with SubprocessTransport([str(host_fw)]) as t:
        _raw(t, b"")
        _raw(t, b"name%")
        one = _lines(_raw(t, P.frame("profile", 1)))
        three = _lines(_raw(t, P.frame("profile*3", 2)))
        body = one[:-2]
        assert three[:-2] == body * 3
        ack = P.ACK_RE.match(three[-2] + b"\r\n")
        assert ack and int(ack.group(2)) == 3 * len(body)
        assert int(ack.group(3), 16) == P.crc32(b"".join(x + b"\r\n" for x in body * 3))
        payload = P.encode_sample(bytes(784), 5, 1)
        _raw(t, P.frame("db load 792", 3))
        for k, off in enumerate(range(0, 792, 96)):
            _raw(t, P.frame("db " + payload[off:off + 96].hex(), 4 + k))
        infer = [x for x in _lines(_raw(t, P.frame("infer 1 0*4", 20))) if x.startswith(b"m-infer-")]
        assert len(infer) == 4 and len(set(infer)) == 1
        res = _lines(_raw(t, P.frame("results*2", 21)))
        assert res[:-2] == res[:(len(res) - 2) // 2] * 2


@pytest.mark.parametrize("body", ["results*0", "results*65", "results*999"])
def test_reply_copies_out_of_range(host_fw, body):
    with SubprocessTransport([str(host_fw)]) as t:
        _raw(t, b"")
        assert _lines(_raw(t, P.frame(body, 1))) == [b"e-frame-copies", b"m-ready"]


@pytest.mark.parametrize("frame,error", [
    (P.frame("infer 1 0", 3).replace(b" ", b"!", 1), b"e-frame-crc"),     # ' ' one bit from '!'
    (P.frame("name", 4)[:-1] + b"!%", b"e-frame-malformed"),              # so is its '%'
])
def test_a_sequenced_frame_with_a_bang_is_answered(host_fw, frame, error):
    """A '!' makes a frame posted (silent) only when it has no '@': one damaged byte of a
    sequenced frame gets an error answer at once, not a silence the host must wait out."""
    with SubprocessTransport([str(host_fw)]) as t:
        _raw(t, b"")
        assert _lines(_raw(t, frame)) == [error, b"m-ready"]
