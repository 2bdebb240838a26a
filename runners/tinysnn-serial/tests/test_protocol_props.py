"""Property tests of the host-side encoding (hypothesis)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinysnn_serial import protocol as P
from tinysnn_serial.crc import crc32

body_chars = st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters="%@")
bodies = st.text(body_chars, min_size=1, max_size=P.MAX_BODY).filter(lambda s: s.strip() == s
                                                                        and s)
seqs = st.integers(0, 0xFFFF)


@given(bodies, seqs)
def test_frame_round_trip(body, seq):
    assert P.parse_frame(P.frame(body, seq)) == (body, seq)


@given(bodies, seqs, st.data())
def test_any_single_byte_corruption_is_caught(body, seq, data):
    f = bytearray(P.frame(body, seq))
    i = data.draw(st.integers(0, len(f) - 2))  # not the final '%'
    f[i] ^= data.draw(st.integers(1, 255))
    if b"%" in f[:-1]:
        return  # the device would see two frames; each fails on its own (see the C tests)
    try:
        got_body, got_seq = P.parse_frame(bytes(f))
    except P.FrameError:
        return
    # A frame whose '@' was destroyed reads as a plain (unsequenced) command; it can never
    # pass as a sequenced command with different content.
    assert got_seq is None


@given(st.text(body_chars, max_size=200))
def test_line_crc_round_trip(text):
    assert P.strip_crc(P.with_crc(text)) == text


@given(st.text(body_chars, min_size=1, max_size=200), st.data())
def test_line_crc_detects_corruption(text, data):
    line = bytearray(P.with_crc(text).encode())
    i = data.draw(st.integers(0, len(line) - 1))
    line[i] = data.draw(st.integers(0x20, 0x7E).filter(lambda b: b != line[i]))
    with pytest.raises(P.IntegrityError):
        P.strip_crc(line.decode())


@given(st.binary(min_size=784, max_size=784), st.integers(0, 2**32 - 1),
       st.integers(0, 2**32 - 1))
def test_sample_round_trip(image, seed, sid):
    payload = P.encode_sample(image, seed, sid)
    assert len(payload) == P.SAMPLE_BYTES == 792
    assert P.decode_sample(payload) == (image, seed, sid)


@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"") + b"\r\n"),
                max_size=8), seqs)
def test_ack_matches_its_lines(lines, seq):
    m = P.ACK_RE.match(P.ack_line(seq, lines))
    assert m and int(m.group(1), 16) == seq and int(m.group(2)) == len(lines)
    assert int(m.group(3), 16) == crc32(b"".join(lines))


def test_crc_is_zlib_crc32():
    assert crc32(b"123456789") == 0xCBF43926


@settings(max_examples=50)
@given(st.binary(min_size=784, max_size=784), st.integers(0, 2**32 - 1),
       st.integers(0, 2**32 - 1))
def test_protocol_test_engine_reference_is_total(image, seed, sid):
    counts, pred = P.protocol_test_engine(image, seed, sid)
    assert len(counts) == 10 and 0 <= pred < 10


# -- results gathered over damaged attempts -----------------------------------------------------
from hypothesis import given, settings, strategies as st  # noqa: E402

from tinysnn_serial.protocol import (  # noqa: E402
    _results_done, _results_key, _SelfCheckingLines, with_crc)


def _results_reply(counts):
    head = with_crc(f"m-results-sid=7,seed=9,pred=3,cycles=100,n={len(counts)},sum={sum(counts)}")
    lines = [head]
    spiked = [(i, c) for i, c in enumerate(counts) if c]   # as the device: 8 pairs a line
    for k in range(0, len(spiked), 8):
        lines.append(with_crc("m-spikes-" + ".".join(f"{i}:{c}" for i, c in spiked[k:k + 8])))
    return lines


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=1, max_size=450), st.integers(0, 2**32 - 1))
def test_results_salvaged_over_damaged_attempts_are_exact(counts, seed):
    """Each attempt loses or damages some lines; the collector returns the reply only once every
    line the device sent arrived intact at least once, and then exactly the device's lines (the
    neurons it does not list are known to be zeros once the held lines add up to `sum`)."""
    import random

    rnd = random.Random(seed)
    reply = _results_reply(counts)
    collector = _SelfCheckingLines(_results_key, _results_done)
    for attempt in range(400):
        got = []
        for line in reply:
            roll = rnd.random()
            if roll < 0.3:
                continue                      # lost
            if roll < 0.6:                    # one character changed
                i = rnd.randrange(len(line))
                line = line[:i] + chr((ord(line[i]) + 1 - 32) % 95 + 32) + line[i + 1:]
            got.append(line)
        out = collector.add(got)
        if out is not None:
            assert sorted(out) == sorted(reply)
            return
    raise AssertionError("400 attempts never completed the reply")
