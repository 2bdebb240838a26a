#!/usr/bin/env python3
"""Whether two exploration results files hold the same rows, point by point, apart from the
time a point took (``seconds``): e.g. a grouped and an ungrouped run of the same grid.

    python scripts/same_rows.py A.jsonl B.jsonl

Prints the number of points compared and every field that differs; exit status 0 when the rows
are identical, 1 when they are not, 2 for a file that cannot be read."""

from __future__ import annotations

import sys

from tinysnn_core.errors import TinySNNError
from tinysnn_core.explore import read_results

TIMING = ("seconds",)


def by_key(path: str) -> dict[str, dict]:
    return {row["key"]: {k: v for k, v in row.items() if k not in TIMING}
            for row in read_results(path) if "key" in row}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: same_rows.py A.jsonl B.jsonl", file=sys.stderr)
        return 2
    try:
        a, b = (by_key(p) for p in argv)
    except (TinySNNError, OSError) as exc:
        print(f"same_rows: {exc}", file=sys.stderr)
        return 2
    for path, rows in zip(argv, (a, b)):
        if not rows:    # a missing or empty file is no evidence of anything
            print(f"same_rows: {path} has no results rows", file=sys.stderr)
            return 2
    problems = [f"only in {argv[0]}: {k}" for k in sorted(a.keys() - b.keys())]
    problems += [f"only in {argv[1]}: {k}" for k in sorted(b.keys() - a.keys())]
    for key in sorted(a.keys() & b.keys()):
        for field in sorted(set(a[key]) | set(b[key])):
            if a[key].get(field) != b[key].get(field):
                problems.append(f"{key} ({a[key].get('label', '?')}): {field} differs")
    print(f"{len(a.keys() & b.keys())} points in both; "
          + ("identical rows (apart from seconds)" if not problems
             else f"{len(problems)} differences"))
    for line in problems[:50]:
        print("  " + line)
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
