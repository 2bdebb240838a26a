"""K training seeds of one configuration in a run directory (``tinysnn run --seeds K``).

The directory holds ``seed<S>.tsnn`` (with its checkpoint ``seed<S>.tsnn.ckpt``) and
``seed<S>.json`` for each seed S = seed, seed + 1, ..., and ``seeds.json``, the manifest: the
finished seeds, their models and accuracies, the mean and its 95% Student-t interval. A rerun
skips the seeds whose JSON shows the same configuration and resumes an interrupted one from its
checkpoint. ``tinysnn explore --seeds K DIR`` explores the first K seeds of the manifest.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

from .errors import ConfigError, InputError
from .stats import CONFIDENCE, mean_ci

MANIFEST = "seeds.json"
FORMAT = "tinysnn-seeds/1"
MAX_SEEDS = 1000


def parse_seed_count(text, flag: str = "--seeds") -> int:
    """K of ``--seeds K``: an integer in 1..1000."""
    try:
        k = int(str(text).strip())
    except ValueError:
        raise ConfigError(f"{flag} takes a number of seeds (an integer, e.g. 5), got "
                          f"{text!r}") from None
    if not 1 <= k <= MAX_SEEDS:
        raise ConfigError(f"{flag}: {k} is outside 1..{MAX_SEEDS}")
    return k


def seed_paths(run_dir, seed: int) -> tuple[Path, Path]:
    """The model file and the JSON of one seed in a run directory."""
    run_dir = Path(run_dir)
    return run_dir / f"seed{int(seed)}.tsnn", run_dir / f"seed{int(seed)}.json"


def _finished(json_path: Path, expected: dict, evaluate: bool) -> dict | None:
    """The JSON of a seed that is done with this configuration, else None."""
    try:
        data = json.loads(json_path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("config") != expected:
        return None
    metrics = data.get("metrics")
    if evaluate and not (isinstance(metrics, dict) and "accuracy" in metrics):
        return None
    return data


def summary(run_dir, seeds: list[int], results: list[dict],
            confidence: float = CONFIDENCE) -> dict:
    """The manifest of ``seeds`` (their JSONs ``results``, in the same order)."""
    out = {"format": FORMAT, "seeds": list(seeds),
           "models": {str(s): seed_paths(run_dir, s)[0].name for s in seeds},
           "config": results[0]["config"] if results else None, "confidence": confidence}
    accs = [r.get("metrics", {}).get("accuracy") for r in results]
    if accs and all(isinstance(a, (int, float)) for a in accs):
        mean, ci = mean_ci(accs, confidence)
        out.update({"accuracy": mean, "accuracy_seeds": accs,
                    "n_test": [r["metrics"].get("n_test") for r in results]})
        if ci is not None:
            out["accuracy_ci"] = [max(0.0, ci[0]), min(1.0, ci[1])]
    out["train_seconds_seeds"] = [r.get("metrics", {}).get("train_seconds") for r in results]
    return out


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)        # a reader never sees half a manifest


def describe(manifest: dict) -> str:
    """One line: the accuracy over the seeds with its interval."""
    seeds = manifest["seeds"]
    if "accuracy" not in manifest:
        return f"{len(seeds)} seeds trained ({seeds[0]}..{seeds[-1]})"
    per_seed = ", ".join(f"{100 * a:.2f}" for a in manifest["accuracy_seeds"])
    ci = manifest.get("accuracy_ci")
    conf = round(100 * manifest.get("confidence", CONFIDENCE))
    return (f"test accuracy over {len(seeds)} seeds ({seeds[0]}..{seeds[-1]}): "
            f"{100 * manifest['accuracy']:.2f}% mean"
            + (f", {conf}% CI {100 * ci[0]:.2f}-{100 * ci[1]:.2f}% (Student t, "
               f"{len(seeds) - 1} degrees of freedom)" if ci else "")
            + f"; per seed: {per_seed}")


def run_seeds_command(command, args) -> int:
    """``tinysnn run|train --seeds K``: the single-seed command once per seed (each resumable),
    then the manifest."""
    from .builtin.commands import config_from_args

    k = parse_seed_count(args.seeds)
    cfg = config_from_args(args)          # every flag checked before any work
    run_dir = Path(args.out)
    if run_dir.suffix == ".tsnn" or (run_dir.exists() and not run_dir.is_dir()):
        raise ConfigError(f"with --seeds, --out names a directory for the per-seed models "
                          f"(e.g. runs/tinysnn-seeds), not the file {run_dir}")
    run_dir.mkdir(parents=True, exist_ok=True)
    seeds = [int(cfg.seed) + i for i in range(k)]
    results = []
    for seed in seeds:
        one = copy.copy(args)
        one.seeds, one.seed = None, seed
        model, json_path = seed_paths(run_dir, seed)
        one.out, one.json = str(model), str(json_path)
        expected = json.loads(json.dumps(config_from_args(one).resolved().to_dict()))
        done = None if args.fresh else _finished(json_path, expected, command.evaluate)
        if done is not None and model.exists():
            print(f"seed {seed}: done ({json_path})", file=sys.stderr)
        else:
            print(f"seed {seed}: {model}", file=sys.stderr)
            rc = command.run(one)
            if rc:
                return rc
            done = json.loads(json_path.read_text())
        results.append(done)
        _write_json(run_dir / MANIFEST, summary(run_dir, seeds[:len(results)], results))
    manifest = summary(run_dir, seeds, results)
    _write_json(run_dir / MANIFEST, manifest)
    if args.json:
        _write_json(Path(args.json), manifest)
    print(describe(manifest))
    print(f"run directory {run_dir} ({MANIFEST})")
    return 0


def read_run_dir(run_dir, k: int) -> list[tuple[int, str]]:
    """``(seed, model path)`` of the first ``k`` seeds of a run directory of ``run --seeds``."""
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST
    if not run_dir.is_dir():
        raise InputError(f"--seeds {k}: {run_dir} is not a run directory of tinysnn run --seeds "
                         f"(train one with: tinysnn run --seeds {k} --out DIR)")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{run_dir} has no {MANIFEST}: train it with tinysnn run --seeds "
                         f"{k} --out {run_dir}") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise InputError(f"{path} is damaged ({type(exc).__name__}): rerun tinysnn run "
                         f"--seeds {k} --out {run_dir} to rewrite it") from None
    seeds = data.get("seeds") if isinstance(data, dict) else None
    models = data.get("models") if isinstance(data, dict) else None
    if (data.get("format") if isinstance(data, dict) else None) != FORMAT or not (
            isinstance(seeds, list) and all(isinstance(s, int) and not isinstance(s, bool)
                                            for s in seeds)
            and isinstance(models, dict)):
        raise InputError(f"{path} is not a manifest of tinysnn run --seeds ({FORMAT})")
    if len(seeds) < k:
        raise InputError(f"{run_dir} has {len(seeds)} finished seeds, fewer than --seeds {k}: "
                         f"rerun tinysnn run --seeds {k} --out {run_dir}")
    out = []
    for seed in seeds[:k]:
        name = models.get(str(seed))
        if (not isinstance(name, str) or not name or "\x00" in name
                or Path(name).name != name):         # a bare file name inside the directory
            raise InputError(f"{path} names no model file of seed {seed}")
        model = run_dir / name
        if not model.is_file():
            raise InputError(f"{model} (seed {seed} of {run_dir}) is missing")
        out.append((seed, str(model)))
    return out
