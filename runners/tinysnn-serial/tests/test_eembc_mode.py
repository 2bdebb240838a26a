"""The firmware's EEMBC / MLPerf Tiny dialect (plain frames) against the line formats the MLPerf
Tiny runner parses (github.com/mlcommons/tiny, benchmark/runner: device_under_test.py and
script.py). The patterns below are written from those formats here, not imported: the runner
is not a dependency. The sequenced dialect's tests are in test_host_firmware.py."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serial_models import sample_images, small_model
from serial_test_tools import need_qemu

from tinysnn_core import intsim
from tinysnn_core.train import stream_seed
from tinysnn_serial import codegen, eembc
from tinysnn_serial import protocol as P
from tinysnn_serial.boards import BOARDS
from tinysnn_serial.transports import SubprocessTransport

# what the runner accepts (DUT._get_name, DUT._get_profile, _ScriptInferStep)
RUNNER_NAME = re.compile(r"^m-(name)-dut-\[([^]]+)]$")
RUNNER_PROFILE = re.compile(r"^m-(model|profile)-\[([^]]+)]$")
RUNNER_LAP = re.compile(r"^m-lap-us-([0-9]+)$")
RUNNER_RESULTS = re.compile(r"^m-results-\[([^]]+)\]$")
RUNNER_CHUNK = 31  # bytes per `db HEX` command the runner sends (26 with a power manager)


def _ask(t, body: str) -> list[str]:
    """One plain frame; its answer lines up to and including m-ready, as the runner's serial
    reader splits them (at LF, CR dropped)."""
    t.write(body.encode("ascii") + b"%")
    lines = []
    while not lines or lines[-1] != "m-ready":
        raw = t.readline(10.0)
        assert raw.endswith(b"\r\n"), f"{body!r}: no whole line, got {raw!r} after {lines}"
        lines.append(raw.decode("ascii").rstrip("\r\n"))
    return lines


def _runner_load(t, data: bytes) -> list[str]:
    """Load ``data`` as the runner's DUT.load does: `db load N`, then 31-byte `db` commands."""
    assert "m-db-len-0-of-%d" % len(data) in _ask(t, f"db load {len(data)}")
    for off in range(0, len(data), RUNNER_CHUNK):
        last = _ask(t, "db " + data[off:off + RUNNER_CHUNK].hex())
    return last


def _runner_infer_view(lines: list[str]) -> dict:
    """What the runner's _ScriptInferStep takes from an infer answer: the first m-lap-us line
    is the start, a later one the end, the m-results line the scores."""
    view = {}
    for line in lines:
        m = RUNNER_LAP.match(line)
        if m:
            view["end_time" if "start_time" in view else "start_time"] = int(m.group(1))
        m = RUNNER_RESULTS.match(line)
        if m:
            view["results"] = [float(x) for x in m.group(1).split(",") if x.strip()]
    return view


@pytest.fixture()
def board(host_fw):
    with SubprocessTransport([str(host_fw)]) as t:
        t.readline(5.0), t.readline(5.0)  # the boot banner and its m-ready
        yield t


def test_name_and_profile_match_the_runner(board):
    name = _ask(board, "name")
    assert [RUNNER_NAME.match(x).group(2) for x in name[:-1]] == ["tinysnn-host"]
    got = {m.group(1): m.group(2) for m in map(RUNNER_PROFILE.match, _ask(board, "profile")) if m}
    assert got == {"profile": "tinysnn", "model": "none"}  # the protocol test engine's name


def test_sequenced_profile_lines_carry_their_crc(board):
    t = board
    t.write(P.frame("profile", 7))
    reply = []
    while not reply or not reply[-1].startswith("m-ack-"):
        reply.append(t.readline(5.0).decode("ascii").rstrip("\r\n"))
    assert t.readline(5.0) == b"m-ready\r\n"
    texts = [P.strip_crc(x) for x in reply[:-1]]  # raises on a line without a valid CRC
    assert texts[:2] == ["m-profile-[tinysnn]", "m-model-[none]"]
    assert texts[-1] == "m-proto-tinysnn-1" and len(texts) == 11
    t.write(P.frame("name", 8))
    assert t.readline(5.0) == b"m-name-dut-[tinysnn-host]\r\n"


def test_image_only_load_infer_and_results(board):
    image = bytes((i * 37 + 11) % 256 for i in range(P.IMAGE_BYTES))
    assert "m-load-done" in _runner_load(board, image)
    lines = _ask(board, "infer 5 2")
    assert lines[:3] == ["m-warmup-start-2", "m-warmup-done", "m-infer-start-5"]
    assert all(RUNNER_LAP.match(x) for x in lines[3:5])
    assert lines[5] == "m-infer-done" and RUNNER_RESULTS.match(lines[6])
    assert lines[7:] == ["m-ready"]
    view = _runner_infer_view(lines)
    assert view["end_time"] >= view["start_time"]
    counts, _ = P.protocol_test_engine(image, eembc.IMAGE_ONLY_SEED, eembc.IMAGE_ONLY_SAMPLE_ID)
    # the test engine's neuron k is class k's only neuron: its scores are the counts
    assert view["results"] == [float(c) for c in counts]
    assert _ask(board, "results") == [lines[-2], "m-ready"]


def test_full_sample_in_the_plain_dialect_uses_its_own_seed(board):
    image = bytes((i * 5) % 256 for i in range(P.IMAGE_BYTES))
    _runner_load(board, P.encode_sample(image, 1234, 56))
    view = _runner_infer_view(_ask(board, "infer 1 0"))
    assert view["results"] == [float(c) for c in P.protocol_test_engine(image, 1234, 56)[0]]


def test_incomplete_or_wrong_size_buffer_is_refused(board):
    _ask(board, "db load 100")
    assert "e-db-incomplete" in _ask(board, "infer 1 0")
    _ask(board, "db load 784")
    _ask(board, "db " + bytes(31).hex())
    assert "e-db-incomplete" in _ask(board, "infer 1 0")
    assert "e-no-results" in _ask(board, "results")


def test_timestamp_and_help(board):
    laps = []
    for _ in range(3):
        lines = _ask(board, "timestamp")
        assert len(lines) == 2 and RUNNER_LAP.match(lines[0])
        laps.append(int(RUNNER_LAP.match(lines[0]).group(1)))
    assert laps == sorted(laps)
    help_lines = _ask(board, "help")[:-1]
    assert all(x.startswith("m-help-") for x in help_lines)
    text = "\n".join(help_lines)
    for command in ("name", "profile", "timestamp", "db load N", "db HEX", "infer N [W]",
                    "results", "help"):
        assert f"m-help-{command} " in text
    board.write(P.frame("timestamp", 3))
    assert RUNNER_LAP.match(board.readline(5.0).decode().rstrip("\r\n"))
    assert board.readline(5.0).startswith(b"m-ack-0003-1-")


def test_image_only_seed_is_the_documented_stream():
    assert eembc.IMAGE_ONLY_SEED == stream_seed(0, "test") and eembc.IMAGE_ONLY_SAMPLE_ID == 0


def test_real_engine_scores_are_the_vote(tmp_path):
    """A model's engine: the scores of the results line are S_c / n_c of the integer simulator's
    spike counts, and their largest is the engine's prediction."""
    net = small_model("tinysnn", n=24, time_steps=60, seed=5)
    m = intsim.from_network(net)
    elf = BOARDS["host"].build(codegen.generate(m, "eembc").write(tmp_path / "engine"),
                               tmp_path / "build")
    images = sample_images(6)
    ids = np.full(len(images), eembc.IMAGE_ONLY_SAMPLE_ID)
    preds, counts = intsim.infer(m, images, eembc.IMAGE_ONLY_SEED, ids)
    assert counts.sum() > 0, "no spikes at all: the comparison would prove little"
    with SubprocessTransport([str(elf)]) as t:
        t.readline(5.0), t.readline(5.0)
        profile = {x.group(1): x.group(2) for x in map(RUNNER_PROFILE.match, _ask(t, "profile"))
                   if x}
        assert profile["model"] == "eembc"
        for b, image in enumerate(images):
            _runner_load(t, bytes(image))
            line = _ask(t, "infer 1 0")[-2]
            want = eembc.class_scores(counts[b], m.assignments, m.n_classes)
            assert line == "m-results-[" + ",".join(want) + "]"
            scores = _runner_infer_view([line])["results"]
            assert int(np.argmax(scores)) == int(preds[b]) == eembc.vote(counts[b], m.assignments,
                                                                          m.n_classes)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 12), st.data())
def test_printed_scores_keep_the_vote(n_classes, data):
    """Truncated to score_decimals(N), the scores' first largest is the exact vote's winner
    (ties to the lowest class), and each is the exact mean truncated."""
    n = data.draw(st.integers(1, 60))
    counts = data.draw(st.lists(st.integers(0, 65535), min_size=n, max_size=n))
    assign = data.draw(st.lists(st.integers(-1, n_classes - 1), min_size=n, max_size=n))
    scores = eembc.class_scores(counts, assign, n_classes)
    floats = [float(s) for s in scores]
    assert int(np.argmax(floats)) == eembc.vote(counts, assign, n_classes)
    d = eembc.score_decimals(n)
    for c, s in enumerate(scores):
        members = [k for k, a in zip(counts, assign) if a == c]
        if members:
            exact_scaled = sum(members) * 10 ** d // len(members)
            assert int(s.replace(".", "")) == exact_scaled
        else:
            assert float(s) == 0.0


def test_qemu_lap_times_are_its_virtual_microseconds(tmp_path):
    """On qemu-mps2-an385 the lap clock and the cycle counter come from the same SysTick: over a
    window longer than one SysTick wrap (0.67 s of virtual time), the lap times' difference is
    the instructions the counter measured / 1,000 plus the start pulse's 20 us (and the loop)."""
    need_qemu()
    import serial

    board = BOARDS["qemu-mps2-an385"]
    elf = board.build(build_dir=tmp_path / "fw")
    image = bytes((i * 3) % 256 for i in range(P.IMAGE_BYTES))
    with board.start(elf) as running:
        port = serial.serial_for_url(running.url, timeout=0.05)

        def ask(command: bytes) -> list[str]:
            port.write(command)
            buf, deadline = b"", time.monotonic() + 60
            while not buf.endswith(b"m-ready\r\n"):
                assert time.monotonic() < deadline, f"no answer to {command[:20]!r}: {buf!r}"
                buf += port.read(4096)
            return buf.decode().splitlines()

        time.sleep(0.3)
        while port.read(4096):  # the boot banner
            pass
        ask(b"db load 784%")
        for off in range(0, P.IMAGE_BYTES, RUNNER_CHUNK):
            ask(b"db " + image[off:off + RUNNER_CHUNK].hex().encode() + b"%")
        view = _runner_infer_view(ask(b"infer 70000 0%"))
        ask(b"name%")  # a new session: the sequenced infer below is executed, not a duplicate
        info = [x for x in ask(P.frame("infer 70000 0", 5)) if x.startswith("m-infer-")][0]
        total = int(P.parse_kv(P.strip_crc(info)[len("m-infer-"):])["total"])
    elapsed_us = view["end_time"] - view["start_time"]
    assert total > 700_000_000, "the window must span a SysTick wrap (2^24 ticks = 671 M)"
    # what the window holds besides the counted inferences: the loop around them (reading the
    # counter, min/max; about 30 instructions an inference here), never less than nothing
    overhead_us = elapsed_us - total / 1000 - 20
    assert 0 <= overhead_us < 0.01 * elapsed_us, (elapsed_us, total)
