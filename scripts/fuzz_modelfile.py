"""A fuzz campaign against the model-file loader (tinysnn_core.fuzzing), each case loaded under a
time limit: first a systematic sweep (every header path with every hostile JSON value, every
array's first, middle and last element with every hostile number, checksums valid), then a
hypothesis campaign (bit flips, truncations, valid-checksum edits of any header field, array
element or prefix field). Prints the cases tried and how they ended; exits 1 on any traceback,
hang or multi-line message.

    .venv/bin/python scripts/fuzz_modelfile.py --cases 20000 [--model runs/x.tsnn] [--seed 0]

Without --model it mutates a small quantized and a small float model that it writes itself.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

from tinysnn_core.fuzzing import (header_paths, load_outcome, model_file_mutations,
                                  sample_model_file, split, systematic_mutations)


def campaign(base: bytes, cases: int, workdir: Path, rng_seed: int, limit_s: float):
    """Run ``cases`` mutations of ``base``; returns (outcome counts, failures)."""
    counts, failures = collections.Counter(), []
    case_path = workdir / "case.tsnn"

    @seed(rng_seed)
    @settings(max_examples=cases, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(model_file_mutations(base))
    def one(case):
        label, data = case
        case_path.write_bytes(data)
        kind, text = load_outcome(case_path, limit_s)
        if kind == "refused" and "\n" in text:
            kind = "multi-line message"
        counts[kind] += 1
        counts[f"kind: {label.split(' ')[0]}"] += 1
        if kind not in ("loaded", "refused"):
            failures.append((label, kind, text))

    one()
    return counts, failures


def sweep(base: bytes, workdir: Path, limit_s: float):
    """Every systematic mutation of ``base``; returns (outcome counts, failures)."""
    counts, failures = collections.Counter(), []
    case_path = workdir / "case.tsnn"
    for label, data in systematic_mutations(base):
        case_path.write_bytes(data)
        kind, text = load_outcome(case_path, limit_s)
        if kind == "refused" and "\n" in text:
            kind = "multi-line message"
        counts[kind] += 1
        if kind not in ("loaded", "refused"):
            failures.append((label, kind, text))
    return counts, failures


def report(name: str, what: str, counts, failures, seconds: float) -> None:
    tried = counts["loaded"] + counts["refused"] + len(failures)
    tracebacks = sum(1 for f in failures if f[1] == "traceback")
    hangs = sum(1 for f in failures if f[1] == "hang")
    print(f"{name}, {what}: {tried} cases in {seconds:.0f} s; refused {counts['refused']}, "
          f"loaded {counts['loaded']}, tracebacks {tracebacks}, hangs {hangs}, multi-line "
          f"messages {len(failures) - tracebacks - hangs}")
    kinds = {k[6:]: v for k, v in sorted(counts.items()) if k.startswith("kind: ")}
    if kinds:
        print("  by mutation: " + ", ".join(f"{k} {v}" for k, v in kinds.items()))
    for label, kind, text in failures[:5]:
        print(f"  {kind}: {label}\n{text}", file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20000, help="cases per base model")
    parser.add_argument("--model", action="append", help="a model file to mutate (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-s", type=float, default=10.0, help="time limit of one load")
    args = parser.parse_args(argv)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bases = ([(m, Path(m).read_bytes()) for m in args.model] if args.model else
                 [("small quantized model", sample_model_file(work / "q.tsnn")),
                  ("small float model", sample_model_file(work / "f.tsnn", quantized=False))])
        for name, base in bases:
            head, _ = split(base)
            name = f"{name} ({len(base)} bytes, {len(header_paths(json.loads(head)))} header paths)"
            started = time.perf_counter()
            counts, failures = sweep(base, work, args.limit_s)
            report(name, "systematic sweep", counts, failures, time.perf_counter() - started)
            failed += len(failures)
            started = time.perf_counter()
            counts, failures = campaign(base, args.cases, work, args.seed, args.limit_s)
            report(name, f"hypothesis campaign (seed {args.seed})", counts, failures,
                   time.perf_counter() - started)
            failed += len(failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
