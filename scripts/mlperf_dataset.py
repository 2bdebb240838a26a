"""A data set directory for the MLPerf Tiny runner's accuracy and performance modes, from a
model's own test split, and the host's reference for what the board must answer
(docs/protocol.md, "The MLPerf Tiny runner").

    .venv/bin/python scripts/mlperf_dataset.py runs/results/mnist5k_ts_n400.tsnn \
        --out build/mlperf-data --samples 100

writes OUT/<the firmware's model name>/ (the runner looks for DATASET_PATH/<model>/, the model
being the board's m-model-[...]):

- tsnn_NNNN.bin: the 784 image bytes of test sample NNNN (the runner loads a file as it is);
- y_labels.csv: one row per file, ``file,classes,class`` (the runner's datasets.DataSet reads
  the columns file, classes, class, bytes_to_send, stride without a header line);
- expected.csv: ``file,class,prediction,scores``: the integer simulator's prediction and the
  m-results scores for the image alone (seed and sample id of tinysnn_serial.eembc), so a
  runner session's results.json can be checked sample by sample (--check).

    .venv/bin/python scripts/mlperf_dataset.py MODEL --out DIR --check SESSION/results.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from tinysnn_core import intsim
from tinysnn_core.errors import InputError, TinySNNError
from tinysnn_serial import codegen, deploy, eembc


def write_dataset(model_path: str, out: Path, samples: int) -> Path:
    net, m = deploy.load_model(model_path)
    images, labels, _, data_name = deploy.test_split(net, samples)
    name = deploy.firmware_model_name(deploy.model_id(model_path)[0], codegen.model_digest(m))
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    ids = np.full(len(images), eembc.IMAGE_ONLY_SAMPLE_ID)
    preds, counts = intsim.infer(m, images, eembc.IMAGE_ONLY_SEED, ids)
    with open(folder / "y_labels.csv", "w", newline="") as truth, \
            open(folder / "expected.csv", "w", newline="") as expected:
        rows, ref = csv.writer(truth), csv.writer(expected)
        ref.writerow(["file", "class", "prediction", "scores"])
        for k, (image, label) in enumerate(zip(images, labels)):
            file = f"tsnn_{k:04d}.bin"
            (folder / file).write_bytes(np.asarray(image, dtype=np.uint8).tobytes())
            rows.writerow([file, m.n_classes, int(label)])
            scores = eembc.class_scores(counts[k], m.assignments, m.n_classes)
            ref.writerow([file, int(label), int(preds[k]), " ".join(scores)])
    accuracy = float(np.mean(preds == labels)) * 100
    print(f"{folder}: {len(images)} test samples of {data_name}; the board's answers to the "
          f"images alone should give Top-1 {accuracy:.1f}% (seed {eembc.IMAGE_ONLY_SEED}, "
          f"sample id {eembc.IMAGE_ONLY_SAMPLE_ID})")
    return folder


def check_session(folder: Path, results_json: Path) -> int:
    """Compare a runner session's parsed results with expected.csv, file by file."""
    with open(folder / "expected.csv", newline="") as fh:
        expected = {r["file"]: r for r in csv.DictReader(fh)}
    try:
        session = json.loads(results_json.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{results_json}: not a runner results.json ({exc})") from None
    checked = mismatched = 0
    for r in session:
        if "file" not in r or "infer" not in r:
            continue
        want = expected.get(r["file"])
        if want is None:
            raise InputError(f"{results_json}: {r['file']} is not in {folder}/expected.csv")
        scores = [float(s) for s in want["scores"].split()]
        got = r["infer"].get("results", [])
        checked += 1
        if got != scores or int(np.argmax(got)) != int(want["prediction"]):
            mismatched += 1
            print(f"{r['file']}: runner parsed {got}, expected {scores}")
    print(f"{checked} inferences checked against the host's reference, {mismatched} differ")
    return 1 if mismatched or not checked else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="a quantized model (.tsnn)")
    ap.add_argument("--out", required=True, help="the data set directory (the runner's -s)")
    ap.add_argument("--samples", type=int, default=100, help="first test samples (default 100)")
    ap.add_argument("--check", metavar="RESULTS_JSON",
                    help="compare a runner session's results.json with the reference")
    args = ap.parse_args(argv)
    try:
        if not 1 <= args.samples <= 100_000:
            raise InputError(f"--samples {args.samples}: give 1..100000")
        folder = write_dataset(args.model, Path(args.out), args.samples)
        return check_session(folder, Path(args.check)) if args.check else 0
    except TinySNNError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
