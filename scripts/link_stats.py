#!/usr/bin/env python3
"""One Markdown table row per damage run of scripts/results_link.sh: samples (distinct, and
whether any was recorded twice), parity, sessions, the link's counts summed over the sample
records and session records, the bytes the proxy damaged, the wall time of the samples.

    .venv/bin/python scripts/link_stats.py runs/link/0.01 runs/link/0.03 runs/link/0.05
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(run: Path) -> str:
    recs = [json.loads(line) for line in (run / "measure.jsonl").read_text().splitlines()
            if line.strip()]
    samples = [r for r in recs if r.get("kind") == "sample"]
    sessions = [r for r in recs if r.get("kind") == "session"]
    sids = [r["sid"] for r in samples]
    link: dict[str, int] = {}
    for r in samples + sessions:
        for k, v in r.get("link", {}).items():
            link[k] = link.get(k, 0) + v
    parity = sum(r["pred"] == r["host_pred"] and r["counts_ok"] for r in samples)
    proxy = json.loads((run / "proxy.json").read_text()) if (run / "proxy.json").exists() else {}
    damaged = sum(proxy.get(d, {}).get(k, 0) for d in ("to_board", "to_host")
                  for k in ("dropped", "flipped"))
    passed = sum(proxy.get(d, {}).get("passed", 0) for d in ("to_board", "to_host"))
    times = sorted(r["t"] for r in samples)
    wall = times[-1] - times[0] if len(times) > 1 else 0.0
    return (f"| {run.name} | {len(set(sids))} ({len(sids) - len(set(sids))} twice) | "
            f"{parity}/{len(samples)} | {max(len(sessions), 1)} | {link.get('commands', 0):,} | "
            f"{link.get('attempts', 0):,} | {link.get('retries', 0):,} | "
            f"{link.get('salvaged', 0):,} | {link.get('posted', 0):,} | "
            f"{link.get('reloads', 0)} | {damaged:,} of {damaged + passed:,} | "
            f"{wall:,.0f} s ({wall / max(len(samples) - 1, 1):.2f} s) |")


def main(argv: list[str]) -> int:
    print("| damage | samples | parity | sessions | commands | attempts | retries | salvaged | "
          "posted | reloads | bytes damaged | wall (per sample) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for arg in argv:
        print(row(Path(arg)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
