"""The ``tinysnn`` command line. Every sub-command is a plugin registered through
``register_commands`` (ours included), so installed plugins add their own."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from . import __version__
from .errors import ConfigError, TinySNNError
from .log import cli_logging
from .registry import get_registry


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinysnn", description="Memory- and energy-efficient spiking neural networks: "
        "STDP training, fixed-point quantization, model selection and on-board measurement.")
    parser.add_argument("--version", action="version", version=f"tinysnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    registry = get_registry()
    for name in registry.names("command"):
        entry = registry.get_entry("command", name)
        command = entry.obj() if isinstance(entry.obj, type) else entry.obj
        p = sub.add_parser(name, help=entry.summary, description=entry.summary)
        command.add_arguments(p)
        p.set_defaults(_command=command)
    return parser


def log_level() -> int:
    """The level of the command's messages: ``TINYSNN_LOG_LEVEL`` (debug, info, warning,
    error), info by default."""
    name = os.environ.get("TINYSNN_LOG_LEVEL", "").strip().upper() or "INFO"
    level = logging.getLevelName(name)
    if not isinstance(level, int):
        raise ConfigError(f"TINYSNN_LOG_LEVEL={name.lower()!r}: give debug, info, warning or "
                          "error")
    return level


def main(argv=None) -> int:
    try:
        level = log_level()
    except TinySNNError as exc:
        print(f"tinysnn: error: {exc}", file=sys.stderr)
        return 2
    with cli_logging(level):
        return _main(argv)


def _main(argv) -> int:
    try:
        # inside the try: under TINYSNN_STRICT_PLUGINS=1 loading the plugins may fail
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "_command", None):
            parser.print_help()
            return 2
        return int(args._command.run(args) or 0)
    except TinySNNError as exc:
        print(f"tinysnn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tinysnn: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
