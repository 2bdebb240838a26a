"""Write the seed corpus of the real-engine fuzz target (make fuzz-engine) to corpus-engine/.

Each seed is a whole session that reaches `results`: `db load 792`, the sample's `db` frames,
`infer N W` and `results`, as plain EEMBC frames (class scores), as the host's sequenced frames
(spike counts; with retransmissions), mixed, and as the MLPerf Tiny runner sends them (`help`,
`timestamp`, a bare 784-byte image). The samples are mnist-5k test images when the
data set is there (else fixed sparse random images): the engine's paths depend on the pixels,
not on where they came from.

    .venv/bin/python runners/tinysnn-serial/firmware/fuzz/make_engine_corpus.py
"""

from __future__ import annotations

import random
from pathlib import Path

from tinysnn_serial.crc import crc32
from tinysnn_serial.protocol import IMAGE_BYTES, DeviceUnderTest, encode_sample, frame

CORPUS = Path(__file__).resolve().parent / "corpus-engine"
PLAIN_CHUNK = 126   # bytes per plain `db` frame: "db " + 252 hex digits fit the 256-byte command
SEQ_CHUNK = 64      # bytes per sequenced frame, as the host sends them
SEED = 2            # the mnist-5k test split's input-spike seed of docs/results.md


def images(k: int) -> list[bytes]:
    try:
        from tinysnn_core.builtin.datasets import load_mnist_5k

        return [bytes(img) for img in load_mnist_5k(0).test_images[:k]]
    except Exception:  # noqa: BLE001 - the data set is optional here
        rng = random.Random(0)
        return [bytes(rng.randrange(256) if rng.random() < 0.2 else 0 for _ in range(IMAGE_BYTES))
                for _ in range(k)]


def plain(bodies: list[str]) -> bytes:
    return "".join(f"{b}%" for b in bodies).encode("ascii")


def db_bodies(payload: bytes, chunk: int) -> list[str]:
    return [f"db load {len(payload)}"] + [f"db {payload[i:i + chunk].hex()}"
                                         for i in range(0, len(payload), chunk)]


def sequenced(bodies: list[str], repeat: set[int] = frozenset()) -> bytes:
    """Sequenced frames; those at the indexes in ``repeat`` are sent twice (a retransmission)."""
    out = b""
    for seq, body in enumerate(bodies, start=1):
        out += frame(body, seq) * (2 if seq - 1 in repeat else 1)
    return out


def posted(bodies: list[str]) -> bytes:
    """Posted frames (``BODY!CRC%``, never answered), as the host streams a load."""
    return b"".join(f"{b}!{crc32(b.encode('ascii')):08x}%".encode("ascii") for b in bodies)


def posted_load(payload: bytes, chunk: int) -> bytes:
    """The host's way of loading: a posted db load and puts (zero runs as zLEN), twice."""
    bodies = DeviceUnderTest._put_bodies(payload, chunk, list(range(-(-len(payload) // chunk))))
    return posted([f"db load {len(payload)}"] + bodies + bodies)


def seeds() -> dict[str, bytes]:
    a, b = images(2)
    sample_a = encode_sample(a, SEED, 0)
    sample_b = encode_sample(b, SEED, 1)
    blank = encode_sample(bytes(IMAGE_BYTES), SEED, 7)
    full = encode_sample(bytes([255]) * IMAGE_BYTES, SEED, 8)
    seq_bodies = ["name", "profile"] + db_bodies(sample_a, SEQ_CHUNK) + ["infer 1 0", "results"]
    return {
        "session-plain": plain(["name", "profile"] + db_bodies(sample_a, PLAIN_CHUNK)
                               + ["infer 1 0", "results"]),
        "session-seq": sequenced(seq_bodies, repeat={3, len(seq_bodies) - 2,
                                                     len(seq_bodies) - 1}),
        "session-repeat": plain(db_bodies(sample_a, PLAIN_CHUNK)
                                + ["results", "infer 3 2", "results", "infer 100000 100000",
                                   "results"]),
        "session-two-samples": plain(db_bodies(sample_a, PLAIN_CHUNK) + ["infer 1 0", "results"]
                                     + db_bodies(sample_b, PLAIN_CHUNK) + ["infer 1 0", "results"]),
        # plain load (cheap to mutate), sequenced infer and results (the spike-count reply)
        "session-mixed": plain(db_bodies(sample_b, PLAIN_CHUNK))
                         + sequenced(["infer 1 0", "results"]),
        # what the MLPerf Tiny runner sends: a bare 784-byte image, the default seed and id
        "session-eembc": plain(["name", "help", "timestamp"] + db_bodies(a, PLAIN_CHUNK)
                               + ["infer 1 1", "results"]),
        "session-blank": plain(db_bodies(blank, PLAIN_CHUNK) + ["infer 1 0", "results"]),
        "session-full": plain(db_bodies(full, PLAIN_CHUNK) + ["infer 1 0", "results"]),
        # the host's streamed load: posted db load and puts, db map, infer, results
        "session-posted": posted_load(sample_a, 24)
                          + sequenced(["db map 24", "infer 1 0", "results", "results"]),
        # half a load (every other put lost), the map of what is missing, the rest
        "session-posted-gaps": posted([f"db load {len(sample_b)}"])
                               + posted(DeviceUnderTest._put_bodies(sample_b, 9, list(range(0, 88, 2))))
                               + sequenced(["db map 9"])
                               + posted(DeviceUnderTest._put_bodies(sample_b, 9, list(range(1, 89, 2))))
                               + sequenced(["db map 9", "infer 1 0", "results"]),
        # the host on a damaged link: every frame ends '%%', answers asked for in copies
        # (BODY*R), a posted frame cut by a '!' turned '%' (its tail answered as unknown)
        "session-copies": posted([f"db load {len(sample_a)}"]).replace(b"%", b"%%")
                          + cut_posted(DeviceUnderTest._put_bodies(sample_a, 12,
                                                                   list(range(66))))
                          + b"".join(frame(f"{body}*{r}", seq) + b"%" for seq, (body, r) in
                                     enumerate([("profile", 3), ("db map 12", 9), ("infer 1 0", 4),
                                                ("results", 30), ("results", 64)], start=40)),
    }


def cut_posted(bodies: list[str]) -> bytes:
    """Posted frames ending '%%', every fifth with its '!' turned into '%'."""
    out = posted(bodies).replace(b"%", b"%%").split(b"!")
    return b"".join(part + (b"%" if k % 5 == 4 else b"!") for k, part in enumerate(out[:-1])) \
        + out[-1]


def main() -> None:
    CORPUS.mkdir(exist_ok=True)
    for name, data in seeds().items():
        (CORPUS / name).write_bytes(data)
        print(f"{CORPUS.name}/{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
