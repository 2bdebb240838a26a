"""A fuzz campaign against the model-file loader (tinysnn_core.fuzzing), each case loaded under a
time limit: first a systematic sweep (every header path with every hostile JSON value, every
array's first, middle and last element with every hostile number, checksums valid), then a
hypothesis campaign (bit flips, truncations, valid-checksum edits of any header field, array
element or prefix field). Prints the cases tried and how they ended; exits 1 on any traceback,
hang or multi-line message.

    .venv/bin/python scripts/fuzz_modelfile.py --cases 20000 [--model runs/x.tsnn] [--seed 0]

Without --model it mutates a small quantized and a small float model that it writes itself.
Then a 3 GiB sparse model file (--big-gib) with a valid checksum is loaded under a 1 GiB
address-space limit (--as-limit-gib), by ``tinysnn eval`` and by the generic reader.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

from tinysnn_core.fuzzing import (header_paths, load_outcome, model_file_mutations,
                                  sample_model_file, sparse_model_file, split,
                                  systematic_mutations)


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


def big_file_check(work: Path, base: bytes, gib: float, limit_gib: float) -> int:
    """A sparse model file declaring ``gib`` GiB of weights (valid checksum), loaded by
    ``tinysnn eval`` and by the generic ``read_file`` under an address-space limit; prints each
    one's exit status, stderr, time and peak memory. Returns the number of failures."""
    import resource
    import subprocess

    path = work / "big.tsnn"
    sparse_model_file(path, base, int(gib * (1 << 30)))
    limit = int(limit_gib * (1 << 30))

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    generic = ("import sys\nfrom tinysnn_core.modelfile import read_file\n"
               "from tinysnn_core.errors import TinySNNError\n"
               "try:\n    read_file(sys.argv[1])\nexcept TinySNNError as exc:\n"
               "    sys.exit(f'tinysnn: error: {exc}')\n")
    failures = 0
    for what, cmd in (("tinysnn eval", [str(Path(sys.executable).with_name("tinysnn")), "eval",
                                        str(path)]),
                      ("modelfile.read_file", [sys.executable, "-c", generic, str(path)])):
        started = time.perf_counter()
        child = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 text=True, preexec_fn=limited)
        stderr = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)       # this child's own peak memory
        seconds = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        lines = stderr.strip().splitlines()
        ok = code != 0 and len(lines) == 1 and "Traceback" not in stderr
        failures += not ok
        print(f"{gib:g} GiB file ({path.stat().st_blocks * 512 / 2**20:.1f} MiB on disk), "
              f"{what} under a {limit_gib:g} GiB address-space limit: exit {code} in "
              f"{seconds:.1f} s, peak RSS {usage.ru_maxrss / 1024:.0f} MiB, {len(lines)} stderr "
              f"line(s): {stderr.strip()[-300:]}")
    return failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20000, help="cases per base model")
    parser.add_argument("--model", action="append", help="a model file to mutate (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-s", type=float, default=10.0, help="time limit of one load")
    parser.add_argument("--big-gib", type=float, default=3.0,
                        help="size of the sparse big-file check (0: skip it)")
    parser.add_argument("--as-limit-gib", type=float, default=1.0,
                        help="address-space limit of the big-file check")
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
        if args.big_gib:
            failed += big_file_check(work, bases[0][1], args.big_gib, args.as_limit_gib)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
