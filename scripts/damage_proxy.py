#!/usr/bin/env python3
"""A TCP proxy that damages bytes, for testing a board link the way a bad cable or a noisy UART
would: between a host (``tinysnn measure --port socket://127.0.0.1:LISTEN``) and a board that
listens on TCP (a QEMU board from ``tinysnn board start``).

Each byte, in each direction, is dropped with probability RATE/2 or has one random bit flipped
with probability RATE/2, from a seeded generator per direction (the same seed gives the same
damage for the same byte stream). It is deliberately independent of tinysnn (standard library
only): the link code under test must not be the code that damages it.

    python3 scripts/damage_proxy.py --listen 4400 --upstream 127.0.0.1:4321 --rate 0.03 \
        --seed 1 --stats runs/proxy-stats.json

The proxy serves one connection at a time, for as long as it runs; on SIGINT or SIGTERM it
writes its counts (bytes passed, dropped, flipped, per direction) to ``--stats`` and stops.
"""

from __future__ import annotations

import argparse
import json
import random
import selectors
import signal
import socket
import sys
import time


class Damage:
    """One direction's damage: a seeded generator and its counts."""

    def __init__(self, rate: float, seed: int):
        self.rate = rate
        self.rng = random.Random(seed)
        self.passed = self.dropped = self.flipped = 0

    def apply(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            roll = self.rng.random()
            if roll < self.rate / 2:
                self.dropped += 1
                continue
            if roll < self.rate:
                b ^= 1 << self.rng.randrange(8)
                self.flipped += 1
            out.append(b)
            self.passed += 1
        return bytes(out)

    def counts(self) -> dict:
        return {"passed": self.passed, "dropped": self.dropped, "flipped": self.flipped}


def serve(listen: int, upstream: tuple[str, int], rate: float, seed: int, stats_path: str | None):
    to_board = Damage(rate, seed * 2 + 1)
    to_host = Damage(rate, seed * 2 + 2)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    server = socket.create_server(("127.0.0.1", listen), reuse_port=False)
    server.settimeout(0.2)
    print(f"damage proxy: 127.0.0.1:{listen} -> {upstream[0]}:{upstream[1]}, rate {rate}, "
          f"seed {seed}", flush=True)
    started = time.time()
    try:
        while not stop:
            try:
                host, _ = server.accept()
            except socket.timeout:
                continue
            board = socket.create_connection(upstream, timeout=10)
            for s in (host, board):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.setblocking(False)
            sel = selectors.DefaultSelector()
            sel.register(host, selectors.EVENT_READ, (board, to_board))
            sel.register(board, selectors.EVENT_READ, (host, to_host))
            open_ = True
            while open_ and not stop:
                for key, _ in sel.select(0.2):
                    peer, damage = key.data
                    try:
                        data = key.fileobj.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        open_ = False
                        break
                    out = damage.apply(data)
                    if out:
                        peer.setblocking(True)
                        peer.sendall(out)
                        peer.setblocking(False)
            sel.close()
            host.close()
            board.close()
    finally:
        server.close()
        summary = {"rate": rate, "seed": seed, "seconds": round(time.time() - started, 1),
                   "to_board": to_board.counts(), "to_host": to_host.counts()}
        print("damage proxy: " + json.dumps(summary), flush=True)
        if stats_path:
            with open(stats_path, "w") as fh:
                json.dump(summary, fh, indent=1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", type=int, required=True, help="local TCP port for the host")
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the board")
    ap.add_argument("--rate", type=float, required=True, help="fraction of bytes damaged")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stats", help="write the counts here (JSON) when stopped")
    args = ap.parse_args(argv)
    if not 0 <= args.rate < 1:
        ap.error(f"--rate must be in [0, 1), got {args.rate}")
    host, sep, port = args.upstream.rpartition(":")
    if not sep or not port.isdigit():
        ap.error(f"--upstream must be HOST:PORT, got {args.upstream!r}")
    serve(args.listen, (host, int(port)), args.rate, args.seed, args.stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
