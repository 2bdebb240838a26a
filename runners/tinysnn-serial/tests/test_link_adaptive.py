"""The streamed load (posted frames, db put, db map) and the link model that sizes it.

Against the host firmware (ASan/UBSan): what db map reports after any subset of puts arrived,
that damaged posted frames stay silent, and the zero-run puts; in Python: the put bodies
rebuild the payload, and the link model's settings move the right way with the damage.
"""

import random
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinysnn_serial import protocol as P
from tinysnn_serial.crc import crc32
from tinysnn_serial.transports import PtyTransport


def _apply(bodies: list[str], size: int) -> bytes:
    """What the device's buffer holds after the db put bodies (zeros where nothing arrived)."""
    buf = bytearray(size)
    for body in bodies:
        _, _, off, data = body.split()
        off = int(off)
        part = bytes(int(data[1:])) if data.startswith("z") else bytes.fromhex(data)
        buf[off:off + len(part)] = part
    return bytes(buf)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=1024).map(
           lambda b: bytes(x if x % 3 else 0 for x in b)),   # many zeros, as in an image
       st.integers(1, 96), st.data())
def test_put_bodies_rebuild_exactly_the_chunks_asked_for(payload, chunk, data):
    n_chunks = -(-len(payload) // chunk)
    todo = sorted(data.draw(st.sets(st.integers(0, n_chunks - 1), min_size=1)))
    bodies = P.DeviceUnderTest._put_bodies(payload, chunk, todo)
    got = _apply(bodies, len(payload))
    for i in range(n_chunks):
        part = slice(i * chunk, (i + 1) * chunk)
        if i in todo:
            assert got[part] == payload[part]
        else:
            assert not any(got[part])           # nothing written outside the chunks asked for
    assert all(len(b) <= P.MAX_BODY for b in bodies)


def test_link_model_follows_the_damage():
    chunks, copies = [], []
    for p in (0.0, 0.001, 0.01, 0.03, 0.05, 0.1):
        link = P.LinkModel(timeout=1.0)
        link.p = p
        chunks.append(link.chunk())
        copies.append(link.copies(link.chunk(), 50))
    assert chunks == sorted(chunks, reverse=True) and chunks[0] == 96 and chunks[-1] < 10
    assert copies[0] == 1 and copies == sorted(copies)
    link = P.LinkModel(timeout=1.0)
    for ok in [True] * 20:
        link.attempt("results", ok)
    clean = link.budget("results")
    for ok in [False] * 200:
        link.attempt("results", ok)
    assert link.budget("results") > 5 * clean       # a worse link gets more attempts


def test_reply_copies_follow_the_reply_damage():
    """Clean replies: one copy; as lines come back damaged, more copies, more for longer
    replies; the estimate comes from the lines themselves (CRC-valid or not)."""
    link = P.LinkModel(timeout=1.0)
    link.srtt = 0.01
    assert link.reply_copies(3, 60) == 1
    rng = random.Random(1)
    seen = []
    for p in (0.01, 0.03, 0.05):
        link = P.LinkModel(timeout=1.0)
        link.srtt = 0.01
        for _ in range(400):
            link.line_seen(60, rng.random() < (1 - p) ** 60)
        assert abs(link.p_rx - p) < p / 2
        seen.append((link.reply_copies(1, 45), link.reply_copies(3, 60)))
    assert seen == sorted(seen) and all(short <= long for short, long in seen)
    assert seen[0][1] > 1 and seen[-1][1] <= 64


class _ScriptedBoard:
    """A transport whose board answers each sequenced frame from a script: ``answers`` maps
    the attempt number to a function of the frame's sequence number giving the reply bytes."""

    def __init__(self, answers):
        self.answers, self.attempt, self.out = answers, 0, b""

    def write(self, data):
        if b"@" in data:
            seq = int(data[data.rindex(b"@") + 1:][:4], 16)
            self.out += self.answers[self.attempt](seq)
            self.attempt += 1

    def readline(self, timeout):
        i = self.out.find(b"\n")
        if i < 0:
            return b""
        line, self.out = self.out[:i + 1], self.out[i + 1:]
        return line

    def read(self, timeout):
        data, self.out = self.out, b""
        return data

    def describe(self):
        return "a scripted board"


def test_a_damaged_ack_fails_the_attempt_at_once():
    """An ack of one of the last STALE_WINDOW commands is a late answer to skip; any other
    number is our own ack with a damaged digit: the attempt fails at once (it used to be taken
    for an older answer and the host waited out the whole timeout)."""
    body = b"m-name-dut-[tinysnn-x]\r\n"

    def reply(seq_of):
        return lambda seq: body + P.ack_line(seq_of(seq), [body]) + b"m-ready\r\n"
    for seq_of, stale in [(lambda s: (s - 1) & 0xFFFF, 1), (lambda s: s ^ 0x1000, 0)]:
        t = _ScriptedBoard([reply(seq_of), reply(lambda s: s)])
        dut = P.DeviceUnderTest(t, timeout=1.0, seq_start=0xFFFF)
        start = time.monotonic()
        assert dut.name() == "x"
        if not stale:       # no wait at all; a skipped stale answer waits out the timeout
            assert time.monotonic() - start < 0.5
        assert (dut.stats.stale_acks, dut.stats.bad_acks, dut.stats.retries) == (stale, 1 - stale, 1)


def test_link_model_timeouts():
    link = P.LinkModel(timeout=2.0)
    assert link.timeout() == 2.0                   # nothing measured yet: the given timeout
    for _ in range(20):
        link.rtt_sample(0.002)
    short = link.timeout()
    assert link.min_timeout <= short < 0.1
    assert link.timeout(10_000) > short + 1.0      # a long stream in front waits for its bytes
    link.timed_out()
    assert link.timeout() == 2 * short             # silence doubles the wait ...
    link.answered()
    assert link.timeout() == short                 # ... and an answer undoes it


def _session(host_fw):
    t = PtyTransport([str(host_fw)])
    t.open()
    dut = P.DeviceUnderTest(t, timeout=2.0)
    dut.connect()
    return t, dut


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 7, 9, 24, 96]))
def test_db_map_reports_exactly_the_chunks_that_arrived(host_fw, seed, chunk):
    rng = random.Random(seed)
    payload = bytes(rng.randrange(256) if rng.random() < 0.4 else 0 for _ in range(792))
    n_chunks = -(-len(payload) // chunk)
    arrived = sorted(rng.sample(range(n_chunks), rng.randrange(n_chunks + 1)))
    t, dut = _session(host_fw)
    try:
        dut.post(f"db load {len(payload)}")
        for body in P.DeviceUnderTest._put_bodies(payload, chunk, arrived):
            dut.post(body)
        fill, crc, complete = dut.db_map(chunk, len(payload))
        assert complete == [i in arrived for i in range(n_chunks)]
        assert fill == sum(len(payload[i * chunk:(i + 1) * chunk]) for i in arrived)
        if fill == len(payload):
            assert crc == crc32(payload)
        assert dut.stats.retries == 0
    finally:
        t.close()


def test_damaged_posted_frames_stay_silent(host_fw):
    """Every single-bit change of a posted put, and two puts run together: no answer at all,
    and never a wrong byte written (only a change of a CRC digit's letter case keeps the frame
    what it was); the next sequenced command's answer is the first thing that comes back."""
    payload = bytes(range(256)) * 3 + bytes(24)
    body = f"db put 0 {payload[:24].hex()}"
    good = f"{body}!{crc32(body.encode()):08x}%".encode()
    rng = random.Random(1)
    damaged = []
    for i in range(len(good) - 1):             # the final '%' kept: the frame ends
        b = bytearray(good)
        b[i] ^= 1 << rng.randrange(8)
        if b"%" not in b[:-1]:
            damaged.append(bytes(b))
    damaged.append(good[:-1] + good)            # a lost '%': two frames run together
    t, dut = _session(host_fw)
    try:
        dut.post(f"db load {len(payload)}")
        for frame_bytes in damaged:
            dut._send(frame_bytes)
        fill, crc, complete = dut.db_map(24, len(payload))
        extra = [r for r in dut._received if not r.startswith(b"m-db-")]
        assert extra == [] and dut.stats.retries == 0 and dut.stats.unacked_ready == 0
        expected = payload[:24] + bytes(len(payload) - 24)
        assert (fill, crc) in ((0, crc32(bytes(len(payload)))), (24, crc32(expected)))
        dut._send(good)
        fill, crc, complete = dut.db_map(24, len(payload))
        assert (fill, crc) == (24, crc32(expected)) and complete[0] and not any(complete[1:])
    finally:
        t.close()


def test_a_sample_loads_without_a_retry_on_a_clean_link(host_fw):
    rng = random.Random(3)
    t, dut = _session(host_fw)
    try:
        for sid in range(3):
            image = bytes(rng.randrange(256) if rng.random() < 0.2 else 0 for _ in range(784))
            res = dut.run_sample(image, 11, sid)
            assert (res.counts, res.prediction) == P.protocol_test_engine(image, 11, sid)
        assert dut.stats.retries == 0 and dut.stats.posted_lost == 0
        assert dut.link.p < 1e-3 and dut.link.chunk() == 96
    finally:
        t.close()


def test_a_board_that_never_answers_the_greeting_is_given_up(tmp_path):
    """No byte ever comes back: connect() stops after ``dead_after`` with a one-line LinkError
    (the greeting's budget grows with its failures, so silence must end it)."""
    import time

    import pytest

    from tinysnn_serial.transports import SubprocessTransport

    with SubprocessTransport(["sleep", "60"]) as t:
        dut = P.DeviceUnderTest(t, timeout=0.3, dead_after=1.0)
        start = time.monotonic()
        with pytest.raises(P.LinkError, match="sent nothing"):
            dut.connect()
        assert time.monotonic() - start < 10


def test_bare_lines_are_the_firmwares():
    """The host's list of the lines the device sends without a CRC is the firmware's."""
    import re
    from pathlib import Path
    src = (Path(P.__file__).parent.parent / "firmware" / "protocol.c").read_text()
    assert set(re.findall(r'emit\("([^"]*)"\)', src)) == set(P.BARE_LINES)
    assert P.line_intact(b"m-ready\r\n") and not P.line_intact(b"m-raady\r\n")
    assert P.line_intact((P.with_crc("m-neurons-400") + "\r\n").encode())
    assert not P.line_intact((P.with_crc("m-neurons-400") + "\r\n").encode().replace(b"4", b"5"))


def test_a_stray_answer_is_skipped_and_a_frame_error_is_not():
    """An unknown-command answer (to a fragment of a damaged posted frame) in front of our
    reply is skipped within the same attempt; a frame error is our frame's and fails it."""
    body = b"m-name-dut-[tinysnn-x]\r\n"
    ours = lambda seq: body + P.ack_line(seq, [body]) + b"m-ready\r\n"      # noqa: E731
    for stray in (b"e-unknown-command\r\n", b"e-unknowo-command\r\n"):
        t = _ScriptedBoard([lambda seq, s=stray: s + b"m-ready\r\n" + ours(seq)])
        dut = P.DeviceUnderTest(t, timeout=1.0)
        assert dut.name() == "x"
        assert (dut.stats.strays, dut.stats.attempts, dut.stats.unacked_ready) == (1, 1, 0)
    t = _ScriptedBoard([lambda seq: b"e-frame-crc\r\nm-ready\r\n", ours])
    dut = P.DeviceUnderTest(t, timeout=1.0)
    start = time.monotonic()
    assert dut.name() == "x"
    assert time.monotonic() - start < 0.5
    assert (dut.stats.strays, dut.stats.attempts, dut.stats.unacked_ready) == (0, 2, 1)
